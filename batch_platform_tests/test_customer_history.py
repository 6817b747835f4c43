"""`gold/customer_history` (SCD Type 2) and the profile features of `gold/customer_features`
(SPEC.md, "Gold"), on hand-worked rows: survivorship per attribute, system priority on a shared
updated_at, no version for an update that changes nothing golden, one system only, NULLs that do
not overwrite, version boundaries, silver partitions up to Q only, re-runs; and the as-of join at C.
"""

from __future__ import annotations

from datetime import date, datetime

import dagster as dg
import pandas as pd
import pytest
from pyspark.sql import functions as F

from batch_platform.assets.customer_history import HISTORY_COLUMNS, compute_customer_history
from batch_platform.features import FEATURE_COLUMNS, NUMERIC_FEATURES, PROFILE_FEATURES, compute_customer_features
from batch_platform.ml.pipelines import CATEGORIES, MODEL_INPUTS, NULLABLE
from batch_platform.schemas.base import spark_schema
from batch_platform.schemas.customer_history import CustomerHistory
from batch_platform_tests.gold_fixtures import PROFILES_DDL, silver_frames
from batch_platform_tests.lake_fixtures import failed_checks
from batch_platform_tests.ml_fixtures import training_rows

STORE_FIRST = ("store", "online")
Q1, Q2, Q3 = "2024-Q1", "2024-Q2", "2024-Q3"
T1 = datetime(2024, 2, 1, 9, 0)
T2 = datetime(2024, 2, 15, 9, 0)
T3 = datetime(2024, 5, 1, 9, 0)
T4 = datetime(2024, 5, 20, 9, 0)
T5 = datetime(2024, 6, 1, 9, 0)
SIGNUP = date(2020, 1, 15)


def profile(cid, system, at, quarter, email=None, country=None, signup=None, contract=None, pay=None, charges=None):
    return (cid, system, at, email, country, signup, contract, pay, charges, quarter)


ROWS = [
    # C1, both systems at the same updated_at: the store wins where it has a value, the shop elsewhere
    profile("C1", "online", T1, Q1, "c1@x.com", "DE", SIGNUP, "month-to-month", "credit card", 70.0),
    profile("C1", "store", T1, Q1, None, "DE", None, "one-year", "cash", 60.0),
    # the store re-sends its record: nothing golden changes, so no new version
    profile("C1", "store", T2, Q1, None, "DE", None, "one-year", "cash", 60.0),
    # the store changes the charge: version 2
    profile("C1", "store", T3, Q2, None, "DE", None, "one-year", "cash", 65.0),
    # the shop knows only the payment method now: NULLs do not overwrite; version 3
    profile("C1", "online", T4, Q2, None, None, None, None, "bank transfer", None),
    # C2, in the shop only, delivered twice (partitions Q1 and Q2): counted once
    profile("C2", "online", T1, Q1, "c2@x.com", "FR", SIGNUP, "two-year", "mailed check", 50.0),
    profile("C2", "online", T1, Q2, "c2@x.com", "FR", SIGNUP, "two-year", "mailed check", 50.0),
    profile("C2", "online", T5, Q2, "c2@x.com", "FR", SIGNUP, "month-to-month", "mailed check", 50.0),
]


def _profiles(spark, rows=ROWS):
    return spark.createDataFrame(rows, PROFILES_DDL)


def _history(spark, quarters, priority=STORE_FIRST, rows=ROWS) -> pd.DataFrame:
    frame = compute_customer_history(_profiles(spark, rows), quarters, priority)
    return frame.toPandas().sort_values(["quarter", "customer_id", "version"]).reset_index(drop=True)


def _versions(history: pd.DataFrame, quarter: str, cid: str) -> list[tuple]:
    part = history[(history["quarter"] == quarter) & (history["customer_id"] == cid)]
    columns = ["version", "valid_from", "valid_to", "is_current", "email", "contract", "payment_method"]
    return [
        tuple(None if pd.isna(v) else v for v in row)
        for row in part[[*columns, "monthly_charges", "signup_date"]].itertuples(index=False)
    ]


def _ts(value: datetime) -> pd.Timestamp:
    return pd.Timestamp(value)


def test_survivorship_and_versions_on_hand_worked_rows(spark):
    history = _history(spark, [Q2])
    assert _versions(history, Q2, "C1") == [
        (1, _ts(T1), _ts(T3), False, "c1@x.com", "one-year", "cash", 60.0, SIGNUP),
        (2, _ts(T3), _ts(T4), False, "c1@x.com", "one-year", "cash", 65.0, SIGNUP),
        (3, _ts(T4), None, True, "c1@x.com", "one-year", "bank transfer", 65.0, SIGNUP),
    ]
    assert _versions(history, Q2, "C2") == [
        (1, _ts(T1), _ts(T5), False, "c2@x.com", "two-year", "mailed check", 50.0, SIGNUP),
        (2, _ts(T5), None, True, "c2@x.com", "month-to-month", "mailed check", 50.0, SIGNUP),
    ]
    assert list(history.columns) == [*HISTORY_COLUMNS, "quarter"]


def test_partition_q_sees_silver_up_to_q_only_and_several_quarters_run_together(spark):
    together = _history(spark, [Q1, Q2])
    q1 = _history(spark, [Q1])
    assert _versions(q1, Q1, "C1") == [(1, _ts(T1), None, True, "c1@x.com", "one-year", "cash", 60.0, SIGNUP)]
    assert _versions(q1, Q1, "C2") == [(1, _ts(T1), None, True, "c2@x.com", "two-year", "mailed check", 50.0, SIGNUP)]
    pd.testing.assert_frame_equal(together[together["quarter"] == Q1].reset_index(drop=True), q1)
    pd.testing.assert_frame_equal(together[together["quarter"] == Q2].reset_index(drop=True), _history(spark, [Q2]))


def test_the_system_priority_decides_a_shared_updated_at(spark):
    at_t1 = _history(spark, [Q1], priority=("online", "store"), rows=ROWS[:2])
    assert _versions(at_t1, Q1, "C1") == [
        (1, _ts(T1), None, True, "c1@x.com", "month-to-month", "credit card", 70.0, SIGNUP)
    ]
    # with the shop first, the store re-sending its record at T2 is a change: the latest record with a value
    resent = _history(spark, [Q1], priority=("online", "store"), rows=ROWS[:3])
    assert [(v[0], v[1], v[5]) for v in _versions(resent, Q1, "C1")] == [
        (1, _ts(T1), "month-to-month"),
        (2, _ts(T2), "one-year"),
    ]


def test_a_rerun_gives_the_same_rows_whatever_the_input_order_and_they_satisfy_the_model(spark):
    first = _history(spark, [Q1, Q2])
    shuffled = compute_customer_history(_profiles(spark, ROWS[::-1]).repartition(3), [Q1, Q2], STORE_FIRST)
    again = shuffled.toPandas().sort_values(["quarter", "customer_id", "version"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(first, again)
    assert failed_checks(CustomerHistory, compute_customer_history(_profiles(spark), [Q1, Q2], STORE_FIRST)) == {}


def test_no_profiles_gives_an_empty_history(spark):
    assert _history(spark, [Q1, Q2], rows=[]).empty


# ------------------------------------------------------------------------------ as-of features
EVENTS = [
    ("C1", datetime(2024, 5, 2), 10.0, "eur", "web", Q2),
    ("C2", datetime(2024, 5, 3), 20.0, "eur", "web", Q2),
    ("C3", datetime(2024, 5, 4), 30.0, "eur", "web", Q2),
]


def _features(spark, history, quarters=(Q3,)) -> pd.DataFrame:
    events, logs, scores = silver_frames(spark, EVENTS)
    frame = compute_customer_features(events, logs, scores, list(quarters), 4, history=history)
    return frame.toPandas().sort_values(["quarter", "customer_id"]).set_index("customer_id")


def test_profile_features_are_the_version_of_history_q_minus_1_valid_at_c(spark):
    history = compute_customer_history(_profiles(spark), [Q1, Q2, Q3], STORE_FIRST)
    features = _features(spark, history)
    assert list(features.columns[-len(PROFILE_FEATURES) - 1 : -1]) == list(PROFILE_FEATURES)
    # C = 2024-07-01: C1's version 3, C2's version 2; C3 has no profile
    c1, c2, c3 = (features.loc[c] for c in ("C1", "C2", "C3"))
    assert (c1["contract"], c1["payment_method"], c1["monthly_charges"], c1["country"]) == (
        "one-year",
        "bank transfer",
        65.0,
        "DE",
    )
    assert c2["contract"] == "month-to-month"
    # 2020-01-15 → 2024-07-01: 53 whole months and a half
    assert c1["tenure_months"] == c2["tenure_months"] == 53
    assert all(pd.isna(c3[name]) for name in PROFILE_FEATURES)


def test_profile_features_never_see_profiles_at_or_after_the_cutoff(spark):
    """Poisoning: every profile row at or after C (they can only be in silver partitions ≥ Q) changed
    or added, and history Q and later rebuilt from them; no feature of Q moves, while history Q does."""
    c = datetime(2024, 7, 1)
    poison = [
        profile(cid, system, at, Q3, "bad@x.com", "ZZ", date(1999, 1, 1), "two-year", "poison", 999.0)
        for cid in ("C1", "C2", "C3")
        for system in ("online", "store")
        for at in (c, datetime(2024, 8, 1))
    ]
    clean = compute_customer_history(_profiles(spark), [Q1, Q2, Q3], STORE_FIRST)
    poisoned = compute_customer_history(_profiles(spark, [*ROWS, *poison]), [Q1, Q2, Q3], STORE_FIRST)
    before, after = _features(spark, clean), _features(spark, poisoned)
    pd.testing.assert_frame_equal(before, after)
    q3 = poisoned.filter("quarter = '2024-Q3' AND is_current").toPandas()
    assert set(q3["payment_method"]) == {"poison"}  # the poison reached history Q itself


def test_without_history_the_profile_features_are_null_and_the_others_unchanged(spark):
    empty = spark.createDataFrame([], spark_schema(CustomerHistory))
    none, nothing_known = _features(spark, None), _features(spark, empty)
    assert none[list(PROFILE_FEATURES)].isna().all().all()
    pd.testing.assert_frame_equal(none, nothing_known, check_dtype=False)
    assert list(none.reset_index().columns) == [*FEATURE_COLUMNS, "quarter"]


@pytest.mark.parametrize("name", PROFILE_FEATURES)
def test_every_profile_feature_is_a_model_input_with_its_nulls_explicit(name):
    """A numeric profile feature is filled with an indicator beside it; a category gets `none` and a one-hot
    vector (`batch_platform.ml.pipelines`)."""
    assert name not in NUMERIC_FEATURES
    expected = [f"{name}_filled", f"{name}_missing"] if name in NULLABLE else [f"{name}_vector"]
    assert set(expected) <= set(MODEL_INPUTS) and name in (*NULLABLE, *CATEGORIES)


@pytest.mark.parametrize("profiles", [False, True], ids=["no customers source", "profiles"])
def test_every_candidate_trains_and_scores_with_or_without_profiles(spark, profiles):
    """A landing zone without the customers source (the benchmark's real transaction log) has every profile
    feature null: each candidate still trains, and scores rows with a contract and a country it never saw.
    With profiles, the candidates learn a churn signal that is the contract alone."""
    from batch_platform.ml.candidates import CANDIDATES
    from batch_platform.ml.metrics import ranking_metrics
    from batch_platform.ml.pipelines import churn_probability, estimator, pipeline

    train = training_rows(spark, 120, profiles)
    unseen = training_rows(spark, 40, profiles, seed=4).withColumn("country", F.lit("ZZ"))
    for candidate in CANDIDATES:
        model = pipeline(estimator(candidate, candidate.combinations()[0])).fit(train)
        scored = churn_probability(model, unseen).select("label", "churn_probability").toPandas()
        assert scored["churn_probability"].between(0, 1).all() and len(scored) == 40, candidate.name
        ranked = ranking_metrics(scored["label"].to_numpy(), scored["churn_probability"].to_numpy())
        assert ranked["auc_roc"] > 0.9, (candidate.name, profiles, ranked)


# ------------------------------------------------------------------------------ the graph
def _upstream(graph, child: tuple[str, str], parent: tuple[str, str], quarter_key: str) -> list[str]:
    from batch_platform_tests.platform import quarterly

    mapping = graph.get_partition_mapping(dg.AssetKey(list(child)), dg.AssetKey(list(parent)))
    result = mapping.get_upstream_mapped_partitions_result_for_partitions(
        quarterly.subset_with_partition_keys([quarter_key]), quarterly, quarterly
    )
    return sorted(result.partitions_subset.get_partition_keys())


def test_the_graph_expresses_history_up_to_q_and_features_from_history_q_minus_1():
    from batch_platform.definitions import build_definitions
    from batch_platform_tests.platform import DEFAULTS

    graph = build_definitions(DEFAULTS).resolve_asset_graph()
    history, profiles = ("gold", "customer_history"), ("silver", "customer_profiles")
    assert _upstream(graph, history, profiles, "2024-07-01") == ["2024-01-01", "2024-04-01", "2024-07-01"]
    assert _upstream(graph, history, profiles, "2024-01-01") == ["2024-01-01"]
    assert _upstream(graph, ("gold", "customer_features"), history, "2024-07-01") == ["2024-04-01"]
    assert _upstream(graph, ("gold", "customer_features"), history, "2024-01-01") == []
    assert _upstream(graph, ("ml", "churn_scores"), history, "2024-07-01") == ["2024-07-01"]


# ------------------------------------------------------------------------------ end to end
RUN = (Q1, Q3)


@pytest.fixture(scope="module")
def history_runs(tmp_path_factory):
    """A generated landing zone through bronze, silver and gold (2024-Q1…Q3, one run), and the same
    landing zone without its `customers` folder through the same assets into another lake."""
    import shutil

    from batch_platform.resources import build_resources
    from batch_platform.sample_data import generate_landing
    from batch_platform_tests.platform import bronze_assets, gold_assets, make_config, materialize_range, silver_assets

    lakes = {}
    for name in ("with", "without"):
        root = tmp_path_factory.mktemp(f"customers-{name}")
        config = make_config(root, checks={"quarantine_rate_warn": 0.5, "quarantine_rate_fail": 0.9})
        generate_landing(config.landing_root, first_quarter=Q1, last_quarter=Q3, customers=60, seed=3)
        if name == "without":
            shutil.rmtree(f"{config.landing_root}/customers")
        result = materialize_range([*bronze_assets, *silver_assets, *gold_assets], build_resources(config), *RUN)
        lakes[name] = (config, result)
    return lakes


def _lake(config, table: str, quarter: str) -> pd.DataFrame:
    from batch_platform_tests.gold_fixtures import lake_table, naive

    return naive(lake_table(config.lake_root, table, quarter))


def test_a_run_builds_the_history_and_joins_it_into_the_features(spark, history_runs):
    from batch_platform_tests.platform import materialisations

    config, result = history_runs["with"]
    recorded = materialisations(result, dg.AssetKey(["gold", "customer_history"]))
    assert sorted(recorded) == ["2024-01-01", "2024-04-01", "2024-07-01"]
    assert all(recorded[key]["customers"] > 0 for key in recorded)
    assert recorded["2024-07-01"]["customers_with_changes"] > 0
    history = _lake(config, "gold/customer_history", Q2)
    features = _lake(config, "gold/customer_features", Q3).set_index("customer_id")
    current = history[history["is_current"]].set_index("customer_id")  # history Q2 knows nothing at or after C
    known = features.index.intersection(current.index)
    assert len(known) > 0.5 * len(features)
    for name in ("contract", "payment_method", "monthly_charges", "country"):
        pd.testing.assert_series_equal(features.loc[known, name], current.loc[known, name], check_names=False)
    assert features.loc[features.index.difference(current.index), list(PROFILE_FEATURES)].isna().all().all()
    assert _lake(config, "gold/training_set", Q3)["contract"].notna().any()


def test_a_landing_zone_without_customers_gives_null_profiles_and_the_same_everything_else(history_runs):
    with_customers, without = history_runs["with"][0], history_runs["without"][0]
    for quarter in (Q1, Q2, Q3):
        assert _lake(without, "gold/customer_history", quarter).empty
        assert _lake(without, "silver/customer_profiles", quarter).empty
        plain, profiled = (
            _lake(without, "gold/training_set", quarter),
            _lake(with_customers, "gold/training_set", quarter),
        )
        assert plain[list(PROFILE_FEATURES)].isna().all().all()
        others = [c for c in plain.columns if c not in PROFILE_FEATURES]
        pd.testing.assert_frame_equal(plain[others], profiled[others])


def test_poisoned_profiles_at_and_after_the_cutoff_move_no_feature_of_q(spark, history_runs):
    """Every silver profile of partition Q replaced by poison (updated_at ≥ C, the only rows silver Q
    may add to what history Q-1 knew), history and features of Q rebuilt through the graph: history Q
    changes, no feature of Q moves."""
    from batch_platform.resources import build_resources
    from batch_platform_tests.lake_fixtures import commit_quarters
    from batch_platform_tests.platform import bronze_assets, gold_assets, materialize_range, silver_assets

    config, _ = history_runs["with"]
    before_features = _lake(config, "gold/customer_features", Q3)
    before_history = _lake(config, "gold/customer_history", Q3)
    ids = sorted(set(before_features["customer_id"]))
    poison = [
        profile(cid, system, at, Q3, "bad@x.com", "ZZ", date(1999, 1, 1), "two-year", "poison", 999.0)
        for cid in ids
        for system in ("online", "store")
        for at in (datetime(2024, 7, 1), datetime(2024, 9, 1))
    ]
    commit_quarters(spark.createDataFrame(poison, PROFILES_DDL), config.lake_root, "silver/customer_profiles", [Q3])
    keys = [dg.AssetKey(["gold", "customer_history"]), dg.AssetKey(["gold", "customer_features"])]
    everything = [*bronze_assets, *silver_assets, *gold_assets]
    assert materialize_range(everything, build_resources(config), Q3, selection=keys).success
    after_history = _lake(config, "gold/customer_history", Q3)
    poisoned = after_history[after_history["is_current"] & after_history["customer_id"].isin(ids)]
    assert set(poisoned["payment_method"]) == {"poison"} and len(poisoned) == len(ids)
    assert not after_history.equals(before_history)
    pd.testing.assert_frame_equal(_lake(config, "gold/customer_features", Q3), before_features)
