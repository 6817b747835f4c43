"""Pandera models of the gold tables (SPEC.md, "Gold: point-in-time ML tables").

For gold partition Q the cutoff C is the start of Q. The feature columns (shared by
`customer_features` and `training_set`) are declared with their computation in
`batch_platform.features`. The models hold the point-in-time rules as
row rules the IO manager counts failures of: `feature_cutoff` is exactly the start of the row's
quarter and every activity timestamp is before it, so a feature computed from an event at or after
C cannot be published. Gold tables are products: `strict = True`, no column beyond the contract.
"""

from __future__ import annotations

import dagster as dg
import pandera.pyspark as pa
import pyspark.sql.types as T
from pyspark.sql import functions as F

from batch_platform.features import EVENTS, FEATURES_LINEAGE, STATISTICS_FEATURES, FeatureColumns, lookback_quarters
from batch_platform.metadata import record_features, record_labels, record_training
from batch_platform.schemas.base import PARTITION_COLUMN, LakeTable, Lineage, Table, quarter_start_col, row_rule
from batch_platform.schemas.customer_history import CUSTOMER_HISTORY

UNIQUE_KEY = ["quarter", "customer_id"]
SPLITS = ("train", "eval")
LABELS = (0, 1)


def _label_window_starts_at_cutoff():
    return F.col("label_window_start") == quarter_start_col()


def _label_window_not_empty():
    return F.col("label_window_end") > F.col("label_window_start")


class CustomerFeatures(FeatureColumns):
    """`gold/customer_features`: one row per customer with an operational event in the lookback."""

    class Config:
        strict = True
        unique = UNIQUE_KEY


def _label_field() -> pa.Field:
    """`label`, the same column in `gold/churn_labels` and `gold/training_set` (a field per model)."""
    return pa.Field(
        nullable=False,
        isin=list(LABELS),
        description="1 when the customer has no operational event in silver partition Q with event_time in "
        "[C, C + W), else 0.",
    )


def _window_field(end: str) -> pa.Field:
    descriptions = {
        "start": "C: the start of the quarter (UTC).",
        "end": "C + W days (W = prediction window, default 90), exclusive.",
    }
    return pa.Field(nullable=False, description=descriptions[end])


class ChurnLabels(LakeTable):
    """`gold/churn_labels`: one row per customer of `customer_features` Q."""

    customer_id: T.StringType() = pa.Field(nullable=False, description="Customer identifier.")
    label: T.IntegerType() = _label_field()
    label_window_start: T.TimestampType() = _window_field("start")
    label_window_end: T.TimestampType() = _window_field("end")

    _window_start = row_rule("gold_label_window_start_is_quarter_start", _label_window_starts_at_cutoff)
    _window_order = row_rule("gold_label_window_not_empty", _label_window_not_empty)

    class Config:
        strict = True
        unique = UNIQUE_KEY


class TrainingSet(FeatureColumns):
    """`gold/training_set`: customer_features ⋈ churn_labels on customer_id (and quarter), plus split."""

    label: T.IntegerType() = _label_field()
    label_window_start: T.TimestampType() = _window_field("start")
    label_window_end: T.TimestampType() = _window_field("end")
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
FEATURES_KEY = dg.AssetKey(["gold", "customer_features"])
LABELS_KEY = dg.AssetKey(["gold", "churn_labels"])
TRAINING_KEY = dg.AssetKey(["gold", "training_set"])

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


# Each gold table is computed from several joins and aggregations: the IO manager persists it for its
# passes (`cached`), and records per quarter what its recorder computes from the rows written.
CUSTOMER_FEATURES = Table(
    FEATURES_KEY, CustomerFeatures, FEATURES_LINEAGE, cached=True,
    record=record_features(STATISTICS_FEATURES, lookback_quarters),
)  # fmt: skip
CHURN_LABELS = Table(LABELS_KEY, ChurnLabels, LABELS_LINEAGE, cached=True, record=record_labels)
TRAINING_SET = Table(TRAINING_KEY, TrainingSet, _training_lineage(), cached=True, record=record_training)
GOLD_TABLES = (CUSTOMER_HISTORY, CUSTOMER_FEATURES, CHURN_LABELS, TRAINING_SET)
