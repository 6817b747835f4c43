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

from batch_platform.config import PlatformConfig
from batch_platform.jobs import lake_pool
from batch_platform.landing import LandingZone, raise_for_corrupt_rows
from batch_platform.partitions import label_of, to_key, to_label
from batch_platform.schemas.base import PARTITION_COLUMN, spark_schema
from batch_platform.schemas.bronze import BRONZE_TABLES, BronzeTable

CODE_VERSION = "1"


def _quarter_label(day: F.Column) -> F.Column:
    return F.concat(F.year(day).cast("string"), F.lit("-Q"), F.quarter(day).cast("string"))


def build_bronze_asset(table: BronzeTable, partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    source, columns = table.source, table.columns

    @dg.asset(
        key=table.key,
        pool=lake_pool(table.key),
        group_name="bronze",
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={"spark", "parquet", "pandera"},
        code_version=CODE_VERSION,
        description=(
            f"Every row of every `{source}` landing file that arrived in the quarter, as the original text "
            f"({', '.join(columns)}; extra columns kept), plus _source_file, _ingest_date, _ingested_at and "
            "_batch_id. SPEC.md, 'Bronze: what arrived, untouched'."
        ),
        metadata={**table.definition_metadata(), "source": source},
    )
    def bronze_asset(
        context: dg.AssetExecutionContext, pyspark: PySparkResource, landing: LandingZone
    ) -> Iterator[dg.Output]:
        spark = pyspark.spark_session
        window = context.partition_time_window
        batch = landing.read(spark, source, columns, window.start.date(), window.end.date())
        quarters = [to_label(key) for key in context.partition_keys]
        for quarter in quarters:
            files = [f.path for f in batch.files if label_of(f.arrival) == quarter]
            context.add_asset_metadata(
                {"files_read": dg.MetadataValue.int(len(files)), "landing_files": dg.MetadataValue.json(files)},
                partition_key=to_key(quarter),
            )
        if batch.ignored:
            context.log.warning(f"ignored landing entries (not .csv/.json/.parquet): {batch.ignored}")
            context.add_output_metadata({"ignored_files": dg.MetadataValue.json(batch.ignored)})
        if batch.frame is None:
            yield dg.Output(spark.createDataFrame([], spark_schema(table.model)))
            return
        cached = with_ingest_columns(batch.frame, source)
        try:
            yield dg.Output(raise_for_corrupt_rows(cached, source))
        finally:
            cached.unpersist()

    return bronze_asset


def with_ingest_columns(frame: DataFrame, source: str) -> DataFrame:
    """Landing rows plus `_ingest_date`, `_ingested_at`, `_batch_id` and the partition column,
    cached: parsing the landing files happens once, for the corrupt-row check and the write.
    The caller checks the rows with `raise_for_corrupt_rows` and unpersists when done."""
    ingest_date = F.to_date(F.regexp_extract("_source_file", r"/(\d{4}-\d{2}-\d{2})/[^/]*$", 1))
    return (
        frame.withColumn("_ingest_date", ingest_date)
        .withColumn("_ingested_at", F.lit(datetime.now(UTC)).cast("timestamp"))
        .withColumn("_batch_id", _quarter_label(F.col("_ingest_date")))
        .withColumn(PARTITION_COLUMN, F.col("_batch_id"))
        .cache()
    )


def build_bronze_assets(config: PlatformConfig) -> list[dg.AssetsDefinition]:
    """One asset per landing source."""
    return [build_bronze_asset(table, config.partitions()) for table in BRONZE_TABLES.values()]
