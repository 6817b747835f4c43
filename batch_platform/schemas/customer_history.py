"""`gold/customer_history`, declared (SPEC.md, "Gold": the golden customer record, SCD Type 2).

Partition Q holds every version of every customer's golden record as known at the end of Q, built
from every `silver/customer_profiles` partition from the first quarter to Q. The rules are in
`batch_platform.assets.customer_history`; the model holds what every row must satisfy: versions
count from 1, a version ends where it starts or later never (`valid_to` > `valid_from`, or NULL
for the current one), `is_current` exactly when `valid_to` is NULL, and nothing starts at or after
the end of Q (the history of Q knows nothing later).
"""

from __future__ import annotations

import dagster as dg
import pandera.pyspark as pa
import pyspark.sql.types as T
from pyspark.sql import functions as F

from batch_platform.metadata import record_history
from batch_platform.schemas.base import LakeTable, Lineage, Table, quarter_end_col, row_rule
from batch_platform.schemas.silver_profiles import CONTRACTS, CUSTOMER_PROFILES, GOLDEN_ATTRIBUTES

HISTORY_KEY = dg.AssetKey(["gold", "customer_history"])
PROFILES = CUSTOMER_PROFILES.silver_key


def _attribute(description: str):
    return pa.Field(
        nullable=True,
        description=f"{description} The golden value: of the profile row with the latest updated_at at or before "
        "valid_from that holds one (same updated_at: the system priority); NULL when no row holds one.",
    )


class CustomerHistory(LakeTable):
    """`gold/customer_history`: one row per version of a customer's golden record."""

    customer_id: T.StringType() = pa.Field(nullable=False, description="Customer identifier.")
    version: T.IntegerType() = pa.Field(nullable=False, ge=1, description="1, 2, … in time order.")
    valid_from: T.TimestampType() = pa.Field(
        nullable=False, description="When the version starts: the updated_at (UTC) at which its golden values began."
    )
    valid_to: T.TimestampType() = pa.Field(
        nullable=True, description="The next version's valid_from (exclusive); NULL for the current version."
    )
    is_current: T.BooleanType() = pa.Field(nullable=False, description="Whether valid_to is NULL.")
    email: T.StringType() = _attribute("E-mail address (lower case).")
    country: T.StringType() = _attribute("Country code (upper case).")
    signup_date: T.DateType() = _attribute("Sign-up date.")
    contract: T.StringType() = pa.Field(
        nullable=True, isin=list(CONTRACTS), description="Contract: month-to-month, one-year or two-year. Golden value."
    )
    payment_method: T.StringType() = _attribute("Payment method (lower case).")
    monthly_charges: T.DoubleType() = pa.Field(nullable=True, ge=0, description="Monthly charges. Golden value.")

    _ordered = row_rule("gold_history_valid_to_after_valid_from", lambda: F.col("valid_to") > F.col("valid_from"))
    _current = row_rule("gold_history_is_current_iff_open", lambda: F.col("is_current") == F.col("valid_to").isNull())
    _known = row_rule("gold_history_valid_from_before_quarter_end", lambda: F.col("valid_from") < quarter_end_col())

    class Config:
        strict = True
        unique = ["quarter", "customer_id", "version"]


_TIMELINE = [(PROFILES, "customer_id"), (PROFILES, "updated_at")]
HISTORY_LINEAGE: Lineage = {
    "customer_id": [(PROFILES, "customer_id")],
    "version": [*_TIMELINE, *[(PROFILES, name) for name in GOLDEN_ATTRIBUTES]],
    "valid_from": [(PROFILES, "updated_at")],
    "valid_to": [(PROFILES, "updated_at")],
    "is_current": [(PROFILES, "updated_at")],
    **{name: [(PROFILES, name), *_TIMELINE, (PROFILES, "source_system")] for name in GOLDEN_ATTRIBUTES},
}

CUSTOMER_HISTORY = Table(HISTORY_KEY, CustomerHistory, HISTORY_LINEAGE, cached=True, record=record_history)
