"""Gold: point-in-time ML tables per quarter (SPEC.md, "Gold: point-in-time ML tables").

For gold partition Q the cutoff C is the start of Q (UTC).

- `gold/customer_features` Q reads silver partitions Q-L … Q-1 only (L = `batch.lookback_quarters`);
  partitions before the first quarter do not exist and are skipped (the mapping hands over only the
  quarters that are partitions), a lookback quarter materialised empty reads as empty (the step logs
  it and reports it in its metadata), and one that was never materialised fails the step before it
  writes anything, naming the silver table and the quarter (`batch_platform.io_manager`).
- `gold/churn_labels` Q reads `customer_features` Q and silver `operational_events` partition Q
  only: label = 1 when the customer has no event with event_time in [C, C + W).
- `gold/training_set` Q = `customer_features` Q ⋈ `churn_labels` Q on customer_id, plus `split`.

The dependencies are declared with partition mappings, so the lineage Dagster shows is the one
the code uses. One run may cover several quarters (a single-run backfill): every function below
computes per *target* quarter — the loaded silver rows carry their partition in `quarter`, and a
small (target quarter, source quarter) table decides which rows each target quarter may see — so
quarters never mix.

Interpretations where SPEC.md is silent:
- events are deduplicated across the lookback on (customer_id, event_time, amount); of several
  copies the one delivered first (earliest silver partition, then smallest channel) is kept;
- rows at or after C are dropped even if a silver partition before Q held one (silver guarantees
  it never does; the guard makes the point-in-time rule hold by construction);
- amounts are summed as DECIMAL(38, 10) and converted back to double, so sums do not depend on
  Spark's summation order (a single-run backfill equals quarter-by-quarter runs to the bit);
  avg_amount is that sum divided by txn_count. An amount beyond 10^28 fails the step (ANSI
  overflow) rather than being summed wrongly;
- `amount_90d` and `txn_count_90d` are 0 when no event falls in the 90 days; `log_event_count` is
  0 (not null) for a customer with no interaction log in the lookback;
- partner score: latest as_of_date before C; ties (same date in two partitions) — highest score,
  then smallest segment;
- the label window [C, C + W) is looked up in silver partition Q only, as SPEC.md says; with W
  longer than the quarter, events after the end of Q are not seen.
"""

import hashlib

import dagster as dg
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from batch_platform.config import PlatformConfig
from batch_platform.features import (
    FEATURE_COLUMNS,
    NUMERIC_FEATURES,
    compute_customer_features,
    lookback_pairs,
    lookback_quarters,
)
from batch_platform.jobs import lake_pool
from batch_platform.metadata import feature_stats, features_metadata, label_counts, labels_metadata, training_metadata
from batch_platform.partitions import to_key, to_label
from batch_platform.resources import BatchSettings
from batch_platform.schemas.base import PARTITION_COLUMN, quarter_start_col
from batch_platform.schemas.gold import CHURN_LABELS, CUSTOMER_FEATURES, TRAINING_SET, TrainingSet
from batch_platform.schemas.silver import INTERACTION_LOGS, OPERATIONAL_EVENTS, PARTNER_SCORES

__all__ = [  # the features' declaration and computation live in batch_platform.features
    "FEATURE_COLUMNS",
    "NUMERIC_FEATURES",
    "TRAINING_COLUMNS",
    "build_gold_assets",
    "compute_churn_labels",
    "compute_customer_features",
    "compute_training_set",
    "lookback_pairs",
    "lookback_quarters",
    "split_bucket",
    "split_col",
    "split_of",
    "unmatched_customers",
]

CODE_VERSION = "1"
SPLIT_HASH_HEX_DIGITS = 13
"""The split hashes customer_id with SHA-256 and reads its first 13 hex digits (52 bits) as a
fraction of 2**52: exactly representable as a double, so Spark and Python agree to the bit."""

SILVER_EVENTS = OPERATIONAL_EVENTS.silver_key
SILVER_LOGS = INTERACTION_LOGS.silver_key
SILVER_SCORES = PARTNER_SCORES.silver_key
FEATURES_KEY, LABELS_KEY, TRAINING_KEY = CUSTOMER_FEATURES.key, CHURN_LABELS.key, TRAINING_SET.key


TRAINING_COLUMNS = [name for name in TrainingSet.to_schema().columns if name != PARTITION_COLUMN]


# ------------------------------------------------------------------------------ pure functions
def compute_churn_labels(features: DataFrame, events: DataFrame, window_days: int) -> DataFrame:
    """`gold/churn_labels`: one row per customer of `features`, label from silver partition Q only.

    `features` and `events` carry `quarter`; an event counts for quarter Q only when it comes from
    silver partition Q (its own `quarter` is Q) and event_time is in [C, C + W).
    """
    start = quarter_start_col()
    end = F.date_add(start.cast("date"), window_days).cast("timestamp")
    active = (
        events.select(PARTITION_COLUMN, "customer_id", "event_time")
        .filter((F.col("event_time") >= start) & (F.col("event_time") < end))
        .select(PARTITION_COLUMN, "customer_id", F.lit(True).alias("_active"))
        .distinct()
    )
    return (
        features.select(PARTITION_COLUMN, "customer_id")
        .join(active, [PARTITION_COLUMN, "customer_id"], "left")
        .select(
            "customer_id",
            F.when(F.col("_active"), F.lit(0)).otherwise(F.lit(1)).cast("int").alias("label"),
            start.alias("label_window_start"),
            end.alias("label_window_end"),
            PARTITION_COLUMN,
        )
    )


def split_bucket_col(customer_id: Column) -> Column:
    """A number in [0, 1) that depends on customer_id alone (SHA-256 of its UTF-8 bytes)."""
    digits = F.substring(F.sha2(customer_id.cast("string"), 256), 1, SPLIT_HASH_HEX_DIGITS)
    return F.conv(digits, 16, 10).cast("long").cast("double") / float(16**SPLIT_HASH_HEX_DIGITS)


def split_col(customer_id: Column, eval_fraction: float) -> Column:
    return F.when(split_bucket_col(customer_id) < F.lit(float(eval_fraction)), F.lit("eval")).otherwise(F.lit("train"))


def split_bucket(customer_id: str) -> float:
    """The same bucket in plain Python: `split_of(id) == "eval"` exactly when bucket < eval share."""
    digest = hashlib.sha256(str(customer_id).encode("utf-8")).hexdigest()
    return int(digest[:SPLIT_HASH_HEX_DIGITS], 16) / float(16**SPLIT_HASH_HEX_DIGITS)


def split_of(customer_id: str, eval_fraction: float) -> str:
    return "eval" if split_bucket(customer_id) < eval_fraction else "train"


def compute_training_set(features: DataFrame, labels: DataFrame, eval_fraction: float) -> DataFrame:
    """customer_features ⋈ churn_labels on (quarter, customer_id), plus `split`."""
    keys = [PARTITION_COLUMN, "customer_id"]
    return (
        features.join(labels.select(*keys, "label", "label_window_start", "label_window_end"), keys, "inner")
        .withColumn("split", split_col(F.col("customer_id"), eval_fraction))
        .select(*TRAINING_COLUMNS, PARTITION_COLUMN)
    )


def unmatched_customers(features: DataFrame, labels: DataFrame) -> dict[str, dict[str, int]]:
    """Per quarter, customers present in only one of features and labels (none when both agree).

    Labels hold one row per customer of the same quarter's features; a customer on one side only
    means one table is stale (re-materialised without the other).
    """
    keys = [PARTITION_COLUMN, "customer_id"]
    rows = (
        features.select(*keys, F.lit(True).alias("_f"))
        .join(labels.select(*keys, F.lit(True).alias("_l")), keys, "full_outer")
        .filter(F.col("_f").isNull() | F.col("_l").isNull())
        .groupBy(PARTITION_COLUMN)
        .agg(
            F.sum(F.col("_l").isNull().cast("long")).alias("features_only"),
            F.sum(F.col("_f").isNull().cast("long")).alias("labels_only"),
        )
        .collect()
    )
    return {
        row[PARTITION_COLUMN]: {"features_only": row["features_only"], "labels_only": row["labels_only"]}
        for row in rows
    }


# -------------------------------------------------------------------------------------- assets
def _check_lookback(settings: BatchSettings, lookback: int) -> None:
    if settings.lookback_quarters != lookback:
        raise dg.Failure(
            f"batch.lookback_quarters is {settings.lookback_quarters} in the config but the asset graph was built "
            f"with L = {lookback}: load the definitions with the same config the run uses"
        )


def _input_partitions(context: dg.AssetExecutionContext, *inputs: str) -> dict[str, list[str]]:
    """The silver quarters each input step loaded, as Dagster resolved them from the mapping."""
    return {name: [to_label(key) for key in context.asset_partition_keys_for_input(name)] for name in inputs}


def _labels(context: dg.AssetExecutionContext) -> list[str]:
    return [to_label(key) for key in context.partition_keys]


def _common(config: PlatformConfig) -> dict:
    return dict(
        group_name="gold",
        partitions_def=config.partitions(),
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={"spark", "parquet", "pandera"},
        code_version=CODE_VERSION,
    )


def build_gold_assets(config: PlatformConfig) -> list[dg.AssetsDefinition]:
    """The three gold assets; the lookback L of the config shapes the features' partition mapping."""
    return [_features_asset(config), _labels_asset(config), _training_asset(config)]


def _features_asset(config: PlatformConfig) -> dg.AssetsDefinition:
    lookback = config.batch.lookback_quarters
    history = dg.TimeWindowPartitionMapping(
        start_offset=-lookback, end_offset=-1, allow_nonexistent_upstream_partitions=True
    )

    def lookback_in(key: dg.AssetKey) -> dg.AssetIn:
        return dg.AssetIn(key=key, partition_mapping=history)

    @dg.asset(
        key=FEATURES_KEY,
        pool=lake_pool(FEATURES_KEY),
        ins={
            "operational_events": lookback_in(SILVER_EVENTS),
            "interaction_logs": lookback_in(SILVER_LOGS),
            "partner_scores": lookback_in(SILVER_SCORES),
        },
        description=(
            f"One row per customer with an operational event in silver partitions Q-{lookback} … Q-1, as known "
            "before the cutoff C = start of Q: counts, amounts, activity days and timestamps, recency and tenure, "
            "90-day figures, channels, interaction-log count and the latest partner score. Never reads silver Q. "
            "SPEC.md, 'Gold: point-in-time ML tables'."
        ),
        metadata={**CUSTOMER_FEATURES.definition_metadata(), "lookback_quarters": lookback},
        **_common(config),
    )
    def customer_features(
        context: dg.AssetExecutionContext,
        settings: BatchSettings,
        operational_events: DataFrame,
        interaction_logs: DataFrame,
        partner_scores: DataFrame,
    ) -> DataFrame:
        _check_lookback(settings, lookback)
        loaded = _input_partitions(context, "operational_events", "interaction_logs", "partner_scores")
        context.add_output_metadata({"input_partitions": dg.MetadataValue.json(loaded)})
        frame = compute_customer_features(
            operational_events, interaction_logs, partner_scores, _labels(context), lookback
        ).persist()
        source_rows = {
            row[PARTITION_COLUMN]: row["count"]
            for row in operational_events.groupBy(PARTITION_COLUMN).count().collect()
        }
        stats = feature_stats(frame, NUMERIC_FEATURES)
        for quarter in _labels(context):
            metadata, empty = features_metadata(
                quarter, lookback_quarters(quarter, lookback), set(loaded["operational_events"]), source_rows, stats
            )
            if empty:
                context.log.warning(
                    f"customer_features {quarter}: silver operational_events {', '.join(empty)} was materialised with no "
                    "rows; the features of this quarter see no events from it"
                )
            context.add_asset_metadata(metadata, partition_key=to_key(quarter))
        return frame

    return customer_features


def _labels_asset(config: PlatformConfig) -> dg.AssetsDefinition:
    @dg.asset(
        key=LABELS_KEY,
        pool=lake_pool(LABELS_KEY),
        ins={
            "customer_features": dg.AssetIn(key=FEATURES_KEY),
            "operational_events": dg.AssetIn(key=SILVER_EVENTS),
        },
        description=(
            "For every customer of customer_features Q: label = 1 when the customer has no operational event in "
            "silver partition Q with event_time in [C, C + W), else 0 (C = start of Q, W = prediction window). "
            "The only gold figure that uses events at or after C. SPEC.md, 'Gold: point-in-time ML tables'."
        ),
        metadata=CHURN_LABELS.definition_metadata(),
        **_common(config),
    )
    def churn_labels(
        context: dg.AssetExecutionContext,
        settings: BatchSettings,
        customer_features: DataFrame,
        operational_events: DataFrame,
    ) -> DataFrame:
        window = settings.prediction_window_days
        context.add_output_metadata(
            {"input_partitions": dg.MetadataValue.json(_input_partitions(context, "operational_events"))}
        )
        frame = compute_churn_labels(customer_features, operational_events, window).persist()
        counts = label_counts(frame)
        for quarter in _labels(context):
            context.add_asset_metadata(labels_metadata(counts.get(quarter, {}), window), partition_key=to_key(quarter))
        return frame

    return churn_labels


def _training_asset(config: PlatformConfig) -> dg.AssetsDefinition:
    @dg.asset(
        key=TRAINING_KEY,
        pool=lake_pool(TRAINING_KEY),
        ins={"customer_features": dg.AssetIn(key=FEATURES_KEY), "churn_labels": dg.AssetIn(key=LABELS_KEY)},
        description=(
            "customer_features ⋈ churn_labels on customer_id for quarter Q, plus split ∈ {train, eval}: a "
            "deterministic function of customer_id alone (SHA-256 bucket below batch.eval_fraction → eval). "
            "SPEC.md, 'Gold: point-in-time ML tables'."
        ),
        metadata=TRAINING_SET.definition_metadata(),
        **_common(config),
    )
    def training_set(
        context: dg.AssetExecutionContext,
        settings: BatchSettings,
        customer_features: DataFrame,
        churn_labels: DataFrame,
    ) -> DataFrame:
        unmatched = unmatched_customers(customer_features, churn_labels)
        if unmatched:
            raise dg.Failure(
                f"customer_features and churn_labels disagree on their customers ({unmatched}): one of them is "
                "stale; materialise both for these quarters"
            )
        frame = compute_training_set(customer_features, churn_labels, settings.eval_fraction).persist()
        counts = label_counts(frame, by_split=True)
        for quarter in _labels(context):
            metadata = training_metadata(counts.get(quarter, {}), settings.eval_fraction)
            context.add_asset_metadata(metadata, partition_key=to_key(quarter))
        return frame

    return training_set
