"""Pandera models of the silver tables and their quarantines (SPEC.md, "Silver").

Silver tables hold exactly the columns SPEC.md lists, plus the partition column `quarter`; no
lineage column is added (lineage stays in bronze and in the quarantine tables). What each model
enforces, rule by rule of the contract:

- types: timestamps are `timestamp` (UTC instants), numbers `double`, `as_of_date` a `date`;
- the columns a row needs to be valid are non-null; customer_id is trimmed and non-empty;
- category columns are trimmed and lower case (an empty category is stored as NULL);
- `amount` is finite, `partner_score` within [0, 1000];
- `event_time` / `log_timestamp` are before the end of the row's quarter. SPEC.md sets no lower
  bound: an event of an earlier quarter that arrives in Q (a late arrival) belongs to silver Q;
- `as_of_date` is the arrival date, so it lies inside the quarter;
- one row per dedup key within the partition (`quarter` is part of every unique key, since one
  output may hold several partitions).

A quarantine table holds the rejected bronze row, whole and as text — the contract columns and the
four `_` lineage columns, exactly as bronze holds them — plus `_reject_reason`. Columns that
arrived beyond the contract are not carried over (SPEC.md ignores them after bronze; the row's
`_source_file` leads back to them), so the quarantine schema is the same in every quarter.
"""

from __future__ import annotations

import pandera.pyspark as pa
import pyspark.sql.types as T
from pyspark.sql import Column
from pyspark.sql import functions as F

from batch_platform.schemas.base import LakeTable, quarter_end_col, quarter_end_date, quarter_start_date, row_rule
from batch_platform.schemas.bronze import BronzeExternal, BronzeLogs, BronzeOperational

WHITESPACE_EDGES = r"(?U)^\s+|\s+$"
"""White space at either end of a value: any Unicode white space (tabs, line breaks, no-break
spaces), which is what silver trims."""

REJECT_REASONS: dict[str, tuple[str, ...]] = {
    "operational_events": (
        "customer_id_missing",
        "event_time_missing",
        "event_time_unparseable",
        "amount_missing",
        "amount_unparseable",
        "event_time_after_quarter",
    ),
    "interaction_logs": (
        "customer_id_missing",
        "log_timestamp_missing",
        "log_timestamp_unparseable",
        "log_timestamp_after_quarter",
    ),
    "partner_scores": (
        "customer_id_missing",
        "partner_score_missing",
        "partner_score_unparseable",
        "partner_score_out_of_range",
    ),
}
"""Every `_reject_reason` a quarantine table may hold, in the order the rules are checked (the
meaning of each is in `batch_platform.assets.silver`)."""

DEDUP_KEYS: dict[str, tuple[str, ...]] = {
    "operational_events": ("customer_id", "event_time", "amount"),
    "interaction_logs": ("customer_id", "log_event_type", "log_timestamp"),
    "partner_scores": ("customer_id", "as_of_date"),
}
"""SPEC.md's "duplicates" column: silver holds one row per key within a partition."""

REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "operational_events": ("customer_id", "event_time", "amount"),
    "interaction_logs": ("customer_id", "log_timestamp"),
    "partner_scores": ("customer_id", "as_of_date"),
}
"""The key columns a valid row always has. `log_event_type` is part of the logs key but SPEC.md
does not require it, so a log row without a type is valid (its NULL type is one key value)."""


def _trimmed(column: str) -> Column:
    """Trimmed and not empty (NULL passes: nullability is the field's own check)."""
    value = F.col(column)
    return (value == F.regexp_replace(value, WHITESPACE_EDGES, "")) & (F.length(value) > 0)


def _normalised(column: str) -> Column:
    """Trimmed, not empty and lower case."""
    return _trimmed(column) & (F.col(column) == F.lower(F.col(column)))


def _category(description: str):
    return pa.Field(nullable=True, description=f"{description} Trimmed, lower case; NULL when absent or blank.")


def _customer_id():
    return pa.Field(nullable=False, description="Customer identifier, white space trimmed; never empty.")


class SilverOperationalEvents(LakeTable):
    customer_id: T.StringType() = _customer_id()
    event_time: T.TimestampType() = pa.Field(
        nullable=False,
        description="When the event happened, UTC (ISO-8601 text parsed; no offset meant UTC). Before the "
        "end of the quarter; may be earlier than its start (late arrival).",
    )
    amount: T.DoubleType() = pa.Field(
        nullable=False,
        description="Transaction amount, a finite decimal number (currencies are not converted).",
    )
    currency: T.StringType() = _category("Currency code.")
    channel: T.StringType() = _category("Channel of the event.")

    _customer_id_trimmed = row_rule("silver_operational_customer_id_trimmed", lambda: _trimmed("customer_id"))
    _event_time_before_end = row_rule(
        "silver_event_time_before_quarter_end", lambda: F.col("event_time") < quarter_end_col()
    )
    _amount_finite = row_rule(
        "silver_amount_finite", lambda: ~F.isnan("amount") & (F.abs("amount") < float("inf"))
    )
    _currency_normalised = row_rule("silver_currency_lower_case", lambda: _normalised("currency"))
    _channel_normalised = row_rule("silver_channel_lower_case", lambda: _normalised("channel"))

    class Config:
        strict = True
        unique = ["quarter", *DEDUP_KEYS["operational_events"]]


class SilverInteractionLogs(LakeTable):
    customer_id: T.StringType() = _customer_id()
    log_event_type: T.StringType() = _category("Kind of interaction.")
    log_timestamp: T.TimestampType() = pa.Field(
        nullable=False,
        description="When the interaction happened, UTC (ISO-8601 text parsed; no offset meant UTC). Before "
        "the end of the quarter; may be earlier than its start (late arrival).",
    )

    _customer_id_trimmed = row_rule("silver_logs_customer_id_trimmed", lambda: _trimmed("customer_id"))
    _log_timestamp_before_end = row_rule(
        "silver_log_timestamp_before_quarter_end", lambda: F.col("log_timestamp") < quarter_end_col()
    )
    _log_event_type_normalised = row_rule("silver_log_event_type_lower_case", lambda: _normalised("log_event_type"))

    class Config:
        strict = True
        unique = ["quarter", *DEDUP_KEYS["interaction_logs"]]


class SilverPartnerScores(LakeTable):
    customer_id: T.StringType() = _customer_id()
    partner_score: T.DoubleType() = pa.Field(
        nullable=False,
        in_range={"min_value": 0.0, "max_value": 1000.0},
        description="The partner's score, a decimal number in [0, 1000]; the highest of the day when the "
        "partner sent several.",
    )
    partner_segment: T.StringType() = _category("The partner's segment (of the row with the highest score).")
    as_of_date: T.DateType() = pa.Field(
        nullable=False,
        description="The day the score arrived (the landing folder date, bronze `_ingest_date`).",
    )

    _customer_id_trimmed = row_rule("silver_scores_customer_id_trimmed", lambda: _trimmed("customer_id"))
    _as_of_date_in_quarter = row_rule(
        "silver_as_of_date_in_quarter",
        lambda: (F.col("as_of_date") >= quarter_start_date()) & (F.col("as_of_date") < quarter_end_date()),
    )
    _partner_segment_normalised = row_rule(
        "silver_partner_segment_lower_case", lambda: _normalised("partner_segment")
    )

    class Config:
        strict = True
        unique = ["quarter", *DEDUP_KEYS["partner_scores"]]


def _reject_reason(table: str):
    return pa.Field(
        alias="_reject_reason",
        nullable=False,
        isin=list(REJECT_REASONS[table]),
        description="The first silver rule the row broke: one of " + ", ".join(REJECT_REASONS[table]) + ".",
    )


class OperationalEventsQuarantine(BronzeOperational):
    """Rejected `bronze/operational` rows, as text, with the first rule each broke."""

    reject_reason: T.StringType() = _reject_reason("operational_events")

    class Config:
        strict = True


class InteractionLogsQuarantine(BronzeLogs):
    """Rejected `bronze/logs` rows, as text, with the first rule each broke."""

    reject_reason: T.StringType() = _reject_reason("interaction_logs")

    class Config:
        strict = True


class PartnerScoresQuarantine(BronzeExternal):
    """Rejected `bronze/external` rows, as text, with the first rule each broke."""

    reject_reason: T.StringType() = _reject_reason("partner_scores")

    class Config:
        strict = True


SILVER_MODELS: dict[str, type[LakeTable]] = {
    "operational_events": SilverOperationalEvents,
    "interaction_logs": SilverInteractionLogs,
    "partner_scores": SilverPartnerScores,
}
QUARANTINE_MODELS: dict[str, type[LakeTable]] = {
    "operational_events": OperationalEventsQuarantine,
    "interaction_logs": InteractionLogsQuarantine,
    "partner_scores": PartnerScoresQuarantine,
}
