"""SPEC.md in one straightforward PySpark script: the engine's cost for the platform's tables.

    BATCH_PLATFORM_CONFIG=bench.yaml python -m benchmarks.plain_pyspark --from 2024-Q1 --to 2025-Q4 [--report r.json]

An independent implementation: it imports nothing from `batch_platform` and restates the contract
(SPEC.md) in plain DataFrame code, the way an engineer would write it for a one-off job. It reads
the same config file as the platform (landing and lake roots, the batch rules, the `spark` section)
with PyYAML, and builds, for the quarters `--from` … `--to`:

- bronze/<source>: every row of every landing file that arrived in the quarter, all values text,
  plus `_source_file`, `_ingest_date`, `_ingested_at`, `_batch_id`; CSV files grouped by header
  (Spark maps CSV columns by position), JSON and Parquet read in one go each; a malformed row fails
  the run (`FAILFAST`);
- silver/<table> and silver/<table>_quarantine from bronze read back from the lake: trimmed, parsed
  (ISO-8601 timestamps, decimal numbers, lower-case categories), the first broken rule as
  `_reject_reason`, duplicates removed within the quarter (first arrival wins; partner scores: the
  highest of the day; customer profiles: the latest delivery);
- gold/customer_history for Q from the profiles of every partition up to Q (SCD Type 2: per
  attribute the latest non-null value, the system priority on a shared updated_at, a version where
  the golden values change);
- gold/customer_features, churn_labels, training_set from silver read back from the lake: for
  target quarter Q and cutoff C = start of Q, features from silver Q-L … Q-1 (events deduplicated
  across partitions, the copy of the earliest partition kept), label from silver Q, split by
  SHA-256 of customer_id (the rule SPEC.md leaves open, taken from the platform's docs so that the
  split counts can be compared); the profile features from the version of history Q-1 valid at C.

Every table is written as `<lake>/<layer>/<table>/quarter=<YYYY-QN>/*.parquet`, one schema-only
file for a quarter without rows (copied from one empty file written once). With `--delta`, every
table is a Delta table instead, written as the platform commits (one `replaceWhere` partition
overwrite per table per run, with the platform's three Delta settings, `DELTA_CONF`, and the jars of
`make setup`) and read through its log: the yardstick for what the table format itself costs,
measured beside the Parquet one (benchmarks/README.md). A run of one quarter
reads the lookback of gold from silver already in the lake, as a scheduled run would. What it
does not do, and the platform does: validation, row counts, previews, statistics, reconciliation
figures, asset checks, per-quarter metadata and atomic publishing.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import yaml
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

SOURCES = {
    "operational": ("customer_id", "event_time", "amount", "currency", "channel"),
    "logs": ("customer_id", "log_event_type", "log_timestamp"),
    "external": ("customer_id", "partner_score", "partner_segment"),
    "customers": (
        "customer_id",
        "source_system",
        "updated_at",
        "email",
        "country",
        "signup_date",
        "contract",
        "payment_method",
        "monthly_charges",
    ),
}
GOLDEN = ("email", "country", "signup_date", "contract", "payment_method", "monthly_charges")
LINEAGE = ("_source_file", "_ingest_date", "_ingested_at", "_batch_id")
FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}
DATE_FOLDER = re.compile(r"^\d{4}-\d{2}-\d{2}$")
LABEL = re.compile(r"^(\d{4})-Q([1-4])$")
WHITE_SPACE = r"(?U)^\s+|\s+$"
TS_SHAPE = r"^(\d{4}-\d{2}-\d{2})(?:[ T](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})?)?$"
NUMBER_SHAPE = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"


# ------------------------------------------------------------------------------- quarters
def qidx(label: str) -> int:
    m = LABEL.match(label)
    if not m:
        raise SystemExit(f"{label!r} is not a quarter label (YYYY-QN)")
    return int(m.group(1)) * 4 + int(m.group(2)) - 1


def qlabel(index: int) -> str:
    return f"{index // 4}-Q{index % 4 + 1}"


def qstart(index: int) -> date:
    return date(index // 4, (index % 4) * 3 + 1, 1)


def label_col(day: Column) -> Column:
    return F.concat(F.year(day).cast("string"), F.lit("-Q"), F.quarter(day).cast("string"))


def index_col(label: Column) -> Column:
    return F.substring(label, 1, 4).cast("int") * 4 + F.substring(label, 7, 1).cast("int") - 1


def start_col(index: Column) -> Column:
    """Midnight UTC of the first day of quarter `index` (the session runs in UTC)."""
    return F.make_date(F.floor(index / 4).cast("int"), (index % 4) * 3 + 1, F.lit(1)).cast("timestamp")


# ---------------------------------------------------------------------------------- Spark
DELTA_JARS = Path(__file__).resolve().parents[1] / ".jars" / "delta"
DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    "spark.databricks.delta.snapshotPartitions": "1",
    "spark.databricks.delta.skipRecordingEmptyCommits": "false",
    "spark.databricks.delta.properties.defaults.dataSkippingNumIndexedCols": "1",
}


def session(spark_settings: dict, delta: bool = False) -> SparkSession:
    builder = (
        SparkSession.builder.master(str(spark_settings.get("master", "local[*]")))
        .appName("plain_pyspark")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
        .config("spark.sql.shuffle.partitions", str(spark_settings.get("shuffle_partitions", 8)))
        .config("spark.ui.enabled", str(spark_settings.get("ui_enabled", True)).lower())
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    )
    if delta:
        jars = sorted(DELTA_JARS.glob("*.jar"))
        if not jars:
            raise SystemExit(f"--delta: no Delta jars in {DELTA_JARS}: run `make setup`")
        builder = builder.config("spark.jars", ",".join(str(jar) for jar in jars))
        for key, value in DELTA_CONF.items():
            builder = builder.config(key, value)
    for key, value in (spark_settings.get("conf") or {}).items():
        builder = builder.config(key, str(value).lower() if isinstance(value, bool) else str(value))
    return builder.getOrCreate()


class Lake:
    def __init__(self, root: str, quarters: list[str], delta: bool = False):
        self.root = Path(root)
        self.quarters = quarters
        self.delta = delta
        self._empty: dict[str, Path] = {}

    def write(self, frame: DataFrame, table: str) -> None:
        """Replace the run's quarters of `table`; a schema-only file for a quarter without rows (Delta:
        one commit, which records the schema whether or not it adds rows)."""
        path = self.root / table
        if self.delta:
            replaced = ", ".join(f"'{q}'" for q in self.quarters)
            writer = frame.write.format("delta").mode("overwrite").partitionBy("quarter")
            writer.option("replaceWhere", f"quarter IN ({replaced})").save(str(path))
            return
        frame.write.mode("overwrite").option("partitionOverwriteMode", "dynamic").partitionBy("quarter").parquet(
            str(path)
        )
        for quarter in self.quarters:
            folder = path / f"quarter={quarter}"
            if not folder.exists():
                folder.mkdir(parents=True)
                shutil.copy(self._empty_file(frame, table), folder / "part-00000.parquet")

    def _empty_file(self, frame: DataFrame, table: str) -> Path:
        if table not in self._empty:
            scratch = Path(tempfile.mkdtemp(prefix="empty-", dir=self.root))
            frame.drop("quarter").limit(0).coalesce(1).write.mode("overwrite").parquet(str(scratch / "t"))
            self._empty[table] = next((scratch / "t").glob("*.parquet"))
        return self._empty[table]

    def read(self, spark: SparkSession, table: str, quarters: list[str], schema: str | None = None) -> DataFrame:
        path = self.root / table
        if self.delta and (path / "_delta_log").is_dir():
            frame = spark.read.format("delta").load(str(path)).where(F.col("quarter").isin(quarters))
            return frame.select(*spark.createDataFrame([], schema).columns) if schema else frame
        folders = [str(path / f"quarter={q}") for q in quarters if (path / f"quarter={q}").is_dir()]
        reader = spark.read.option("basePath", str(path))
        if schema:
            reader = reader.schema(schema)
        if not folders:
            return spark.createDataFrame([], schema) if schema else None
        return reader.parquet(*folders)

    def cleanup(self) -> None:
        for file in self._empty.values():
            shutil.rmtree(file.parent.parent, ignore_errors=True)


# --------------------------------------------------------------------------------- bronze
def landing_files(root: Path, source: str, lo: int, hi: int) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {"csv": [], "json": [], "parquet": []}
    base = root / source
    if not base.is_dir():
        return found
    for folder in sorted(base.iterdir()):
        if not folder.is_dir() or not DATE_FOLDER.match(folder.name):
            continue
        day = date.fromisoformat(folder.name)
        if not lo <= day.year * 4 + (day.month - 1) // 3 <= hi:
            continue
        for item in sorted(folder.iterdir()):
            kind = FORMATS.get(item.suffix.lower())
            if kind and item.is_file() and not item.name.startswith(("_", ".")) and item.stat().st_size:
                found[kind].append(str(item))
    return found


def read_landing(spark: SparkSession, files: dict[str, list[str]], columns: tuple[str, ...]) -> DataFrame | None:
    frames = []
    by_header: dict[tuple[str, ...], list[str]] = {}
    for path in files["csv"]:
        with open(path, encoding="utf-8") as handle:
            line = handle.readline().lstrip("\ufeff").strip()
        if line:
            header = tuple(name.strip().lower() for name in next(csv.reader([line])))
            by_header.setdefault(header, []).append(path)
    for header, paths in by_header.items():
        schema = T.StructType([T.StructField(name, T.StringType()) for name in header])
        frames.append(spark.read.schema(schema).option("header", True).option("mode", "FAILFAST").csv(paths))
    if files["json"]:
        frames.append(spark.read.option("primitivesAsString", True).option("mode", "FAILFAST").json(files["json"]))
    if files["parquet"]:
        frames.append(spark.read.option("mergeSchema", True).parquet(*files["parquet"]))
    if not frames:
        return None
    frames = [
        f.select(*[F.col(f"`{c}`").cast("string").alias(c.strip().lower()) for c in f.columns], "_metadata.file_path")
        for f in frames
    ]
    frame = frames[0]
    for other in frames[1:]:
        frame = frame.unionByName(other, allowMissingColumns=True)
    for name in columns:
        if name not in frame.columns:
            frame = frame.withColumn(name, F.lit(None).cast("string"))
    extras = sorted(c for c in frame.columns if c not in columns and c != "file_path")
    ingest = F.to_date(F.regexp_extract("file_path", r"/(\d{4}-\d{2}-\d{2})/[^/]*$", 1))
    return frame.select(
        *columns,
        *extras,
        F.col("file_path").alias("_source_file"),
        ingest.alias("_ingest_date"),
        F.current_timestamp().alias("_ingested_at"),
        label_col(ingest).alias("_batch_id"),
        label_col(ingest).alias("quarter"),
    )


# --------------------------------------------------------------------------------- silver
def trim(c: Column) -> Column:
    return F.regexp_replace(c, WHITE_SPACE, "")


def text(c: Column) -> Column:
    return F.nullif(trim(c), F.lit(""))


def blank(name: str) -> Column:
    return text(F.col(name)).isNull()


def timestamp(c: Column) -> Column:
    t = trim(c)
    day, clock, fraction, zone = (F.regexp_extract(t, TS_SHAPE, i) for i in (1, 2, 3, 4))
    iso = F.concat(
        day,
        F.lit(" "),
        F.when(clock == "", "00:00:00").otherwise(clock),
        F.lit("."),
        F.rpad(fraction, 6, "0"),
        F.when((zone == "") | (zone == "Z"), "+00:00").otherwise(zone),
    )
    return F.when(t.rlike(TS_SHAPE), F.try_to_timestamp(iso, F.lit("yyyy-MM-dd HH:mm:ss.SSSSSSXXX")))


def number(c: Column) -> Column:
    t = trim(c)
    value = F.when(t.rlike(NUMBER_SHAPE), t.try_cast("double"))
    return F.when(~F.isnan(value) & (F.abs(value) < float("inf")), value)


def first_reason(rules: list[tuple[str, Column]]) -> Column:
    reason = None
    for name, broken in rules:
        reason = F.when(broken, name) if reason is None else reason.when(broken, name)
    return reason


def silver(bronze: DataFrame, source: str) -> tuple[DataFrame, DataFrame]:
    """(valid rows deduplicated, quarantined rows) of one bronze source."""
    end = start_col(index_col(F.col("quarter")) + 1)
    cid = text(F.col("customer_id"))
    if source == "operational":
        parsed = {
            "customer_id": cid,
            "event_time": timestamp(F.col("event_time")),
            "amount": number(F.col("amount")),
            "currency": F.lower(text(F.col("currency"))),
            "channel": F.lower(text(F.col("channel"))),
        }
        rules = [
            ("customer_id_missing", F.col("_p.customer_id").isNull()),
            ("event_time_missing", blank("event_time")),
            ("event_time_unparseable", F.col("_p.event_time").isNull()),
            ("amount_missing", blank("amount")),
            ("amount_unparseable", F.col("_p.amount").isNull()),
            ("event_time_after_quarter", F.col("_p.event_time") >= end),
        ]
        keys = ["customer_id", "event_time", "amount"]
        order = [
            F.col("_ingest_date"),
            F.col("_source_file"),
            F.col("currency").asc_nulls_last(),
            F.col("channel").asc_nulls_last(),
        ]
    elif source == "customers":
        parsed = {
            "customer_id": cid,
            "source_system": F.lower(text(F.col("source_system"))),
            "updated_at": timestamp(F.col("updated_at")),
            "email": F.lower(text(F.col("email"))),
            "country": F.upper(text(F.col("country"))),
            "signup_date": F.to_date(timestamp(F.col("signup_date"))),
            "contract": F.lower(text(F.col("contract"))),
            "payment_method": F.lower(text(F.col("payment_method"))),
            "monthly_charges": number(F.col("monthly_charges")),
        }
        rules = [
            ("customer_id_missing", F.col("_p.customer_id").isNull()),
            ("updated_at_missing", blank("updated_at")),
            ("updated_at_unparseable", F.col("_p.updated_at").isNull()),
            ("updated_at_after_quarter", F.col("_p.updated_at") >= end),
            ("source_system_missing", F.col("_p.source_system").isNull()),
            ("source_system_unknown", ~F.col("_p.source_system").isin("online", "store")),
            (
                "contract_unknown",
                F.col("_p.contract").isNotNull() & ~F.col("_p.contract").isin("month-to-month", "one-year", "two-year"),
            ),
            ("monthly_charges_unparseable", ~blank("monthly_charges") & F.col("_p.monthly_charges").isNull()),
            ("monthly_charges_negative", F.col("_p.monthly_charges") < 0),
            ("signup_date_unparseable", ~blank("signup_date") & F.col("_p.signup_date").isNull()),
        ]
        keys = ["customer_id", "source_system", "updated_at"]
        order = [
            F.col("_ingest_date").desc(),
            F.col("_source_file").desc(),
            *[F.col(name).desc_nulls_last() for name in GOLDEN],
        ]
    elif source == "logs":
        parsed = {
            "customer_id": cid,
            "log_event_type": F.lower(text(F.col("log_event_type"))),
            "log_timestamp": timestamp(F.col("log_timestamp")),
        }
        rules = [
            ("customer_id_missing", F.col("_p.customer_id").isNull()),
            ("log_timestamp_missing", blank("log_timestamp")),
            ("log_timestamp_unparseable", F.col("_p.log_timestamp").isNull()),
            ("log_timestamp_after_quarter", F.col("_p.log_timestamp") >= end),
        ]
        keys = ["customer_id", "log_event_type", "log_timestamp"]
        order = [F.col("_ingest_date"), F.col("_source_file")]
    else:
        parsed = {
            "customer_id": cid,
            "partner_score": number(F.col("partner_score")),
            "partner_segment": F.lower(text(F.col("partner_segment"))),
            "as_of_date": F.col("_ingest_date"),
        }
        rules = [
            ("customer_id_missing", F.col("_p.customer_id").isNull()),
            ("partner_score_missing", blank("partner_score")),
            ("partner_score_unparseable", F.col("_p.partner_score").isNull()),
            ("partner_score_out_of_range", ~F.col("_p.partner_score").between(0.0, 1000.0)),
        ]
        keys = ["customer_id", "as_of_date"]
        order = [F.col("partner_score").desc(), F.col("partner_segment").asc_nulls_last(), F.col("_source_file")]
    # Cached: both outputs come from it, so the landing text is parsed once (the caller unpersists).
    flagged = (
        bronze.withColumn("_p", F.struct(*[e.alias(n) for n, e in parsed.items()]))
        .withColumn("_reject_reason", first_reason(rules))
        .cache()
    )
    valid = flagged.filter(F.col("_reject_reason").isNull()).select("_p.*", "_ingest_date", "_source_file", "quarter")
    first = Window.partitionBy("quarter", *keys).orderBy(*order)
    rows = valid.withColumn("_n", F.row_number().over(first)).filter(F.col("_n") == 1).select(*parsed, "quarter")
    rejected = flagged.filter(F.col("_reject_reason").isNotNull()).select(
        *SOURCES[source], *LINEAGE, "_reject_reason", "quarter"
    )
    return rows, rejected


SILVER_TABLES = {
    "operational": "operational_events",
    "logs": "interaction_logs",
    "external": "partner_scores",
    "customers": "customer_profiles",
}
SILVER_SCHEMAS = {
    "operational_events": "customer_id string, event_time timestamp, amount double, currency string, "
    "channel string, quarter string",
    "interaction_logs": "customer_id string, log_event_type string, log_timestamp timestamp, quarter string",
    "partner_scores": "customer_id string, partner_score double, partner_segment string, as_of_date date, "
    "quarter string",
    "customer_profiles": "customer_id string, source_system string, updated_at timestamp, email string, "
    "country string, signup_date date, contract string, payment_method string, monthly_charges double, "
    "quarter string",
}


# ----------------------------------------------------------------------------------- gold
def for_targets(frame: DataFrame, lo: int, hi: int, lookback: int) -> DataFrame:
    """Each silver row once per target quarter in [lo, hi] whose lookback holds its partition,
    with `_src` (its partition), `_t` (the target) and `_c` (the target's cutoff)."""
    src = index_col(F.col("quarter"))
    return (
        frame.withColumn("_src", src)
        .withColumn("_t", F.explode(F.sequence(src + 1, src + lookback)))
        .filter(F.col("_t").between(lo, hi))
        .withColumn("_c", start_col(F.col("_t")))
        .drop("quarter")
    )


def features(events: DataFrame, logs: DataFrame, scores: DataFrame, lo: int, hi: int, lookback: int) -> DataFrame:
    ev = for_targets(events, lo, hi, lookback).filter(F.col("event_time") < F.col("_c"))
    copies = Window.partitionBy("_t", "customer_id", "event_time", "amount").orderBy(
        "_src", F.col("channel").asc_nulls_last()
    )
    ev = ev.withColumn("_n", F.row_number().over(copies)).filter(F.col("_n") == 1)
    recent = F.col("event_time") >= F.date_sub(F.col("_c").cast("date"), 90).cast("timestamp")
    base = ev.groupBy("_t", "customer_id").agg(
        F.first("_c").alias("feature_cutoff"),
        F.count(F.lit(1)).alias("txn_count"),
        F.sum("amount").alias("total_amount"),
        F.avg("amount").alias("avg_amount"),
        F.count_distinct(F.to_date("event_time")).alias("active_days"),
        F.min("event_time").alias("first_activity_ts"),
        F.max("event_time").alias("last_activity_ts"),
        F.count_if(recent).alias("txn_count_90d"),
        F.coalesce(F.sum(F.when(recent, F.col("amount"))), F.lit(0.0)).alias("amount_90d"),
        F.count_distinct("channel").alias("distinct_channels"),
    )
    log_counts = (
        for_targets(logs, lo, hi, lookback)
        .filter(F.col("log_timestamp") < F.col("_c"))
        .select("_t", "customer_id", "log_event_type", "log_timestamp")
        .distinct()
        .groupBy("_t", "customer_id")
        .agg(F.count(F.lit(1)).alias("log_event_count"))
    )
    latest = Window.partitionBy("_t", "customer_id").orderBy(
        F.col("as_of_date").desc(), F.col("partner_score").desc(), F.col("partner_segment").asc_nulls_last()
    )
    partner = (
        for_targets(scores, lo, hi, lookback)
        .filter(F.col("as_of_date") < F.col("_c").cast("date"))
        .withColumn("_n", F.row_number().over(latest))
        .filter(F.col("_n") == 1)
        .select("_t", "customer_id", "partner_score", "partner_segment")
    )
    cutoff_date = F.col("feature_cutoff").cast("date")
    return (
        base.join(log_counts, ["_t", "customer_id"], "left")
        .join(partner, ["_t", "customer_id"], "left")
        .select(
            "customer_id",
            "feature_cutoff",
            "txn_count",
            "total_amount",
            "avg_amount",
            "active_days",
            "first_activity_ts",
            "last_activity_ts",
            F.datediff(cutoff_date, F.to_date("last_activity_ts")).alias("recency_days"),
            F.datediff(cutoff_date, F.to_date("first_activity_ts")).alias("tenure_days"),
            "txn_count_90d",
            "amount_90d",
            "distinct_channels",
            F.coalesce("log_event_count", F.lit(0)).cast("long").alias("log_event_count"),
            "partner_score",
            "partner_segment",
            F.concat(
                (F.col("_t") / 4).cast("int").cast("string"), F.lit("-Q"), (F.col("_t") % 4 + 1).cast("string")
            ).alias("quarter"),
        )
    )


def customer_history(profiles: DataFrame, lo: int, hi: int, priority: list[str]) -> DataFrame:
    """The golden record of every customer with its versions, as known at the end of each target
    quarter in [lo, hi], from the profile rows of every partition up to it (a row delivered again in
    a later partition counts once: the latest partition's copy)."""
    src = index_col(F.col("quarter"))
    rank = F.lit(len(priority))
    for position, system in reversed(list(enumerate(priority))):
        rank = F.when(F.col("source_system") == system, position).otherwise(rank)
    rows = (
        profiles.withColumn("_src", src)
        .withColumn("_t", F.explode(F.sequence(F.greatest(src, F.lit(lo)), F.lit(hi))))
        .withColumn(
            "_n",
            F.row_number().over(
                Window.partitionBy("_t", "customer_id", "source_system", "updated_at").orderBy(F.col("_src").desc())
            ),
        )
        .filter(F.col("_n") == 1)
        .withColumn("_rank", rank)
    )
    # lowest priority first at one updated_at, so the running value ends with the winner's
    running = (
        Window.partitionBy("_t", "customer_id")
        .orderBy("updated_at", F.col("_rank").desc(), "source_system")
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    golden = rows.select(
        "_t",
        "customer_id",
        "updated_at",
        "_rank",
        *[F.last(a, ignorenulls=True).over(running).alias(a) for a in GOLDEN],
    )
    at_t = (
        golden.withColumn(
            "_w", F.row_number().over(Window.partitionBy("_t", "customer_id", "updated_at").orderBy("_rank"))
        )
        .filter(F.col("_w") == 1)
        .drop("_w", "_rank")
    )
    timeline = Window.partitionBy("_t", "customer_id").orderBy("updated_at")
    same = F.lit(True)
    for a in GOLDEN:
        same = same & F.col(a).eqNullSafe(F.lag(a).over(timeline))
    starts = at_t.withColumn("_starts", F.lag("updated_at").over(timeline).isNull() | ~same).filter("_starts")
    valid_to = F.lead("updated_at").over(timeline)
    return starts.select(
        "customer_id",
        F.row_number().over(timeline).cast("int").alias("version"),
        F.col("updated_at").alias("valid_from"),
        valid_to.alias("valid_to"),
        valid_to.isNull().alias("is_current"),
        *GOLDEN,
        F.concat((F.col("_t") / 4).cast("int").cast("string"), F.lit("-Q"), (F.col("_t") % 4 + 1).cast("string")).alias(
            "quarter"
        ),
    )


PROFILE_FEATURES = ("contract", "payment_method", "monthly_charges", "country", "tenure_months")


def with_profiles(feats: DataFrame, history: DataFrame) -> DataFrame:
    """The features of Q with the golden record's version of history Q-1 valid at C."""
    cutoff = start_col(index_col(F.col("quarter")))
    valid = (F.col("valid_from") <= cutoff) & (F.col("valid_to").isNull() | (F.col("valid_to") > cutoff))
    following = index_col(F.col("quarter")) + 1
    as_of = (
        history.withColumn(
            "quarter",
            F.concat((following / 4).cast("int").cast("string"), F.lit("-Q"), (following % 4 + 1).cast("string")),
        )
        .filter(valid)
        .select(
            "quarter",
            "customer_id",
            "contract",
            "payment_method",
            "monthly_charges",
            "country",
            F.months_between(cutoff.cast("date"), F.col("signup_date"), roundOff=False)
            .cast("int")
            .alias("tenure_months"),
        )
    )
    joined = feats.join(as_of, ["quarter", "customer_id"], "left")
    return joined.select(*[c for c in feats.columns if c != "quarter"], *PROFILE_FEATURES, "quarter")


def labels(feats: DataFrame, events: DataFrame, window_days: int) -> DataFrame:
    start = start_col(index_col(F.col("quarter")))
    end = F.date_add(start.cast("date"), window_days).cast("timestamp")
    active = (
        events.filter((F.col("event_time") >= start) & (F.col("event_time") < end))
        .select("quarter", "customer_id", F.lit(0).alias("label"))
        .distinct()
    )
    return (
        feats.select("quarter", "customer_id", "feature_cutoff")
        .join(active, ["quarter", "customer_id"], "left")
        .select(
            "customer_id",
            F.coalesce("label", F.lit(1)).cast("int").alias("label"),
            F.col("feature_cutoff").alias("label_window_start"),
            F.date_add(F.col("feature_cutoff").cast("date"), window_days).cast("timestamp").alias("label_window_end"),
            "quarter",
        )
    )


def training(feats: DataFrame, labs: DataFrame, eval_fraction: float) -> DataFrame:
    bucket = F.conv(F.substring(F.sha2("customer_id", 256), 1, 13), 16, 10).cast("long") / float(16**13)
    columns = [c for c in feats.columns if c != "quarter"]
    return feats.join(labs, ["quarter", "customer_id"]).select(
        *columns,
        "label",
        "label_window_start",
        "label_window_end",
        F.when(bucket < eval_fraction, "eval").otherwise("train").alias("split"),
        "quarter",
    )


# ------------------------------------------------------------------------------------ run
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


def run(first: str, last: str, config: dict, delta: bool = False) -> dict:
    storage, batch = config.get("storage", {}), config.get("batch", {})
    lookback = int(batch.get("lookback_quarters", 4))
    window_days = int(batch.get("prediction_window_days", 90))
    eval_fraction = float(batch.get("eval_fraction", 0.2))
    lo, hi = qidx(first), qidx(last)
    first_known = qidx(str(batch.get("first_quarter", first)))
    priority = list((config.get("customers") or {}).get("system_priority") or ["store", "online"])
    quarters = [qlabel(i) for i in range(lo, hi + 1)]
    history = [qlabel(i) for i in range(max(first_known, lo - lookback), hi + 1)]
    landing = Path(storage["landing_root"])
    lake = Lake(storage["lake_root"], quarters, delta)
    timer = Timer()
    began = time.time()
    with timer("spark_session"):
        spark = session(config.get("spark") or {}, delta)

    for source, columns in SOURCES.items():
        with timer(f"bronze/{source}"):
            frame = read_landing(spark, landing_files(landing, source, lo, hi), columns)
            if frame is None:
                schema = ", ".join(f"`{c}` string" for c in columns)
                frame = spark.createDataFrame(
                    [],
                    f"{schema}, _source_file string, _ingest_date date, _ingested_at timestamp, "
                    "_batch_id string, quarter string",
                )
            lake.write(frame, f"bronze/{source}")

    for source, table in SILVER_TABLES.items():
        with timer(f"silver/{table}"):
            bronze = lake.read(spark, f"bronze/{source}", quarters)
            rows, rejected = silver(bronze, source)
            lake.write(rows, f"silver/{table}")
            lake.write(rejected, f"silver/{table}_quarantine")
            spark.catalog.clearCache()

    with timer("gold/customer_history"):
        # the features of lo read the history of lo-1: computed with the run's, written only for the run
        everything = [qlabel(i) for i in range(first_known, hi + 1)]
        profiles = lake.read(spark, "silver/customer_profiles", everything, SILVER_SCHEMAS["customer_profiles"])
        golden = customer_history(profiles, max(first_known, lo - 1), hi, priority).cache()
        lake.write(golden.filter(F.col("quarter").isin(quarters)), "gold/customer_history")
    with timer("gold/customer_features"):
        events, logs, scores = (
            lake.read(spark, f"silver/{t}", history, SILVER_SCHEMAS[t])
            for t in ("operational_events", "interaction_logs", "partner_scores")
        )
        feats = with_profiles(features(events, logs, scores, lo, hi, lookback), golden).cache()
        lake.write(feats, "gold/customer_features")
    with timer("gold/churn_labels"):
        labs = labels(feats, events.filter(F.col("quarter").isin(quarters)), window_days).cache()
        lake.write(labs, "gold/churn_labels")
    with timer("gold/training_set"):
        lake.write(training(feats, labs, eval_fraction), "gold/training_set")
    lake.cleanup()
    ended = time.time()
    with timer("spark_stop"):
        spark.stop()
    return {"quarters": quarters, "started": began, "ended": ended, "phases": timer.phases}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="first", required=True)
    parser.add_argument("--to", dest="last")
    parser.add_argument("--config", default=os.environ.get("BATCH_PLATFORM_CONFIG", "config/config.yaml"))
    parser.add_argument("--report", help="write the phase timings here (JSON)")
    parser.add_argument("--delta", action="store_true", help="write and read every table as a Delta table")
    args = parser.parse_args(argv)
    config = yaml.safe_load(Path(args.config).read_text()) or {}
    result = run(args.first, args.last or args.first, config, args.delta)
    if args.report:
        Path(args.report).write_text(json.dumps(result, indent=1))
    print(
        f"plain PySpark: {result['quarters'][0]}..{result['quarters'][-1]} in {result['ended'] - result['started']:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
