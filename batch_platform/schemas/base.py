"""What every lake table's Pandera model shares, and how a failed validation becomes a message.

`pandera.pyspark` reports which checks failed but not on how many rows. Every check our models
use therefore has a Spark predicate ("this row passes"): Pandera's built-in checks map to one
below, and rules of our own are written with `row_rule`. Pandera runs the checks; when some fail,
the IO manager counts the failing rows of all of them in one aggregation with the same
predicates. NULLs pass value checks, as in Pandera; nullability is its own check.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import dagster as dg
import pandera.pyspark as pa
import pyspark.sql.types as T
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

PARTITION_COLUMN = "quarter"
QUARTER_PATTERN = r"^\d{4}-Q[1-4]$"

RowPredicate = Callable[[Column, Mapping[str, Any]], Column]

_BUILTIN_PREDICATES: dict[str, RowPredicate] = {
    "equal_to": lambda c, s: c == s["value"],
    "not_equal_to": lambda c, s: c != s["value"],
    "greater_than": lambda c, s: c > s["min_value"],
    "greater_than_or_equal_to": lambda c, s: c >= s["min_value"],
    "less_than": lambda c, s: c < s["max_value"],
    "less_than_or_equal_to": lambda c, s: c <= s["max_value"],
    "in_range": lambda c, s: (
        (c >= s["min_value"] if s.get("include_min", True) else c > s["min_value"])
        & (c <= s["max_value"] if s.get("include_max", True) else c < s["max_value"])
    ),
    "isin": lambda c, s: c.isin(list(s["allowed_values"])),
    "notin": lambda c, s: ~c.isin(list(s["forbidden_values"])),
    "str_matches": lambda c, s: c.rlike(s["pattern"]),
    "str_contains": lambda c, s: c.rlike(s["pattern"]),
    "str_startswith": lambda c, s: c.startswith(s["string"]),
    "str_endswith": lambda c, s: c.endswith(s["string"]),
}
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


def quarter_start_col(quarter: Column | None = None) -> Column:
    """The first instant (UTC timestamp) of a `YYYY-QN` label column."""
    label = quarter if quarter is not None else F.col(PARTITION_COLUMN)
    year = F.substring(label, 1, 4).cast("int")
    q = F.substring(label, 7, 1).cast("int")
    return F.make_date(year, (q - 1) * 3 + 1, F.lit(1)).cast("timestamp")


def quarter_end_col(quarter: Column | None = None) -> Column:
    """The exclusive end (first instant of the next quarter) of a `YYYY-QN` label column."""
    start = quarter_start_col(quarter)
    return F.add_months(start.cast("date"), 3).cast("timestamp")


class LakeTable(pa.DataFrameModel):
    """Every lake table carries its partition: the `quarter=YYYY-QN` folder it lives in."""

    quarter: T.StringType() = pa.Field(
        nullable=False,
        str_matches=QUARTER_PATTERN,
        description="The partition (calendar quarter, UTC) the row belongs to: the `quarter=` folder.",
    )


def _check_name(check_label: str) -> str:
    return check_label.split("(", 1)[0]


def failure_report(
    df: DataFrame, model: type[pa.DataFrameModel], errors: Mapping[str, Any], table: str
) -> str:
    """A readable account of a failed validation: one line per failed check, with failing rows."""
    schema = model.to_schema()
    failures: list[tuple[str, str, str]] = []
    counters: list[Column] = []
    for _level, kinds in errors.items():
        for kind, items in kinds.items():
            for item in items:
                column, check, error = item.get("column", ""), item.get("check", ""), item.get("error", "")
                counter = _failing_rows_expr(schema, column, check)
                label = f"f{len(failures)}"
                if counter is not None:
                    counters.append(counter.alias(label))
                failures.append((label, f"column '{column}', check {check} ({kind})", error))
    counts = df.agg(*counters).first().asDict() if counters else {}
    total = df.count()
    lines = [f"{table}: Pandera validation failed ({len(failures)} check(s)); nothing was written:"]
    for label, what, error in failures:
        if label in counts:
            lines.append(f"  - {what}: {counts[label] or 0} of {total} rows fail")
        else:
            lines.append(f"  - {what}: {error}")
    return "\n".join(lines)


def _failing_rows_expr(schema: pa.DataFrameSchema, column: str, check_label: str) -> Column | None:
    name = _check_name(check_label)
    if name == "not_nullable" and column in schema.columns:
        return F.sum(F.col(column).isNull().cast("long"))
    if name == "unique":
        keys = schema.unique if isinstance(schema.unique, list) else [schema.unique]
        return F.count(F.lit(1)) - F.count_distinct(F.struct(*[F.col(k) for k in keys]))
    if name in _ROW_RULES:
        return F.sum((~F.coalesce(_ROW_RULES[name](), F.lit(True))).cast("long"))
    if column not in schema.columns:
        return None
    for check in schema.columns[column].checks:
        if check.name != name:
            continue
        predicate = _BUILTIN_PREDICATES.get(name)
        if predicate is None:
            return None
        passes = predicate(F.col(column), check.statistics or {})
        return F.sum((~F.coalesce(passes, F.lit(True))).cast("long"))
    return None


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
    constraints = None
    if schema.unique:
        keys = schema.unique if isinstance(schema.unique, list) else [schema.unique]
        constraints = dg.TableConstraints(other=[f"unique ({', '.join(keys)})"])
    return dg.TableSchema(columns=columns, constraints=constraints)
