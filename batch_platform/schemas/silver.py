"""The silver tables and their quarantines, declared (SPEC.md, "Silver"): parsing, rules, models.

This module declares the operational events, interaction logs and partner scores; customer
profiles are declared in `batch_platform.schemas.silver_profiles`, and the shape every
declaration shares (`SilverTable`, reject rules, the common fields) is
`batch_platform.schemas.silver_table`. `SILVER_TABLES` lists all four.

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

Parsing: `batch_platform.schemas.silver_parsing`, one column function per kind of value (an
ISO-8601 time, a decimal number, a category); each table below names the parser of each column.

`_reject_reason` is the first rule a row breaks, in the order of the table's `*_RULES` below.

`*_missing`: NULL or blank after trimming; `*_unparseable`: text its parser rejects;
`*_after_quarter`: at or after the end of the row's quarter (the first instant of the next);
`partner_score_out_of_range`: outside [0, 1000]. An event before the start of its quarter is a
late arrival and valid: SPEC.md bounds it above only.

Duplicates (within the partition; across partitions is gold's business), compared on parsed
values so `12.5`/`12.50` and `…T01:00:00+02:00`/`…T23:00:00Z` are one key:
- operational_events (customer_id, event_time, amount) and interaction_logs (customer_id,
  log_event_type, log_timestamp) keep the copy that arrived first: earliest `_ingest_date`, then
  smallest `_source_file`, then smallest currency and channel (NULLs last);
- partner_scores (customer_id, as_of_date) keeps the highest score, then the smallest segment
  (NULLs last), then the smallest `_source_file`.
"""

from __future__ import annotations

import pandera.pyspark as pa
import pyspark.sql.types as T
from pyspark.sql import Column
from pyspark.sql import functions as F

from batch_platform.schemas.base import LakeTable, quarter_end_col, quarter_end_date, quarter_start_date, row_rule
from batch_platform.schemas.bronze import EXTERNAL, LOGS, OPERATIONAL, BronzeExternal, BronzeLogs, BronzeOperational
from batch_platform.schemas.silver_parsing import as_is, clean_category, clean_text, parse_number, parse_timestamp
from batch_platform.schemas.silver_profiles import CUSTOMER_PROFILES
from batch_platform.schemas.silver_table import (
    PARSED,
    REJECT_REASON,
    Rule,
    SilverTable,
    category_field,
    customer_id_field,
    first_arrival,
    is_normalised,
    is_trimmed,
    missing,
    parsed,
    reject_reason_field,
)

__all__ = ["PARSED", "REJECT_REASON", "SILVER_TABLES", "SilverTable"]  # the shared shape lives in silver_table

SCORE_RANGE = (0.0, 1000.0)


EVENTS_RULES: tuple[Rule, ...] = (
    ("customer_id_missing", lambda: parsed("customer_id").isNull()),
    ("event_time_missing", lambda: missing("event_time")),
    ("event_time_unparseable", lambda: parsed("event_time").isNull()),
    ("amount_missing", lambda: missing("amount")),
    ("amount_unparseable", lambda: parsed("amount").isNull()),
    ("event_time_after_quarter", lambda: parsed("event_time") >= quarter_end_col()),
)
LOGS_RULES: tuple[Rule, ...] = (
    ("customer_id_missing", lambda: parsed("customer_id").isNull()),
    ("log_timestamp_missing", lambda: missing("log_timestamp")),
    ("log_timestamp_unparseable", lambda: parsed("log_timestamp").isNull()),
    ("log_timestamp_after_quarter", lambda: parsed("log_timestamp") >= quarter_end_col()),
)
SCORES_RULES: tuple[Rule, ...] = (
    ("customer_id_missing", lambda: parsed("customer_id").isNull()),
    ("partner_score_missing", lambda: missing("partner_score")),
    ("partner_score_unparseable", lambda: parsed("partner_score").isNull()),
    ("partner_score_out_of_range", lambda: ~parsed("partner_score").between(*SCORE_RANGE)),
)

EVENTS_KEY = ("customer_id", "event_time", "amount")
LOGS_KEY = ("customer_id", "log_event_type", "log_timestamp")
SCORES_KEY = ("customer_id", "as_of_date")


def _events_preference() -> list[Column]:
    return [*first_arrival(), F.col("currency").asc_nulls_last(), F.col("channel").asc_nulls_last()]


def _scores_preference() -> list[Column]:
    return [F.col("partner_score").desc(), F.col("partner_segment").asc_nulls_last(), F.col("_source_file").asc()]


# ------------------------------------------------------------------------------------- models
class SilverOperationalEvents(LakeTable):
    customer_id: T.StringType() = customer_id_field()
    event_time: T.TimestampType() = pa.Field(
        nullable=False,
        description="When the event happened, UTC (ISO-8601 text parsed; no offset meant UTC). Before the "
        "end of the quarter; may be earlier than its start (late arrival).",
    )
    amount: T.DoubleType() = pa.Field(
        nullable=False,
        description="Transaction amount, a finite decimal number (currencies are not converted).",
    )
    currency: T.StringType() = category_field("Currency code.")
    channel: T.StringType() = category_field("Channel of the event.")

    _customer_id_trimmed = row_rule("silver_operational_customer_id_trimmed", lambda: is_trimmed("customer_id"))
    _event_time_before_end = row_rule(
        "silver_event_time_before_quarter_end", lambda: F.col("event_time") < quarter_end_col()
    )
    _amount_finite = row_rule("silver_amount_finite", lambda: ~F.isnan("amount") & (F.abs("amount") < float("inf")))
    _currency_normalised = row_rule("silver_currency_lower_case", lambda: is_normalised("currency"))
    _channel_normalised = row_rule("silver_channel_lower_case", lambda: is_normalised("channel"))

    class Config:
        strict = True
        unique = ["quarter", *EVENTS_KEY]


class SilverInteractionLogs(LakeTable):
    customer_id: T.StringType() = customer_id_field()
    log_event_type: T.StringType() = category_field("Kind of interaction.")
    log_timestamp: T.TimestampType() = pa.Field(
        nullable=False,
        description="When the interaction happened, UTC (ISO-8601 text parsed; no offset meant UTC). Before "
        "the end of the quarter; may be earlier than its start (late arrival).",
    )

    _customer_id_trimmed = row_rule("silver_logs_customer_id_trimmed", lambda: is_trimmed("customer_id"))
    _log_timestamp_before_end = row_rule(
        "silver_log_timestamp_before_quarter_end", lambda: F.col("log_timestamp") < quarter_end_col()
    )
    _log_event_type_normalised = row_rule("silver_log_event_type_lower_case", lambda: is_normalised("log_event_type"))

    class Config:
        strict = True
        unique = ["quarter", *LOGS_KEY]


class SilverPartnerScores(LakeTable):
    customer_id: T.StringType() = customer_id_field()
    partner_score: T.DoubleType() = pa.Field(
        nullable=False,
        in_range={"min_value": SCORE_RANGE[0], "max_value": SCORE_RANGE[1]},
        description="The partner's score, a decimal number in [0, 1000]; the highest of the day when the "
        "partner sent several.",
    )
    partner_segment: T.StringType() = category_field("The partner's segment (of the row with the highest score).")
    as_of_date: T.DateType() = pa.Field(
        nullable=False,
        description="The day the score arrived (the landing folder date, bronze `_ingest_date`).",
    )

    _customer_id_trimmed = row_rule("silver_scores_customer_id_trimmed", lambda: is_trimmed("customer_id"))
    _as_of_date_in_quarter = row_rule(
        "silver_as_of_date_in_quarter",
        lambda: (F.col("as_of_date") >= quarter_start_date()) & (F.col("as_of_date") < quarter_end_date()),
    )
    _partner_segment_normalised = row_rule(
        "silver_partner_segment_lower_case", lambda: is_normalised("partner_segment")
    )

    class Config:
        strict = True
        unique = ["quarter", *SCORES_KEY]


class OperationalEventsQuarantine(BronzeOperational):
    """Rejected `bronze/operational` rows, as text, with the first rule each broke."""

    reject_reason: T.StringType() = reject_reason_field(EVENTS_RULES)

    class Config:
        strict = True


class InteractionLogsQuarantine(BronzeLogs):
    """Rejected `bronze/logs` rows, as text, with the first rule each broke."""

    reject_reason: T.StringType() = reject_reason_field(LOGS_RULES)

    class Config:
        strict = True


class PartnerScoresQuarantine(BronzeExternal):
    """Rejected `bronze/external` rows, as text, with the first rule each broke."""

    reject_reason: T.StringType() = reject_reason_field(SCORES_RULES)

    class Config:
        strict = True


# ------------------------------------------------------------------------------- declarations

OPERATIONAL_EVENTS = SilverTable(
    name="operational_events",
    bronze=OPERATIONAL,
    parsing={
        "customer_id": ("customer_id", clean_text),
        "event_time": ("event_time", parse_timestamp),
        "amount": ("amount", parse_number),
        "currency": ("currency", clean_category),
        "channel": ("channel", clean_category),
    },
    reject_rules=EVENTS_RULES,
    keys=EVENTS_KEY,
    required=EVENTS_KEY,
    order=_events_preference,
    model=SilverOperationalEvents,
    quarantine_model=OperationalEventsQuarantine,
)

INTERACTION_LOGS = SilverTable(
    name="interaction_logs",
    bronze=LOGS,
    parsing={
        "customer_id": ("customer_id", clean_text),
        "log_event_type": ("log_event_type", clean_category),
        "log_timestamp": ("log_timestamp", parse_timestamp),
    },
    reject_rules=LOGS_RULES,
    keys=LOGS_KEY,
    # `log_event_type` is part of the key but SPEC.md does not require it: a log row without a
    # type is valid (its NULL type is one key value).
    required=("customer_id", "log_timestamp"),
    model=SilverInteractionLogs,
    quarantine_model=InteractionLogsQuarantine,
)

PARTNER_SCORES = SilverTable(
    name="partner_scores",
    bronze=EXTERNAL,
    parsing={
        "customer_id": ("customer_id", clean_text),
        "partner_score": ("partner_score", parse_number),
        "partner_segment": ("partner_segment", clean_category),
        "as_of_date": ("_ingest_date", as_is),
    },
    reject_rules=SCORES_RULES,
    keys=SCORES_KEY,
    required=SCORES_KEY,
    order=_scores_preference,
    model=SilverPartnerScores,
    quarantine_model=PartnerScoresQuarantine,
)

SILVER_TABLES: dict[str, SilverTable] = {
    t.name: t for t in (OPERATIONAL_EVENTS, INTERACTION_LOGS, PARTNER_SCORES, CUSTOMER_PROFILES)
}
