"""The `customers` landing source and `silver/customer_profiles` (SPEC.md, "Landing zone" and
"Silver"): parsing, reject reasons in checking order, the duplicate rule and the reconciliation,
on hand-worked rows; and the declaration the rest of the platform follows."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest

from batch_platform.assets.silver import flag, quarantine_rows, reconcile, silver_rows
from batch_platform.schemas.bronze import BRONZE_TABLES, SOURCE_COLUMNS
from batch_platform.schemas.silver import SILVER_TABLES
from batch_platform.schemas.silver_profiles import CUSTOMER_PROFILES, SilverCustomerProfiles
from batch_platform_tests.lake_fixtures import failed_checks

Q1 = "2024-Q1"
INGEST = date(2024, 2, 1)
VALID = {
    "customer_id": "C1",
    "source_system": "online",
    "updated_at": "2024-02-01 10:00:00",
    "email": "c1@example.com",
    "country": "de",
    "signup_date": "2020-05-01",
    "contract": "one-year",
    "payment_method": "credit card",
    "monthly_charges": "70.5",
}


def bronze_customers(spark, rows: list[dict], quarter: str = Q1):
    """Bronze `customers` rows as the IO manager loads them: text columns, lineage, partition."""
    columns = SOURCE_COLUMNS["customers"]
    schema = ", ".join(f"{c} string" for c in columns) + (
        ", _source_file string, _ingest_date date, _ingested_at timestamp, _batch_id string, quarter string"
    )
    data = [
        (
            *[row.get(c) for c in columns],
            row.get("_source_file", f"file:/landing/customers/{row.get('_ingest_date', INGEST)}/part.csv"),
            row.get("_ingest_date", INGEST),
            datetime(2024, 6, 1),
            quarter,
            quarter,
        )
        for row in rows
    ]
    return spark.createDataFrame(data, schema)


def test_customers_is_declared_like_every_landing_source():
    assert BRONZE_TABLES["customers"].columns == (
        "customer_id", "source_system", "updated_at", "email", "country",
        "signup_date", "contract", "payment_method", "monthly_charges",
    )  # fmt: skip
    assert SILVER_TABLES["customer_profiles"] is CUSTOMER_PROFILES
    assert CUSTOMER_PROFILES.silver_key.to_user_string() == "silver/customer_profiles"
    assert CUSTOMER_PROFILES.quarantine_key.to_user_string() == "silver/customer_profiles_quarantine"


@pytest.mark.parametrize(
    "change, reason",
    [
        (dict(customer_id="  "), "customer_id_missing"),
        (dict(customer_id="", contract="monthly"), "customer_id_missing"),  # the first rule broken wins
        (dict(updated_at=" "), "updated_at_missing"),
        (dict(updated_at="2024-13-45"), "updated_at_unparseable"),
        (dict(updated_at="01/02/2024"), "updated_at_unparseable"),
        (dict(updated_at="2024-04-01T00:00:00Z"), "updated_at_after_quarter"),
        (dict(updated_at="2024-03-31T23:30:00-01:00"), "updated_at_after_quarter"),
        (dict(source_system=None), "source_system_missing"),
        (dict(source_system="web", contract="monthly"), "source_system_unknown"),
        (dict(contract="monthly"), "contract_unknown"),
        (dict(monthly_charges="12,50"), "monthly_charges_unparseable"),
        (dict(monthly_charges="NaN"), "monthly_charges_unparseable"),
        (dict(monthly_charges="-0.01", signup_date="yesterday"), "monthly_charges_negative"),
        (dict(signup_date="yesterday"), "signup_date_unparseable"),
        (dict(signup_date="2023-02-30"), "signup_date_unparseable"),
    ],
)
def test_each_reject_reason_is_the_first_rule_broken(spark, change, reason):
    flagged = flag(bronze_customers(spark, [{**VALID, **change}]), CUSTOMER_PROFILES)
    rejected = quarantine_rows(flagged, CUSTOMER_PROFILES).collect()
    assert [row["_reject_reason"] for row in rejected] == [reason]
    assert rejected[0]["customer_id"] == {**VALID, **change}["customer_id"]  # whole, as text


def test_parsing_trims_normalises_and_reads_dates_in_utc(spark):
    rows = [
        {
            **VALID,
            "customer_id": " C1\t",
            "source_system": " Store ",
            "updated_at": "2024-02-01T12:00:00+02:00",
            "email": " C1@Example.COM ",
            "country": " de ",
            "signup_date": "2020-05-01T23:30:00-02:00",
            "contract": "Two-Year",
            "payment_method": " ELECTRONIC CHECK",
            "monthly_charges": " 1e2 ",
        },
        {**VALID, "customer_id": "C2", "email": "", "country": None, "signup_date": " ", "contract": "",
         "payment_method": None, "monthly_charges": ""},
    ]  # fmt: skip
    silver = silver_rows(flag(bronze_customers(spark, rows), CUSTOMER_PROFILES), CUSTOMER_PROFILES)
    got = {row["customer_id"]: row.asDict() for row in silver.collect()}
    assert got["C1"] == {
        "customer_id": "C1",
        "source_system": "store",
        "updated_at": datetime(2024, 2, 1, 10, 0),
        "email": "c1@example.com",
        "country": "DE",
        "signup_date": date(2020, 5, 2),
        "contract": "two-year",
        "payment_method": "electronic check",
        "monthly_charges": 100.0,
        "quarter": Q1,
    }
    blank = got["C2"]
    assert [blank[c] for c in ("email", "country", "signup_date", "contract", "payment_method", "monthly_charges")] == [
        None
    ] * 6
    assert failed_checks(SilverCustomerProfiles, silver) == {}


def test_duplicates_keep_the_latest_delivery_then_the_greatest_file_then_the_greatest_values(spark):
    key = {**VALID, "customer_id": "C7", "updated_at": "2024-02-01T10:00:00Z"}
    early, late = date(2024, 2, 10), date(2024, 2, 20)
    rows = [
        {**key, "payment_method": "card", "_ingest_date": early, "_source_file": "file:/z.csv"},
        {**key, "payment_method": "cash", "_ingest_date": late, "_source_file": "file:/a.csv"},
        # the same instant spelled otherwise; same delivery day, a greater file name: this one wins
        {**key, "updated_at": "2024-02-01 12:00:00+02:00", "payment_method": "check", "_ingest_date": late,
         "_source_file": "file:/b.csv"},
        # same delivery and file: the greatest (email, country, …); a value beats NULL
        {**key, "customer_id": "C8", "email": None, "country": "ZZ"},
        {**key, "customer_id": "C8", "email": "a@example.com", "country": "AA"},
        {**key, "customer_id": "C8", "email": "a@example.com", "country": "FR"},
        # another system or another time is another key
        {**key, "customer_id": "C8", "source_system": "store"},
        {**key, "customer_id": "C8", "updated_at": "2024-02-01T10:00:01Z"},
    ]  # fmt: skip
    bronze = bronze_customers(spark, rows)
    flagged = flag(bronze, CUSTOMER_PROFILES)
    silver = silver_rows(flagged, CUSTOMER_PROFILES)
    got = sorted((r["customer_id"], r["source_system"], str(r["updated_at"]), r["payment_method"], r["email"],
                  r["country"]) for r in silver.collect())  # fmt: skip
    assert got == [
        ("C7", "online", "2024-02-01 10:00:00", "check", "c1@example.com", "DE"),
        ("C8", "online", "2024-02-01 10:00:00", "credit card", "a@example.com", "FR"),
        ("C8", "online", "2024-02-01 10:00:01", "credit card", "c1@example.com", "DE"),
        ("C8", "store", "2024-02-01 10:00:00", "credit card", "c1@example.com", "DE"),
    ]
    figures = reconcile(flagged, silver, CUSTOMER_PROFILES, [Q1])[Q1]
    assert (figures.bronze_rows, figures.silver_rows, figures.quarantined_rows, figures.duplicates_removed) == (
        8,
        4,
        0,
        4,
    )


def test_the_pipeline_page_lists_the_reject_reasons_in_checking_order():
    page = (Path(__file__).resolve().parents[1] / "docs" / "pipeline.md").read_text()
    assert f"| {CUSTOMER_PROFILES.name} | {', '.join(CUSTOMER_PROFILES.reasons)} |" in page


def test_the_system_priority_is_configured_once_with_store_first_by_default():
    from batch_platform.config import ConfigError, parse_config
    from batch_platform.resources import build_resources

    config = parse_config({}, "test")
    assert config.customers.system_priority == ("store", "online")
    assert build_resources(config)["customers"] is config.customers
    assert parse_config({"customers": {"system_priority": [" Online", "store"]}}).customers.system_priority == (
        "online",
        "store",
    )
    for bad in (["store", "store"], [], [""]):
        with pytest.raises(ConfigError, match="customers.system_priority"):
            parse_config({"customers": {"system_priority": bad}})
    with pytest.raises(ConfigError, match="unknown key 'customers.priority'"):
        parse_config({"customers": {"priority": ["store"]}})
