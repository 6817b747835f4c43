"""The drift statistics against values worked by hand (SPEC.md, "Monitoring", Definitions)."""

import math

import pytest
from pyspark.sql import functions as F

from batch_platform.drift import decile_edges, drift, drift_pairs, ks_statistics, null_rates, psi


def _frame(spark, rows, schema="x double, c string"):
    return spark.createDataFrame(rows, schema)


def _term(p, q):
    return (q - p) * math.log(q / p)


def test_psi_floors_empty_bins_and_is_none_for_an_empty_side():
    assert psi([1, 1], [1, 1]) == 0.0
    assert psi([2, 0], [1, 1]) == pytest.approx(_term(1.0, 0.5) + _term(0.0001, 0.5))
    assert psi([0, 0], [1, 1]) is None
    assert psi([1, 1], [0, 0]) is None


def test_numeric_psi_bins_on_the_reference_deciles_with_empty_bins_floored(spark):
    reference = _frame(spark, [(float(v), None) for v in range(1, 11)])
    current = _frame(spark, [(1.0, None)] * 5 + [(10.0, None)] * 5)

    edges = decile_edges(reference.withColumn("q", F.lit("R")), "q", ["R"], ["x"])
    assert edges == {"R": {"x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]}}
    expected = 2 * _term(0.1, 0.5) + 8 * _term(0.1, 0.0001)
    assert drift(reference, current, ["x"])["x"].psi == pytest.approx(expected)
    assert drift(reference, reference, ["x"])["x"].psi == 0.0


def test_a_constant_reference_has_two_bins_and_nulls_of_the_current_quarter_are_left_out(spark):
    reference = _frame(spark, [(5.0, None)] * 4)
    current = _frame(spark, [(5.0, None), (5.0, None), (6.0, None), (None, None)])

    result = drift(reference, current, ["x"])["x"]
    assert result.psi == pytest.approx(_term(1.0, 2 / 3) + _term(0.0001, 1 / 3))
    assert result.ks == pytest.approx(1 / 3)


def test_a_feature_without_values_on_either_side_has_no_psi_and_no_ks(spark):
    values = _frame(spark, [(1.0, "a"), (2.0, "b")])
    nulls = _frame(spark, [(None, None), (None, None)])

    for reference, current in ((nulls, values), (values, nulls)):
        result = drift(reference, current, ["x"], ["c"])
        assert result["x"].psi is None and result["x"].ks is None
        assert result["c"].psi is None


def test_categorical_psi_counts_a_category_seen_in_one_quarter_only(spark):
    reference = _frame(spark, [(None, v) for v in "aabb"])
    current = _frame(spark, [(None, v) for v in ["a", "b", "c", "c", None]])

    expected = _term(0.5, 0.25) + _term(0.5, 0.25) + _term(0.0001, 0.5)
    result = drift(reference, current, [], ["c"])["c"]
    assert result.psi == pytest.approx(expected)
    assert result.ks is None


def test_ks_is_the_largest_gap_of_the_distribution_functions_with_ties_across_quarters(spark):
    frame = _frame(
        spark,
        [(v, q) for q, values in (("a", [1.0, 2.0, 3.0]), ("b", [2.0, 3.0, 4.0]), ("c", [10.0, 11.0])) for v in values],
        "x double, q string",
    )

    found = ks_statistics(frame, "q", [("a", "b"), ("a", "c"), ("a", "a"), ("a", "d")], ["x"])
    assert found[("a", "b")] == {"x": pytest.approx(1 / 3)}
    assert found[("a", "c")] == {"x": pytest.approx(1.0)}
    assert found[("a", "a")] == {"x": 0.0}
    assert found[("a", "d")] == {"x": None}


def test_every_pair_of_a_run_in_one_frame_equals_each_pair_on_its_own(spark):
    rows = [(float((i * 7 + n) % 13), "abc"[i % 3], f"Q{n}") for n in range(1, 4) for i in range(40 * n)]
    frame = _frame(spark, rows, "x double, c string, q string")
    pairs = [("Q1", "Q2"), ("Q2", "Q3"), ("Q1", "Q3")]

    together = drift_pairs(frame, "q", pairs, ["x"], ["c"])
    for r, s in pairs:
        alone = drift(frame.where(F.col("q") == r), frame.where(F.col("q") == s), ["x"], ["c"])
        assert together[(r, s)] == alone


def test_null_rates_are_shares_of_rows_per_quarter(spark):
    frame = _frame(
        spark,
        [(1.0, None, "a"), (None, None, "a"), (3.0, "a", "a"), (None, "b", "a"), (1.0, "c", "b")],
        "x double, c string, q string",
    )
    assert null_rates(frame, "q", ["x", "c"]) == {"a": {"x": 0.5, "c": 0.5}, "b": {"x": 0.0, "c": 0.0}}
    assert null_rates(frame.limit(0), "q", ["x"]) == {}
