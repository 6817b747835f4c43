"""The silver tables and their quarantines, declared (SPEC.md, "Silver"): parsing, rules, models.

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

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import dagster as dg
import pandera.pyspark as pa
import pyspark.sql.types as T
from pyspark.sql import Column
from pyspark.sql import functions as F

from batch_platform.metadata import record_quarantine, record_silver
from batch_platform.schemas.base import (
    LakeTable,
    Lineage,
    Table,
    quarter_end_col,
    quarter_end_date,
    quarter_start_date,
    row_rule,
)
from batch_platform.schemas.bronze import (
    EXTERNAL,
    LOGS,
    METADATA_COLUMNS,
    OPERATIONAL,
    BronzeExternal,
    BronzeLogs,
    BronzeOperational,
    BronzeTable,
)
from batch_platform.schemas.silver_parsing import (
    as_is,
    clean_category,
    clean_text,
    parse_number,
    parse_timestamp,
    trimmed,
)

PARSED = "_parsed"
REJECT_REASON = "_reject_reason"
SCORE_RANGE = (0.0, 1000.0)


def _parsed(name: str) -> Column:
    return F.col(f"{PARSED}.{name}")


def _missing(bronze_column: str) -> Column:
    return clean_text(F.col(bronze_column)).isNull()


# ------------------------------------------------------------------ rules, keys, preferences
Rule = tuple[str, Callable[[], Column]]
"""(reject reason, "the row breaks it"): a function, so no Spark Column is built at import time."""

EVENTS_RULES: tuple[Rule, ...] = (
    ("customer_id_missing", lambda: _parsed("customer_id").isNull()),
    ("event_time_missing", lambda: _missing("event_time")),
    ("event_time_unparseable", lambda: _parsed("event_time").isNull()),
    ("amount_missing", lambda: _missing("amount")),
    ("amount_unparseable", lambda: _parsed("amount").isNull()),
    ("event_time_after_quarter", lambda: _parsed("event_time") >= quarter_end_col()),
)
LOGS_RULES: tuple[Rule, ...] = (
    ("customer_id_missing", lambda: _parsed("customer_id").isNull()),
    ("log_timestamp_missing", lambda: _missing("log_timestamp")),
    ("log_timestamp_unparseable", lambda: _parsed("log_timestamp").isNull()),
    ("log_timestamp_after_quarter", lambda: _parsed("log_timestamp") >= quarter_end_col()),
)
SCORES_RULES: tuple[Rule, ...] = (
    ("customer_id_missing", lambda: _parsed("customer_id").isNull()),
    ("partner_score_missing", lambda: _missing("partner_score")),
    ("partner_score_unparseable", lambda: _parsed("partner_score").isNull()),
    ("partner_score_out_of_range", lambda: ~_parsed("partner_score").between(*SCORE_RANGE)),
)

EVENTS_KEY = ("customer_id", "event_time", "amount")
LOGS_KEY = ("customer_id", "log_event_type", "log_timestamp")
SCORES_KEY = ("customer_id", "as_of_date")


def _first_arrival() -> list[Column]:
    return [F.col("_ingest_date").asc(), F.col("_source_file").asc()]


def _events_preference() -> list[Column]:
    return [*_first_arrival(), F.col("currency").asc_nulls_last(), F.col("channel").asc_nulls_last()]


def _scores_preference() -> list[Column]:
    return [F.col("partner_score").desc(), F.col("partner_segment").asc_nulls_last(), F.col("_source_file").asc()]


# ------------------------------------------------------------------------------------- models
def _trimmed(column: str) -> Column:
    """Trimmed and not empty (NULL passes: nullability is the field's own check)."""
    value = F.col(column)
    return (value == trimmed(value)) & (F.length(value) > 0)


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
    _amount_finite = row_rule("silver_amount_finite", lambda: ~F.isnan("amount") & (F.abs("amount") < float("inf")))
    _currency_normalised = row_rule("silver_currency_lower_case", lambda: _normalised("currency"))
    _channel_normalised = row_rule("silver_channel_lower_case", lambda: _normalised("channel"))

    class Config:
        strict = True
        unique = ["quarter", *EVENTS_KEY]


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
        unique = ["quarter", *LOGS_KEY]


class SilverPartnerScores(LakeTable):
    customer_id: T.StringType() = _customer_id()
    partner_score: T.DoubleType() = pa.Field(
        nullable=False,
        in_range={"min_value": SCORE_RANGE[0], "max_value": SCORE_RANGE[1]},
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
    _partner_segment_normalised = row_rule("silver_partner_segment_lower_case", lambda: _normalised("partner_segment"))

    class Config:
        strict = True
        unique = ["quarter", *SCORES_KEY]


def _reject_reason(rules: tuple[Rule, ...]):
    reasons = [name for name, _ in rules]
    return pa.Field(
        alias=REJECT_REASON,
        nullable=False,
        isin=reasons,
        description="The first silver rule the row broke: one of " + ", ".join(reasons) + ".",
    )


class OperationalEventsQuarantine(BronzeOperational):
    """Rejected `bronze/operational` rows, as text, with the first rule each broke."""

    reject_reason: T.StringType() = _reject_reason(EVENTS_RULES)

    class Config:
        strict = True


class InteractionLogsQuarantine(BronzeLogs):
    """Rejected `bronze/logs` rows, as text, with the first rule each broke."""

    reject_reason: T.StringType() = _reject_reason(LOGS_RULES)

    class Config:
        strict = True


class PartnerScoresQuarantine(BronzeExternal):
    """Rejected `bronze/external` rows, as text, with the first rule each broke."""

    reject_reason: T.StringType() = _reject_reason(SCORES_RULES)

    class Config:
        strict = True


# ------------------------------------------------------------------------------- declarations
@dataclass(frozen=True)
class SilverTable:
    """One silver table and its quarantine, declared once: the bronze table it cleans, how each
    silver column comes from a bronze column, the reject rules in checking order (the reasons are
    their names), the dedup key and which copy of a key wins, the key columns a valid row always
    has, and the two Pandera models. The column lineage of both tables is derived from it."""

    name: str
    bronze: BronzeTable
    parsing: Mapping[str, tuple[str, Callable[[Column], Column]]]
    """Silver column -> (bronze column, parser), in the silver table's column order."""
    reject_rules: tuple[Rule, ...]
    keys: tuple[str, ...]
    """SPEC.md's "duplicates" column: silver holds one row per key within a partition."""
    required: tuple[str, ...]
    """The key columns a valid row always has (NULL-free); may be fewer than `keys`."""
    order: Callable[[], list[Column]] = field(default=_first_arrival)
    """Order within a duplicate group (silver columns, `_ingest_date`, `_source_file`): first wins."""
    model: type[LakeTable] = LakeTable
    quarantine_model: type[LakeTable] = LakeTable

    @property
    def source(self) -> str:
        return self.bronze.source

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.reject_rules)

    @property
    def bronze_key(self) -> dg.AssetKey:
        return self.bronze.key

    @property
    def silver_key(self) -> dg.AssetKey:
        return dg.AssetKey(["silver", self.name])

    @property
    def quarantine_key(self) -> dg.AssetKey:
        return dg.AssetKey(["silver", f"{self.name}_quarantine"])

    def columns(self) -> dict[str, Column]:
        """Silver column -> expression over the bronze row."""
        return {name: parse(F.col(source)) for name, (source, parse) in self.parsing.items()}

    def rules(self) -> list[tuple[str, Column]]:
        """(reject reason, "the row breaks it"), in checking order; may use the parsed values."""
        return [(name, breaks()) for name, breaks in self.reject_rules]

    def preference(self) -> list[Column]:
        return self.order()

    def silver_lineage(self) -> Lineage:
        return {name: [(self.bronze_key, source)] for name, (source, _) in self.parsing.items()}

    def quarantine_lineage(self) -> Lineage:
        kept = {name: [(self.bronze_key, name)] for name in (*self.bronze.columns, *METADATA_COLUMNS)}
        return {**kept, REJECT_REASON: [(self.bronze_key, name) for name in self.bronze.columns]}

    def tables(self) -> tuple[Table, Table]:
        """The silver table and its quarantine, as the IO manager writes them: each persisted for its
        passes (`cached`: the parse and the dedup run once per output), the quarantine first, with
        the rows per reject reason, then the silver table, with the four figures of SPEC.md
        (`batch_platform.metadata.record_silver`)."""
        return (
            Table(
                self.silver_key, self.model, self.silver_lineage(), cached=True,
                record=record_silver(self.reasons, self.quarantine_key),
            ),
            Table(
                self.quarantine_key, self.quarantine_model, self.quarantine_lineage(), cached=True,
                record=record_quarantine(self.reasons, REJECT_REASON),
            ),
        )  # fmt: skip


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

SILVER_TABLES: dict[str, SilverTable] = {t.name: t for t in (OPERATIONAL_EVENTS, INTERACTION_LOGS, PARTNER_SCORES)}
