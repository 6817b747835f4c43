"""Validating a frame against its table's Pandera model in one pass, and how a failed validation
becomes a message.

Every check our models use has a Spark expression selecting its failing rows, declared with the
model through Pandera's public API: a built-in check (`pa.Field(ge=0, isin=[...])`) by its name and
arguments (`Check.name`, `Check.statistics`), which `BUILTIN_FAILING_ROWS` turns into the filter
Pandera's pyspark backend applies for it; a rule of our own (`schemas.base.row_rule`) carries its
predicate in its own Pandera check. `validate_frame` evaluates them all in one aggregation, with
failing-row counts per quarter (see `count_and_check` for why not Pandera's own data validation).
NULLs pass value checks, as in Pandera; nullability is its own check. A built-in with no expression
here is left to Pandera's own validation (`check_table`), so nothing declared is skipped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandera.pyspark as pa
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from batch_platform.layout import PARTITION_COLUMN
from batch_platform.schemas.base import row_rule_predicate, unique_key


def _anchored(pattern: str | re.Pattern) -> str:
    """`str_matches` matches at the start of the value, as Pandera anchors it."""
    text = pattern.pattern if isinstance(pattern, re.Pattern) else pattern
    return text if text.startswith("^") else f"^{text}"


def _in_range(c: Column, min_value, max_value, include_min: bool = True, include_max: bool = True) -> Column:
    low = c >= min_value if include_min else c > min_value
    high = c <= max_value if include_max else c < max_value
    return ~(low & high)


def _str_length(c: Column, min_value=None, max_value=None, exact_value=None) -> Column:
    length = F.length(c)
    if exact_value is not None:
        return length != exact_value
    if min_value is None and max_value is None:
        raise ValueError("str_length needs at least one of min_value and max_value")
    low = F.lit(True) if min_value is None else length >= min_value
    high = F.lit(True) if max_value is None else length <= max_value
    return ~(low & high)


BUILTIN_FAILING_ROWS: dict[str, Callable[..., Column]] = {
    "equal_to": lambda c, value: ~(c == value),
    "not_equal_to": lambda c, value: ~(c != value),
    "greater_than": lambda c, min_value: ~(c > min_value),
    "greater_than_or_equal_to": lambda c, min_value: ~(c >= min_value),
    "less_than": lambda c, max_value: ~(c < max_value),
    "less_than_or_equal_to": lambda c, max_value: ~(c <= max_value),
    "in_range": _in_range,
    "isin": lambda c, allowed_values: ~c.isin(list(allowed_values)),
    "notin": lambda c, forbidden_values: c.isin(list(forbidden_values)),
    "str_matches": lambda c, pattern: ~c.rlike(_anchored(pattern)),
    "str_contains": lambda c, pattern: ~c.rlike(pattern),
    "str_startswith": lambda c, string: ~c.startswith(string),
    "str_endswith": lambda c, string: ~c.endswith(string),
    "str_length": _str_length,
}
"""Pandera's row-by-row built-in checks (by `Check.name`, aliases resolved: `ge` is
`greater_than_or_equal_to`) → the expression true on a failing row of column `c`, given the check's
`Check.statistics` as keywords: the condition Pandera's pyspark backend filters the failing rows by
(`str_matches` anchored at the start, bounds inclusive unless declared otherwise). A NULL gives NULL,
which passes, as in Pandera. `batch_platform_tests/test_io_manager.py` holds each one used against
Pandera's own verdict, row by row."""


def builtin_failing_rows(check: pa.Check, column: str) -> Column | None:
    """The expression selecting the failing rows of `column` for the built-in `check`, or None for a
    check with none here (an aggregate such as `unique_values_eq`, or a custom check)."""
    failing = BUILTIN_FAILING_ROWS.get(check.name)
    return None if failing is None else failing(F.col(column), **(check.statistics or {}))


@dataclass(frozen=True)
class Violation:
    """One failed check: where, which, and how many rows break it (None: not countable), per
    quarter where the rows were counted per quarter."""

    column: str
    check: str
    failing_rows: int | None
    detail: str = ""
    by_quarter: tuple[tuple[str, int], ...] = ()

    def describe(self, total: int) -> str:
        where = f"column '{self.column}'" if self.column else "table"
        if self.failing_rows is None:
            return f"{where}, check {self.check}: {self.detail}"
        quarters = f" ({', '.join(f'{q}: {n}' for q, n in self.by_quarter)})" if self.by_quarter else ""
        return f"{where}, check {self.check}: {self.failing_rows} of {total} rows fail{quarters}"


@dataclass(frozen=True)
class RowCheck:
    """A declared data check as a Spark expression: `fails` is true on a failing row."""

    column: str
    check: str
    fails: Column


def validate_frame(df: DataFrame, model: type[pa.DataFrameModel]) -> tuple[list[Violation], int]:
    """Every violation of `model` in `df`, and the row count; `df` should be cached.

    The IO manager runs the same three steps itself, timing the counting pass apart:
    `check_structure` (Pandera, no Spark job), `count_and_check` (row counts per quarter and every
    row check in one pass) and `check_table` (the unique key, and whatever only Pandera can check).
    """
    violations = check_structure(df, model)
    if violations:
        return violations, df.count()
    rows, violations = count_and_check(df, model)
    return violations + check_table(df, model), sum(rows.values())


def check_structure(df: DataFrame, model: type[pa.DataFrameModel]) -> list[Violation]:
    """Pandera's verdict on the columns, types and strictness alone: no Spark job. The data checks
    need the columns to exist, so they come after."""
    errors = _structural(model.to_schema()).validate(df).pandera.errors or {}
    return [
        Violation(item.get("column", ""), item.get("check", ""), None, item.get("error", ""))
        for kinds in errors.values()
        for items in kinds.values()
        for item in items
    ]


def row_checks(model: type[pa.DataFrameModel]) -> list[RowCheck]:
    """Nullability, the built-in value checks and the row rules of `model` as Spark expressions
    (NULLs pass value checks, as in Pandera; nullability is its own check)."""
    schema = model.to_schema()
    checks: list[RowCheck] = []
    for name, column in schema.columns.items():
        if not column.nullable:
            checks.append(RowCheck(name, "not_nullable", F.col(name).isNull()))
        for check in column.checks:
            failing = builtin_failing_rows(check, name)
            if failing is not None:
                checks.append(RowCheck(name, check.error or check.name, F.coalesce(failing, F.lit(False))))
    for check in schema.checks:
        if (passes := row_rule_predicate(check)) is not None:
            checks.append(RowCheck("", check.name, ~F.coalesce(passes(), F.lit(True))))
    return checks


def count_and_check(df: DataFrame, model: type[pa.DataFrameModel]) -> tuple[dict[str, int], list[Violation]]:
    """Rows per quarter, and every row check's failing rows per quarter, in ONE aggregation.

    `pandera.pyspark` would run one Spark job per check and count nothing (measured: 50–80 jobs per
    silver step). Counting the rows (which the IO manager needs for the write and the metadata) and
    the failures in the same pass also spares a second scan of the cache and a second plan's first
    run — which in a backfill costs about twice a warm run (benchmarks/FINDINGS.md, Round 4). A
    check on the partition column alone is evaluated once per quarter on the grouped rows.
    """
    checks = row_checks(model)
    per_row = [c for c in checks if c.column != PARTITION_COLUMN]
    per_quarter = [c for c in checks if c.column == PARTITION_COLUMN]
    grouped = df.groupBy(PARTITION_COLUMN).agg(
        F.count(F.lit(1)).alias("_rows"), *[F.sum(c.fails.cast("long")).alias(f"_r{i}") for i, c in enumerate(per_row)]
    )
    found = grouped.select(
        PARTITION_COLUMN,
        "_rows",
        *[f"_r{i}" for i in range(len(per_row))],
        *[F.when(c.fails, F.col("_rows")).otherwise(F.lit(0)).alias(f"_q{i}") for i, c in enumerate(per_quarter)],
    ).collect()
    found.sort(key=lambda row: str(row[PARTITION_COLUMN]))
    rows = {row[PARTITION_COLUMN]: int(row["_rows"]) for row in found}
    violations = []
    for prefix, group in (("_r", per_row), ("_q", per_quarter)):
        for i, check in enumerate(group):
            failing = tuple((row[PARTITION_COLUMN], int(row[f"{prefix}{i}"])) for row in found if row[f"{prefix}{i}"])
            if failing:
                violations.append(Violation(check.column, check.check, sum(n for _, n in failing), by_quarter=failing))
    return rows, violations


def check_table(df: DataFrame, model: type[pa.DataFrameModel], rows: int | None = None) -> list[Violation]:
    """The checks that are not one row's business: the unique key (counted by `_surplus_rows`; no
    Spark job when `rows`, the frame's known row count, is 0), and any check `row_checks` has no
    expression for, left to Pandera so nothing declared is skipped."""
    schema = model.to_schema()
    violations = []
    keys = unique_key(schema)
    if keys and rows != 0:
        dupes = _surplus_rows(df, keys)
        if dupes:
            violations.append(Violation("", f"unique ({', '.join(keys)})", dupes))
    leftover_columns = {
        name: [check for check in column.checks if builtin_failing_rows(check, name) is None]
        for name, column in schema.columns.items()
    }
    leftover_columns = {name: checks for name, checks in leftover_columns.items() if checks}
    leftover_frame = [check for check in schema.checks if row_rule_predicate(check) is None]
    if leftover_columns or leftover_frame:
        rest = _structural(schema).update_columns(
            {name: {"checks": checks} for name, checks in leftover_columns.items()}
        )
        rest.checks = leftover_frame
        for kinds in (rest.validate(df).pandera.errors or {}).values():
            for items in kinds.values():
                violations += [
                    Violation(i.get("column", ""), i.get("check", ""), None, i.get("error", "")) for i in items
                ]
    return violations


def _structural(schema: pa.DataFrameSchema) -> pa.DataFrameSchema:
    """`schema` without its data checks: columns, types and strictness only."""
    structural = schema.update_columns({name: {"nullable": True, "checks": []} for name in schema.columns})
    structural.checks = []
    structural.unique = None
    return structural


def _surplus_rows(df: DataFrame, keys: Sequence[str]) -> int:
    """Rows beyond the first of each key. Grouping by the key columns themselves (not a
    `count_distinct` of them) lets Spark reuse a frame already partitioned by the key, as a
    deduplicated or aggregated frame is: no shuffle (measured 0.5 s against 2.5 s on 1.5M rows).
    """
    surplus = df.groupBy(*keys).count().filter(F.col("count") > 1).agg(F.sum(F.col("count") - 1)).first()[0]
    return int(surplus or 0)


def failure_report(table: str, violations: Sequence[Violation], total: int) -> str:
    """The message a failed validation fails the step with: one line per failed check."""
    lines = [f"{table}: Pandera validation failed ({len(violations)} check(s)); nothing was written:"]
    lines += [f"  - {violation.describe(total)}" for violation in violations]
    return "\n".join(lines)
