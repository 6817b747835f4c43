"""Point in time (SPEC.md, "Gold"): no gold figure uses an event at or after the cutoff C = start
of Q, except the label, which uses only silver partition Q and only events in [C, C + W).

Three levels: the pure functions (poisoned silver rows), a Dagster run over a silver lake
(which partitions the features step actually loads, and a poisoned silver partition Q on disk),
and the whole chain bronze → silver → gold from a landing zone that receives late files.
"""

import time
from datetime import UTC, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from batch_platform.assets.gold import compute_churn_labels, compute_customer_features
from batch_platform.partitions import quarter_range, quarter_start, shift, to_key
from batch_platform_tests.gold_fixtures import (
    SILVER_TABLES,
    as_pandas,
    lake_table,
    materialize_gold,
    naive,
    random_silver,
    silver_frames,
    write_silver,
)
from batch_platform_tests.lake_fixtures import lake_quarter
from batch_platform_tests.platform import (
    bronze_assets,
    gold_assets,
    make_config,
    materialisations,
    materialize_range,
    silver_assets,
)

time.tzset()

UTC = UTC
FEATURES = dg.AssetKey(["gold", "customer_features"])
LABELS = dg.AssetKey(["gold", "churn_labels"])
Q = "2025-Q1"
C = quarter_start(Q)  # 2025-01-01T00:00Z
HISTORY = quarter_range("2024-Q1", Q)


def _poison(rows: dict[str, list[tuple]], customers: list[str]) -> dict[str, list[tuple]]:
    """Rows at or after C for every customer, in every partition a careless job could read: silver
    Q (legitimately), Q+1, and even Q-1 (which silver never allows; the features guard drops it)."""
    later = {table: list(values) for table, values in rows.items()}
    for i, cid in enumerate(customers):
        for partition, moment in (
            (Q, C),
            (Q, C + timedelta(days=3, seconds=i)),
            (shift(Q, 1), C + timedelta(days=95)),
            (shift(Q, -1), C + timedelta(microseconds=i)),
        ):
            later["operational_events"].append((cid, moment, 10_000.0 + i, "eur", f"poison{i % 3}", partition))
            later["interaction_logs"].append((cid, "poison", moment, partition))
            later["partner_scores"].append((cid, 999.0, "poison", moment.date(), partition))
    for partition in (Q, shift(Q, 1)):  # a customer who only exists after C
        later["operational_events"].append(("NEWCOMER", C + timedelta(days=1), 5.0, "eur", "web", partition))
    return later


def _frames(spark, rows):
    return silver_frames(spark, rows["operational_events"], rows["interaction_logs"], rows["partner_scores"])


def test_events_at_or_after_the_cutoff_never_change_a_feature(spark):
    rows = random_silver(HISTORY, customers=40, seed=21)
    customers = sorted({r[0] for r in rows["operational_events"]})
    before = as_pandas(compute_customer_features(*_frames(spark, rows), [shift(Q, -1), Q], 4))
    after = as_pandas(compute_customer_features(*_frames(spark, _poison(rows, customers)), [shift(Q, -1), Q], 4))
    assert len(before[before["quarter"] == Q]) > 20
    pd.testing.assert_frame_equal(before, after)
    assert "NEWCOMER" not in set(after["customer_id"])


def test_the_label_moves_only_with_events_inside_its_window(spark):
    window = 30
    rows = random_silver(HISTORY, customers=60, seed=8)
    events, logs, scores = _frames(spark, rows)
    features = compute_customer_features(events, logs, scores, [Q], 4).cache()
    base = {r["customer_id"]: r["label"] for r in compute_churn_labels(features, events, window).collect()}
    churned = sorted(c for c, label in base.items() if label == 1)
    assert len(churned) >= 4 and len(churned) < len(base)
    flipped = churned[::2]

    extra = []
    for cid in churned:
        extra += [
            (cid, C - timedelta(microseconds=1), 1.0, "eur", "web", Q),  # a late arrival of an old event
            (cid, C + timedelta(days=window), 1.0, "eur", "web", Q),  # at C + W: outside
            (cid, C + timedelta(days=1), 1.0, "eur", "web", shift(Q, 1)),  # inside, but silver Q+1
            (cid, C + timedelta(days=1), 1.0, "eur", "web", shift(Q, -1)),  # inside, but silver Q-1
        ]
    extra += [(cid, C + timedelta(days=window) - timedelta(microseconds=1), 1.0, "eur", "web", Q) for cid in flipped]
    more = events.unionByName(spark.createDataFrame(extra, events.schema))
    after = {r["customer_id"]: r["label"] for r in compute_churn_labels(features, more, window).collect()}

    assert after == {c: (0 if c in flipped else label) for c, label in base.items()}
    # The same additions leave every feature as it was.
    pd.testing.assert_frame_equal(as_pandas(features), as_pandas(compute_customer_features(more, logs, scores, [Q], 4)))


# ------------------------------------------------------------------------------ Dagster runs
@pytest.fixture(scope="module")
def silver_lake(spark, tmp_path_factory):
    config = make_config(tmp_path_factory.mktemp("pit"))
    rows = random_silver(HISTORY, customers=40, seed=13)
    write_silver(spark, config.lake_root, rows, HISTORY)
    selection = [FEATURES, LABELS]
    first = materialize_gold(config, shift(Q, -1), Q, selection=selection)  # one run, two quarters
    return {"config": config, "rows": rows, "first": first, "selection": selection}


def test_features_step_loads_only_silver_q_minus_l_to_q_minus_1(spark, silver_lake):
    result = silver_lake["first"]
    assert result.success
    features = materialisations(result, FEATURES)
    labels = materialisations(result, LABELS)
    # What Dagster resolved from the partition mappings and handed to the steps.
    assert features[to_key(Q)]["input_partitions"] == {
        **{t: quarter_range("2024-Q1", "2024-Q4") for t in SILVER_TABLES},
        "customer_history": ["2024-Q3", "2024-Q4"],  # Q-1 of each of the run's two quarters
    }
    assert labels[to_key(Q)]["input_partitions"] == {"operational_events": ["2024-Q4", "2025-Q1"]}
    assert features[to_key(Q)]["lookback_quarters_read"] == quarter_range("2024-Q1", "2024-Q4")
    assert features[to_key("2024-Q4")]["lookback_quarters_read"] == quarter_range("2024-Q1", "2024-Q3")
    loaded = [
        (e.step_key, e.event_specific_data.input_name, e.event_specific_data.upstream_step_key)
        for e in result.all_events
        if e.event_type_value == "LOADED_INPUT"
    ]
    features_inputs = sorted(name for step, name, _ in loaded if step == "gold__customer_features")
    assert features_inputs == sorted([*SILVER_TABLES, "customer_history"])

    # In the same run silver 2024-Q4 was loaded for the 2025-Q1 features; the 2024-Q4 features
    # must not have used it: they equal the features computed from silver 2024-Q1..Q3 alone.
    lake = silver_lake["config"].lake_root
    earlier = {t: [r for r in rows if r[-1] < "2024-Q4"] for t, rows in silver_lake["rows"].items()}
    expected = naive(
        compute_customer_features(*_frames(spark, earlier), ["2024-Q4"], 4)
        .toPandas()
        .drop(columns="quarter")
        .sort_values("customer_id")
        .reset_index(drop=True)
    )
    pd.testing.assert_frame_equal(naive(lake_table(lake, "gold/customer_features", "2024-Q4")), expected)


def test_a_poisoned_silver_partition_q_changes_labels_but_no_feature(spark, silver_lake):
    config, rows = silver_lake["config"], silver_lake["rows"]
    lake = config.lake_root
    features_before = lake_table(lake, "gold/customer_features", Q)
    labels_before = lake_table(lake, "gold/churn_labels", Q)
    assert (labels_before["label"] == 1).any()

    customers = sorted(features_before["customer_id"])
    poisoned = {t: [r for r in v if r[-1] == Q] for t, v in _poison(rows, customers).items()}
    write_silver(spark, lake, poisoned, [Q])  # silver 2025-Q1 on disk now holds rows for everyone at ≥ C
    again = materialize_gold(config, Q, selection=silver_lake["selection"])
    assert again.success

    pd.testing.assert_frame_equal(lake_table(lake, "gold/customer_features", Q), features_before)
    labels_after = lake_table(lake, "gold/churn_labels", Q)
    assert (labels_after["label"] == 0).all()  # every customer has an event at C in silver Q now
    assert list(labels_after["customer_id"]) == list(labels_before["customer_id"])


# --------------------------------------------------------------------- from the landing zone
def _write_csv(root: Path, source: str, day: str, name: str, header: str, lines: list[str]) -> None:
    folder = root / source / day
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.csv").write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")


def test_late_landing_files_change_labels_in_the_window_only_end_to_end(tmp_path):
    from batch_platform.resources import build_resources
    from batch_platform.sample_data import generate_landing

    config = make_config(tmp_path)
    landing = Path(config.landing_root)
    generate_landing(landing, first_quarter="2024-Q1", last_quarter="2024-Q2", customers=80, seed=17)
    assets = [*bronze_assets, *silver_assets, *gold_assets]
    assert materialize_range(assets, build_resources(config), "2024-Q1", "2024-Q2").success
    lake = config.lake_root
    features_before = lake_table(lake, "gold/customer_features", "2024-Q2")
    labels_before = lake_table(lake, "gold/churn_labels", "2024-Q2").set_index("customer_id")["label"]
    churned = sorted(labels_before[labels_before == 1].index)
    assert churned, "the sample should hold churners"
    revived, still = churned[: (len(churned) + 1) // 2], churned[(len(churned) + 1) // 2 :]
    everyone = list(features_before["customer_id"])

    # C = 2024-04-01. Files arriving in Q2: events in the label window for `revived`, an old event
    # (late arrival, before C) for `still`; logs and partner scores for everyone.
    _write_csv(
        landing,
        "operational",
        "2024-05-02",
        "late_ops",
        "customer_id,event_time,amount,currency,channel",
        [f"{c},2024-04-20T10:00:00Z,12.50,EUR,web" for c in revived]
        + [f"{c},2024-03-15 09:00:00,7,EUR,app" for c in still],
    )
    _write_csv(
        landing,
        "logs",
        "2024-05-02",
        "late_logs",
        "customer_id,log_event_type,log_timestamp",
        [f"{c},login,2024-04-02T00:00:00Z" for c in everyone],
    )
    _write_csv(
        landing,
        "external",
        "2024-05-02",
        "late_scores",
        "customer_id,partner_score,partner_segment",
        [f"{c},999,poison" for c in everyone],
    )
    # A file that arrived in Q1 with events at and after C (silver Q1 rejects them as future).
    _write_csv(
        landing,
        "operational",
        "2024-03-31",
        "future_ops",
        "customer_id,event_time,amount,currency,channel",
        [f"{c},2024-04-01T00:00:00Z,1000,EUR,store" for c in everyone],
    )

    assert materialize_range(assets, build_resources(config), "2024-Q1", "2024-Q2").success
    pd.testing.assert_frame_equal(lake_table(lake, "gold/customer_features", "2024-Q2"), features_before)
    labels_after = lake_table(lake, "gold/churn_labels", "2024-Q2").set_index("customer_id")["label"]
    expected = labels_before.copy()
    expected[revived] = 0
    pd.testing.assert_series_equal(labels_after, expected)
    quarantined = lake_quarter(lake, "silver/operational_events_quarantine", "2024-Q1")
    assert (quarantined["_source_file"].str.endswith("future_ops.csv")).sum() == len(everyone)
