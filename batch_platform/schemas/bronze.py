"""Pandera models of the bronze tables (SPEC.md, "Bronze: what arrived, untouched").

Every source column is kept as the original string; columns that arrive beyond the contract are
kept too (`strict = False`). The four `_` columns say where and when each row came from.
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg
import pandera.pyspark as pa
import pyspark.sql.types as T
from pyspark.sql import functions as F

from batch_platform.schemas.base import (
    QUARTER_PATTERN,
    LakeTable,
    Table,
    quarter_end_date,
    quarter_start_date,
    row_rule,
)

METADATA_COLUMNS = ("_source_file", "_ingest_date", "_ingested_at", "_batch_id")


def _text(description: str):
    return pa.Field(nullable=True, description=f"{description} As it arrived: original text, untrimmed.")


class _BronzeMetadata(LakeTable):
    source_file: T.StringType() = pa.Field(
        alias="_source_file", nullable=False, description="Full path of the landing file the row was read from."
    )
    ingest_date: T.DateType() = pa.Field(
        alias="_ingest_date",
        nullable=False,
        description="The landing folder's date: the day the file arrived. Decides the row's quarter.",
    )
    ingested_at: T.TimestampType() = pa.Field(
        alias="_ingested_at", nullable=False, description="When the platform read the file (UTC)."
    )
    batch_id: T.StringType() = pa.Field(
        alias="_batch_id",
        nullable=False,
        str_matches=QUARTER_PATTERN,
        description="The quarter label (YYYY-QN) of the batch that ingested the row.",
    )

    _ingest_date_in_quarter = row_rule(
        "bronze_ingest_date_in_quarter",
        lambda: (F.col("_ingest_date") >= quarter_start_date()) & (F.col("_ingest_date") < quarter_end_date()),
    )
    _batch_is_partition = row_rule("bronze_batch_id_is_partition", lambda: F.col("_batch_id") == F.col("quarter"))

    class Config:
        strict = False


class BronzeOperational(_BronzeMetadata):
    customer_id: T.StringType() = _text("Customer identifier.")
    event_time: T.StringType() = _text("When the operational event happened (ISO-8601 expected).")
    amount: T.StringType() = _text("Transaction amount (a decimal number expected).")
    currency: T.StringType() = _text("Currency code.")
    channel: T.StringType() = _text("Channel of the event.")


class BronzeLogs(_BronzeMetadata):
    customer_id: T.StringType() = _text("Customer identifier.")
    log_event_type: T.StringType() = _text("Kind of interaction.")
    log_timestamp: T.StringType() = _text("When the interaction happened (ISO-8601 expected).")


class BronzeExternal(_BronzeMetadata):
    customer_id: T.StringType() = _text("Customer identifier.")
    partner_score: T.StringType() = _text("Partner's score (a decimal in [0, 1000] expected).")
    partner_segment: T.StringType() = _text("Partner's segment.")


class BronzeCustomers(_BronzeMetadata):
    customer_id: T.StringType() = _text("Customer identifier.")
    source_system: T.StringType() = _text("The system that kept the record (`online` or `store` expected).")
    updated_at: T.StringType() = _text("When that system last changed the record (ISO-8601 expected).")
    email: T.StringType() = _text("E-mail address.")
    country: T.StringType() = _text("Country code.")
    signup_date: T.StringType() = _text("When the customer signed up (YYYY-MM-DD or ISO-8601 expected).")
    contract: T.StringType() = _text("Contract (`month-to-month`, `one-year` or `two-year` expected).")
    payment_method: T.StringType() = _text("Payment method.")
    monthly_charges: T.StringType() = _text("Monthly charges (a decimal number >= 0 expected).")


LANDING_FORMATS = ("csv", "json", "parquet")
"""The file formats a landing source arrives in (SPEC.md, "Landing zone"): CSV, JSON lines, Parquet."""


@dataclass(frozen=True)
class BronzeTable(Table):
    """A bronze table: one landing source, the one home of what the platform knows about it:
    `source` (its name, `bronze/<source>`), `folder` (where its files land,
    `<landing>/<folder>/<YYYY-MM-DD>/<file>`), `formats` (the file formats it arrives in) and
    `columns` (its contract columns).

    The bronze asset is built for every declaration, the landing sensor watches every declared
    folder for files in the declared formats, and the sample-data generator writes every declared
    source (and refuses to run, naming the source, while one has no generator).
    """

    source: str = ""
    columns: tuple[str, ...] = ()
    formats: tuple[str, ...] = LANDING_FORMATS

    @property
    def folder(self) -> str:
        """The source's folder under the landing root: its name (SPEC.md: `<landing>/<source>/`)."""
        return self.source


def _bronze(source: str, model: type[LakeTable]) -> BronzeTable:
    contract = tuple(name for name in model.to_schema().columns if not name.startswith("_") and name != "quarter")
    return BronzeTable(key=dg.AssetKey(["bronze", source]), model=model, source=source, columns=contract)


OPERATIONAL = _bronze("operational", BronzeOperational)
LOGS = _bronze("logs", BronzeLogs)
EXTERNAL = _bronze("external", BronzeExternal)
CUSTOMERS = _bronze("customers", BronzeCustomers)
BRONZE_TABLES: dict[str, BronzeTable] = {t.source: t for t in (OPERATIONAL, LOGS, EXTERNAL, CUSTOMERS)}
"""Bronze tables by landing source."""

SOURCE_COLUMNS: dict[str, tuple[str, ...]] = {source: t.columns for source, t in BRONZE_TABLES.items()}
"""The contract columns of each landing source, in contract order (the model's field order)."""
