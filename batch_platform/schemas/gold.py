"""Pandera models of the gold tables (SPEC.md, "Gold: point-in-time ML tables").

For gold partition Q the cutoff C is the start of Q. The models hold the point-in-time rules as
row rules the IO manager counts failures of: `feature_cutoff` is exactly the start of the row's
quarter and every activity timestamp is before it, so a feature computed from an event at or after
C cannot be published. Gold tables are products: `strict = True`, no column beyond the contract.
"""

from __future__ import annotations

import dagster as dg
import pandera.pyspark as pa
import pyspark.sql.types as T
from pyspark.sql import functions as F

from batch_platform.schemas.base import PARTITION_COLUMN, LakeTable, Lineage, Table, quarter_start_col, row_rule
from batch_platform.schemas.silver import INTERACTION_LOGS, OPERATIONAL_EVENTS, PARTNER_SCORES

UNIQUE_KEY = ["quarter", "customer_id"]
SPLITS = ("train", "eval")
LABELS = (0, 1)


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


def _label_window_starts_at_cutoff():
    return F.col("label_window_start") == quarter_start_col()


def _label_window_not_empty():
    return F.col("label_window_end") > F.col("label_window_start")


class _FeatureColumns(LakeTable):
    customer_id: T.StringType() = pa.Field(nullable=False, description="Customer identifier (silver `customer_id`).")
    feature_cutoff: T.TimestampType() = pa.Field(
        nullable=False,
        description="C: the start of the quarter (UTC). Every feature uses only silver partitions Q-L … Q-1, "
        "i.e. what the platform knew before C.",
    )
    txn_count: T.LongType() = pa.Field(
        nullable=False, ge=1, description="Number of operational events in the lookback (deduplicated across "
        "partitions on customer_id, event_time, amount)."
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

    _cutoff = row_rule("gold_feature_cutoff_is_quarter_start", _cutoff_is_quarter_start)
    _before_cutoff = row_rule("gold_last_activity_before_cutoff", _last_activity_before_cutoff)
    _first_last = row_rule("gold_first_activity_not_after_last", _first_not_after_last)
    _tenure = row_rule("gold_tenure_not_below_recency", _tenure_not_below_recency)
    _window = row_rule("gold_txn_count_90d_within_txn_count", _window_counts_within_total)
    _days = row_rule("gold_active_days_within_txn_count", _active_days_within_count)


class CustomerFeatures(_FeatureColumns):
    """`gold/customer_features`: one row per customer with an operational event in the lookback."""

    class Config:
        strict = True
        unique = UNIQUE_KEY


class ChurnLabels(LakeTable):
    """`gold/churn_labels`: one row per customer of `customer_features` Q."""

    customer_id: T.StringType() = pa.Field(nullable=False, description="Customer identifier.")
    label: T.IntegerType() = pa.Field(
        nullable=False,
        isin=list(LABELS),
        description="1 when the customer has no operational event in silver partition Q with event_time in "
        "[C, C + W), else 0.",
    )
    label_window_start: T.TimestampType() = pa.Field(nullable=False, description="C: the start of the quarter (UTC).")
    label_window_end: T.TimestampType() = pa.Field(
        nullable=False, description="C + W days (W = prediction window, default 90), exclusive."
    )

    _window_start = row_rule("gold_label_window_start_is_quarter_start", _label_window_starts_at_cutoff)
    _window_order = row_rule("gold_label_window_not_empty", _label_window_not_empty)

    class Config:
        strict = True
        unique = UNIQUE_KEY


class TrainingSet(_FeatureColumns):
    """`gold/training_set`: customer_features ⋈ churn_labels on customer_id (and quarter), plus split."""

    label: T.IntegerType() = pa.Field(
        nullable=False,
        isin=list(LABELS),
        description="1 when the customer has no operational event in silver partition Q with event_time in "
        "[C, C + W), else 0.",
    )
    label_window_start: T.TimestampType() = pa.Field(nullable=False, description="C: the start of the quarter (UTC).")
    label_window_end: T.TimestampType() = pa.Field(
        nullable=False, description="C + W days (W = prediction window, default 90), exclusive."
    )
    split: T.StringType() = pa.Field(
        nullable=False,
        isin=list(SPLITS),
        description="`train` or `eval`: a deterministic function of customer_id alone (SHA-256 of the id mapped "
        "to [0, 1), `eval` below the configured eval share), so a customer is on the same side in every quarter "
        "and every re-run.",
    )

    _window_start = row_rule("gold_label_window_start_is_quarter_start", _label_window_starts_at_cutoff)
    _window_order = row_rule("gold_label_window_not_empty", _label_window_not_empty)

    class Config:
        strict = True
        unique = UNIQUE_KEY


# ------------------------------------------------------------------------------- declarations
EVENTS, LOGS, SCORES = OPERATIONAL_EVENTS.silver_key, INTERACTION_LOGS.silver_key, PARTNER_SCORES.silver_key
FEATURES_KEY = dg.AssetKey(["gold", "customer_features"])
LABELS_KEY = dg.AssetKey(["gold", "churn_labels"])
TRAINING_KEY = dg.AssetKey(["gold", "training_set"])

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
}
"""Which silver columns each feature is made of (`feature_cutoff` comes from the partition alone)."""

LABELS_LINEAGE: Lineage = {
    "customer_id": [(FEATURES_KEY, "customer_id")],
    "label": [(EVENTS, "customer_id"), (EVENTS, "event_time")],
    "label_window_start": [],
    "label_window_end": [],
}
"""The label window bounds come from the partition (and the prediction window) alone."""


def _columns(model: type[LakeTable]) -> list[str]:
    return [name for name in model.to_schema().columns if name != PARTITION_COLUMN]


def _training_lineage() -> Lineage:
    from_features = {column: [(FEATURES_KEY, column)] for column in _columns(CustomerFeatures)}
    from_labels = {column: [(LABELS_KEY, column)] for column in _columns(ChurnLabels) if column not in from_features}
    return {**from_features, **from_labels, "split": [(FEATURES_KEY, "customer_id")]}


CUSTOMER_FEATURES = Table(FEATURES_KEY, CustomerFeatures, FEATURES_LINEAGE)
CHURN_LABELS = Table(LABELS_KEY, ChurnLabels, LABELS_LINEAGE)
TRAINING_SET = Table(TRAINING_KEY, TrainingSet, _training_lineage())
GOLD_TABLES = (CUSTOMER_FEATURES, CHURN_LABELS, TRAINING_SET)
