"""A small test table, `test/widgets`, written through the real IO manager; `lake_quarter`, how the
tests read a quarter of any lake table; `commit_quarters`, how they put rows in one as the platform
does, `failed_checks`, what the IO manager's validation finds in rows before it writes them, and
`tamper_quarter`, how they change a table behind the platform's back; a writer of `test/widgets`
in a process of its own, to kill mid-commit (`start_widgets_writer`, `wait_for`, `kill_when`), and two
ways to stop a writer at a given step of its write: inside its Spark write job, before its first data
file (`Gate`), and inside its commit, every data file written and its log entry not (`CommitHold`).

It is registered in the platform's table registry like any table, so the tests exercise the IO
manager exactly as the bronze, silver and gold assets do.
"""

import contextlib
import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import dagster as dg
import pandas as pd
import pandera.pyspark as pa
import pyarrow
import pyarrow.compute
import pyspark.sql.types as T
import pytest
from dagster_pyspark import PySparkResource
from deltalake import CommitProperties, write_deltalake
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.readwriter import DataFrameWriter

from batch_platform import delta, delta_log, delta_spark
from batch_platform.config import S3Config
from batch_platform.partitions import quarter_start, to_label
from batch_platform.schemas.base import PARTITION_COLUMN, LakeTable, Table, quarter_end_col, row_rule
from batch_platform.schemas.validation import validate_frame
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


def _rows_in(rows_per_quarter: int | Mapping[str, int], key: str) -> int:
    """The widgets of the quarter `key`: the same for every quarter, or by quarter label."""
    return rows_per_quarter if isinstance(rows_per_quarter, int) else rows_per_quarter[to_label(key)]


def widgets_asset(
    rows_per_quarter: int | Mapping[str, int] = 5, version: float = 1.0, bad_values: int = 0
) -> dg.AssetsDefinition:
    @dg.asset(key=["test", "widgets"], partitions_def=quarterly, backfill_policy=dg.BackfillPolicy.single_run())
    def widgets(context: dg.AssetExecutionContext, pyspark: PySparkResource) -> DataFrame:
        spark = pyspark.spark_session
        frame = None
        for key in context.partition_keys:
            part = widget_rows(spark, key, _rows_in(rows_per_quarter, key), version, bad_values)
            frame = part if frame is None else frame.unionByName(part)
        return frame

    return widgets


def widget_reader(start_offset: int = -2) -> dg.AssetsDefinition:
    """Reads the two quarters before its own (or `-start_offset`), as gold reads its lookback: the
    quarters before the first partition are not partitions, and the mapping hands over the others."""

    @dg.asset(
        key=["test", "reader"],
        partitions_def=quarterly,
        ins={
            "widgets": dg.AssetIn(
                key=["test", "widgets"],
                partition_mapping=dg.TimeWindowPartitionMapping(
                    start_offset=start_offset, end_offset=-1, allow_nonexistent_upstream_partitions=True
                ),
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
    with the platform's `userMetadata`, so the quarters count as materialised. The version committed.

    One file per quarter, committed by delta-rs (`commit_arrow`). With `one_file=False`, Spark
    commits it, one file per partition of `frame` holding rows of it (the tests of a table of
    several files per quarter)."""
    if one_file:
        return commit_arrow(frame.toArrow(), lake_root, table, quarters, run_id)
    uri = _table_uri(lake_root, table)
    rows = frame.filter(F.col(PARTITION_COLUMN).isin(list(quarters)))
    counts = {row[PARTITION_COLUMN]: row["count"] for row in rows.groupBy(PARTITION_COLUMN).count().collect()}
    metadata = _commit_metadata(uri, run_id, quarters, counts)
    (
        rows.write.format("delta")
        .mode("overwrite")
        .partitionBy(PARTITION_COLUMN)
        .option("replaceWhere", _replaced(quarters))
        .option("userMetadata", metadata)
        .save(uri)
    )
    return delta_spark.committed_version(uri, metadata)


def commit_arrow(
    rows: pyarrow.Table, lake_root: str | os.PathLike, table: str, quarters: Sequence[str], run_id: str = "test"
) -> int:
    """`commit_quarters` of Arrow rows, by delta-rs (`deltalake`), no Spark: a Delta table like
    Spark's, one file per quarter, about 0.05 s a commit of a few hundred rows against 1.5 s for
    Spark's, so planting a few small tables does not cost a test seconds. The version committed."""
    uri = _table_uri(lake_root, table)
    rows = rows.filter(pyarrow.compute.is_in(rows[PARTITION_COLUMN], pyarrow.array(list(quarters))))
    metadata = _commit_metadata(uri, run_id, quarters, Counter(rows[PARTITION_COLUMN].to_pylist()))
    write_deltalake(
        uri,
        rows,
        mode="overwrite",
        partition_by=[PARTITION_COLUMN],
        predicate=_replaced(quarters),
        commit_properties=CommitProperties(custom_metadata={"userMetadata": metadata}),
    )
    return delta_spark.committed_version(uri, metadata)


def _table_uri(lake_root: str | os.PathLike, table: str) -> str:
    return f"{str(lake_root).rstrip('/')}/{table}"


def _replaced(quarters: Sequence[str]) -> str:
    """The predicate of a partition overwrite of `quarters`."""
    return f"{PARTITION_COLUMN} IN ({', '.join(repr(q) for q in quarters)})"


def _commit_metadata(uri: str, run_id: str, quarters: Sequence[str], rows: dict[str, int]) -> str:
    """The `userMetadata` the IO manager would give this commit: its quarters, their rows, and every
    quarter materialised so far."""
    try:
        before = delta.materialised_quarters(delta.open_table(uri))
    except delta.TableMissing:
        before = []
    return delta_log.commit_metadata(run_id, quarters, rows, before)


def failed_checks(model: type[pa.DataFrameModel], frame: DataFrame) -> dict[tuple[str, str], int | None]:
    """What the IO manager's validation (`validate_frame`, run before anything is written) finds
    in `frame`: each check of `model` it breaks, as (column, check; column "" for a check on the
    table), with its failing rows (None: not countable)."""
    frame = frame.persist()
    try:
        violations, _ = validate_frame(frame, model)
    finally:
        frame.unpersist()
    return {(violation.column, violation.check): violation.failing_rows for violation in violations}


def tamper_quarter(
    lake_root: str | os.PathLike, table: str, quarter: str, change: Callable[[pyarrow.Table], pyarrow.Table]
) -> int:
    """`quarter` of the lake table `table` replaced by `change(its rows)` (with their `quarter`
    column) in a commit of another writer than the platform (delta-rs, no platform metadata): the
    lake changed after its materialisation. The version committed."""
    opened = delta.open_table(_table_uri(lake_root, table))
    rows = delta.read_quarter(opened, quarter)
    write_deltalake(opened.delta, change(rows), mode="overwrite", predicate=f"{PARTITION_COLUMN} = '{quarter}'")
    return opened.delta.version()


class Gate:
    """Holds the IO manager's write of `test/widgets` inside its Spark write job, once, with files in
    `folder`: every `value` of `widgets()` passes through a Python UDF which, once `armed` exists,
    writes `waiting` and waits for `released`. `arming_save` is a `DataFrameWriter.save` that arms the
    gate as the Delta write of `uri` starts, so the gate holds that write's Spark job, by when Delta's
    transaction has read the table's version. The frame is a projection of a cached one, which the IO
    manager computes again at every pass, the write's included; the write sorts its rows by quarter
    before writing them, so a held task has opened no data file yet."""

    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.armed, self.waiting, self.released = (folder / name for name in ("armed", "waiting", "released"))

    def arming_save(self, uri: str) -> Callable:
        original, armed = DataFrameWriter.save, self.armed

        def save(writer, path=None, *args, **kwargs):
            if path == uri and not armed.exists():
                armed.touch()
            return original(writer, path, *args, **kwargs)

        return save

    def widgets(self, rows_per_quarter: int = 5, version: float = 1.0) -> dg.AssetsDefinition:
        armed, waiting, released = (str(path) for path in (self.armed, self.waiting, self.released))

        def hold(value):
            if os.path.exists(armed) and not os.path.exists(released):
                open(waiting, "w").close()
                while not os.path.exists(released):
                    time.sleep(0.05)
            return value

        @dg.asset(key=["test", "widgets"], partitions_def=quarterly, backfill_policy=dg.BackfillPolicy.single_run())
        def widgets(context: dg.AssetExecutionContext, pyspark: PySparkResource) -> DataFrame:
            spark = pyspark.spark_session
            parts = [widget_rows(spark, key, rows_per_quarter, version) for key in context.partition_keys]
            rows = parts[0]
            for part in parts[1:]:
                rows = rows.unionByName(part)
            held = F.udf(hold, "double")
            return rows.persist().select("widget_id", held("value").alias("value"), "seen_at", "quarter")

        return widgets

    def release(self) -> None:
        self.released.touch()


class CommitHold:
    """Holds a writer of the Delta table at `table` inside its commit of `version`: every data file
    written, its log entry not. A FIFO takes the entry's name, `_delta_log/<version>.json`: the writer
    finds the version taken and reads that entry, as the commit it lost to, to check it for conflicts
    — and opening a FIFO to read waits for a writer at its other end. Make it while the writer's
    transaction is open (it has read the version before, e.g. held by a `Gate`): a writer that starts
    after it would wait on it as it reads the log."""

    def __init__(self, table: Path, version: int):
        self.path = table / "_delta_log" / f"{version:020d}.json"
        os.mkfifo(self.path)
        self._end: int | None = None

    def holding(self) -> bool:
        """Whether the writer is at the FIFO; once it is, this end stays open and the writer waits for
        the entry (`release`)."""
        if self._end is None:
            try:
                self._end = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENXIO:  # no reader yet
                    raise
        return self._end is not None

    def step_aside(self) -> None:
        """Move the FIFO out of the log (beside the table): the version is free for another writer to
        commit, and the held writer still waits."""
        aside = self.path.parents[2] / f".{self.path.parents[1].name}-held-{self.path.name}"
        self.path.rename(aside)
        self.path = aside

    def release(self, entry: bytes) -> None:
        """Hand the held writer `entry` as the log entry it lost to (another writer's real commit)."""
        os.set_blocking(self._end, True)
        os.write(self._end, entry)
        self.remove()

    def remove(self) -> None:
        if self._end is not None:
            os.close(self._end)
            self._end = None
        self.path.unlink(missing_ok=True)


WIDGETS_WRITER = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from pyspark.sql.readwriter import DataFrameWriter
    from batch_platform.config import parse_config
    from batch_platform.resources import build_resources
    from batch_platform_tests.lake_fixtures import Gate, register, widgets_asset
    from batch_platform_tests.platform import materialize_range

    register()
    raw, rows, first, last, gate = json.loads(sys.argv[1]), json.loads(sys.argv[2]), *sys.argv[3:6]
    config = parse_config(raw)
    if gate:
        gate = Gate(Path(gate))
        DataFrameWriter.save = gate.arming_save(f"{config.lake_root}/test/widgets")
        asset = gate.widgets(rows_per_quarter=rows, version=7.0)
    else:
        asset = widgets_asset(rows_per_quarter=rows, version=7.0)
    result = materialize_range([asset], build_resources(config), first, last, raise_on_error=False)
    failures = [e.step_failure_data.error.message for e in result.all_events if e.is_step_failure]
    print(json.dumps({"success": result.success, "failures": failures}))
    """
)


def start_widgets_writer(
    raw_config: dict,
    rows: int | Mapping[str, int],
    first: str,
    last: str | None = None,
    gate: Gate | None = None,
    output: Path | None = None,
) -> subprocess.Popen:
    """A process of its own (and its own process group: its JVM with it) materialising `rows` widgets
    per quarter (or by quarter label) of `first`…`last` (version 7.0) with the config `raw_config`,
    held by `gate` if given; its last line of output (to `output`, if given) says whether it succeeded
    and how its step failed."""
    with open(output or os.devnull, "w") as out:
        return subprocess.Popen(
            [
                sys.executable, "-c", WIDGETS_WRITER, json.dumps(raw_config), json.dumps(rows), first, last or first,
                str(gate.folder) if gate else "",
            ],
            cwd=Path(__file__).resolve().parents[1],
            stdout=out,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip


def parquet_whole(path: Path) -> bool:
    """Whether a Parquet file is whole: its footer, which its writer writes last, is there."""
    try:
        with open(path, "rb") as file:
            file.seek(-4, os.SEEK_END)
            return path.stat().st_size > 8 and file.read(4) == b"PAR1"
    except OSError:  # not there yet, or still shorter than a footer
        return False


def writer_report(output: Path) -> dict:
    """What `start_widgets_writer`'s process reported on its last line of `output`."""
    return json.loads(output.read_text().strip().splitlines()[-1])


def wait_for(child: subprocess.Popen, reached: Callable[[], bool], what: str, timeout: float = 240) -> None:
    """Poll `reached()` until it holds; SIGKILL `child`'s process group and fail if the child ends or
    `timeout` passes first."""
    deadline = time.monotonic() + timeout
    while not reached():
        if child.poll() is not None or time.monotonic() > deadline:
            kill(child)
            raise AssertionError(f"the writer never got to {what}")
        time.sleep(0.01)


def kill(child: subprocess.Popen) -> None:
    """SIGKILL `child`'s process group (its JVM and Python workers with it)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
    child.wait()


def kill_when(child: subprocess.Popen, reached: Callable[[], bool], what: str, timeout: float = 240) -> None:
    """SIGKILL `child`'s process group as soon as `reached()` (polled), failing if it never is."""
    try:
        wait_for(child, reached, what, timeout)
    finally:
        kill(child)
