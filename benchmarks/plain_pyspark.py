"""The platform's tables with plain PySpark: no Dagster, no Pandera — the engine's own cost.

    BATCH_PLATFORM_CONFIG=bench.yaml python -m benchmarks.plain_pyspark --from 2024-Q1 --to 2025-Q4 [--report r.json]

Computes bronze → silver (+ quarantine) → gold for a range of quarters in one SparkSession and
writes them in the lake layout of SPEC.md (`<lake>/<layer>/<table>/quarter=<YYYY-QN>/*.parquet`,
a schema-only file for a quarter without rows, as the platform does), with the Spark settings of
`PlatformConfig.spark_conf()` from the same config file the platform's run uses.

So that the comparison with the platform measures orchestration, validation and metadata — not
two implementations — every transformation is the platform's own, imported, never copied:
`LandingZone.read` (landing), `with_ingest_columns` and `raise_for_corrupt_rows` (bronze), `flag`, `silver_rows`,
`quarantine_rows` (silver), `compute_customer_features`, `compute_churn_labels`,
`compute_training_set` (gold). The only lines restated here are the bronze lineage columns, which
the platform builds inline in its asset body (`assets/bronze.py`), not in a function.

What a careful engineer writing this by hand would do, and this script does: cache the bronze
frame while checking it for corrupt rows (as the platform does) and the flagged silver frame that
feeds two outputs; hand silver to gold through the lake (gold is a separate stage reading Parquet,
like the platform); keep the features frame cached for labels and the training set instead of
reading it back. What it does not do: Pandera, row counts, previews, statistics, reconciliation
figures, asset checks, staging-and-swap writes — that is the difference being measured.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from pyspark.sql import DataFrame, SparkSession

from batch_platform.assets.bronze import with_ingest_columns
from batch_platform.assets.gold import (
    compute_churn_labels,
    compute_customer_features,
    compute_training_set,
    lookback_quarters,
)
from batch_platform.assets.silver import SILVER_TABLES, flag, quarantine_rows, silver_rows
from batch_platform.config import load_config
from batch_platform.landing import LandingZone, raise_for_corrupt_rows
from batch_platform.partitions import quarter_end, quarter_range, quarter_start, to_label
from batch_platform.schemas.base import PARTITION_COLUMN
from batch_platform.schemas.bronze import SOURCE_COLUMNS

SOURCES = ("operational", "logs", "external")


class Timer:
    def __init__(self):
        self.phases: list[dict] = []

    def __call__(self, name: str):
        timer = self

        class _Phase:
            def __enter__(self):
                self.began = time.time()

            def __exit__(self, *exc):
                timer.phases.append({"phase": name, "start": self.began, "end": time.time()})

        return _Phase()


def session() -> SparkSession:
    """One session with exactly the platform's settings (as dagster-pyspark builds it)."""
    builder = SparkSession.builder
    for key, value in load_config().spark_conf().items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def write(frame: DataFrame, path: str, quarters: list[str]) -> None:
    """Partitioned Parquet under `path`; a schema-only file for each quarter without rows."""
    frame.write.mode("overwrite").option("partitionOverwriteMode", "dynamic").partitionBy(PARTITION_COLUMN).parquet(
        path
    )
    spark = frame.sparkSession
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    for quarter in quarters:
        folder = jvm.org.apache.hadoop.fs.Path(f"{path}/{PARTITION_COLUMN}={quarter}")
        if not folder.getFileSystem(conf).exists(folder):
            frame.limit(0).drop(PARTITION_COLUMN).coalesce(1).write.parquet(f"{path}/{PARTITION_COLUMN}={quarter}")


def read(spark: SparkSession, path: str, quarters: list[str]) -> DataFrame | None:
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    present = []
    for quarter in quarters:
        folder = f"{path}/{PARTITION_COLUMN}={quarter}"
        jpath = jvm.org.apache.hadoop.fs.Path(folder)
        if jpath.getFileSystem(conf).exists(jpath):
            present.append(folder)
    if not present:
        return None
    return spark.read.option("basePath", path).option("mergeSchema", "true").parquet(*present)


def bronze(spark: SparkSession, landing: LandingZone, source: str, first: str, last: str) -> DataFrame | None:
    batch = landing.read(spark, source, SOURCE_COLUMNS[source], quarter_start(first).date(), quarter_end(last).date())
    if batch.frame is None:
        return None
    return with_ingest_columns(batch.frame, source)


def run(first: str, last: str) -> dict:
    config = load_config()
    timer = Timer()
    began = time.time()
    with timer("spark_session"):
        spark = session()
    lake = config.lake_root.rstrip("/")
    landing = LandingZone(root=config.landing_root)
    quarters = quarter_range(first, last)
    lookback = config.batch.lookback_quarters

    for source in SOURCES:
        with timer(f"bronze/{source}"):
            cached = bronze(spark, landing, source, first, last)
            if cached is not None:
                write(raise_for_corrupt_rows(cached, source), f"{lake}/bronze/{source}", quarters)
                cached.unpersist()

    for table in SILVER_TABLES.values():
        with timer(f"silver/{table.name}"):
            source = read(spark, f"{lake}/bronze/{table.source}", quarters)
            if source is None:
                continue
            flagged = flag(source, table).persist()
            write(silver_rows(flagged, table), f"{lake}/silver/{table.name}", quarters)
            write(quarantine_rows(flagged, table), f"{lake}/silver/{table.name}_quarantine", quarters)
            flagged.unpersist()

    history = sorted({q for target in quarters for q in lookback_quarters(target, lookback)})
    with timer("gold/customer_features"):
        events = read(spark, f"{lake}/silver/operational_events", history)
        logs = read(spark, f"{lake}/silver/interaction_logs", history)
        scores = read(spark, f"{lake}/silver/partner_scores", history)
        if events is None:  # no history at all (e.g. only the first quarter): empty features
            events = read(spark, f"{lake}/silver/operational_events", quarters).limit(0)
            logs = read(spark, f"{lake}/silver/interaction_logs", quarters).limit(0)
            scores = read(spark, f"{lake}/silver/partner_scores", quarters).limit(0)
        features = compute_customer_features(events, logs, scores, quarters, lookback).persist()
        write(features, f"{lake}/gold/customer_features", quarters)
    with timer("gold/churn_labels"):
        current = read(spark, f"{lake}/silver/operational_events", quarters)
        labels = compute_churn_labels(features, current, config.batch.prediction_window_days).persist()
        write(labels, f"{lake}/gold/churn_labels", quarters)
    with timer("gold/training_set"):
        training = compute_training_set(features, labels, config.batch.eval_fraction)
        write(training, f"{lake}/gold/training_set", quarters)
    features.unpersist()
    labels.unpersist()
    ended = time.time()
    with timer("spark_stop"):
        spark.stop()
    return {"quarters": quarters, "started": began, "ended": ended, "phases": timer.phases}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="first", required=True, type=to_label)
    parser.add_argument("--to", dest="last", type=to_label)
    parser.add_argument("--report", help="write the phase timings here (JSON)")
    args = parser.parse_args(argv)
    result = run(args.first, args.last or args.first)
    if args.report:
        with open(args.report, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=1)
    print(
        f"plain PySpark: {result['quarters'][0]}..{result['quarters'][-1]} in {result['ended'] - result['started']:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
