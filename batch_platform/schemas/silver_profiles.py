"""`silver/customer_profiles` and its quarantine, declared (SPEC.md, "Silver", the `customers` source).

Each row is one system's record of a customer as it stood at `updated_at`: the online shop and the
stores (`source_system`) each keep their own, and `gold/customer_history` merges them.

Parsing (`batch_platform.schemas.silver_parsing`): customer_id trimmed; updated_at an ISO-8601
timestamp; signup_date a date (`YYYY-MM-DD`, or a timestamp's UTC date); monthly_charges a decimal
number; source_system, email, contract and payment_method lower case, country upper case; blank →
NULL.

Reject reasons, first broken wins, in this order: `customer_id_missing`, `updated_at_missing`,
`updated_at_unparseable`, `updated_at_after_quarter`, `source_system_missing`,
`source_system_unknown` (not `online` or `store`), `contract_unknown` (not NULL and not
`month-to-month`, `one-year` or `two-year`), `monthly_charges_unparseable`,
`monthly_charges_negative`, `signup_date_unparseable` (given but not a date). An empty optional
value is NULL, not a reject.

Duplicates: one row per (customer_id, source_system, updated_at) within the partition — the row of
the latest `_ingest_date`, then of the greatest `_source_file`, then the greatest (email, country,
signup_date, contract, payment_method, monthly_charges), compared column by column in that order,
a value greater than NULL (the contract's order; the NULL rule is ours, SPEC.md is silent).
"""

from __future__ import annotations

import pandera.pyspark as pa
import pyspark.sql.types as T
from pyspark.sql import Column
from pyspark.sql import functions as F

from batch_platform.schemas.base import LakeTable, quarter_end_col, row_rule
from batch_platform.schemas.bronze import CUSTOMERS, BronzeCustomers
from batch_platform.schemas.silver_parsing import (
    clean_category,
    clean_text,
    clean_upper,
    parse_date,
    parse_number,
    parse_timestamp,
)
from batch_platform.schemas.silver_table import (
    Rule,
    SilverTable,
    category_field,
    customer_id_field,
    is_normalised,
    is_trimmed,
    missing,
    parsed,
    reject_reason_field,
)

SOURCE_SYSTEMS = ("online", "store")
CONTRACTS = ("month-to-month", "one-year", "two-year")
GOLDEN_ATTRIBUTES = ("email", "country", "signup_date", "contract", "payment_method", "monthly_charges")
"""The attributes of the golden customer record (`gold/customer_history`), in the contract's order."""

PROFILES_RULES: tuple[Rule, ...] = (
    ("customer_id_missing", lambda: parsed("customer_id").isNull()),
    ("updated_at_missing", lambda: missing("updated_at")),
    ("updated_at_unparseable", lambda: parsed("updated_at").isNull()),
    ("updated_at_after_quarter", lambda: parsed("updated_at") >= quarter_end_col()),
    ("source_system_missing", lambda: parsed("source_system").isNull()),
    ("source_system_unknown", lambda: ~parsed("source_system").isin(*SOURCE_SYSTEMS)),
    ("contract_unknown", lambda: parsed("contract").isNotNull() & ~parsed("contract").isin(*CONTRACTS)),
    ("monthly_charges_unparseable", lambda: ~missing("monthly_charges") & parsed("monthly_charges").isNull()),
    ("monthly_charges_negative", lambda: parsed("monthly_charges") < 0),
    ("signup_date_unparseable", lambda: ~missing("signup_date") & parsed("signup_date").isNull()),
)
PROFILES_KEY = ("customer_id", "source_system", "updated_at")


def _latest_delivery() -> list[Column]:
    """SPEC.md's rule: latest `_ingest_date`, greatest `_source_file`, then the greatest attributes."""
    return [
        F.col("_ingest_date").desc(),
        F.col("_source_file").desc(),
        *[F.col(name).desc_nulls_last() for name in GOLDEN_ATTRIBUTES],
    ]


def _upper_case(column: str) -> Column:
    return is_trimmed(column) & (F.col(column) == F.upper(F.col(column)))


class SilverCustomerProfiles(LakeTable):
    customer_id: T.StringType() = customer_id_field()
    source_system: T.StringType() = pa.Field(
        nullable=False, isin=list(SOURCE_SYSTEMS), description="The system that kept the record: online or store."
    )
    updated_at: T.TimestampType() = pa.Field(
        nullable=False,
        description="When that system changed the record, UTC (ISO-8601 text parsed; no offset meant UTC). Before "
        "the end of the quarter; may be earlier than its start (a late arrival).",
    )
    email: T.StringType() = category_field("E-mail address.")
    country: T.StringType() = pa.Field(nullable=True, description="Country code. Trimmed, upper case; NULL when blank.")
    signup_date: T.DateType() = pa.Field(
        nullable=True, description="Sign-up date (a timestamp's UTC date); NULL when absent."
    )
    contract: T.StringType() = pa.Field(
        nullable=True, isin=list(CONTRACTS), description="Contract: month-to-month, one-year or two-year; or NULL."
    )
    payment_method: T.StringType() = category_field("Payment method.")
    monthly_charges: T.DoubleType() = pa.Field(
        nullable=True, ge=0, description="Monthly charges, a finite decimal number >= 0; NULL when absent."
    )

    _customer_id_trimmed = row_rule("silver_profiles_customer_id_trimmed", lambda: is_trimmed("customer_id"))
    _updated_at_before_end = row_rule(
        "silver_updated_at_before_quarter_end", lambda: F.col("updated_at") < quarter_end_col()
    )
    _email_normalised = row_rule("silver_email_lower_case", lambda: is_normalised("email"))
    _payment_normalised = row_rule("silver_payment_method_lower_case", lambda: is_normalised("payment_method"))
    _country_upper = row_rule("silver_country_upper_case", lambda: _upper_case("country"))

    class Config:
        strict = True
        unique = ["quarter", *PROFILES_KEY]


class CustomerProfilesQuarantine(BronzeCustomers):
    """Rejected `bronze/customers` rows, as text, with the first rule each broke."""

    reject_reason: T.StringType() = reject_reason_field(PROFILES_RULES)

    class Config:
        strict = True


CUSTOMER_PROFILES = SilverTable(
    name="customer_profiles",
    bronze=CUSTOMERS,
    parsing={
        "customer_id": ("customer_id", clean_text),
        "source_system": ("source_system", clean_category),
        "updated_at": ("updated_at", parse_timestamp),
        "email": ("email", clean_category),
        "country": ("country", clean_upper),
        "signup_date": ("signup_date", parse_date),
        "contract": ("contract", clean_category),
        "payment_method": ("payment_method", clean_category),
        "monthly_charges": ("monthly_charges", parse_number),
    },
    reject_rules=PROFILES_RULES,
    keys=PROFILES_KEY,
    required=PROFILES_KEY,
    order=_latest_delivery,
    model=SilverCustomerProfiles,
    quarantine_model=CustomerProfilesQuarantine,
)
