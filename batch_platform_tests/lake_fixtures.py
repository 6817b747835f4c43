"""A small test table, `test/widgets`, written through the real IO manager; `lake_quarter`, how the
tests read a quarter of any lake table; `commit_quarters`, how they put rows in one as the platform
does, and `tamper_quarter`, how they change one behind the platform's back; a writer of `test/widgets`
in a process of its own, to kill mid-commit (`start_widgets_writer`, `kill_when`).

It is registered in the platform's table registry like any table, so the tests exercise the IO
manager exactly as the bronze, silver and gold assets do.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import dagster as dg
import pandas as pd
import pandera.pyspark as pa
import pyarrow
import pyspark.sql.types as T
import pytest
from dagster_pyspark import PySparkResource
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from batch_platform import delta
from batch_platform.config import S3Config
from batch_platform.io_manager import ALLOW_MISSING
from batch_platform.partitions import quarter_start, to_key, to_label
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


def lake_arrow(
    lake_root: str | os.PathLike,
    table: str | os.PathLike,
    quarter: str,
    *,
    version: int | None = None,
    s3: S3Config | None = None,
) -> pyarrow.Table:
    """The rows of `quarter` in the lake table `table` (`gold/training_set`), as Arrow: read through
    the table's Delta log (delta-rs) at its latest version or `version`, never by listing the folder,
    which holds replaced files too. Without the partition column, as the quarter's files hold them;
    no rows, with the table's columns, for a quarter without rows."""
    uri = f"{str(lake_root).rstrip('/')}/{table}"
    rows = delta.read_quarter(delta.open_table(uri, s3, version=version), quarter)
    return rows.drop_columns([PARTITION_COLUMN])


def lake_quarter(
    lake_root: str | os.PathLike,
    table: str | os.PathLike,
    quarter: str,
    *,
    version: int | None = None,
    s3: S3Config | None = None,
) -> pd.DataFrame:
    """`lake_arrow` as pandas."""
    return lake_arrow(lake_root, table, quarter, version=version, s3=s3).to_pandas()


def commit_quarters(
    frame: DataFrame,
    lake_root: str | os.PathLike,
    table: str,
    quarters: Sequence[str],
    run_id: str = "test",
    one_file: bool = True,
) -> int:
    """The rows of `frame` in `quarters` (a quarter without rows: materialised empty) committed to the
    lake table `table` as the IO manager commits a run, with no validation: one partition overwrite
    with the platform's `userMetadata`, so the quarters count as materialised. One file per quarter,
    or (`one_file=False`) one per partition of `frame` holding rows of it. The version committed."""
    uri = f"{str(lake_root).rstrip('/')}/{table}"
    try:
        before = delta.materialised_quarters(delta.open_table(uri))
    except delta.TableMissing:
        before = []
    rows = frame.filter(F.col(PARTITION_COLUMN).isin(list(quarters)))
    counts = {row[PARTITION_COLUMN]: row["count"] for row in rows.groupBy(PARTITION_COLUMN).count().collect()}
    metadata = delta.commit_metadata(run_id, quarters, counts, before)
    (
        (rows.coalesce(1) if one_file else rows)
        .write.format("delta")
        .mode("overwrite")
        .partitionBy(PARTITION_COLUMN)
        .option("replaceWhere", f"{PARTITION_COLUMN} IN ({', '.join(repr(q) for q in quarters)})")
        .option("userMetadata", metadata)
        .save(uri)
    )
    return delta.committed_version(uri, metadata)


def tamper_quarter(
    lake_root: str | os.PathLike, table: str, quarter: str, change: Callable[[pyarrow.Table], pyarrow.Table]
) -> int:
    """`quarter` of the lake table `table` replaced by `change(its rows)` (with their `quarter`
    column) in a commit of another writer than the platform (delta-rs, no platform metadata): the
    lake changed after its materialisation. The version committed."""
    from deltalake import write_deltalake

    opened = delta.open_table(f"{str(lake_root).rstrip('/')}/{table}")
    rows = delta.read_quarter(opened, quarter)
    write_deltalake(opened.delta, change(rows), mode="overwrite", predicate=f"{PARTITION_COLUMN} = '{quarter}'")
    return opened.delta.version()


WIDGETS_WRITER = textwrap.dedent(
    """
    import json, sys
    import dagster as dg
    from batch_platform.config import parse_config
    from batch_platform.resources import build_resources
    from batch_platform_tests.lake_fixtures import register, widgets_asset

    register()
    raw, rows, first, last = json.loads(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    tags = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
    dg.materialize([widgets_asset(rows_per_quarter=rows, version=7.0)],
                   resources=build_resources(parse_config(raw)), tags=tags)
    """
)


def start_widgets_writer(raw_config: dict, rows: int, first: str, last: str | None = None) -> subprocess.Popen:
    """A process of its own (and its own process group: its JVM with it) materialising `rows` widgets
    per quarter of `first`…`last` (version 7.0) with the config `raw_config`."""
    return subprocess.Popen(
        [sys.executable, "-c", WIDGETS_WRITER, json.dumps(raw_config), str(rows), to_key(first), to_key(last or first)],
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def kill_when(child: subprocess.Popen, reached: Callable[[], bool], what: str, timeout: float = 240) -> None:
    """SIGKILL `child`'s process group as soon as `reached()` (polled), failing if it never is."""
    try:
        deadline = time.monotonic() + timeout
        while not reached() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert reached(), f"the writer never got to {what}"
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
