"""Pandera models of the gold tables (SPEC.md, "Gold: point-in-time ML tables").

For gold partition Q the cutoff C is the start of Q. The models hold the point-in-time rules as
row rules the IO manager counts failures of: `feature_cutoff` is exactly the start of the row's
quarter and every activity timestamp is before it, so a feature computed from an event at or after
C cannot be published. Gold tables are products: `strict = True`, no column beyond the contract.
"""

from __future__ import annotations

import pandera.pyspark as pa
import pyspark.sql.types as T
from pyspark.sql import functions as F

from batch_platform.schemas.base import LakeTable, quarter_start_col, row_rule

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
