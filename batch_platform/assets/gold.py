"""Gold: point-in-time ML tables per quarter (SPEC.md, "Gold: point-in-time ML tables").

For gold partition Q the cutoff C is the start of Q (UTC).

- `gold/customer_history` Q reads every silver customer_profiles partition up to Q
  (`batch_platform.assets.customer_history`).
- `gold/customer_features` Q reads silver partitions Q-L … Q-1 only, and `gold/customer_history` Q-1 (L = `batch.lookback_quarters`);
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

from batch_platform.assets.customer_history import build_customer_history_asset
from batch_platform.config_sections import BatchConfig
from batch_platform.features import (
    FEATURE_COLUMNS,
    NUMERIC_FEATURES,
    compute_customer_features,
    lookback_pairs,
    lookback_quarters,
)
from batch_platform.partitions import to_label
from batch_platform.schemas.base import PARTITION_COLUMN, quarter_start_col
from batch_platform.schemas.customer_history import HISTORY_KEY
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
def _check_lookback(batch: BatchConfig, lookback: int) -> None:
    if batch.lookback_quarters != lookback:
        raise dg.Failure(
            f"batch.lookback_quarters is {batch.lookback_quarters} in the config but the asset graph was built "
            f"with L = {lookback}: load the definitions with the same config the run uses"
        )


def _common(partitions_def: dg.PartitionsDefinition) -> dict:
    return dict(
        group_name="gold",
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={"spark", "delta", "pandera"},
        code_version=CODE_VERSION,
    )


def build_gold_assets(partitions_def: dg.PartitionsDefinition, batch: BatchConfig) -> list[dg.AssetsDefinition]:
    """The four gold assets; the lookback L of `batch` shapes the features' partition mapping. What
    each materialisation records is declared with its table (`batch_platform.schemas.gold`,
    `batch_platform.schemas.customer_history`) and recorded by the IO manager."""
    lookback = batch.lookback_quarters
    return [
        _features_asset(partitions_def, lookback),
        _labels_asset(partitions_def),
        _training_asset(partitions_def),
        build_customer_history_asset(partitions_def),
    ]


def _features_asset(partitions_def: dg.PartitionsDefinition, lookback: int) -> dg.AssetsDefinition:
    history = dg.TimeWindowPartitionMapping(
        start_offset=-lookback, end_offset=-1, allow_nonexistent_upstream_partitions=True
    )

    previous = dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=-1, allow_nonexistent_upstream_partitions=True)

    def lookback_in(key: dg.AssetKey) -> dg.AssetIn:
        return dg.AssetIn(key=key, partition_mapping=history)

    @dg.asset(
        key=FEATURES_KEY,
        pool=CUSTOMER_FEATURES.pool,
        ins={
            "operational_events": lookback_in(SILVER_EVENTS),
            "interaction_logs": lookback_in(SILVER_LOGS),
            "partner_scores": lookback_in(SILVER_SCORES),
            "customer_history": dg.AssetIn(key=HISTORY_KEY, partition_mapping=previous),
        },
        description=(
            f"One row per customer with an operational event in silver partitions Q-{lookback} … Q-1, as known "
            "before the cutoff C = start of Q: counts, amounts, activity days and timestamps, recency and tenure, "
            "90-day figures, channels, interaction-log count, the latest partner score, and contract, payment "
            "method, monthly charges, country and tenure in months from the golden record's version valid at C "
            "(gold/customer_history Q-1). Never reads silver Q. SPEC.md, 'Gold: point-in-time ML tables'."
        ),
        metadata={**CUSTOMER_FEATURES.definition_metadata(), "lookback_quarters": lookback},
        **_common(partitions_def),
    )
    def customer_features(
        context: dg.AssetExecutionContext,
        batch: dg.ResourceParam[BatchConfig],
        operational_events: DataFrame,
        interaction_logs: DataFrame,
        partner_scores: DataFrame,
        customer_history: DataFrame,
    ) -> DataFrame:
        _check_lookback(batch, lookback)
        quarters = [to_label(key) for key in context.partition_keys]
        return compute_customer_features(
            operational_events, interaction_logs, partner_scores, quarters, lookback, history=customer_history
        )

    return customer_features


def _labels_asset(partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        key=LABELS_KEY,
        pool=CHURN_LABELS.pool,
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
        **_common(partitions_def),
    )
    def churn_labels(
        context: dg.AssetExecutionContext,
        batch: dg.ResourceParam[BatchConfig],
        customer_features: DataFrame,
        operational_events: DataFrame,
    ) -> DataFrame:
        window = batch.prediction_window_days
        context.add_output_metadata({"prediction_window_days": dg.MetadataValue.int(window)})  # the run's W
        return compute_churn_labels(customer_features, operational_events, window)

    return churn_labels


def _training_asset(partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        key=TRAINING_KEY,
        pool=TRAINING_SET.pool,
        ins={"customer_features": dg.AssetIn(key=FEATURES_KEY), "churn_labels": dg.AssetIn(key=LABELS_KEY)},
        description=(
            "customer_features ⋈ churn_labels on customer_id for quarter Q, plus split ∈ {train, eval}: a "
            "deterministic function of customer_id alone (SHA-256 bucket below batch.eval_fraction → eval). "
            "SPEC.md, 'Gold: point-in-time ML tables'."
        ),
        metadata=TRAINING_SET.definition_metadata(),
        **_common(partitions_def),
    )
    def training_set(
        context: dg.AssetExecutionContext,
        batch: dg.ResourceParam[BatchConfig],
        customer_features: DataFrame,
        churn_labels: DataFrame,
    ) -> DataFrame:
        unmatched = unmatched_customers(customer_features, churn_labels)
        if unmatched:
            raise dg.Failure(
                f"customer_features and churn_labels disagree on their customers ({unmatched}): one of them is "
                "stale; materialise both for these quarters"
            )
        context.add_output_metadata({"eval_fraction_configured": dg.MetadataValue.float(batch.eval_fraction)})
        return compute_training_set(customer_features, churn_labels, batch.eval_fraction)

    return training_set
