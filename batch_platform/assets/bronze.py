"""Bronze: every landing file's rows, untouched, one table per source (SPEC.md, "Bronze").

Partition Q holds the rows of every file whose arrival folder date falls in Q. Values stay the
original strings; the platform adds `_source_file`, `_ingest_date`, `_ingested_at`, `_batch_id`.
"""

from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg
from dagster_pyspark import PySparkResource
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from batch_platform.arrival import Arrival, arrival_evaluations, arrival_spec, arrivals, landing_metadata
from batch_platform.landing import LandingBatch, LandingZone, verify_rows
from batch_platform.partitions import label_of, to_label
from batch_platform.schemas.base import PARTITION_COLUMN, spark_schema
from batch_platform.schemas.bronze import BRONZE_TABLES, BronzeTable

CODE_VERSION = "2"


def _quarter_label(day: F.Column) -> F.Column:
    return F.concat(F.year(day).cast("string"), F.lit("-Q"), F.quarter(day).cast("string"))


def build_bronze_asset(table: BronzeTable, partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    source, columns = table.source, table.columns

    @dg.asset(
        key=table.key,
        pool=table.pool,
        group_name="bronze",
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={"spark", "delta", "pandera"},
        code_version=CODE_VERSION,
        description=(
            f"Every row of every `{source}` landing file that arrived in the quarter, as the original text "
            f"({', '.join(columns)}; extra columns kept), plus _source_file, _ingest_date, _ingested_at and "
            "_batch_id. SPEC.md, 'Bronze: what arrived, untouched'."
        ),
        metadata={**table.definition_metadata(), "source": source},
        check_specs=[arrival_spec(table, partitions_def)],
    )
    def bronze_asset(
        context: dg.AssetExecutionContext, pyspark: PySparkResource, landing: LandingZone
    ) -> Iterator[dg.Output | dg.AssetCheckEvaluation]:
        spark = pyspark.spark_session
        window = context.partition_time_window
        batch = landing.read(spark, source, columns, window.start.date(), window.end.date())
        cached = None if batch.frame is None else with_ingest_columns(batch.frame, source)
        try:
            if cached is None:
                rows = spark.createDataFrame([], spark_schema(table.model))
            else:
                rows = verify_rows(cached, batch, source, columns)
            found = record_landing(context, batch, columns)
            yield dg.Output(rows)
        finally:
            if cached is not None:
                cached.unpersist()
        yield from arrival_evaluations(context, table, found)

    return bronze_asset


def record_landing(
    context: dg.AssetExecutionContext, batch: LandingBatch, columns: tuple[str, ...]
) -> dict[str, Arrival]:
    """Each quarter's landing files as its materialisation's metadata (`batch_platform.arrival`) and
    the ignored entries; what arrived per quarter, for the arrival check."""
    if batch.ignored:
        context.log.warning(f"ignored landing entries (not .csv/.json/.parquet): {batch.ignored}")
        context.add_asset_metadata({"ignored_files": dg.MetadataValue.json(batch.ignored)})
    found = arrivals(batch.files, columns, [to_label(key) for key in context.partition_keys])
    for key in context.partition_keys:
        files = [item for item in batch.files if label_of(item.arrival) == to_label(key)]
        context.add_asset_metadata(landing_metadata(files, found[to_label(key)], columns), partition_key=key)
    return found


def with_ingest_columns(frame: DataFrame, source: str) -> DataFrame:
    """Landing rows plus `_ingest_date`, `_ingested_at`, `_batch_id` and the partition column,
    cached: parsing the landing files happens once, for the checks of the rows and the write.
    The caller checks the rows with `verify_rows` and unpersists when done."""
    ingest_date = F.to_date(F.regexp_extract("_source_file", r"/(\d{4}-\d{2}-\d{2})/[^/]*$", 1))
    return (
        frame.withColumn("_ingest_date", ingest_date)
        .withColumn("_ingested_at", F.lit(datetime.now(UTC)).cast("timestamp"))
        .withColumn("_batch_id", _quarter_label(F.col("_ingest_date")))
        .withColumn(PARTITION_COLUMN, F.col("_batch_id"))
        .cache()
    )


def build_bronze_assets(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    """One asset per landing source."""
    return [build_bronze_asset(table, partitions_def) for table in BRONZE_TABLES.values()]
