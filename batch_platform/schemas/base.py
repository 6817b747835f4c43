"""What every lake table's Pandera model shares, and how a failed validation becomes a message.

Every check our models use has a Spark expression selecting its failing rows: for Pandera's
built-in checks it is the one Pandera's own pyspark implementation filters by
(`pandera_failing_rows`), and rules of our own are written with `row_rule`. `validate_frame`
evaluates them all in one aggregation, with failing-row counts per quarter (see `count_and_check`
for why not Pandera's own data validation). NULLs pass value checks, as in Pandera; nullability is
its own check.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg
import pandera.pyspark as pa
import pyspark.sql.types as T
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

PARTITION_COLUMN = "quarter"
QUARTER_PATTERN = r"^\d{4}-Q[1-4]$"


class _FailingRowsRecorder:
    """Stands in for the DataFrame a Pandera pyspark built-in check filters: it keeps the
    expression the check filters its failing rows by, so that expression can be counted."""

    def __init__(self) -> None:
        self.failing: Column | None = None

    def filter(self, condition: Column) -> _FailingRowsRecorder:
        self.failing = condition
        return self

    def limit(self, _: int) -> _FailingRowsRecorder:
        return self

    def count(self) -> int:
        return 0


def pandera_failing_rows(check: pa.Check, column: str) -> Column | None:
    """The expression Pandera's own pyspark implementation of the built-in `check` selects the
    failing rows of `column` by (`df.filter(expr).limit(1).count() == 0` in
    `pandera.backends.pyspark.builtin_checks`), or None for a check that is not row by row.

    So the one-pass counting uses Pandera's rule itself — its anchoring of `str_matches`, its
    bounds of `in_range` — rather than a copy of it. A NULL passes, as in Pandera's filter.
    """
    from pandera.api.pyspark.types import PysparkDataframeColumnObject
    from pandera.backends.pyspark import builtin_checks

    builtin = getattr(builtin_checks, check.name, None)
    if builtin is None:
        return None
    recorder = _FailingRowsRecorder()
    try:
        inspect.unwrap(builtin)(PysparkDataframeColumnObject(recorder, column), **(check.statistics or {}))
    except (AttributeError, TypeError):  # aggregates (unique_values_eq) need the real frame
        return None
    return recorder.failing


_ROW_RULES: dict[str, Callable[[], Column]] = {}


def row_rule(name: str, passes: Callable[[], Column]):
    """A Pandera dataframe check that every row satisfies `passes()` (NULL counts as passing).

    Assign it in a model's body (`_my_rule = row_rule("my_rule", lambda: F.col("x") > 0)`). The
    predicate may use any columns of the row, the partition column included. `name` is global:
    the IO manager finds the predicate by it to count failing rows.
    """
    if name in _ROW_RULES and _ROW_RULES[name] is not passes:
        raise ValueError(f"row rule {name!r} is already defined")
    _ROW_RULES[name] = passes

    def check(cls, df: DataFrame, rule: str) -> bool:
        return df.filter(~F.coalesce(passes(), F.lit(True))).limit(1).count() == 0

    check.__name__ = name
    # The `rule` keyword is what makes pandera.pyspark hand the check its arguments at all.
    return pa.dataframe_check(name=name, rule=name)(check)


def quarter_start_date(quarter: Column | None = None) -> Column:
    """The first day (a date) of a `YYYY-QN` label column. Never raises, whatever the label: the
    row checks using it run in the same pass that finds stray or malformed quarters (a label that
    is not `YYYY-QN` gets NULL or a meaningless date, and fails the partition column's own check)."""
    label = quarter if quarter is not None else F.col(PARTITION_COLUMN)
    year = F.substring(label, 1, 4).try_cast("int")
    q = F.substring(label, 7, 1).try_cast("int")
    return F.add_months(F.make_date(year, F.lit(1), F.lit(1)), (q - 1) * 3)


def quarter_end_date(quarter: Column | None = None) -> Column:
    """The exclusive end (first day of the next quarter) of a `YYYY-QN` label column."""
    return F.add_months(quarter_start_date(quarter), 3)


def _utc_midnight(day: Column) -> Column:
    """Midnight UTC of a date, by arithmetic: no time-zone lookup per row, as `cast("timestamp")`
    makes (measured: a third of a bronze row rule's cost)."""
    return F.timestamp_seconds(F.unix_date(day).cast("long") * 86400)


def quarter_start_col(quarter: Column | None = None) -> Column:
    """The first instant (UTC timestamp) of a `YYYY-QN` label column."""
    return _utc_midnight(quarter_start_date(quarter))


def quarter_end_col(quarter: Column | None = None) -> Column:
    """The exclusive end (first instant of the next quarter, UTC) of a `YYYY-QN` label column."""
    return _utc_midnight(quarter_end_date(quarter))


class LakeTable(pa.DataFrameModel):
    """Every lake table carries its partition: the `quarter=YYYY-QN` folder it lives in."""

    quarter: T.StringType() = pa.Field(
        nullable=False,
        str_matches=QUARTER_PATTERN,
        description="The partition (calendar quarter, UTC) the row belongs to: the `quarter=` folder.",
    )


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
            failing = pandera_failing_rows(check, name)
            if failing is not None:
                checks.append(RowCheck(name, check.error or check.name, F.coalesce(failing, F.lit(False))))
    for check in schema.checks:
        if check.name in _ROW_RULES:
            checks.append(RowCheck("", check.name, ~F.coalesce(_ROW_RULES[check.name](), F.lit(True))))
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
        name: [check for check in column.checks if pandera_failing_rows(check, name) is None]
        for name, column in schema.columns.items()
    }
    leftover_columns = {name: checks for name, checks in leftover_columns.items() if checks}
    leftover_frame = [check for check in schema.checks if check.name not in _ROW_RULES]
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


def unique_key(schema: pa.DataFrameSchema) -> list[str]:
    """The schema's unique key as a list of columns (Pandera accepts one name or a list); [] if none."""
    if not schema.unique:
        return []
    return [schema.unique] if isinstance(schema.unique, str) else list(schema.unique)


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


def spark_schema(model: type[pa.DataFrameModel]) -> T.StructType:
    """The Spark schema of a table, partition column included."""
    return model.to_structtype()


def table_schema(model: type[pa.DataFrameModel]) -> dg.TableSchema:
    """The model as Dagster's `dagster/column_schema`: names, types, descriptions, constraints."""
    schema = model.to_schema()
    columns = []
    for name, column in schema.columns.items():
        other = [check.error or check.name for check in column.checks]
        if column.unique:
            other.append("unique")
        columns.append(
            dg.TableColumn(
                name=name,
                type=column.dtype.type.simpleString() if hasattr(column.dtype, "type") else str(column.dtype),
                description=column.description,
                constraints=dg.TableColumnConstraints(nullable=column.nullable, other=other),
            )
        )
    keys = unique_key(schema)
    constraints = dg.TableConstraints(other=[f"unique ({', '.join(keys)})"]) if keys else None
    return dg.TableSchema(columns=columns, constraints=constraints)


Lineage = Mapping[str, Sequence[tuple[dg.AssetKey, str]]]
"""Column -> the (upstream table, upstream column) pairs it is made of."""


def column_lineage(deps: Lineage) -> dg.TableColumnLineage:
    """`{"column": [(AssetKey, "upstream_column"), ...]}` as Dagster's `dagster/column_lineage`."""
    return dg.TableColumnLineage(
        deps_by_column={
            column: [dg.TableColumnDep(asset_key=key, column_name=name) for key, name in sources]
            for column, sources in deps.items()
        }
    )


@dataclass(frozen=True)
class Table:
    """One lake table, declared once: its asset key, its Pandera model and its column lineage.

    The asset builders, the IO manager, the checks, the CLI and the tests all find a table's facts
    here, by asset key (`batch_platform.tables.table_for`). Bronze has no lineage: its upstream is
    the landing zone, named row by row in `_source_file`.
    """

    key: dg.AssetKey
    model: type[pa.DataFrameModel]
    lineage: Lineage | None = None

    @property
    def name(self) -> str:
        """`<layer>/<table>`, as in the lake's folders."""
        return "/".join(self.key.path)

    def column_schema(self) -> dg.TableSchema:
        return table_schema(self.model)

    def column_lineage(self) -> dg.TableColumnLineage | None:
        return None if self.lineage is None else column_lineage(self.lineage)

    def definition_metadata(self) -> dict[str, Any]:
        """What the asset definition shows; the IO manager records the same on every materialisation."""
        metadata: dict[str, Any] = {"dagster/column_schema": self.column_schema()}
        if self.lineage is not None:
            metadata["dagster/column_lineage"] = self.column_lineage()
        return metadata
