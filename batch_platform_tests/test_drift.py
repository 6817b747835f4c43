"""The drift statistics against values worked by hand (SPEC.md, "Monitoring", Definitions)."""

import math

import pytest

from batch_platform.drift import decile_edges, drift, ks_statistics, null_rates, psi


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

    assert decile_edges(reference, ["x"]) == {"x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]}
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
    reference = _frame(spark, [(1.0, None), (2.0, None), (3.0, None)])
    current = _frame(spark, [(2.0, None), (3.0, None), (4.0, None)])
    far = _frame(spark, [(10.0, None), (11.0, None)])

    assert ks_statistics(reference, current, ["x"]) == {"x": pytest.approx(1 / 3)}
    assert ks_statistics(reference, far, ["x"]) == {"x": pytest.approx(1.0)}
    assert ks_statistics(reference, reference, ["x"]) == {"x": 0.0}


def test_null_rates_are_shares_of_rows_and_none_without_rows(spark):
    frame = _frame(spark, [(1.0, None), (None, None), (3.0, "a"), (None, "b")])
    assert null_rates(frame, ["x", "c"]) == {"x": 0.5, "c": 0.5}
    assert null_rates(frame.limit(0), ["x"]) == {"x": None}
