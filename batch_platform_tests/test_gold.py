"""Gold tables (SPEC.md, "Gold: point-in-time ML tables"): every rule, the schemas, the split,
the asset graph, the materialisation metadata and `load_training_set`.

The rule tests call the pure functions of `batch_platform.assets.gold` on hand-made silver rows
whose expected figures are worked out by hand below. The Dagster tests write silver partitions
straight into a temporary lake (as the silver assets would) and materialise only gold, with the
real silver, bronze and gold asset definitions and the real IO manager.
"""

import logging
import re
import shutil
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from pyspark.sql import functions as F

from batch_platform import delta
from batch_platform.assets.gold import (
    FEATURE_COLUMNS,
    TRAINING_COLUMNS,
    build_gold_assets,
    compute_churn_labels,
    compute_customer_features,
    compute_training_set,
    lookback_quarters,
    split_bucket,
    split_col,
    split_of,
    unmatched_customers,
)
from batch_platform.config import parse_config
from batch_platform.definitions import build_definitions
from batch_platform.features import PROFILE_FEATURES
from batch_platform.partitions import quarter_range, quarter_start, to_key
from batch_platform.schemas.customer_history import HISTORY_KEY
from batch_platform.schemas.gold import FEATURES_KEY, ChurnLabels, CustomerFeatures, TrainingSet
from batch_platform_tests.gold_fixtures import (
    EVENTS_DDL,
    SILVER_TABLES,
    as_pandas,
    lake_table,
    materialize_gold,
    naive,
    random_silver,
    silver_frames,
    write_silver,
)
from batch_platform_tests.lake_fixtures import failed_checks, lake_quarter
from batch_platform_tests.platform import gold_assets, make_config, materialisations, quarterly

time.tzset()  # conftest sets TZ=UTC: naive datetimes collected from Spark are UTC

UTC = UTC
GOLD_KEYS = [asset.key for asset in gold_assets]
GOLD_TABLES = [asset.key.to_user_string() for asset in gold_assets]


def ts(*parts) -> datetime:
    return datetime(*parts, tzinfo=UTC)


# ------------------------------------------------------------------- the rules, by hand
# Gold 2025-Q1: C = 2025-01-01, L = 4 → silver 2024-Q1 … 2024-Q4; C − 90 days = 2024-10-03.
HAND_EVENTS = [
    ("a", ts(2024, 3, 1, 10), 10.0, "eur", "web", "2024-Q1"),
    ("a", ts(2024, 3, 1, 10), 10.0, "eur", "store", "2024-Q2"),  # redelivered: the first copy (web) is kept
    ("a", ts(2023, 11, 11, 8), 7.0, "eur", "web", "2024-Q3"),  # late arrival inside the lookback: counts
    ("a", ts(2024, 10, 2, 23, 59, 59), 20.0, "eur", "app", "2024-Q4"),  # 1 s before the 90-day window
    ("a", ts(2024, 10, 3), 5.0, "eur", None, "2024-Q4"),  # exactly C − 90 days: inside
    ("a", datetime(2024, 12, 31, 23, 59, 59, 999999, UTC), 1.5, "eur", "web", "2024-Q4"),  # last, 1 µs before C
    ("a", ts(2025, 1, 5), 100.0, "eur", "phone", "2025-Q1"),  # silver Q: never a feature
    ("a", ts(2023, 12, 20), 1000.0, "eur", "phone", "2023-Q4"),  # outside the lookback
    ("b", ts(2024, 12, 1, 12), -3.0, "usd", "store", "2024-Q4"),
    ("c", ts(2025, 1, 2), 9.0, "eur", "web", "2025-Q1"),  # only in silver Q: no feature row
    ("d", ts(2023, 12, 2), 9.0, "eur", "web", "2023-Q4"),  # only before the lookback: no feature row
]
HAND_LOGS = [
    ("a", "login", ts(2024, 5, 1), "2024-Q2"),
    ("a", "login", ts(2024, 5, 1), "2024-Q3"),  # redelivered: counted once
    ("a", "page_view", ts(2024, 5, 1), "2024-Q2"),
    ("a", "login", ts(2025, 1, 3), "2025-Q1"),  # silver Q
    ("a", "login", ts(2023, 12, 3), "2023-Q4"),  # outside the lookback
    ("c", "login", ts(2024, 6, 1), "2024-Q2"),  # c has no feature row
]
HAND_SCORES = [
    ("a", 300.0, "bronze", date(2024, 6, 1), "2024-Q2"),
    ("a", 400.0, "silver", date(2024, 11, 15), "2024-Q4"),
    ("a", 450.0, "gold", date(2024, 11, 15), "2024-Q4"),  # same latest date: the highest score wins
    ("a", 999.0, "gold", date(2025, 1, 2), "2025-Q1"),  # silver Q
    ("c", 10.0, "bronze", date(2024, 6, 1), "2024-Q2"),
]


def test_customer_features_follow_every_rule_of_the_spec(spark):
    events, logs, scores = silver_frames(spark, HAND_EVENTS, HAND_LOGS, HAND_SCORES)
    features = compute_customer_features(events, logs, scores, ["2025-Q1"], lookback=4).cache()

    assert features.columns == FEATURE_COLUMNS + ["quarter"]
    rows = {
        row["customer_id"]: {k: v for k, v in row.asDict().items() if k not in PROFILE_FEATURES}  # no history
        for row in features.collect()
    }
    assert sorted(rows) == ["a", "b"]
    cutoff = datetime(2025, 1, 1)
    assert rows["a"] == {
        "customer_id": "a",
        "feature_cutoff": cutoff,
        "txn_count": 5,
        "total_amount": 43.5,
        "avg_amount": 8.7,
        "active_days": 5,
        "first_activity_ts": datetime(2023, 11, 11, 8),
        "last_activity_ts": datetime(2024, 12, 31, 23, 59, 59, 999999),
        "recency_days": 1,
        "tenure_days": (date(2025, 1, 1) - date(2023, 11, 11)).days,
        "txn_count_90d": 2,
        "amount_90d": 6.5,
        "distinct_channels": 2,
        "log_event_count": 2,
        "partner_score": 450.0,
        "partner_segment": "gold",
        "quarter": "2025-Q1",
    }
    assert rows["b"] == {
        "customer_id": "b",
        "feature_cutoff": cutoff,
        "txn_count": 1,
        "total_amount": -3.0,
        "avg_amount": -3.0,
        "active_days": 1,
        "first_activity_ts": datetime(2024, 12, 1, 12),
        "last_activity_ts": datetime(2024, 12, 1, 12),
        "recency_days": 31,
        "tenure_days": 31,
        "txn_count_90d": 1,
        "amount_90d": -3.0,
        "distinct_channels": 1,
        "log_event_count": 0,
        "partner_score": None,
        "partner_segment": None,
        "quarter": "2025-Q1",
    }


def test_the_lookback_is_l_quarters_and_stops_before_the_first_quarter(spark):
    assert lookback_quarters("2025-Q1", 4) == ["2024-Q1", "2024-Q2", "2024-Q3", "2024-Q4"]
    assert lookback_quarters("2025-Q1", 2) == ["2024-Q3", "2024-Q4"]
    events, logs, scores = silver_frames(spark, HAND_EVENTS, HAND_LOGS, HAND_SCORES)
    short = {r["customer_id"]: r for r in compute_customer_features(events, logs, scores, ["2025-Q1"], 1).collect()}
    # L = 1: only 2024-Q4 — a's events of 2024-Q1..Q3 and its 2024-Q2 logs are out of reach.
    assert (short["a"]["txn_count"], short["a"]["log_event_count"], short["a"]["partner_score"]) == (3, 0, 450.0)
    # Gold 2024-Q1 with the platform starting in 2024-Q1: no silver partition precedes it (the
    # asset graph's mapping yields none, so the step is handed empty frames).
    later = F.col("quarter") >= "2024-Q1"
    first = compute_customer_features(events.filter(later), logs.filter(later), scores.filter(later), ["2024-Q1"], 4)
    assert first.count() == 0


def test_churn_labels_use_only_the_label_window_in_silver_partition_q(spark):
    features = spark.createDataFrame(
        [(c, "2025-Q1") for c in ("a", "b", "e", "f", "g")], "customer_id string, quarter string"
    )
    events = spark.createDataFrame(
        [
            ("a", ts(2025, 1, 1), 1.0, "eur", "web", "2025-Q1"),  # at C: active
            ("b", ts(2024, 12, 15), 1.0, "eur", "web", "2025-Q1"),  # late arrival before C: not in the window
            ("b", ts(2025, 2, 1), 1.0, "eur", "web", "2025-Q2"),  # in the window, but silver Q+1: not read
            ("e", datetime(2025, 1, 30, 23, 59, 59, 999999, UTC), 1.0, "eur", "web", "2025-Q1"),  # last µs of W=30
            ("f", ts(2025, 1, 31), 1.0, "eur", "web", "2025-Q1"),  # C + 30 days: outside W=30, inside W=90
            ("g", ts(2024, 11, 1), 1.0, "eur", "web", "2024-Q4"),  # history only
            ("x", ts(2025, 1, 2), 1.0, "eur", "web", "2025-Q1"),  # not a customer of features Q
        ],
        EVENTS_DDL,
    )
    for window, expected in (
        (30, {"a": 0, "b": 1, "e": 0, "f": 1, "g": 1}),
        (90, {"a": 0, "b": 1, "e": 0, "f": 0, "g": 1}),
    ):
        labels = compute_churn_labels(features, events, window).cache()
        assert labels.columns == ["customer_id", "label", "label_window_start", "label_window_end", "quarter"]
        rows = {r["customer_id"]: r for r in labels.collect()}
        assert {c: r["label"] for c, r in rows.items()} == expected
        assert {r["label_window_start"] for r in rows.values()} == {datetime(2025, 1, 1)}
        assert {r["label_window_end"] for r in rows.values()} == {datetime(2025, 1, 1) + timedelta(days=window)}


def test_training_set_joins_features_and_labels_and_adds_the_split(spark):
    events, logs, scores = silver_frames(spark, HAND_EVENTS, HAND_LOGS, HAND_SCORES)
    features = compute_customer_features(events, logs, scores, ["2025-Q1"], 4).cache()
    labels = compute_churn_labels(features, events, 90).cache()
    training = compute_training_set(features, labels, 0.5).cache()
    assert training.columns == TRAINING_COLUMNS + ["quarter"]
    rows = {r["customer_id"]: r for r in training.collect()}
    assert sorted(rows) == ["a", "b"]
    assert rows["a"]["label"] == 0 and rows["b"]["label"] == 1  # a has an event on 2025-01-05, b none
    assert {c: r["split"] for c, r in rows.items()} == {c: split_of(c, 0.5) for c in rows}
    assert rows["a"]["txn_count"] == 5 and rows["a"]["label_window_end"] == datetime(2025, 4, 1)

    assert unmatched_customers(features, labels) == {}
    stale = labels.filter(F.col("customer_id") == "a")
    assert unmatched_customers(features, stale) == {"2025-Q1": {"features_only": 1, "labels_only": 0}}


def test_split_is_a_stable_function_of_customer_id_with_the_configured_eval_share(spark):
    ids = spark.range(10_000).select(F.format_string("C%06d", F.col("id")).alias("customer_id"))
    evals = {}
    for fraction in (0.2, 0.35):
        got = ids.select("customer_id", split_col(F.col("customer_id"), fraction).alias("split")).toPandas()
        share = float((got["split"] == "eval").mean())
        assert abs(share - fraction) <= 0.02, (fraction, share)
        # Spark and plain Python (hashlib) agree on every id, so anyone can recompute the split.
        assert got["split"].tolist() == [split_of(c, fraction) for c in got["customer_id"]]
        evals[fraction] = set(got.loc[got["split"] == "eval", "customer_id"])
        print(f"eval share at {fraction}: {share:.4f} on 10 000 customers")
    # Raising the share only moves customers from train to eval.
    assert evals[0.2] < evals[0.35]
    assert 0.0 <= split_bucket("C000001") < 1.0


def test_one_call_over_many_quarters_equals_one_call_per_quarter(spark):
    # L = 2 over five quarters: the first has no history, the second one quarter, the others two.
    # (L = 4, the default, is compared at the Dagster level in test_jobs.py.)
    quarters = quarter_range("2024-Q1", "2025-Q1")
    rows = random_silver(quarters, customers=50, seed=11)
    events, logs, scores = silver_frames(
        spark, rows["operational_events"], rows["interaction_logs"], rows["partner_scores"]
    )
    for lookback in (2,):
        together = compute_customer_features(events, logs, scores, quarters, lookback).cache()
        labels = compute_churn_labels(together, events, 90)
        training = as_pandas(compute_training_set(together, labels, 0.2))
        alone = None  # one call per quarter; the results are collected together, in one action
        for q in quarters:
            f = compute_customer_features(events, logs, scores, [q], lookback).cache()
            one = compute_training_set(f, compute_churn_labels(f, events, 90), 0.2)
            alone = one if alone is None else alone.unionByName(one)
        separate = as_pandas(alone)
        pd.testing.assert_frame_equal(training, separate)
        assert set(training["quarter"]) == set(quarters[1:])  # the first quarter has no history
        # The same customer is on the same side in every quarter.
        assert (training.groupby("customer_id")["split"].nunique() == 1).all()
        assert 0 < training["label"].mean() < 1


# ------------------------------------------------------------------------------ schemas
def test_gold_schemas_reject_rows_that_break_a_rule(spark):
    quarters = quarter_range("2024-Q1", "2024-Q3")
    rows = random_silver(quarters, customers=12, seed=2)
    events, logs, scores = silver_frames(
        spark, rows["operational_events"], rows["interaction_logs"], rows["partner_scores"]
    )
    features = compute_customer_features(events, logs, scores, ["2024-Q3"], 4).cache()
    labels = compute_churn_labels(features, events, 90).cache()
    training = compute_training_set(features, labels, 0.2).cache()
    ids = sorted(r["customer_id"] for r in features.select("customer_id").collect())
    assert len(ids) >= 4
    assert failed_checks(TrainingSet, training) == {}  # the unbroken table passes every rule

    def broken(frame, column, value, who):
        return frame.withColumn(column, F.when(F.col("customer_id") == who, value).otherwise(F.col(column)))

    # One rule broken per customer; the validation finds exactly those checks, each with one failing row.
    cases = {
        CustomerFeatures: (
            broken(
                broken(
                    broken(features, "last_activity_ts", F.col("feature_cutoff"), ids[1]),
                    "feature_cutoff",
                    F.col("feature_cutoff") + F.expr("INTERVAL 1 DAY"),
                    ids[2],
                ),
                "log_event_count",
                F.lit(-1).cast("long"),
                ids[3],
            ).unionByName(features.filter(F.col("customer_id") == ids[0])),
            [
                ("", "unique (quarter, customer_id)"),
                ("", "gold_last_activity_before_cutoff"),
                ("", "gold_feature_cutoff_is_quarter_start"),
                ("log_event_count", "greater_than_or_equal_to(0)"),
            ],
        ),
        ChurnLabels: (
            broken(
                broken(labels, "label", F.lit(2), ids[0]),
                "label_window_start",
                F.col("label_window_start") - F.expr("INTERVAL 1 HOUR"),
                ids[1],
            ),
            [("label", "isin([0, 1])"), ("", "gold_label_window_start_is_quarter_start")],
        ),
        TrainingSet: (
            broken(broken(training, "split", F.lit("test"), ids[0]), "label", F.lit(None).cast("int"), ids[1]),
            [("split", "isin(['train', 'eval'])"), ("label", "not_nullable")],
        ),
    }
    for model, (frame, checks) in cases.items():
        assert failed_checks(model, frame) == dict.fromkeys(checks, 1), model.__name__


def test_gold_schemas_describe_every_column_and_rule():
    columns = CustomerFeatures.to_schema().columns
    assert all(column.description for column in columns.values())
    assert TrainingSet.to_schema().unique == ["quarter", "customer_id"]
    assert set(TrainingSet.to_schema().columns) == set(CustomerFeatures.to_schema().columns) | {
        "label",
        "label_window_start",
        "label_window_end",
        "split",
    }


# --------------------------------------------------------------------------- asset graph
def test_gold_assets_declare_their_point_in_time_dependencies():
    features, labels, training, _history = gold_assets
    silver = [dg.AssetKey(["silver", t]) for t in SILVER_TABLES]
    assert set(features.dependency_keys) == {*silver, HISTORY_KEY}
    for key in silver:
        mapping = features.get_partition_mapping(key)
        assert isinstance(mapping, dg.TimeWindowPartitionMapping)
        assert (mapping.start_offset, mapping.end_offset) == (-4, -1)
        assert mapping.allow_nonexistent_upstream_partitions
        upstream = mapping.get_upstream_mapped_partitions_result_for_partitions(
            quarterly.subset_with_partition_keys([to_key("2025-Q1")]), quarterly, quarterly
        ).partitions_subset.get_partition_keys()
        assert list(upstream) == [to_key(q) for q in quarter_range("2024-Q1", "2024-Q4")]
        first = mapping.get_upstream_mapped_partitions_result_for_partitions(
            quarterly.subset_with_partition_keys([to_key("2024-Q1")]), quarterly, quarterly
        ).partitions_subset.get_partition_keys()
        assert list(first) == []
    assert set(labels.dependency_keys) == {dg.AssetKey(["silver", "operational_events"]), features.key}
    assert isinstance(
        labels.get_partition_mapping(dg.AssetKey(["silver", "operational_events"])),
        (type(None), dg.IdentityPartitionMapping),
    )
    assert set(training.dependency_keys) == {features.key, labels.key}
    for asset, model in zip(gold_assets[:3], (CustomerFeatures, ChurnLabels, TrainingSet), strict=True):
        (spec,) = asset.specs
        lineage = spec.metadata["dagster/column_lineage"]
        assert set(lineage.deps_by_column) == set(model.to_schema().columns) - {"quarter"}
        assert {dep.asset_key for deps in lineage.deps_by_column.values() for dep in deps} <= set(asset.dependency_keys)
        assert asset.backfill_policy == dg.BackfillPolicy.single_run()
        assert asset.partitions_def == quarterly
        assert spec.group_name == "gold" and spec.code_version
        assert "SPEC.md" in spec.description
        assert spec.metadata["dagster/column_schema"].columns
    short = build_gold_assets(quarterly, parse_config({"batch": {"lookback_quarters": 2}}).batch)[0]
    short = short.get_partition_mapping(silver[0])
    assert (short.start_offset, short.end_offset) == (-2, -1)


# ------------------------------------------------------------------------- Dagster runs
# Silver 2024-Q1, Q3 and Q4 are in the lake; 2024-Q2 was materialised with no rows; 2025-Q1 never.
RUN_QUARTERS = ["2024-Q1", "2024-Q2", "2024-Q3", "2024-Q4"]
WRITTEN = ["2024-Q1", "2024-Q3", "2024-Q4"]


def _only(rows: dict[str, list[tuple]], quarters: list[str]) -> dict[str, list[tuple]]:
    """The silver rows of `quarters` (every row ends with its partition)."""
    return {table: [row for row in found if row[-1] in quarters] for table, found in rows.items()}


@pytest.fixture(scope="module")
def gold_lake(spark, tmp_path_factory):
    config = make_config(tmp_path_factory.mktemp("gold"))
    rows = random_silver(RUN_QUARTERS, customers=40, seed=3)
    write_silver(spark, config.lake_root, _only(rows, WRITTEN), RUN_QUARTERS)
    instance = dg.DagsterInstance.ephemeral()
    first = materialize_gold(config, "2024-Q1", instance=instance)
    q4 = materialize_gold(config, "2024-Q4", instance=instance)
    return {"config": config, "rows": rows, "first": first, "q4": q4, "instance": instance}


def test_every_gold_materialisation_records_the_lineage_its_asset_definition_shows(gold_lake):
    shown = {
        asset.key: asset.specs_by_key[asset.key].metadata["dagster/column_lineage"]
        for asset in gold_assets
        if asset.key != HISTORY_KEY  # not in materialize_gold's default selection
    }
    events = gold_lake["q4"].get_asset_materialization_events()
    assert {event.materialization.asset_key for event in events} == set(shown)
    for event in events:
        recorded = event.materialization.metadata["dagster/column_lineage"].value
        assert recorded == shown[event.materialization.asset_key], event.materialization.asset_key


def test_the_first_quarter_gives_empty_but_valid_gold_tables(gold_lake):
    assert gold_lake["first"].success
    lake = gold_lake["config"].lake_root
    for table, model in (
        ("customer_features", CustomerFeatures),
        ("churn_labels", ChurnLabels),
        ("training_set", TrainingSet),
    ):
        data = lake_quarter(lake, f"gold/{table}", "2024-Q1")
        assert data.empty
        assert set(data.columns) == set(model.to_schema().columns) - {"quarter"}
    meta = materialisations(gold_lake["first"], dg.AssetKey(["gold", "customer_features"]))[to_key("2024-Q1")]
    assert meta["customers"] == 0
    assert meta["lookback_quarters_read"] == []
    assert meta["lookback_quarters_before_first"] == ["2023-Q1", "2023-Q2", "2023-Q3", "2023-Q4"]


def test_a_lookback_quarter_materialised_empty_reads_as_empty_and_is_reported(spark, gold_lake):
    result = gold_lake["q4"]
    assert result.success
    meta = materialisations(result, dg.AssetKey(["gold", "customer_features"]))[to_key("2024-Q4")]
    assert meta["lookback_quarters_read"] == ["2024-Q1", "2024-Q2", "2024-Q3"]
    assert meta["lookback_quarters_empty"] == ["2024-Q2"]
    warnings = [
        entry.user_message
        for entry in gold_lake["instance"].all_logs(result.run_id)
        if entry.level == logging.WARNING and entry.step_key == "gold__customer_features"
    ]
    assert any("silver operational_events 2024-Q2 was materialised with no rows" in m for m in warnings), warnings
    # The lake holds exactly what the functions compute from the partitions that hold rows.
    events, logs, scores = silver_frames(spark, *_only(gold_lake["rows"], WRITTEN).values())
    expected = compute_customer_features(events, logs, scores, ["2024-Q4"], 4).toPandas().drop(columns="quarter")
    expected = expected.sort_values("customer_id").reset_index(drop=True)
    got = lake_table(gold_lake["config"].lake_root, "gold/customer_features", "2024-Q4")
    pd.testing.assert_frame_equal(naive(got), naive(expected))


def test_a_lookback_quarter_never_materialised_fails_the_gold_run_before_it_writes_anything(spark, gold_lake, tmp_path):
    """Issue 23: after a crash, a gold-only run read a silver quarter that was not in the lake as empty
    and replaced a good gold quarter with fewer customers, "succeeding" with a warning. Here silver
    2024-Q2 was never materialised (its first write was killed, say) under a good gold 2024-Q4: the
    features step fails naming the silver table and the quarter, and no gold table gets a commit. The
    quarters before `batch.first_quarter` are another matter: they are not partitions, and a lake
    whose first quarter is 2024-Q3 builds gold 2024-Q4 from silver 2024-Q3 alone."""
    config = make_config(tmp_path)
    lake = Path(config.lake_root)
    write_silver(spark, config.lake_root, _only(gold_lake["rows"], WRITTEN), WRITTEN)
    shutil.copytree(Path(gold_lake["config"].lake_root) / "gold", lake / "gold")
    before = {key: delta.open_table(str(lake / key)).version for key in GOLD_TABLES}
    good = lake_table(config.lake_root, "gold/training_set", "2024-Q4")
    assert len(good) > 20

    result = materialize_gold(config, "2024-Q4", raise_on_error=False)

    assert not result.success
    (failure,) = result.get_step_failure_events()
    assert failure.step_key == "gold__customer_features"
    message = failure.step_failure_data.user_failure_data.description
    # The first of its silver inputs Dagster loads (each of the three lacks 2024-Q2).
    assert re.match(
        r"silver/(operational_events|interaction_logs|partner_scores): quarter\(s\) 2024-Q2 have never", message
    )
    assert "not read as empty" in message
    assert not result.get_asset_materialization_events()
    assert {key: delta.open_table(str(lake / key)).version for key in GOLD_TABLES} == before
    pd.testing.assert_frame_equal(lake_table(config.lake_root, "gold/training_set", "2024-Q4"), good)

    from batch_platform.resources import build_resources

    later = make_config(tmp_path, batch={"first_quarter": "2024-Q3"})
    rebuilt = dg.materialize(
        list(build_definitions(later).assets),
        selection=GOLD_KEYS,
        resources=build_resources(later),
        partition_key=to_key("2024-Q4"),
    )
    assert rebuilt.success
    meta = materialisations(rebuilt, FEATURES_KEY)[to_key("2024-Q4")]
    assert meta["lookback_quarters_read"] == ["2024-Q3"]
    assert meta["lookback_quarters_before_first"] == ["2023-Q4", "2024-Q1", "2024-Q2"]


def test_gold_materialisations_report_customers_churn_and_split_sizes(gold_lake):
    result, lake = gold_lake["q4"], gold_lake["config"].lake_root
    key = to_key("2024-Q4")
    features = materialisations(result, dg.AssetKey(["gold", "customer_features"]))[key]
    labels = materialisations(result, dg.AssetKey(["gold", "churn_labels"]))[key]
    training = materialisations(result, dg.AssetKey(["gold", "training_set"]))[key]
    data = lake_table(lake, "gold/training_set", "2024-Q4")

    assert features["customers"] == labels["customers"] == training["customers"] == len(data) > 0
    assert features["dagster/row_count"] == len(data)
    assert features["input_partitions"] == {
        **{t: ["2024-Q1", "2024-Q2", "2024-Q3"] for t in SILVER_TABLES},
        "customer_history": ["2024-Q3"],
    }
    assert features["dagster/column_lineage"].deps_by_column["log_event_count"][0].asset_key == dg.AssetKey(
        ["silver", "interaction_logs"]
    )
    stats = {r.data["feature"]: r.data for r in features["feature_stats"].records}
    assert stats["txn_count"]["min"] >= 1 and stats["txn_count"]["max"] == data["txn_count"].max()
    assert stats["partner_score"]["null_rate"] == pytest.approx(data["partner_score"].isna().mean(), abs=1e-6)
    assert labels["churned"] == int(data["label"].sum())
    assert labels["churn_rate"] == training["churn_rate"] == pytest.approx(data["label"].mean(), abs=1e-6)
    assert labels["prediction_window_days"] == 90
    assert labels["input_partitions"] == {"operational_events": ["2024-Q4"]}
    assert training["train_rows"] + training["eval_rows"] == len(data)
    assert training["eval_rows"] == int((data["split"] == "eval").sum())
    assert training["eval_share"] == pytest.approx((data["split"] == "eval").mean(), abs=1e-6)
    assert "train_churn_rate" in training and "eval_churn_rate" in training
    assert list(data.columns) == TRAINING_COLUMNS


def test_labels_refuse_a_quarter_whose_silver_partition_was_never_materialised(gold_lake, tmp_path):
    config = make_config(tmp_path)
    shutil.copytree(gold_lake["config"].lake_root, config.lake_root)
    result = materialize_gold(config, "2025-Q1", raise_on_error=False)
    assert not result.success
    failures = [e for e in result.get_step_failure_events()]
    assert [e.step_key for e in failures] == ["gold__churn_labels"]
    assert "silver/operational_events: quarter(s) 2025-Q1 have never been materialised" in (
        failures[0].step_failure_data.user_failure_data.description
    )


def test_load_training_set_reads_a_quarter_by_label_or_key(gold_lake, monkeypatch):
    import batch_platform
    from batch_platform.consume import PartitionNotMaterialised

    config = gold_lake["config"]
    expected = lake_table(config.lake_root, "gold/training_set", "2024-Q4")
    by_label = batch_platform.load_training_set("2024-Q4", lake_root=config.lake_root)
    by_key = batch_platform.load_training_set("2024-10-01", config=config)
    for frame in (by_label, by_key):
        assert (frame["quarter"] == "2024-Q4").all()
        pd.testing.assert_frame_equal(
            frame.drop(columns="quarter").sort_values("customer_id").reset_index(drop=True), expected
        )
    assert str(by_label["feature_cutoff"].dtype) == "datetime64[us, UTC]"

    with pytest.raises(PartitionNotMaterialised) as missing:
        batch_platform.load_training_set("2024-Q3", lake_root=config.lake_root)
    assert "gold/training_set has no partition 2024-Q3" in str(missing.value)
    assert f"{config.lake_root}/gold/training_set" in str(missing.value)
    assert isinstance(missing.value, FileNotFoundError)
    with pytest.raises(ValueError, match="not a quarter"):
        batch_platform.load_training_set("2024-11-01", lake_root=config.lake_root)


def test_import_batch_platform_stays_light():
    import subprocess
    import sys

    code = (
        "import sys, batch_platform; "
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('pyspark', 'dagster', 'pandera', 'pandas')); "
        "print(heavy); assert not heavy; assert callable(batch_platform.load_training_set)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_graph_built_for_another_lookback_refuses_to_run(gold_lake):
    """L shapes the partition mapping at load time; a run whose config says otherwise must not
    silently compute with the wrong window."""
    result = materialize_gold(
        gold_lake["config"],
        "2024-Q4",
        assets=build_gold_assets(quarterly, parse_config({"batch": {"lookback_quarters": 2}}).batch),
        raise_on_error=False,
    )
    assert not result.success
    (failure,) = result.get_step_failure_events()
    assert failure.step_key == "gold__customer_features"
    assert "batch.lookback_quarters is 4 in the config but the asset graph was built with L = 2" in (
        failure.step_failure_data.user_failure_data.description
    )


def test_a_run_with_another_window_and_eval_share_writes_them_into_the_lake(spark, tmp_path):
    """W = 30 days and an eval share of 0.5 reach the lake: the label windows, the labels (events
    of silver Q in [C, C + 30 days) only) and the split. The random silver holds events throughout
    each quarter, so 30 and 90 days label different customers, and 0.5 and 0.2 split differently."""
    config = make_config(tmp_path, batch={"prediction_window_days": 30, "eval_fraction": 0.5})
    quarters, target = ["2024-Q1", "2024-Q2", "2024-Q3"], "2024-Q3"
    rows = random_silver(quarters, customers=400, seed=11)
    write_silver(spark, config.lake_root, rows, quarters)

    result = materialize_gold(config, target)

    assert result.success
    cutoff = quarter_start(target)
    labels = lake_table(config.lake_root, "gold/churn_labels", target)
    training = lake_table(config.lake_root, "gold/training_set", target)
    for frame in (labels, training):
        assert set(frame["label_window_start"]) == {pd.Timestamp(cutoff)}
        assert set(frame["label_window_end"]) == {pd.Timestamp(cutoff + timedelta(days=30))}

    def churned(days: int) -> dict[str, int]:
        active = {
            cid
            for cid, when, *_, q in rows["operational_events"]
            if q == target and cutoff <= when < cutoff + timedelta(days=days)
        }
        return {cid: int(cid not in active) for cid in labels["customer_id"]}

    assert dict(zip(labels["customer_id"], labels["label"], strict=True)) == churned(30)
    assert churned(30) != churned(90)
    assert dict(zip(training["customer_id"], training["label"], strict=True)) == churned(30)

    assert len(training) >= 300
    assert list(training["split"]) == [split_of(cid, 0.5) for cid in training["customer_id"]]
    share = (training["split"] == "eval").mean()
    assert 0.4 < share < 0.6
    key = to_key(target)
    assert materialisations(result, dg.AssetKey(["gold", "churn_labels"]))[key]["prediction_window_days"] == 30
    training_meta = materialisations(result, dg.AssetKey(["gold", "training_set"]))[key]
    assert training_meta["eval_fraction_configured"] == 0.5
    assert training_meta["eval_share"] == pytest.approx(share, abs=1e-6)
