"""The one Pandera-checked IO manager every layer writes and reads through: Delta Lake tables.

Layout (SPEC.md, "Lake"): every table is a Delta table at `<lake>/<layer>/<table>/`, partitioned by
`quarter` (`_delta_log/` beside the `quarter=<YYYY-QN>/` data folders). An asset returns one Spark
DataFrame with a `quarter` column holding the label of each row's partition; one output may cover
several quarters (a single-run backfill). Writing a run's quarters:

1. validate the frame against the table's Pandera model: the structure first (no
   Spark job), then ONE pass that computes the frame, counts its rows per quarter and counts every
   row check's failing rows per quarter, then the unique key; fail with every failed check and its
   failing-row counts, committing nothing. The columns are then held against the Delta table's
   (schema enforcement, before anything is written: `batch_platform.io_checks`): a column the table has and a strict
   declaration lacks, or a column whose type changed, fails naming it; a column the declaration
   added is Delta's schema evolution (`mergeSchema`): the quarters written before read null for it;
2. ONE Delta commit for the whole run: a partition overwrite (`replaceWhere quarter IN (<the run's
   quarters>)`) that replaces exactly those quarters and touches no other. Delta's transaction log
   makes it atomic on a folder and on S3 alike: the data files are written first, then the commit
   (one log entry) makes them the table's; a reader sees the version before the commit or the one
   after, never a mix, and a writer killed before its commit leaves files no version refers to
   (VACUUM deletes them). Replaced files stay for time travel. A quarter with no rows has no file
   in the table: the commit's `userMetadata` (`batch_platform.delta_log.commit_metadata`) lists every
   quarter ever materialised, which is how an empty quarter is told from one never materialised —
   by this IO manager, and by the readers outside Spark. Two runs committing the same quarter at
   once: Delta fails the later commit (its conflict detection), and the step fails with a
   `dagster.Failure` naming the table and the quarters, with nothing of that run committed — never
   with Spark's raw error. Every materialisation records the version committed (`delta_version`)
   and the table's path.

The frame is read in several passes (the counting pass, the unique key, the write, the previews, the
table's recorder), so the rows validated must be the rows written: the IO manager alone persists an
output, before its first pass, when the table's declaration says so (`Table.cached`: silver, its
quarantine, gold), and releases it once written, whatever happens. An asset never persists what it
returns. An output not declared `cached` is cheap to compute again (local rows, an empty frame),
checkpointed (`ml/churn_scores`) or columns of the asset's own cache (bronze, whose cache holds the
parser's marker column besides: persisting it again here copies that cache into a second one,
measured at SIZE=M as several seconds of the bronze steps).

What a materialisation records: per quarter the table's path, the Delta version committed, the row
count and a preview, plus what the table's declaration records (`Table.record`, computed by
`batch_platform.metadata` from the rows written, their counts and the rows per quarter of every
input this IO manager handed the step; a multi-asset's later output also sees what its earlier ones
recorded).

Reading a range of quarters asks the log, in the driver (`deltalake`: no Spark job), which quarters
hold rows and which were materialised. Every quarter an input is handed must have been materialised
(a quarter materialised empty reads as no rows): one never materialised fails the step before it
computes or writes anything, naming the table and the quarter, and is never read as empty. Quarters
that are not partitions at all — before `batch.first_quarter` — never reach this IO manager: a
`TimeWindowPartitionMapping(..., allow_nonexistent_upstream_partitions=True)` drops them from the
keys it hands over (gold's lookback of the first quarters). The rows are read by Spark with Delta
at the version just asked (`versionAsOf`), so the quarters checked are the quarters read even while
another run commits.

A writer killed at any point of a write leaves every reader the version before or the version
after its commit, whole, and the next run commits as a clean one does: the data files are written
before the log entry that makes them the table's, and files of no version are never read. Delta
creates a new table's `_delta_log/` before its first data file, so the files of a first write killed
before its commit (or of another writer creating the table at the same moment) are never taken for
a lake written before the lake became Delta (`quarter=` folders without a log), which is refused.

The seconds of each phase are recorded as `io_seconds/*` metadata, so the cost of validation and
metadata next to the work is visible: `validate` (structure, unique key), `count_and_check` (the
one pass: computing the frame, its rows per quarter and the row checks — what the checks add to it
is measured by `benchmarks/`, which runs the same backfill without them), `write` (the commit, and
reading the version it made from the log), `metadata`; and `rows_per_second`, the rows written over
the seconds of computing and writing them (for `ml/churn_scores`, the scoring throughput).
"""

import math
import re
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import dagster as dg
from dagster_pyspark import PySparkResource
from pydantic import PrivateAttr
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from batch_platform import delta, delta_log, delta_spark
from batch_platform.config import S3Config
from batch_platform.io_checks import (
    delta_schema,
    is_strict,
    partition_last,
    plain_parquet_hint,
    refuse_plain_parquet,
    schema_evolves,
    validation_failure,
    with_columns,
)
from batch_platform.layout import LakeLayout, PartitionNotMaterialised, table_name
from batch_platform.metadata import lineage_table, previews
from batch_platform.partitions import to_key, to_label
from batch_platform.schemas.base import PARTITION_COLUMN, Table, Written, spark_schema
from batch_platform.schemas.validation import check_structure, check_table, count_and_check
from batch_platform.tables import table_for

ROWS_PER_WRITE_TASK = 500_000
MAX_RECORDS_PER_FILE = 5_000_000
_CONFLICT = re.compile(
    r"Concurrent\w*Exception|MetadataChangedException|ProtocolChangedException|DELTA_CONCURRENT_\w+"
    r"|DELTA_METADATA_CHANGED|DELTA_PROTOCOL_CHANGED"
)
"""Delta's conflict errors: another commit since this transaction read the table."""


class LakeIOManager(dg.ConfigurableIOManager):
    """Reads and writes quarterly partitions of lake tables as Delta tables, validated by Pandera.

    The `s3_*` fields are `storage.s3`, for reading the Delta log from the driver (`deltalake`) when
    the lake is on S3; Spark's S3A gets the same settings from the `pyspark` resource. The
    credentials stay `${NAME}` references, resolved where the client is built: the UI and run
    storage never hold them."""

    pyspark: dg.ResourceDependency[PySparkResource]
    lake_root: str
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_path_style_access: bool = False
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    _read: dict[tuple[str, str], dict[str, dict[str, int]]] = PrivateAttr(default_factory=dict)
    """Per (run, step): the rows per quarter this IO manager handed each input of the step."""
    _recorded: dict[tuple[str, str], dict[dg.AssetKey, dict[str, dict[str, Any]]]] = PrivateAttr(default_factory=dict)
    """Per (run, step): what each output written so far recorded, per quarter."""

    @property
    def layout(self) -> LakeLayout:
        return LakeLayout(self.lake_root)

    def table_path(self, asset_key: dg.AssetKey) -> str:
        return self.layout.table_uri(asset_key)

    def _s3(self) -> S3Config | None:
        if not self.layout.on_s3:
            return None
        return S3Config(
            endpoint_url=self.s3_endpoint_url,
            region=self.s3_region,
            path_style_access=self.s3_path_style_access,
            access_key_id=self.s3_access_key_id,
            secret_access_key=self.s3_secret_access_key,
        )

    def open_table(self, asset_key: dg.AssetKey) -> delta.LakeTable | None:
        """The table's latest version, read from its log in the driver; None when there is no table."""
        try:
            return delta.open_table(self.table_path(asset_key), self._s3())
        except delta.TableMissing:
            return None

    def materialised_quarters(self, asset_key: dg.AssetKey) -> list[str]:
        """The quarters of the table materialised at its latest version (empty ones included), oldest
        first; none when there is no table."""
        existing = self.open_table(asset_key)
        return delta.materialised_quarters(existing) if existing else []

    # ----------------------------------------------------------------------------------- write
    def handle_output(self, context: dg.OutputContext, obj: DataFrame | None) -> None:
        if obj is None:
            return
        table = table_name(context.asset_key)
        declared = table_for(context.asset_key)
        model = declared.model
        quarters = [to_label(key) for key in context.asset_partition_keys]
        if PARTITION_COLUMN not in obj.columns:
            raise dg.Failure(f"{table}: the asset returned no '{PARTITION_COLUMN}' column to partition by")
        df = obj.persist() if declared.cached else obj  # module docstring
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
                raise validation_failure(table, structure, df.count())
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
                raise validation_failure(table, violations, total)
            lap("validate")
            version = self._commit(context, df, quarters, rows, total)
            lap("write")
            self._record(context, declared, df, quarters, rows, version)
            lap("metadata")
        finally:
            if declared.cached:
                df.unpersist()
        computed = timings["count_and_check"] + timings["write"]
        context.add_output_metadata(
            {
                **{f"io_seconds/{phase}": round(value, 3) for phase, value in timings.items()},
                "rows_per_second": round(total / computed, 1) if computed else 0.0,
            }
        )
        context.log.info(
            f"{table}: {total} rows in {len(quarters)} quarter(s), Delta version {version}; "
            + ", ".join(f"{phase} {value:.2f}s" for phase, value in timings.items())
        )

    def _commit(self, context: dg.OutputContext, df: DataFrame, quarters: Sequence[str], rows: dict, total: int) -> int:
        """The run's quarters replaced in one Delta commit; the version it made."""
        table = table_name(context.asset_key)
        path = self.table_path(context.asset_key)
        existing = self.open_table(context.asset_key)
        if existing is None:
            refuse_plain_parquet(self.pyspark.spark_session, table, path)
        strict = is_strict(table_for(context.asset_key).model)
        evolves = existing is not None and schema_evolves(table, df.schema, delta_schema(existing), strict)
        metadata = delta_log.commit_metadata(
            context.run_id, quarters, rows, delta.materialised_quarters(existing) if existing else []
        )
        # A persisted frame spreads every quarter over all its partitions, and each write task leaves
        # one file per quarter it holds: coalesce (no shuffle, unlike a repartition by quarter) to
        # about one task per half-million rows, at most one per core.
        parallelism = self.pyspark.spark_session.sparkContext.defaultParallelism
        tasks = max(1, min(parallelism, math.ceil(total / ROWS_PER_WRITE_TASK)))
        writer = (
            df.coalesce(tasks)
            .write.format("delta")
            .mode("overwrite")
            .partitionBy(PARTITION_COLUMN)
            .option("replaceWhere", f"{PARTITION_COLUMN} IN ({', '.join(repr(q) for q in quarters)})")
            .option("userMetadata", metadata)
            .option("maxRecordsPerFile", MAX_RECORDS_PER_FILE)
        )
        if evolves:
            writer = writer.option("mergeSchema", "true")
        try:
            writer.save(path)
        except Exception as exc:
            conflict = _CONFLICT.search(str(exc))
            if conflict is None:
                raise
            raise dg.Failure(
                f"{table}: another run committed to the Delta table at {path} while this run was writing "
                f"quarter(s) {', '.join(quarters)} ({conflict.group(0)}); Delta refused this run's commit, so "
                "nothing of it was committed and the table holds the other run's version. Materialise the "
                "quarter(s) again once the other run is done."
            ) from None
        return delta_spark.committed_version(path, metadata, self._s3())

    def _record(self, context: dg.OutputContext, declared: Table, df: DataFrame, quarters, rows, version: int) -> None:
        """The table's declared schema and lineage (as its asset definition shows them, and the
        lineage again as a readable table, `column_lineage`, since the UI hides Dagster's own
        entry), and per quarter the table's path, the Delta version committed, the row count, a
        preview and what the table's declaration records (`Table.record`)."""
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
        recorded = self._recorded.setdefault(_step(context), {})
        own = declared.record(self._written(context, df, quarters, rows, recorded)) if declared.record else {}
        recorded[context.asset_key] = {quarter: dict(own.get(quarter, {})) for quarter in quarters}
        for quarter in quarters:
            metadata = {
                **recorded[context.asset_key][quarter],
                "path": dg.MetadataValue.path(self.table_path(context.asset_key)),
                "delta_version": dg.MetadataValue.int(version),
                "dagster/row_count": dg.MetadataValue.int(int(rows.get(quarter, 0))),
                "quarter": dg.MetadataValue.text(quarter),
                "preview": shown[quarter],
            }
            if len(quarters) == 1:
                context.add_output_metadata(metadata)
            else:
                step.add_asset_metadata(metadata, asset_key=context.asset_key, partition_key=to_key(quarter))

    def _written(self, context: dg.OutputContext, df: DataFrame, quarters, rows, recorded) -> Written:
        return Written(
            key=context.asset_key,
            frame=df,
            quarters=quarters,
            rows=rows,
            read=self._read.get(_step(context), {}),
            recorded=recorded,
            definition_metadata=context.definition_metadata or {},
            log=context.log,
        )

    # ------------------------------------------------------------------------------------ read
    def load_input(self, context: dg.InputContext) -> DataFrame:
        """The input's quarters as Dagster mapped them: only partitions (a mapping that reaches before
        the first quarter, `allow_nonexistent_upstream_partitions`, hands over the ones that exist),
        each of which must have been materialised. The rows per quarter handed over are kept for the
        step's recorders (`Written.read`)."""
        quarters = [to_label(key) for key in context.asset_partition_keys] if context.has_asset_partitions else []
        handed: dict[str, int] = {}
        frame = self.read_quarters(context.asset_key, quarters, handed)
        self._read.setdefault(_step(context), {})[context.name] = handed
        return frame

    def read_quarters(
        self, asset_key: dg.AssetKey, quarters: Sequence[str], handed: dict[str, int] | None = None
    ) -> DataFrame:
        """The quarters `quarters` of a lake table as one frame, at the table's latest version.

        A quarter materialised empty reads as no rows; one never materialised (or a table that does
        not exist) fails naming the table and the quarters: it is never read as empty. Quarters
        without rows are not scanned: with none that has rows, the frame is empty by construction
        and Spark plans nothing downstream of it (a long partition range is mostly empty quarters,
        and even an empty scan compiles and runs every plan above it)."""
        table = table_name(asset_key)
        model = table_for(asset_key).model
        spark = self.pyspark.spark_session
        path = self.table_path(asset_key)
        existing = self.open_table(asset_key)
        try:
            self.layout.require(asset_key, quarters, delta.materialised_quarters(existing) if existing else None)
        except PartitionNotMaterialised as exc:
            hint = plain_parquet_hint(spark, path) if existing is None else ""
            raise dg.Failure(
                f"{table}: quarter(s) {', '.join(exc.quarters)} have never been materialised at {path}, and a quarter "
                f"that was never materialised is not read as empty: nothing was computed or written from it ({exc}). "
                f"Materialise it first{hint}"
            ) from None
        with_rows = delta.rows_per_quarter(existing) if existing else {}
        if handed is not None:
            handed.update({q: int(with_rows.get(q, 0)) for q in quarters})
        present = [q for q in quarters if with_rows.get(q)]
        # A strict table reads as declared; any other as the table's columns (bronze keeps the extra
        # columns that arrived). Either way the partition column comes last, as a Parquet read of
        # partition folders put it before the lake became Delta.
        declared = is_strict(model) or existing is None
        schema = partition_last(spark_schema(model) if declared else delta_schema(existing))
        if not present:
            return spark.createDataFrame([], schema)
        frame = (
            spark.read.format("delta")
            .option("versionAsOf", existing.version)
            .load(path)
            .where(F.col(PARTITION_COLUMN).isin(present))
        )
        return with_columns(frame, schema)


def _step(context: dg.InputContext | dg.OutputContext) -> tuple[str, str]:
    step = context.step_context
    return step.run_id, step.step.key
