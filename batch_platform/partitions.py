"""The quarterly partitions definition and the `YYYY-QN` helpers.

Dagster time-window keys are the window's start date (`2025-10-01`); people read and type the
quarter label (`2025-Q4`). Every helper here accepts either spelling, so a CLI flag, a config
value or a test can use whichever is natural (SPEC.md, "Quarters").

Dagster is imported only where the partitions definition is built, so the command line can check
the quarters it was given, and refuse them, before it loads anything heavy.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - typing only
    import dagster as dg

KEY_FORMAT = "%Y-%m-%d"
QUARTER_CRON = "0 0 1 */3 *"

_LABEL = re.compile(r"^(\d{4})-Q([1-4])$")
_KEY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


class QuarterError(ValueError):
    """A string that is neither a quarter label (`2025-Q4`) nor a quarter start key (`2025-10-01`)."""


class NotAPartitionError(QuarterError):
    """A well-formed quarter outside the partitions: before the first quarter or not yet ended."""


def parse_quarter(text: str) -> tuple[int, int]:
    """`2025-Q4` or `2025-10-01` -> (2025, 4)."""
    text = str(text).strip()
    if m := _LABEL.match(text):
        return int(m.group(1)), int(m.group(2))
    if m := _KEY.match(text):
        year, month, day = (int(g) for g in m.groups())
        if day == 1 and month in (1, 4, 7, 10):
            return year, (month - 1) // 3 + 1
    raise QuarterError(
        f"{text!r} is not a quarter: write it as YYYY-QN (e.g. 2025-Q4) or as the quarter's first day (e.g. 2025-10-01)"
    )


def quarter_start(quarter: str) -> datetime:
    year, q = parse_quarter(quarter)
    return datetime(year, 3 * (q - 1) + 1, 1, tzinfo=UTC)


def quarter_end(quarter: str) -> datetime:
    """Exclusive end: the first instant of the next quarter."""
    year, q = parse_quarter(quarter)
    return quarter_start(f"{year + 1}-Q1") if q == 4 else quarter_start(f"{year}-Q{q + 1}")


def to_label(quarter: str) -> str:
    year, q = parse_quarter(quarter)
    return f"{year}-Q{q}"


def to_key(quarter: str) -> str:
    return quarter_start(quarter).strftime(KEY_FORMAT)


def label_of(moment: date | datetime) -> str:
    """The label of the quarter a date or UTC instant falls in."""
    return f"{moment.year}-Q{(moment.month - 1) // 3 + 1}"


def shift(quarter: str, n: int) -> str:
    """The label `n` quarters after (negative: before) `quarter`."""
    year, q = parse_quarter(quarter)
    index = year * 4 + (q - 1) + n
    return f"{index // 4}-Q{index % 4 + 1}"


def quarter_range(first: str, last: str) -> list[str]:
    """Labels from `first` to `last`, both included."""
    start, end = parse_quarter(first), parse_quarter(last)
    count = (end[0] * 4 + end[1]) - (start[0] * 4 + start[1])
    if count < 0:
        raise QuarterError(f"quarter range {to_label(first)}...{to_label(last)} runs backwards")
    return [shift(first, i) for i in range(count + 1)]


def last_complete_quarter(now: datetime | None = None) -> str:
    """The label of the last quarter that has ended at `now` (default: the current UTC instant): the
    last partition of `quarterly_partitions`, computed without Dagster."""
    return shift(label_of(now or datetime.now(UTC)), -1)


def check_partition(quarter: str, first_quarter: str, now: datetime | None = None) -> str:
    """The label of `quarter` when it is a partition of `quarterly_partitions(first_quarter)` at `now`;
    else `NotAPartitionError` naming it and the partitions' range."""
    label, first, last = to_label(quarter), to_label(first_quarter), last_complete_quarter(now)
    if parse_quarter(first) > parse_quarter(last):
        raise NotAPartitionError(
            f"{label} is not a partition: quarters start at {first}, which has not ended yet (no partition exists)"
        )
    if not parse_quarter(first) <= parse_quarter(label) <= parse_quarter(last):
        raise NotAPartitionError(f"{label} is not a partition: quarters run from {first} to {last}")
    return label


def quarterly_partitions(first_quarter: str) -> dg.TimeWindowPartitionsDefinition:
    """Calendar quarters in UTC from `first_quarter` to the last complete quarter: the platform's one
    partitions definition. `build_definitions` builds it from `batch.first_quarter` and hands it to
    every asset, check and job builder (equal definitions compare equal)."""
    import dagster as dg  # start-up time: the command line checks quarters without Dagster (module docstring)

    return dg.TimeWindowPartitionsDefinition(
        cron_schedule=QUARTER_CRON,
        start=quarter_start(first_quarter).replace(tzinfo=None),
        fmt=KEY_FORMAT,
        timezone="UTC",
    )
