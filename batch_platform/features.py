"""The customer features of gold: each feature's declared column and its computation, together.

A feature is one field of `FeatureColumns` (its type, checks and description: the Pandera model of
`gold/customer_features` and of `gold/training_set`), one entry of `FEATURES_LINEAGE` (the silver
columns it is made of) and its expression in `compute_customer_features`. Everything else —
`FEATURE_COLUMNS`, `NUMERIC_FEATURES`, the training set's columns and lineage, the assets' column
schema, the per-quarter statistics — follows from them. The point-in-time rules are in
`batch_platform.assets.gold`'s docstring.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandera.pyspark as pa
import pyspark.sql.types as T
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from batch_platform.partitions import shift, to_label
from batch_platform.schemas.base import (
    PARTITION_COLUMN,
    LakeTable,
    Lineage,
    quarter_start_col,
    quarter_start_date,
    row_rule,
)
from batch_platform.schemas.customer_history import HISTORY_KEY
from batch_platform.schemas.silver import INTERACTION_LOGS, OPERATIONAL_EVENTS, PARTNER_SCORES

WINDOW_90D = 90
SOURCE = "_source_quarter"
AMOUNT_TYPE = "decimal(38,10)"
EVENTS, LOGS, SCORES = OPERATIONAL_EVENTS.silver_key, INTERACTION_LOGS.silver_key, PARTNER_SCORES.silver_key


# ------------------------------------------------------------------------------ the columns
def _cutoff_is_quarter_start():
    return F.col("feature_cutoff") == quarter_start_col()


def _last_activity_before_cutoff():
    return F.col("last_activity_ts") < F.col("feature_cutoff")


def _first_not_after_last():
    return F.col("first_activity_ts") <= F.col("last_activity_ts")


def _tenure_not_below_recency():
    return F.col("tenure_days") >= F.col("recency_days")


def _window_counts_within_total():
    return F.col("txn_count_90d") <= F.col("txn_count")


def _active_days_within_count():
    return F.col("active_days") <= F.col("txn_count")


def _as_of(description: str):
    return pa.Field(
        nullable=True,
        description=f"{description} of the customer's golden record as of C: the version of gold/customer_history "
        "Q-1 with valid_from <= C and valid_to null or > C; null when there is none (or Q-1 is before the first "
        "quarter).",
    )


class FeatureColumns(LakeTable):
    """The columns of `gold/customer_features`, which `gold/training_set` carries too."""

    customer_id: T.StringType() = pa.Field(nullable=False, description="Customer identifier (silver `customer_id`).")
    feature_cutoff: T.TimestampType() = pa.Field(
        nullable=False,
        description="C: the start of the quarter (UTC). Every feature uses only silver partitions Q-L … Q-1, "
        "i.e. what the platform knew before C.",
    )
    txn_count: T.LongType() = pa.Field(
        nullable=False,
        ge=1,
        description="Number of operational events in the lookback (deduplicated across "
        "partitions on customer_id, event_time, amount).",
    )
    total_amount: T.DoubleType() = pa.Field(
        nullable=False, description="Sum of amount over those events (currencies are not converted)."
    )
    avg_amount: T.DoubleType() = pa.Field(
        nullable=False, description="Mean of amount over those events (currencies are not converted)."
    )
    active_days: T.LongType() = pa.Field(nullable=False, ge=1, description="Distinct UTC dates with an event.")
    first_activity_ts: T.TimestampType() = pa.Field(nullable=False, description="Earliest event_time (UTC).")
    last_activity_ts: T.TimestampType() = pa.Field(
        nullable=False, description="Latest event_time (UTC); always before feature_cutoff."
    )
    recency_days: T.IntegerType() = pa.Field(
        nullable=False, ge=0, description="Whole days from the date of the last event to the date of C."
    )
    tenure_days: T.IntegerType() = pa.Field(
        nullable=False, ge=0, description="Whole days from the date of the first event to the date of C."
    )
    txn_count_90d: T.LongType() = pa.Field(
        nullable=False, ge=0, description="Number of events with event_time in [C − 90 days, C)."
    )
    amount_90d: T.DoubleType() = pa.Field(
        nullable=False, description="Sum of amount over events in [C − 90 days, C); 0 when there are none."
    )
    distinct_channels: T.LongType() = pa.Field(nullable=False, ge=0, description="Distinct non-null channels.")
    log_event_count: T.LongType() = pa.Field(
        nullable=False,
        ge=0,
        description="Interaction-log events in the lookback (deduplicated across partitions on customer_id, "
        "log_event_type, log_timestamp); 0 when there are none.",
    )
    partner_score: T.DoubleType() = pa.Field(
        nullable=True,
        ge=0,
        le=1000,
        description="From the partner_scores row with the latest as_of_date before C in the lookback (ties: the "
        "highest score); null if none.",
    )
    partner_segment: T.StringType() = pa.Field(
        nullable=True, description="Segment of that same partner_scores row; null if none."
    )
    contract: T.StringType() = _as_of("Contract (month-to-month, one-year, two-year)")
    payment_method: T.StringType() = _as_of("Payment method")
    monthly_charges: T.DoubleType() = _as_of("Monthly charges")
    country: T.StringType() = _as_of("Country code")
    tenure_months: T.IntegerType() = pa.Field(
        nullable=True,
        description="Whole calendar months from that version's signup_date to the date of C (truncated towards "
        "zero); null when either is null.",
    )

    _cutoff = row_rule("gold_feature_cutoff_is_quarter_start", _cutoff_is_quarter_start)
    _before_cutoff = row_rule("gold_last_activity_before_cutoff", _last_activity_before_cutoff)
    _first_last = row_rule("gold_first_activity_not_after_last", _first_not_after_last)
    _tenure = row_rule("gold_tenure_not_below_recency", _tenure_not_below_recency)
    _window = row_rule("gold_txn_count_90d_within_txn_count", _window_counts_within_total)
    _days = row_rule("gold_active_days_within_txn_count", _active_days_within_count)


FEATURES_LINEAGE: Lineage = {
    "customer_id": [(EVENTS, "customer_id")],
    "feature_cutoff": [],
    "txn_count": [(EVENTS, "customer_id"), (EVENTS, "event_time"), (EVENTS, "amount")],
    "total_amount": [(EVENTS, "amount")],
    "avg_amount": [(EVENTS, "amount")],
    "active_days": [(EVENTS, "event_time")],
    "first_activity_ts": [(EVENTS, "event_time")],
    "last_activity_ts": [(EVENTS, "event_time")],
    "recency_days": [(EVENTS, "event_time")],
    "tenure_days": [(EVENTS, "event_time")],
    "txn_count_90d": [(EVENTS, "event_time")],
    "amount_90d": [(EVENTS, "event_time"), (EVENTS, "amount")],
    "distinct_channels": [(EVENTS, "channel")],
    "log_event_count": [(LOGS, "customer_id"), (LOGS, "log_event_type"), (LOGS, "log_timestamp")],
    "partner_score": [(SCORES, "partner_score"), (SCORES, "as_of_date")],
    "partner_segment": [(SCORES, "partner_segment"), (SCORES, "as_of_date")],
    **{
        name: [(HISTORY_KEY, source), (HISTORY_KEY, "valid_from"), (HISTORY_KEY, "valid_to")]
        for name, source in {
            "contract": "contract",
            "payment_method": "payment_method",
            "monthly_charges": "monthly_charges",
            "country": "country",
            "tenure_months": "signup_date",
        }.items()
    },
}
"""Which silver columns each feature is made of, and for the profile features which columns of
`gold/customer_history`: the attribute (`tenure_months`: `signup_date`) and the validity bounds that
choose the version at C (`feature_cutoff` comes from the partition alone)."""


FEATURE_COLUMNS = [name for name in FeatureColumns.to_schema().columns if name != PARTITION_COLUMN]
PROFILE_FEATURES = ("contract", "payment_method", "monthly_charges", "country", "tenure_months")
"""The as-of attributes of the golden customer record (`gold/customer_history` Q-1 at C)."""
_NUMERIC = [
    name
    for name, column in FeatureColumns.to_schema().columns.items()
    if isinstance(getattr(column.dtype, "type", None), (T.IntegerType, T.LongType, T.DoubleType))
]
NUMERIC_FEATURES = [name for name in _NUMERIC if name not in PROFILE_FEATURES]
"""Every numeric column of `gold/customer_features` but the profile features (the event, log and
partner figures). What a model reads of each feature, nulls and categories included, is
`batch_platform.ml.pipelines.MODEL_INPUTS`."""
STATISTICS_FEATURES = _NUMERIC
"""The numeric features whose statistics each materialisation records: all of them."""


# ------------------------------------------------------------------------------ the computation
def lookback_quarters(quarter: str, lookback: int) -> list[str]:
    """The silver quarters gold partition `quarter` reads: Q-L … Q-1 (labels, oldest first).

    Quarters before the platform's first quarter are not filtered here: they simply have no data.
    """
    return [shift(quarter, -offset) for offset in range(lookback, 0, -1)]


def lookback_pairs(spark: SparkSession, quarters: Sequence[str], lookback: int) -> DataFrame:
    """(quarter, _source_quarter): which silver partition each target quarter may read."""
    rows = [(to_label(q), source) for q in quarters for source in lookback_quarters(q, lookback)]
    return spark.createDataFrame(rows, f"{PARTITION_COLUMN} string, {SOURCE} string")


def _for_targets(silver: DataFrame, pairs: DataFrame, columns: Sequence[str]) -> DataFrame:
    """Silver rows re-keyed by the target quarter(s) whose lookback holds their partition."""
    rows = silver.select(*columns, F.col(PARTITION_COLUMN).alias(SOURCE))
    return rows.join(F.broadcast(pairs), SOURCE)


def _amount(column: str | Column) -> Column:
    col = F.col(column) if isinstance(column, str) else column
    return col.cast(AMOUNT_TYPE)


def compute_customer_features(
    events: DataFrame,
    logs: DataFrame,
    scores: DataFrame,
    quarters: Sequence[str],
    lookback: int,
    history: DataFrame | None = None,
) -> DataFrame:
    """`gold/customer_features` for every quarter in `quarters`, from silver rows of any quarters.

    Each silver frame carries its partition in `quarter`; target quarter Q sees only rows of
    partitions Q-L … Q-1 with a timestamp before C. `history` holds `gold/customer_history` rows
    (their partition in `quarter`), of which target quarter Q sees partition Q-1 only; without it
    (no customer profiles at all) the profile features are null. The result has `quarter` = the
    target quarter.
    """
    spark = events.sparkSession
    pairs = lookback_pairs(spark, quarters, lookback)
    keys = [PARTITION_COLUMN, "customer_id"]
    features = (
        _event_features(events, pairs)
        .join(_log_counts(logs, pairs), keys, "left")
        .join(_latest_partner_score(scores, pairs), keys, "left")
        .withColumn("log_event_count", F.coalesce(F.col("log_event_count"), F.lit(0).cast("long")))
    )
    if history is not None:
        features = features.join(_profile_as_of_cutoff(history, lookback_pairs(spark, quarters, 1)), keys, "left")
    else:
        schema = FeatureColumns.to_structtype()
        features = features.select(
            "*", *[F.lit(None).cast(schema[name].dataType).alias(name) for name in PROFILE_FEATURES]
        )
    return features.select(*FEATURE_COLUMNS, PARTITION_COLUMN)


def _event_features(events: DataFrame, pairs: DataFrame) -> DataFrame:
    """The operational-event features per (target quarter, customer), events deduplicated.

    One shuffle, by (target quarter, customer): within it the events are sorted by (event_time,
    amount, source quarter, channel), so the first copy of a key is the row whose key differs from
    the previous row's, and the aggregation that follows reuses the partitioning. Distinct days and
    channels are counted as the size of a per-customer set: `count_distinct` would expand every row
    once per distinct column and shuffle again.
    """
    cutoff = F.col("feature_cutoff")
    ev = (
        _for_targets(events, pairs, ["customer_id", "event_time", "amount", "channel"])
        .withColumn("feature_cutoff", quarter_start_col())
        .filter(F.col("event_time") < cutoff)
    )
    in_order = Window.partitionBy(PARTITION_COLUMN, "customer_id").orderBy(
        "event_time", "amount", F.col(SOURCE).asc(), F.col("channel").asc_nulls_last()
    )
    previous_time, previous_amount = F.lag("event_time").over(in_order), F.lag("amount").over(in_order)
    first_copy = previous_time.isNull() | (previous_time != F.col("event_time")) | (previous_amount != F.col("amount"))
    ev = ev.withColumn("_first", first_copy).filter(F.col("_first"))
    since_90d = F.date_sub(cutoff.cast("date"), WINDOW_90D).cast("timestamp")
    in_90d = F.col("event_time") >= since_90d
    amount_sum = F.sum(_amount("amount"))
    base = ev.groupBy(PARTITION_COLUMN, "customer_id").agg(
        F.first("feature_cutoff").alias("feature_cutoff"),
        F.count(F.lit(1)).alias("txn_count"),
        amount_sum.cast("double").alias("total_amount"),
        (amount_sum.cast("double") / F.count(F.lit(1))).alias("avg_amount"),
        F.size(F.collect_set(F.to_date("event_time"))).cast("long").alias("active_days"),
        F.min("event_time").alias("first_activity_ts"),
        F.max("event_time").alias("last_activity_ts"),
        F.sum(in_90d.cast("long")).alias("txn_count_90d"),
        F.coalesce(F.sum(F.when(in_90d, _amount("amount"))), F.lit(0).cast(AMOUNT_TYPE))
        .cast("double")
        .alias("amount_90d"),
        F.size(F.collect_set("channel")).cast("long").alias("distinct_channels"),
    )
    return base.withColumn("recency_days", F.datediff(cutoff.cast("date"), F.to_date("last_activity_ts"))).withColumn(
        "tenure_days", F.datediff(cutoff.cast("date"), F.to_date("first_activity_ts"))
    )


def _log_counts(logs: DataFrame, pairs: DataFrame) -> DataFrame:
    """Distinct interaction-log events before C per (target quarter, customer): the size of the
    per-customer set of (type, timestamp), in one shuffle (a `distinct` then a count is two)."""
    return (
        _for_targets(logs, pairs, ["customer_id", "log_event_type", "log_timestamp"])
        .filter(F.col("log_timestamp") < quarter_start_col())
        .groupBy(PARTITION_COLUMN, "customer_id")
        .agg(F.size(F.collect_set(F.struct("log_event_type", "log_timestamp"))).cast("long").alias("log_event_count"))
    )


def _latest_partner_score(scores: DataFrame, pairs: DataFrame) -> DataFrame:
    """The partner score with the latest as_of_date before C (ties: highest score, smallest segment)."""
    latest = Window.partitionBy(PARTITION_COLUMN, "customer_id").orderBy(
        F.col("as_of_date").desc(), F.col("partner_score").desc_nulls_last(), F.col("partner_segment").asc_nulls_last()
    )
    return (
        _for_targets(scores, pairs, ["customer_id", "partner_score", "partner_segment", "as_of_date"])
        .filter(F.col("as_of_date") < quarter_start_date())
        .withColumn("_rank", F.row_number().over(latest))
        .filter(F.col("_rank") == 1)
        .select(PARTITION_COLUMN, "customer_id", "partner_score", "partner_segment")
    )


def _profile_as_of_cutoff(history: DataFrame, previous: DataFrame) -> DataFrame:
    """The golden record's version valid at C, from `gold/customer_history` Q-1 (`previous`: each
    target quarter and its previous quarter): valid_from <= C and valid_to null or > C. Versions
    of one customer do not overlap, so at most one is valid at C."""
    cutoff = quarter_start_col()
    valid = (F.col("valid_from") <= cutoff) & (F.col("valid_to").isNull() | (F.col("valid_to") > cutoff))
    months = F.months_between(cutoff.cast("date"), F.col("signup_date"), roundOff=False)
    columns = ["customer_id", "valid_from", "valid_to", "contract", "payment_method", "monthly_charges", "country"]
    return (
        _for_targets(history, previous, [*columns, "signup_date"])
        .filter(valid)
        .select(
            PARTITION_COLUMN,
            "customer_id",
            "contract",
            "payment_method",
            "monthly_charges",
            "country",
            months.cast("int").alias("tenure_months"),
        )
    )
