"""What the IO manager (`batch_platform.io_manager`) holds a write and a read against, apart from the
Pandera checks: the Delta table's columns (schema enforcement and evolution, and reading every
quarter with the declared columns), a lake written before the lake became Delta, which is refused
rather than written beside, and the one `dagster.Failure` listing every broken check. Each raises
before anything is committed, so a step that fails here leaves the table as it was.
"""

import json
from collections.abc import Sequence

import dagster as dg
import pyspark.sql.types as T
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from batch_platform import delta
from batch_platform.layout import LakeLayout
from batch_platform.schemas.base import PARTITION_COLUMN
from batch_platform.schemas.validation import Violation, failure_report
from batch_platform.storage import HadoopFS


def delta_schema(table: delta.LakeTable) -> T.StructType:
    """The Delta table's schema as Spark's (Delta stores it in Spark's own JSON form), from the log."""
    return T.StructType.fromJson(json.loads(table.delta.schema().to_json()))


def schema_evolves(table: str, written: T.StructType, current: T.StructType, strict: bool) -> bool:
    """Whether the write adds columns to the table (schema evolution); a failure before anything is
    committed when a strict table has columns the write lacks, or a column changed type."""
    types = {f.name: f.dataType.simpleString() for f in current.fields}
    dropped = [name for name in types if strict and name not in written.fieldNames()]
    retyped = [
        f"{f.name} ({types[f.name]} in the table, {f.dataType.simpleString()} written)"
        for f in written.fields
        if f.name in types and types[f.name] != f.dataType.simpleString()
    ]
    problems = []
    if dropped:
        problems.append(f"the table has column(s) {', '.join(dropped)}, which the declaration of {table} lacks")
    if retyped:
        problems.append(f"column(s) changed type: {', '.join(retyped)}")
    if problems:
        raise dg.Failure(
            f"{table}: the columns written differ from the Delta table's: {'; '.join(problems)}. Nothing was "
            "committed: a column is never dropped or retyped silently (declare it again, or rebuild the table)"
        )
    return any(name not in types for name in written.fieldNames())


def partition_last(schema: T.StructType) -> T.StructType:
    return T.StructType(
        [f for f in schema.fields if f.name != PARTITION_COLUMN]
        + [f for f in schema.fields if f.name == PARTITION_COLUMN]
    )


def with_columns(frame: DataFrame, schema: T.StructType) -> DataFrame:
    """`frame` with the columns of `schema`, in its order; a declared column the table does not have
    yet (declared, never written since) reads as null, as the quarters written before a schema
    evolution do."""
    have = set(frame.columns)
    return frame.select(
        *[F.col(f.name) if f.name in have else F.lit(None).cast(f.dataType).alias(f.name) for f in schema.fields]
    )


def plain_parquet_hint(spark, path: str) -> str:
    """A note for a folder that holds `quarter=` folders but no Delta log: a lake written before the
    lake became Delta (its quarters are not part of any Delta table)."""
    names = [info.name for info in HadoopFS(spark).list_dir(path)]
    if any(LakeLayout.is_partition_folder(name) for name in names) and "_delta_log" not in names:
        return (
            f" ({path} holds Parquet partition folders but no Delta table: a lake written before the lake became "
            "Delta; rebuild it by materialising its quarters into an empty lake root)"
        )
    return ""


def refuse_plain_parquet(spark, table: str, path: str) -> None:
    """Never start a Delta table inside a pre-Delta Parquet table: its quarters would lie beside the
    new table, part of none of its versions. (Delta creates `_delta_log/` before a new table's first
    data file, so the files of a first write killed before its commit, or of another writer creating
    the table right now, never look like one.)"""
    hint = plain_parquet_hint(spark, path)
    if hint:
        raise dg.Failure(f"{table}: nothing was written{hint}")


def validation_failure(table: str, violations: Sequence[Violation], total: int) -> dg.Failure:
    return dg.Failure(
        description=failure_report(table, violations, total),
        metadata={
            "failed_checks": dg.MetadataValue.json(
                [
                    {
                        "column": v.column,
                        "check": v.check,
                        "failing_rows": v.failing_rows,
                        "detail": v.detail,
                        "by_quarter": dict(v.by_quarter),
                    }
                    for v in violations
                ]
            )
        },
    )


def is_strict(model) -> bool:
    return model.to_schema().strict is True
