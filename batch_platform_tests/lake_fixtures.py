"""A small test table, `test/widgets`, written through the real IO manager, and `lake_quarter`, how
the tests read a quarter of any lake table.

It is registered in the platform's table registry like any table, so the tests exercise the IO
manager exactly as the bronze, silver and gold assets do.
"""

import os

import dagster as dg
import pandas as pd
import pandera.pyspark as pa
import pyspark.sql.types as T
import pytest
from dagster_pyspark import PySparkResource
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from batch_platform import delta
from batch_platform.config import S3Config
from batch_platform.io_manager import ALLOW_MISSING
from batch_platform.partitions import quarter_start, to_label
from batch_platform.schemas.base import PARTITION_COLUMN, LakeTable, Table, quarter_end_col, row_rule
from batch_platform.tables import TABLES
from batch_platform.tables import register as register_table
from batch_platform_tests.platform import quarterly


class Widgets(LakeTable):
    widget_id: T.StringType() = pa.Field(nullable=False, description="Widget id.")
    value: T.DoubleType() = pa.Field(ge=0, nullable=True, description="A non-negative value.")
    seen_at: T.TimestampType() = pa.Field(nullable=True, description="When it was seen.")
    _seen_in_quarter = row_rule("widgets_seen_before_quarter_end", lambda: F.col("seen_at") < quarter_end_col())

    class Config:
        strict = True
        unique = ["quarter", "widget_id"]


WIDGETS_KEY = dg.AssetKey(["test", "widgets"])


def register() -> None:
    register_table(Table(WIDGETS_KEY, Widgets))


def unregister() -> None:
    """Leave the registry as the platform defines it, for whatever test runs next."""
    TABLES.pop(WIDGETS_KEY, None)


@pytest.fixture
def widgets_table():
    """`test/widgets` registered for one test only: a registration left behind would show up in
    every later test that lists the platform's tables."""
    register()
    yield WIDGETS_KEY
    unregister()


def widget_rows(spark, quarter: str, n: int, version: float = 1.0, bad_values: int = 0) -> DataFrame:
    """`n` widgets seen in `quarter`; the first `bad_values` of them with a negative value."""
    start = quarter_start(quarter).replace(tzinfo=None)
    return spark.range(n).select(
        F.concat(F.lit(f"{to_label(quarter)}-"), F.col("id").cast("string")).alias("widget_id"),
        F.when(F.col("id") < bad_values, F.lit(-1.0)).otherwise(F.col("id") * version).alias("value"),
        (F.lit(start) + F.make_interval(hours=F.col("id").cast("int") % 1000)).alias("seen_at"),
        F.lit(to_label(quarter)).alias("quarter"),
    )


def widgets_asset(rows_per_quarter: int = 5, version: float = 1.0, bad_values: int = 0) -> dg.AssetsDefinition:
    @dg.asset(key=["test", "widgets"], partitions_def=quarterly, backfill_policy=dg.BackfillPolicy.single_run())
    def widgets(context: dg.AssetExecutionContext, pyspark: PySparkResource) -> DataFrame:
        spark = pyspark.spark_session
        frame = None
        for key in context.partition_keys:
            part = widget_rows(spark, key, rows_per_quarter, version, bad_values)
            frame = part if frame is None else frame.unionByName(part)
        return frame

    return widgets


def widget_reader(allow_missing: bool = False, start_offset: int = -2) -> dg.AssetsDefinition:
    """Reads the two quarters before its own, like gold reads its lookback."""

    @dg.asset(
        key=["test", "reader"],
        partitions_def=quarterly,
        ins={
            "widgets": dg.AssetIn(
                key=["test", "widgets"],
                partition_mapping=dg.TimeWindowPartitionMapping(start_offset=start_offset, end_offset=-1),
                metadata={ALLOW_MISSING: allow_missing},
            )
        },
        io_manager_key="mem_io_manager",
    )
    def reader(widgets: DataFrame) -> dict:
        return {row["quarter"]: row["count"] for row in widgets.groupBy("quarter").count().collect()}

    return reader


def lake_quarter(
    lake_root: str | os.PathLike,
    table: str | os.PathLike,
    quarter: str,
    *,
    version: int | None = None,
    s3: S3Config | None = None,
) -> pd.DataFrame:
    """The rows of `quarter` in the lake table `table` (`gold/training_set`), as pandas: read through
    the table's Delta log (delta-rs) at its latest version or `version`, never by listing the folder,
    which holds replaced files too. Without the partition column, as the quarter's files hold them;
    an empty frame with the table's columns for a quarter without rows."""
    uri = f"{str(lake_root).rstrip('/')}/{table}"
    rows = delta.read_quarter(delta.open_table(uri, s3, version=version), quarter)
    return rows.to_pandas().drop(columns=PARTITION_COLUMN)
