from datetime import UTC, datetime

import dagster as dg
import pytest

from batch_platform.partitions import (
    NotAPartitionError,
    QuarterError,
    check_partition,
    label_of,
    last_complete_quarter,
    parse_quarter,
    quarter_end,
    quarter_range,
    quarter_start,
    quarterly_partitions,
    shift,
    to_key,
    to_label,
)
from batch_platform_tests.platform import quarterly


@pytest.mark.parametrize(
    "text, label, key",
    [
        ("2025-Q4", "2025-Q4", "2025-10-01"),
        ("2025-10-01", "2025-Q4", "2025-10-01"),
        (" 2024-Q1 ", "2024-Q1", "2024-01-01"),
        ("2024-04-01", "2024-Q2", "2024-04-01"),
    ],
)
def test_label_and_key_round_trip(text, label, key):
    assert to_label(text) == label
    assert to_key(text) == key
    assert to_label(to_key(label)) == label


@pytest.mark.parametrize("bad", ["2024-Q5", "2024-Q0", "2024-02-01", "2024-10-02", "Q4-2025", "2025Q4", ""])
def test_bad_quarters_are_refused_with_the_value_named(bad):
    with pytest.raises(QuarterError, match="is not a quarter"):
        parse_quarter(bad)


def test_windows_are_utc_and_half_open():
    assert quarter_start("2025-Q4") == datetime(2025, 10, 1, tzinfo=UTC)
    assert quarter_end("2025-Q4") == datetime(2026, 1, 1, tzinfo=UTC)
    assert quarter_end("2025-Q1") == quarter_start("2025-Q2")
    window = quarterly.time_window_for_partition_key(to_key("2025-Q4"))
    assert (window.start, window.end) == (quarter_start("2025-Q4"), quarter_end("2025-Q4"))


def test_shift_range_and_label_of():
    assert shift("2025-Q1", -1) == "2024-Q4"
    assert shift("2024-Q4", 5) == "2026-Q1"
    assert quarter_range("2024-Q3", "2025-Q2") == ["2024-Q3", "2024-Q4", "2025-Q1", "2025-Q2"]
    assert label_of(datetime(2024, 12, 31, 23, 59)) == "2024-Q4"
    with pytest.raises(QuarterError, match="backwards"):
        quarter_range("2025-Q2", "2025-Q1")


def test_partitions_start_at_the_first_quarter_and_end_at_the_last_complete_one():
    keys = quarterly.get_partition_keys()
    assert keys[0] == "2024-01-01"
    last_end = quarterly.time_window_for_partition_key(keys[-1]).end
    now = datetime.now(UTC)
    assert last_end <= now < quarter_end(to_label(last_end.strftime("%Y-%m-%d")))
    assert quarterly_partitions("2025-Q3").get_partition_keys()[0] == "2025-07-01"


@pytest.mark.parametrize(
    "now", [datetime(2027, 1, 1, tzinfo=UTC), datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC), datetime.now(UTC)]
)
def test_the_last_complete_quarter_is_the_last_partition_computed_without_dagster(now):
    with dg.partition_loading_context(effective_dt=now):
        last_key = quarterly_partitions("2024-Q1").get_last_partition_key()
    assert last_complete_quarter(now) == to_label(last_key)


def test_a_quarter_outside_the_partitions_is_named_with_the_valid_range():
    now = datetime(2026, 12, 5, tzinfo=UTC)
    assert check_partition("2024-01-01", "2024-Q1", now) == "2024-Q1"
    assert check_partition("2026-Q3", "2024-Q1", now) == "2026-Q3"
    for quarter in ("2027-Q1", "2026-Q4", "2023-Q4"):
        with pytest.raises(NotAPartitionError) as error:
            check_partition(quarter, "2024-Q1", now)
        assert str(error.value) == f"{quarter} is not a partition: quarters run from 2024-Q1 to 2026-Q3"
    with pytest.raises(NotAPartitionError, match="quarters start at 2026-Q4, which has not ended yet"):
        check_partition("2026-Q4", "2026-Q4", now)
