"""The one Pandera-checked Parquet IO manager every layer writes and reads through.

Layout (SPEC.md, "Lake"): `<lake>/<layer>/<table>/quarter=<YYYY-QN>/*.parquet`. An asset returns
one Spark DataFrame with a `quarter` column holding the label of each row's partition; one output
may cover several quarters (a single-run backfill). Writing a run's quarters:

1. persist the frame and validate it against the table's Pandera model: the structure first (no
   Spark job), then ONE pass that computes the frame, counts its rows per quarter and counts every
   row check's failing rows per quarter, then the unique key; fail with every failed check and its
   failing-row counts, writing nothing;
2. write all its quarters under `<table>/_staging/<run>/` (Spark and Hadoop ignore `_` folders);
   a quarter with no rows still gets a schema-only Parquet file, since an empty quarter is a
   partition too;
3. publish each staged quarter. On a local or HDFS file system, a folder rename is atomic: the old
   folder moves to `_staging/<run>/_old/`, the new one moves into place, the old one is deleted. A
   crash before the swap leaves the previous partition; a crash inside it leaves at worst no
   partition for that quarter — never a half-written one — and the next run cleans the debris up.
   On an object store (`s3a://`), a "rename" copies every object then deletes it, so a reader
   listing the folder mid-rename would see part of the new files, or old and new together. There
   each quarter is staged as ONE Parquet object and published by copying it onto the partition's
   fixed `part-00000.parquet`: S3 replaces an object atomically, so a reader lists and reads the
   old quarter or the new one, never a mix, and never half of either. A crash leaves each quarter
   old or new; the staging debris is removed by the next write.

The seconds of each phase are recorded as `io_seconds/*` metadata, so the cost of validation and
metadata next to the work is visible: `validate` (structure, unique key), `count_and_check` (the
one pass: computing the frame, its rows per quarter and the row checks — what the checks add to it
is measured by `benchmarks/`, which runs the same backfill without them), `write`, `metadata`.
"""

import math
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence

import dagster as dg
from dagster_pyspark import PySparkResource
from pyspark.sql import DataFrame

from batch_platform.metadata import lineage_table, previews
from batch_platform.partitions import to_key, to_label
from batch_platform.schemas.base import (
    PARTITION_COLUMN,
    Violation,
    check_structure,
    check_table,
    count_and_check,
    failure_report,
    spark_schema,
)
from batch_platform.storage import HadoopFS
from batch_platform.tables import table_for

ROWS_PER_WRITE_TASK = 500_000
MAX_RECORDS_PER_FILE = 5_000_000
OBJECT_NAME = "part-00000.parquet"
"""The one object of a partition on an object store."""
EMPTY_NAME = "part-00000-empty.parquet"
"""The schema-only file of a quarter without rows (on a file system; on an object store the one
object keeps `OBJECT_NAME`). Reading skips a quarter whose only file it is, without opening it."""
ALLOW_MISSING = "allow_missing_partitions"
"""Input metadata key: read a never-materialised quarter as empty instead of failing."""


def table_name(asset_key: dg.AssetKey) -> str:
    return "/".join(asset_key.path)


class LakeIOManager(dg.ConfigurableIOManager):
    """Reads and writes quarterly partitions of lake tables as Parquet, validated by Pandera."""

    pyspark: dg.ResourceDependency[PySparkResource]
    lake_root: str

    def table_path(self, asset_key: dg.AssetKey) -> str:
        return f"{self.lake_root.rstrip('/')}/{table_name(asset_key)}"

    def partition_path(self, asset_key: dg.AssetKey, quarter: str) -> str:
        return f"{self.table_path(asset_key)}/{PARTITION_COLUMN}={to_label(quarter)}"

    # ----------------------------------------------------------------------------------- write
    def handle_output(self, context: dg.OutputContext, obj: DataFrame | None) -> None:
        if obj is None:
            return
        table = table_name(context.asset_key)
        model = table_for(context.asset_key).model
        quarters = [to_label(key) for key in context.asset_partition_keys]
        if PARTITION_COLUMN not in obj.columns:
            raise dg.Failure(f"{table}: the asset returned no '{PARTITION_COLUMN}' column to partition by")
        df = obj if _served_from_cache(obj) else obj.persist()
        timings: dict[str, float] = defaultdict(float)
        mark = time.perf_counter()

        def lap(phase: str) -> None:
            nonlocal mark
            now = time.perf_counter()
            timings[phase] += now - mark
            mark = now

        try:
            structure = check_structure(df, model)
            if structure:
                raise _failure(table, structure, df.count())
            lap("validate")
            rows, violations = count_and_check(df, model)
            lap("count_and_check")
            strays = sorted(set(rows) - set(quarters), key=str)
            if strays:
                raise dg.Failure(
                    f"{table}: rows for quarter(s) {strays} are outside this run's partitions {quarters}; "
                    "nothing was written"
                )
            total = sum(rows.values())
            violations += check_table(df, model, total)
            if violations:
                raise _failure(table, violations, total)
            lap("validate")
            self._write(df, context.asset_key, quarters, total)
            lap("write")
            self._record(context, df, quarters, rows)
            lap("metadata")
        finally:
            if df.is_cached:  # persisted here or by the asset; a frame derived from a cache is the asset's
                df.unpersist()
        context.add_output_metadata({f"io_seconds/{phase}": round(value, 3) for phase, value in timings.items()})
        context.log.info(
            f"{table}: {total} rows in {len(quarters)} quarter(s); "
            + ", ".join(f"{phase} {value:.2f}s" for phase, value in timings.items())
        )

    def _write(self, df: DataFrame, asset_key: dg.AssetKey, quarters: Sequence[str], total: int) -> None:
        fs = HadoopFS(self.pyspark.spark_session)
        table = self.table_path(asset_key)
        self._clean_debris(fs, table)
        staging = f"{table}/_staging/{uuid.uuid4().hex}"
        object_store = fs.is_object_store(table)
        if object_store:
            # One object per quarter, so that publishing a quarter is one PUT (module docstring).
            staged = df.repartition(PARTITION_COLUMN).write
        else:
            # A persisted frame spreads every quarter over all its partitions, and each write task
            # leaves one file per quarter it holds: coalesce (no shuffle, unlike a repartition by
            # quarter) to about one task per half-million rows, at most one per core.
            parallelism = self.pyspark.spark_session.sparkContext.defaultParallelism
            tasks = max(1, min(parallelism, math.ceil(total / ROWS_PER_WRITE_TASK)))
            staged = df.coalesce(tasks).write.option("maxRecordsPerFile", MAX_RECORDS_PER_FILE)
        staged_folders: set[str] = set()
        if total:  # with no rows at all, the Spark write would only make an empty folder
            staged.mode("error").partitionBy(PARTITION_COLUMN).parquet(staging)
            staged_folders = {info.name for info in fs.subdirs(staging)}
        empty = [q for q in quarters if f"{PARTITION_COLUMN}={q}" not in staged_folders]
        if empty:
            self._stage_empty(fs, df, staging, empty)
        published = {info.name for info in fs.subdirs(table)}
        for quarter in quarters:
            final = self.partition_path(asset_key, quarter)
            if object_store:
                self._publish_object(fs, f"{staging}/{PARTITION_COLUMN}={quarter}", final)
            else:
                self._swap(fs, staging, final, quarter, f"{PARTITION_COLUMN}={quarter}" in published)
        fs.delete(staging)
        if not fs.list_dir(f"{table}/_staging"):
            fs.delete(f"{table}/_staging")

    @staticmethod
    def _stage_empty(fs: HadoopFS, df: DataFrame, staging: str, quarters: Sequence[str]) -> None:
        """A schema-only Parquet file in the staged folder of each quarter without rows: Spark writes
        one, the file system copies it into every such quarter (a write per quarter was a Spark job
        each, and a long partition range holds mostly empty quarters)."""
        template = f"{staging}/_empty"
        df.limit(0).drop(PARTITION_COLUMN).coalesce(1).write.mode("error").parquet(template)
        files = [f for f in fs.list_dir(template) if f.name.endswith(".parquet")]
        if len(files) != 1:
            raise RuntimeError(f"expected one schema-only Parquet file in {template}, found {[f.name for f in files]}")
        for quarter in quarters:
            fs.copy_file(files[0].path, f"{staging}/{PARTITION_COLUMN}={quarter}/{EMPTY_NAME}")
        fs.delete(template)

    @staticmethod
    def _swap(fs: HadoopFS, staging: str, final: str, quarter: str, exists: bool) -> None:
        """Folder renames: each is atomic on a local or HDFS file system. `exists`: whether the
        partition is published (listed once for all quarters)."""
        old = f"{staging}/_old/{PARTITION_COLUMN}={quarter}"
        if exists:
            fs.rename(final, old)
        fs.rename(f"{staging}/{PARTITION_COLUMN}={quarter}", final)

    @staticmethod
    def _publish_object(fs: HadoopFS, staged: str, final: str) -> None:
        """On an object store: copy the quarter's one staged Parquet object onto `OBJECT_NAME` in the
        partition, replacing the previous one in a single PUT, then drop anything else there."""
        files = [f for f in fs.list_dir(staged) if f.name.endswith(".parquet")]
        if len(files) != 1:
            raise RuntimeError(f"expected one staged Parquet object in {staged}, found {[f.name for f in files]}")
        fs.copy_file(files[0].path, f"{final}/{OBJECT_NAME}")
        for stale in fs.list_dir(final):
            if stale.name != OBJECT_NAME:
                fs.delete(stale.path)

    @staticmethod
    def _clean_debris(fs: HadoopFS, table: str) -> None:
        """Remove stagings of runs that crashed; restore a partition a crash left missing."""
        for run in fs.subdirs(f"{table}/_staging"):
            for old in fs.subdirs(f"{run.path}/_old"):
                if not fs.exists(f"{table}/{old.name}"):
                    fs.rename(old.path, f"{table}/{old.name}")
            fs.delete(run.path)

    def _record(self, context: dg.OutputContext, df: DataFrame, quarters, rows) -> None:
        """The table's declared schema and lineage (as its asset definition shows them, and the
        lineage again as a readable table, `column_lineage`, since the UI hides Dagster's own
        entry), and per quarter its path, row count and a preview."""
        declared = table_for(context.asset_key)
        lineage = declared.column_lineage()
        context.add_output_metadata(
            {
                **declared.definition_metadata(),
                **({"column_lineage": lineage_table(lineage)} if lineage is not None else {}),
                "table": table_name(context.asset_key),
                "quarters": ", ".join(quarters),
            }
        )
        step = context.step_context
        shown = previews(df, rows)
        for quarter in quarters:
            metadata = {
                "path": dg.MetadataValue.path(self.partition_path(context.asset_key, quarter)),
                "dagster/row_count": dg.MetadataValue.int(int(rows.get(quarter, 0))),
                "quarter": dg.MetadataValue.text(quarter),
                "preview": shown[quarter],
            }
            if len(quarters) == 1:
                context.add_output_metadata(metadata)
            else:
                step.add_asset_metadata(metadata, asset_key=context.asset_key, partition_key=to_key(quarter))

    # ------------------------------------------------------------------------------------ read
    def load_input(self, context: dg.InputContext) -> DataFrame:
        upstream = context.upstream_output
        asset_key = context.asset_key
        table = table_name(asset_key)
        model = table_for(asset_key).model
        spark = self.pyspark.spark_session
        fs = HadoopFS(spark)
        quarters = [to_label(key) for key in context.asset_partition_keys] if context.has_asset_partitions else []
        table_path = self.table_path(asset_key)
        published = {info.name for info in fs.subdirs(table_path)}
        present = [self.partition_path(asset_key, q) for q in quarters if f"{PARTITION_COLUMN}={q}" in published]
        missing = [q for q in quarters if f"{PARTITION_COLUMN}={q}" not in published]
        allow_missing = bool((context.definition_metadata or {}).get(ALLOW_MISSING)) or bool(
            upstream and (upstream.definition_metadata or {}).get(ALLOW_MISSING)
        )
        if missing and not allow_missing:
            raise dg.Failure(
                f"{table}: quarter(s) {', '.join(missing)} have never been materialised at "
                f"{self.table_path(asset_key)}; materialise them first"
            )
        if not present:
            return spark.createDataFrame([], spark_schema(model))
        reader = spark.read.option("basePath", self.table_path(asset_key))
        if _is_strict(model):
            # The contract fixes the columns: no job to read and merge every file's footer.
            reader = reader.schema(spark_schema(model))
        else:
            reader = reader.option("mergeSchema", "true")
        # Quarters written without rows (their one file is `EMPTY_NAME`) are not scanned; with no
        # other quarter, the frame is empty by construction and Spark plans nothing downstream of it
        # (a long partition range is mostly empty quarters, and an empty Parquet scan still compiles
        # and runs every plan above it). One listing for the table, not one per quarter.
        files: dict[str, list[str]] = defaultdict(list)
        for info in fs.glob(f"{table_path}/{PARTITION_COLUMN}=*/*.parquet"):
            files[info.path.rsplit("/", 2)[-2]].append(info.name)
        with_rows = [path for path in present if files.get(path.rsplit("/", 1)[-1]) != [EMPTY_NAME]]
        if not with_rows:
            return reader.parquet(*present).limit(0)
        return reader.parquet(*with_rows)


def _failure(table: str, violations: Sequence[Violation], total: int) -> dg.Failure:
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


def _served_from_cache(df: DataFrame) -> bool:
    """Whether `df` is cached data, or columns picked from it (as bronze returns: its cached frame
    without the parser's marker column), or checkpointed rows (as `ml/churn_scores` returns).
    Persisting such a frame again would copy the whole table into a second cache (measured: 10 s of
    a SIZE=M backfill). A filter over a cache (silver's quarantine) is persisted: it is small, and
    each pass would otherwise re-filter the cache. Anything else, or a session this cannot ask
    (Spark Connect), gets persisted too."""
    try:
        node = df._jdf.queryExecution().withCachedData()
        while node.getClass().getSimpleName() == "Project":
            node = node.child()
        kind = node.getClass().getSimpleName()
        return kind == "InMemoryRelation" or (kind == "LogicalRDD" and bool(node.rdd().isCheckpointed()))
    except Exception:  # noqa: BLE001 - no JVM plan to look at
        return False


def _is_strict(model) -> bool:
    return model.to_schema().strict is True
