"""Column lineage of every silver and gold table: which upstream columns each column is made of.

The IO manager attaches it to each materialisation as `dagster/column_lineage`, so a gold column
traces back through silver to the bronze column — and from there `_source_file` names the
landing file. The rules behind each entry are in SPEC.md; columns with no entry (`feature_cutoff`,
the label window bounds, `quarter`) come from the partition alone.
"""

from __future__ import annotations

import dagster as dg

from batch_platform.schemas import schema_for
from batch_platform.schemas.base import PARTITION_COLUMN, column_lineage
from batch_platform.schemas.bronze import METADATA_COLUMNS, SOURCE_COLUMNS

Deps = dict[str, list[tuple[str, str]]]

_SILVER_SOURCES = {"operational_events": "operational", "interaction_logs": "logs", "partner_scores": "external"}


def _same_names(upstream: str, columns) -> Deps:
    return {column: [(upstream, column)] for column in columns}


def _silver(name: str) -> Deps:
    bronze = f"bronze/{_SILVER_SOURCES[name]}"
    deps = _same_names(bronze, SOURCE_COLUMNS[_SILVER_SOURCES[name]])
    if name == "partner_scores":
        deps["as_of_date"] = [(bronze, "_ingest_date")]
    return deps


def _quarantine(name: str) -> Deps:
    source = _SILVER_SOURCES[name]
    bronze = f"bronze/{source}"
    deps = _same_names(bronze, (*SOURCE_COLUMNS[source], *METADATA_COLUMNS))
    deps["_reject_reason"] = [(bronze, column) for column in SOURCE_COLUMNS[source]]
    return deps


EVENTS, LOGS, SCORES = "silver/operational_events", "silver/interaction_logs", "silver/partner_scores"

CUSTOMER_FEATURES: Deps = {
    "customer_id": [(EVENTS, "customer_id")],
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

CHURN_LABELS: Deps = {
    "customer_id": [("gold/customer_features", "customer_id")],
    "label": [(EVENTS, "customer_id"), (EVENTS, "event_time")],
}


def _training_set() -> Deps:
    features = list(schema_for("gold/customer_features").to_schema().columns)
    labels = list(schema_for("gold/churn_labels").to_schema().columns)
    deps: Deps = {}
    for column in features:
        if column != PARTITION_COLUMN:
            deps[column] = [("gold/customer_features", column)]
    for column in labels:
        if column not in deps and column != PARTITION_COLUMN:
            deps[column] = [("gold/churn_labels", column)]
    deps["split"] = [("gold/customer_features", "customer_id")]
    return deps


def lineage_for(table: str) -> dg.TableColumnLineage | None:
    """The column lineage of a lake table, or None for bronze (its upstream is the landing zone)."""
    layer, name = table.split("/", 1)
    if layer == "silver":
        base = name.removesuffix("_quarantine")
        return column_lineage(_quarantine(base) if name.endswith("_quarantine") else _silver(base))
    if table == "gold/customer_features":
        return column_lineage(CUSTOMER_FEATURES)
    if table == "gold/churn_labels":
        return column_lineage(CHURN_LABELS)
    if table == "gold/training_set":
        return column_lineage(_training_set())
    return None
