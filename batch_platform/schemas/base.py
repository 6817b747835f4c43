"""What every lake table's declaration shares: the partition column every model carries, the row
rules a model declares beside Pandera's built-in checks (`row_rule`), the quarter bounds those rules
compare with, and `Table`, the one declaration per table that the asset builders, the IO manager,
the checks and the CLI read by `AssetKey`.

How a frame is validated against a model, in one pass, is `batch_platform.schemas.validation`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg
import pandera.pyspark as pa
import pyspark.sql.types as T
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from batch_platform.layout import PARTITION_COLUMN, table_name

QUARTER_PATTERN = r"^\d{4}-Q[1-4]$"

_PREDICATE = "passes"
"""The keyword a `row_rule`'s Pandera check carries its predicate under (its `Check.statistics`)."""


def row_rule(name: str, passes: Callable[[], Column]):
    """A Pandera dataframe check that every row satisfies `passes()` (NULL counts as passing).

    Assign it in a model's body (`_my_rule = row_rule("my_rule", lambda: F.col("x") > 0)`). The
    predicate may use any columns of the row, the partition column included. The check carries the
    predicate itself (as its argument, `Check.statistics`), so the IO manager counts the failing rows
    of exactly the rule Pandera would run; `name` is what failures and the UI call it.
    """

    def check(cls, df: DataFrame, passes: Callable[[], Column]) -> bool:
        return df.filter(~F.coalesce(passes(), F.lit(True))).limit(1).count() == 0

    check.__name__ = name
    # A keyword argument is also what makes pandera.pyspark hand the check its arguments at all.
    return pa.dataframe_check(name=name, **{_PREDICATE: passes})(check)


def row_rule_predicate(check: pa.Check) -> Callable[[], Column] | None:
    """The predicate of a dataframe check made by `row_rule`; None for any other check."""
    predicate = (check.statistics or {}).get(_PREDICATE)
    return predicate if callable(predicate) else None


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


def unique_key(schema: pa.DataFrameSchema) -> list[str]:
    """The schema's unique key as a list of columns (Pandera accepts one name or a list); [] if none."""
    if not schema.unique:
        return []
    return [schema.unique] if isinstance(schema.unique, str) else list(schema.unique)


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
class Written:
    """What the IO manager hands a table's `record` once the table's quarters are committed."""

    key: dg.AssetKey
    frame: DataFrame
    """The rows written (persisted by the IO manager when the table is declared `cached`)."""
    quarters: Sequence[str]
    """The run's quarters (labels), every one of which gets its own metadata."""
    rows: Mapping[str, int]
    """Rows written per quarter (the IO manager's counting pass)."""
    read: Mapping[str, Mapping[str, int]]
    """Per input of the step (by input name): the rows per quarter of each quarter the IO manager
    handed it (from the Delta log: no data read), quarters materialised empty included as 0."""
    recorded: Mapping[dg.AssetKey, Mapping[str, Mapping[str, Any]]]
    """What was recorded per quarter for the step's earlier outputs (a multi-asset's), by asset key."""
    definition_metadata: Mapping[str, Any]
    log: Any
    """The step's logger, for a warning worth a line of the run's log."""


Record = Callable[[Written], Mapping[str, Mapping[str, Any]]]
"""What a materialisation records beyond the IO manager's own entries, per quarter label."""


def lake_pool(key: dg.AssetKey) -> str:
    """The Dagster concurrency pool of the step that writes the lake table `key`: the table's name,
    `gold/training_set`. `config/dagster.yaml` (copied to `$DAGSTER_HOME` by the Makefile) gives every
    pool one slot, so two runs that write the same table — a schedule tick and a manual backfill — take
    turns: the second run's step waits, logging that it is blocked by the pool, until the first one's
    step ends; steps writing other tables go on. A step claims its slot before it reads its inputs and
    frees it once its outputs are committed. The silver multi-asset writes a table and its quarantine
    and holds the silver table's pool: no other step writes that quarantine."""
    return table_name(key)


@dataclass(frozen=True)
class Table:
    """One lake table, declared once: its asset key, its Pandera model, its column lineage, and what
    its materialisations record.

    The asset builders, the IO manager, the checks, the CLI and the tests all find a table's facts
    here, by asset key (`batch_platform.tables.table_for`). Bronze has no lineage: its upstream is
    the landing zone, named row by row in `_source_file`.

    `cached`: the IO manager persists the output before its passes over it (counting and checking,
    the unique key, the write, the previews and `record`) and releases it once written — for an
    output that is costly to compute (silver, gold). Off for one that is cheap to compute again or
    already a projection of the asset's own cache (bronze: copying that cache into a second one
    cost seconds per step, measured at SIZE=M), or materialised otherwise (a checkpoint).
    `record`: the metadata of each quarter beyond the IO manager's own entries (path, Delta version,
    row count, preview), computed from what was written (`Written`), once the commit is made.
    """

    key: dg.AssetKey
    model: type[pa.DataFrameModel]
    lineage: Lineage | None = None
    cached: bool = False
    record: Record | None = None

    @property
    def name(self) -> str:
        """`<layer>/<table>`, as in the lake's folders."""
        return table_name(self.key)

    @property
    def pool(self) -> str:
        """The concurrency pool of the step that writes the table (`lake_pool`)."""
        return lake_pool(self.key)

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
