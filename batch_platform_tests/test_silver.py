"""Silver (SPEC.md, "Silver"): every parsing and validity rule, dedup, and nothing lost.

The rule tests run the pure transformations of `batch_platform.assets.silver` on a few rows; the
end-to-end tests materialise bronze and silver with Dagster on a generated landing zone.
"""

import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import pytest
from pyspark.sql import functions as F

from batch_platform.assets.silver import (
    INTERACTION_LOGS,
    OPERATIONAL_EVENTS,
    PARSED,
    PARTNER_SCORES,
    REJECT_REASON,
    SilverTable,
    flag,
    quarantine_rows,
    reconcile,
    silver_rows,
)
from batch_platform.partitions import to_key
from batch_platform.resources import build_resources
from batch_platform.sample_data import generate_landing
from batch_platform.schemas.bronze import BRONZE_TABLES, METADATA_COLUMNS, SOURCE_COLUMNS
from batch_platform.schemas.silver import (
    SILVER_TABLES,
    OperationalEventsQuarantine,
    PartnerScoresQuarantine,
    SilverInteractionLogs,
    SilverOperationalEvents,
    SilverPartnerScores,
)
from batch_platform.schemas.validation import validate_frame
from batch_platform_tests.lake_fixtures import failed_checks, lake_arrow, tamper_quarter
from batch_platform_tests.platform import (
    bronze_assets,
    make_config,
    quarterly,
    range_tags,
    silver_assets,
    silver_checks,
)

Q1 = "2024-Q1"
INGEST = date(2024, 2, 1)


def bronze_frame(spark, source: str, rows: list[dict], quarter: str = Q1):
    """Bronze rows of `source` as the IO manager loads them: text columns, lineage, partition.

    Each row dict holds source columns (missing ones are NULL) and optionally `case`,
    `_ingest_date` and `_source_file`.
    """
    columns = SOURCE_COLUMNS[source]
    schema = (
        ", ".join(f"{c} string" for c in columns)
        + ", case string, _source_file string, _ingest_date date, _ingested_at timestamp, _batch_id string, quarter string"
    )
    data = [
        (
            *[row.get(c) for c in columns],
            row.get("case"),
            row.get("_source_file", f"file:/landing/{source}/{row.get('_ingest_date', INGEST)}/part.csv"),
            row.get("_ingest_date", INGEST),
            datetime(2024, 6, 1),
            quarter,
            quarter,
        )
        for row in rows
    ]
    return spark.createDataFrame(data, schema)


def utc_micros(text: str) -> int:
    moment = datetime.fromisoformat(text).replace(tzinfo=UTC)
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def outcomes(spark, table: SilverTable, source: str, rows: list[dict]) -> dict[str, dict]:
    """case -> `_reject_reason` and the parsed values (timestamps as UTC epoch microseconds)."""
    flagged = flag(bronze_frame(spark, source, rows), table)
    values = []
    for field in flagged.schema[PARSED].dataType.fields:
        column = F.col(f"{PARSED}.{field.name}")
        values.append((F.unix_micros(column) if field.dataType.typeName() == "timestamp" else column).alias(field.name))
    result = flagged.select("case", REJECT_REASON, *values).collect()
    return {row["case"]: row.asDict() for row in result}


def compare(
    table: SilverTable, actual: dict[str, dict], expected: dict[str, object], value_column: str, convert=lambda v: v
) -> list[str]:
    """Mismatches: an expected value that is one of the table's reject reasons is the expected
    rejection; anything else is the expected parsed value (after `convert`)."""
    problems = []
    for case, want in expected.items():
        got = actual[case]
        if want in table.reasons:
            if got[REJECT_REASON] != want:
                problems.append(f"{case}: expected reject {want!r}, got {got[REJECT_REASON]!r} ({got[value_column]!r})")
        elif got[REJECT_REASON] is not None or got[value_column] != convert(want):
            problems.append(f"{case}: expected {want!r}, got {got[value_column]!r} rejected {got[REJECT_REASON]!r}")
    return problems


# Timestamps of an otherwise valid operational row in 2024-Q1: the parsed UTC instant (written
# as naive UTC) or the reject reason.
TIMESTAMP_CASES = {
    "2024-02-01": "2024-02-01 00:00:00",
    "2024-02-01 10:20:30": "2024-02-01 10:20:30",
    "2024-02-01T10:20:30": "2024-02-01 10:20:30",
    "2024-02-01T10:20:30.5": "2024-02-01 10:20:30.500000",
    "2024-02-01 10:20:30.123456": "2024-02-01 10:20:30.123456",
    "2024-02-01T10:20:30.123456789": "2024-02-01 10:20:30.123456",
    "2024-02-01T10:20:30Z": "2024-02-01 10:20:30",
    "2024-02-01 10:20:30Z": "2024-02-01 10:20:30",
    "2024-02-01T10:20:30.25Z": "2024-02-01 10:20:30.250000",
    "2024-02-01T10:20:30+02:00": "2024-02-01 08:20:30",
    "2024-02-01 10:20:30-05:00": "2024-02-01 15:20:30",
    "2024-02-01T10:20:30.75+05:30": "2024-02-01 04:50:30.750000",
    "2024-02-01T10:20:30+00:00": "2024-02-01 10:20:30",
    "2024-02-01T10:20:30-00:00": "2024-02-01 10:20:30",
    "  2024-02-01T10:20:30Z  ": "2024-02-01 10:20:30",
    "\t2024-02-01\t": "2024-02-01 00:00:00",
    "2024-03-10 02:30:00": "2024-03-10 02:30:00",  # does not exist in New York (DST gap): still UTC
    "2024-02-29T12:00:00": "2024-02-29 12:00:00",
    "2023-11-15 08:00:00": "2023-11-15 08:00:00",  # late arrival: before the quarter, valid
    "2023-12-31T23:00:00-02:00": "2024-01-01 01:00:00",
    # across the quarter's end: 2024-04-01T00:00:00Z is the first instant of Q2
    "2024-04-01T01:00:00+02:00": "2024-03-31 23:00:00",
    "2024-03-31T23:59:59.999999Z": "2024-03-31 23:59:59.999999",
    "2024-03-31T23:59:59.9999999Z": "2024-03-31 23:59:59.999999",
    "2024-04-01T01:59:59+02:00": "2024-03-31 23:59:59",
    "2024-04-01T02:00:00+02:00": "event_time_after_quarter",
    "2024-03-31T22:00:00-02:00": "event_time_after_quarter",
    "2024-03-31T20:00:00-04:00": "event_time_after_quarter",
    "2024-04-01": "event_time_after_quarter",
    "2024-04-01 00:00:00": "event_time_after_quarter",
    "2024-04-01T00:00:00Z": "event_time_after_quarter",
    "2025-01-15T00:00:00Z": "event_time_after_quarter",
    # outside the contract's spellings, or impossible
    "31/12/2024": "event_time_unparseable",
    "2024-13-45": "event_time_unparseable",
    "2024-02-30": "event_time_unparseable",
    "2023-02-29T00:00:00": "event_time_unparseable",
    "2024-01-01T25:00:00": "event_time_unparseable",
    "2024-01-01T24:00:00": "event_time_unparseable",
    "2024-01-01T10:60:00": "event_time_unparseable",
    "2024-01-01T10:00": "event_time_unparseable",
    "2024-01-01T10:00:00.": "event_time_unparseable",
    "2024-01-01T10:00:00+0200": "event_time_unparseable",
    "2024-01-01T10:00:00+02": "event_time_unparseable",
    "2024-01-01T10:00:00 +02:00": "event_time_unparseable",
    "2024-01-01T10:00:00+19:00": "event_time_unparseable",
    "2024-01-01T10:00:00 UTC": "event_time_unparseable",
    "2024-01-01t10:00:00z": "event_time_unparseable",
    "2024-01-01Z": "event_time_unparseable",
    "2024-1-5": "event_time_unparseable",
    "20240101": "event_time_unparseable",
    "2024/01/01 10:00:00": "event_time_unparseable",
    "1704067200": "event_time_unparseable",
    "not a date": "event_time_unparseable",
    "": "event_time_missing",
    "   ": "event_time_missing",
    None: "event_time_missing",
}

AMOUNT_CASES = {
    "12.5": 12.5,
    "12.50": 12.5,
    "-3.20": -3.2,
    "+7": 7.0,
    "0": 0.0,
    "1e3": 1000.0,
    "1E3": 1000.0,
    "1.5e-2": 0.015,
    "-2.5E+2": -250.0,
    ".5": 0.5,
    "5.": 5.0,
    " 42 ": 42.0,
    "1234e-2": 12.34,
    "12,50": "amount_unparseable",
    "1,000.00": "amount_unparseable",
    "abc": "amount_unparseable",
    "1.2.3": "amount_unparseable",
    "$12": "amount_unparseable",
    "12 EUR": "amount_unparseable",
    "1 000": "amount_unparseable",
    "--1": "amount_unparseable",
    "e3": "amount_unparseable",
    ".": "amount_unparseable",
    "0x1A": "amount_unparseable",
    "NaN": "amount_unparseable",
    "Infinity": "amount_unparseable",
    "1e999": "amount_unparseable",
    "": "amount_missing",
    "  ": "amount_missing",
    None: "amount_missing",
}


def _case_rows(cases: dict, column: str, base: dict) -> tuple[list[dict], dict[str, object]]:
    rows, expected = [], {}
    for i, (value, want) in enumerate(cases.items()):
        case = f"{column}[{i}]={value!r}"
        rows.append({**base, column: value, "case": case})
        expected[case] = want
    return rows, expected


def test_operational_timestamp_spellings(spark):
    rows, expected = _case_rows(
        TIMESTAMP_CASES, "event_time", {"customer_id": "C1", "amount": "1", "currency": "eur", "channel": "web"}
    )
    actual = outcomes(spark, OPERATIONAL_EVENTS, "operational", rows)
    assert compare(OPERATIONAL_EVENTS, actual, expected, "event_time", utc_micros) == []


def test_log_timestamps_follow_the_same_rules(spark):
    cases = {
        text: want.replace("event_time", "log_timestamp") if want.startswith("event_time") else want
        for text, want in TIMESTAMP_CASES.items()
    }
    rows, expected = _case_rows(cases, "log_timestamp", {"customer_id": "C1", "log_event_type": "login"})
    actual = outcomes(spark, INTERACTION_LOGS, "logs", rows)
    assert compare(INTERACTION_LOGS, actual, expected, "log_timestamp", utc_micros) == []


def test_operational_amounts(spark):
    rows, expected = _case_rows(
        AMOUNT_CASES, "amount", {"customer_id": "C1", "event_time": "2024-02-01", "currency": "eur", "channel": "web"}
    )
    actual = outcomes(spark, OPERATIONAL_EVENTS, "operational", rows)
    problems = []
    for case, want in expected.items():
        got = actual[case]
        if isinstance(want, str):
            if got[REJECT_REASON] != want:
                problems.append(f"{case}: expected {want}, got {got[REJECT_REASON]} ({got['amount']})")
        elif got[REJECT_REASON] is not None or got["amount"] != pytest.approx(want, rel=1e-15):
            problems.append(f"{case}: expected {want}, got {got['amount']} rejected {got[REJECT_REASON]}")
    assert problems == []


def test_partner_scores_parse_and_range(spark):
    cases = {
        "0": 0.0,
        "1000": 1000.0,
        "1000.0": 1000.0,
        "1e3": 1000.0,
        "734.5": 734.5,
        " 12.5 ": 12.5,
        "-0": 0.0,
        "9999": "partner_score_out_of_range",
        "1000.0001": "partner_score_out_of_range",
        "1e4": "partner_score_out_of_range",
        "-5": "partner_score_out_of_range",
        "-0.001": "partner_score_out_of_range",
        "12,5": "partner_score_unparseable",
        "abc": "partner_score_unparseable",
        "n/a": "partner_score_unparseable",
        "NaN": "partner_score_unparseable",
        "": "partner_score_missing",
        "   ": "partner_score_missing",
        None: "partner_score_missing",
    }
    rows, expected = _case_rows(cases, "partner_score", {"customer_id": "C1", "partner_segment": "gold"})
    actual = outcomes(spark, PARTNER_SCORES, "external", rows)
    assert compare(PARTNER_SCORES, actual, expected, "partner_score") == []
    assert {row["as_of_date"] for row in actual.values()} == {INGEST}


def test_customer_ids_and_categories(spark):
    rows = [
        {"case": "padded", "customer_id": "  C1 ", "currency": " EUR ", "channel": "Web"},
        {"case": "tabs", "customer_id": "\tC2\t", "currency": "Usd", "channel": "APP  "},
        {"case": "inner space kept", "customer_id": "C 3", "currency": "gbp", "channel": "store"},
        {"case": "no-break spaces", "customer_id": "\u00a0C9\u2003", "currency": "\u00a0gbp", "channel": "store"},
        {"case": "blank categories", "customer_id": "C4", "currency": "   ", "channel": ""},
        {"case": "null categories", "customer_id": "C5", "currency": None, "channel": None},
        {"case": "empty id", "customer_id": ""},
        {"case": "whitespace id", "customer_id": "   "},
        {"case": "null id", "customer_id": None},
    ]
    rows = [{"event_time": "2024-02-01", "amount": "1", **row} for row in rows]
    actual = outcomes(spark, OPERATIONAL_EVENTS, "operational", rows)
    picked = {case: (r["customer_id"], r["currency"], r["channel"], r[REJECT_REASON]) for case, r in actual.items()}
    assert picked == {
        "padded": ("C1", "eur", "web", None),
        "tabs": ("C2", "usd", "app", None),
        "inner space kept": ("C 3", "gbp", "store", None),
        "no-break spaces": ("C9", "gbp", "store", None),
        "blank categories": ("C4", None, None, None),
        "null categories": ("C5", None, None, None),
        "empty id": (None, None, None, "customer_id_missing"),
        "whitespace id": (None, None, None, "customer_id_missing"),
        "null id": (None, None, None, "customer_id_missing"),
    }
    logs = outcomes(
        spark,
        INTERACTION_LOGS,
        "logs",
        [
            {"case": "upper", "customer_id": "C1", "log_event_type": " LOGIN ", "log_timestamp": "2024-02-01"},
            {"case": "no type", "customer_id": "C1", "log_event_type": None, "log_timestamp": "2024-02-01"},
        ],
    )
    assert {c: (r["log_event_type"], r[REJECT_REASON]) for c, r in logs.items()} == {
        "upper": ("login", None),
        "no type": (None, None),
    }
    scores = outcomes(
        spark,
        PARTNER_SCORES,
        "external",
        [{"case": "seg", "customer_id": " C1", "partner_score": "5", "partner_segment": " GOLD"}],
    )
    assert (scores["seg"]["customer_id"], scores["seg"]["partner_segment"]) == ("C1", "gold")


def test_reject_reason_is_the_first_rule_broken(spark):
    rows = [
        {"case": "blank id, bad time, bad amount", "customer_id": " ", "event_time": "31/12/2024", "amount": "x"},
        {"case": "bad time, bad amount", "customer_id": "C1", "event_time": "31/12/2024", "amount": "x"},
        {"case": "missing time, missing amount", "customer_id": "C1", "event_time": "", "amount": None},
        {"case": "bad amount, after quarter", "customer_id": "C1", "event_time": "2024-05-01", "amount": "12,50"},
        {"case": "missing amount, after quarter", "customer_id": "C1", "event_time": "2024-05-01", "amount": " "},
        {"case": "after quarter only", "customer_id": "C1", "event_time": "2024-05-01", "amount": "1"},
    ]
    actual = outcomes(spark, OPERATIONAL_EVENTS, "operational", rows)
    assert {case: row[REJECT_REASON] for case, row in actual.items()} == {
        "blank id, bad time, bad amount": "customer_id_missing",
        "bad time, bad amount": "event_time_unparseable",
        "missing time, missing amount": "event_time_missing",
        "bad amount, after quarter": "amount_unparseable",
        "missing amount, after quarter": "amount_missing",
        "after quarter only": "event_time_after_quarter",
    }
    logs = outcomes(
        spark,
        INTERACTION_LOGS,
        "logs",
        [
            {"case": "blank id, bad time", "customer_id": "", "log_timestamp": "x"},
            {"case": "no time", "customer_id": "C1", "log_timestamp": None},
            {"case": "bad time", "customer_id": "C1", "log_timestamp": "2024-13-45"},
            {"case": "after", "customer_id": "C1", "log_timestamp": "2024-04-01T00:00:00"},
        ],
    )
    assert {case: row[REJECT_REASON] for case, row in logs.items()} == {
        "blank id, bad time": "customer_id_missing",
        "no time": "log_timestamp_missing",
        "bad time": "log_timestamp_unparseable",
        "after": "log_timestamp_after_quarter",
    }
    scores = outcomes(
        spark,
        PARTNER_SCORES,
        "external",
        [
            {"case": "blank id, bad score", "customer_id": " ", "partner_score": "abc"},
            {"case": "blank id, out of range", "customer_id": None, "partner_score": "9999"},
        ],
    )
    assert {case: row[REJECT_REASON] for case, row in scores.items()} == {
        "blank id, bad score": "customer_id_missing",
        "blank id, out of range": "customer_id_missing",
    }


@pytest.mark.parametrize("table", [OPERATIONAL_EVENTS, INTERACTION_LOGS, PARTNER_SCORES], ids=lambda t: t.name)
def test_reject_reasons_are_declared_in_checking_order(spark, table):
    """The reasons the schema allows and the metadata counts are exactly the rules, in order."""
    assert [name for name, _ in table.rules()] == list(table.reasons)


def test_the_docs_list_each_tables_reject_reasons_as_declared():
    """The table of reasons in docs/pipeline.md is documentation of the declarations, not a second source."""
    page = (Path(__file__).resolve().parents[1] / "docs" / "pipeline.md").read_text()
    for table in (OPERATIONAL_EVENTS, INTERACTION_LOGS, PARTNER_SCORES):
        assert f"| {table.name} | {', '.join(table.reasons)} |" in page, table.name


def _silver(spark, table: SilverTable, source: str, rows: list[dict], partitions: int = 1):
    flagged = flag(bronze_frame(spark, source, rows).repartition(partitions), table)
    return flagged, silver_rows(flagged, table)


def test_duplicates_spelled_differently_collapse_to_the_first_arrival(spark):
    early, late = date(2024, 1, 10), date(2024, 2, 20)
    rows = [
        {
            "customer_id": "C1",
            "event_time": "2024-02-01T10:00:00+02:00",
            "amount": "12.50",
            "currency": "EUR",
            "channel": "Web",
            "_ingest_date": late,
        },
        {
            "customer_id": " C1",
            "event_time": "2024-02-01T08:00:00Z",
            "amount": "12.5",
            "currency": "eur",
            "channel": "app",
            "_ingest_date": early,
            "_source_file": "file:/b.csv",
        },
        {
            "customer_id": "C1 ",
            "event_time": "2024-02-01 08:00:00",
            "amount": "1.25e1",
            "currency": "eur",
            "channel": "store",
            "_ingest_date": early,
            "_source_file": "file:/c.csv",
        },
        {
            "customer_id": "C1",
            "event_time": "2024-02-01T03:00:00.000000-05:00",
            "amount": "+12.500",
            "currency": " eur ",
            "channel": "web",
            "_ingest_date": late,
        },
        {
            "customer_id": "C1",
            "event_time": "2024-02-01T08:00:00Z",
            "amount": "12.51",
            "currency": "eur",
            "channel": "web",
        },
        {
            "customer_id": "C1",
            "event_time": "2024-02-01T08:00:01Z",
            "amount": "12.5",
            "currency": "eur",
            "channel": "web",
        },
        {
            "customer_id": "C2",
            "event_time": "2024-02-01T08:00:00Z",
            "amount": "12.5",
            "currency": "eur",
            "channel": "web",
        },
    ]
    flagged, silver = _silver(spark, OPERATIONAL_EVENTS, "operational", rows)
    result = sorted(
        silver.select("customer_id", F.unix_micros("event_time").alias("t"), "amount", "currency", "channel").collect()
    )
    t = utc_micros("2024-02-01 08:00:00")
    assert [tuple(r) for r in result] == [
        ("C1", t, 12.5, "eur", "app"),  # earliest _ingest_date, then smallest _source_file (b < c)
        ("C1", t, 12.51, "eur", "web"),
        ("C1", t + 1_000_000, 12.5, "eur", "web"),
        ("C2", t, 12.5, "eur", "web"),
    ]
    figures = reconcile(flagged, silver, OPERATIONAL_EVENTS, [Q1])[Q1]
    assert (figures.bronze_rows, figures.silver_rows, figures.quarantined_rows, figures.duplicates_removed) == (
        7,
        4,
        0,
        3,
    )
    # the same rows in another order and spread over partitions give the same silver table
    _, again = _silver(spark, OPERATIONAL_EVENTS, "operational", list(reversed(rows)), partitions=3)
    assert sorted(again.collect()) == sorted(silver.collect())


def test_log_duplicates_collapse_and_a_missing_type_is_its_own_key(spark):
    rows = [
        {"customer_id": "C1", "log_event_type": "Login", "log_timestamp": "2024-03-01T12:00:00+01:00"},
        {"customer_id": "C1", "log_event_type": " login", "log_timestamp": "2024-03-01 11:00:00"},
        {"customer_id": "C1", "log_event_type": None, "log_timestamp": "2024-03-01T11:00:00Z"},
        {"customer_id": "C1", "log_event_type": "  ", "log_timestamp": "2024-03-01T11:00:00.0Z"},
        {"customer_id": "C1", "log_event_type": "page_view", "log_timestamp": "2024-03-01T11:00:00Z"},
    ]
    flagged, silver = _silver(spark, INTERACTION_LOGS, "logs", rows)
    assert sorted((r["log_event_type"] or "") for r in silver.collect()) == ["", "login", "page_view"]
    figures = reconcile(flagged, silver, INTERACTION_LOGS, [Q1])[Q1]
    assert (figures.bronze_rows, figures.silver_rows, figures.duplicates_removed) == (5, 3, 2)


def test_partner_scores_keep_the_highest_score_per_customer_and_day(spark):
    day1, day2 = date(2024, 2, 1), date(2024, 3, 1)
    rows = [
        {"customer_id": "C1", "partner_score": "500", "partner_segment": "silver", "_ingest_date": day1},
        {"customer_id": "C1", "partner_score": "750.5", "partner_segment": "Gold", "_ingest_date": day1},
        {"customer_id": "C1 ", "partner_score": "7.505e2", "partner_segment": "bronze", "_ingest_date": day1},
        {"customer_id": "C1", "partner_score": "9999", "partner_segment": "gold", "_ingest_date": day1},
        {"customer_id": "C1", "partner_score": "100", "partner_segment": "bronze", "_ingest_date": day2},
        {"customer_id": "C2", "partner_score": "100", "partner_segment": None, "_ingest_date": day1},
        {"customer_id": "C2", "partner_score": "100", "partner_segment": "gold", "_ingest_date": day1},
    ]
    flagged, silver = _silver(spark, PARTNER_SCORES, "external", rows)
    assert sorted(
        tuple(r) for r in silver.select("customer_id", "as_of_date", "partner_score", "partner_segment").collect()
    ) == [
        ("C1", day1, 750.5, "bronze"),  # tie on 750.5: smallest segment
        ("C1", day2, 100.0, "bronze"),
        ("C2", day1, 100.0, "gold"),  # tie: a segment beats NULL
    ]
    figures = reconcile(flagged, silver, PARTNER_SCORES, [Q1])[Q1]
    assert (figures.bronze_rows, figures.silver_rows, figures.quarantined_rows, figures.duplicates_removed) == (
        7,
        3,
        1,
        3,
    )
    assert figures.rejects["partner_score_out_of_range"] == 1


def test_quarantine_holds_the_whole_original_row(spark):
    rows = [
        {
            "customer_id": "  ",
            "event_time": " 2024-02-01 ",
            "amount": "12,50",
            "currency": " EUR",
            "channel": "Web",
            "case": "x",
        },
        {
            "customer_id": "C1",
            "event_time": "2024-02-01",
            "amount": "1",
            "currency": "eur",
            "channel": "web",
            "case": "ok",
        },
    ]
    flagged = flag(bronze_frame(spark, "operational", rows), OPERATIONAL_EVENTS)
    quarantine = quarantine_rows(flagged, OPERATIONAL_EVENTS)
    assert quarantine.columns == [*SOURCE_COLUMNS["operational"], *METADATA_COLUMNS, "_reject_reason", "quarter"]
    (row,) = quarantine.collect()
    assert row.asDict() == {
        "customer_id": "  ",
        "event_time": " 2024-02-01 ",
        "amount": "12,50",
        "currency": " EUR",
        "channel": "Web",
        "_source_file": "file:/landing/operational/2024-02-01/part.csv",
        "_ingest_date": INGEST,
        "_ingested_at": datetime(2024, 6, 1),
        "_batch_id": Q1,
        "_reject_reason": "customer_id_missing",
        "quarter": Q1,
    }
    assert validate_frame(quarantine.persist(), OperationalEventsQuarantine)[0] == []


# ------------------------------------------------------------------------------ Pandera models
def _failing(model, rows: list[tuple], schema: str, spark) -> set[str]:
    """The names (without their arguments) of the checks of `model` that `rows` break."""
    failed = failed_checks(model, spark.createDataFrame(rows, schema))
    return {check.split("(")[0].strip() for _, check in failed}


def test_silver_operational_model_enforces_the_contract(spark):
    """A valid frame passes; a frame with one row breaking each rule fails exactly those checks."""
    schema = "customer_id string, event_time timestamp, amount double, currency string, channel string, quarter string"
    t = datetime(2024, 2, 1, 10, 0)
    valid = [
        ("C1", t, 1.0, "eur", "web", Q1),
        ("C1", datetime(2023, 6, 1), 1.0, None, None, Q1),  # a late arrival is valid
        ("C1", t, 1.0, "eur", "web", "2024-Q2"),  # the same key in another partition
    ]
    assert _failing(SilverOperationalEvents, valid, schema, spark) == set()
    broken = [
        ("C1", t, 1.0, "eur", "web", Q1),
        ("C1", t, 1.0, "eur", "app", Q1),
        ("C2", t, 1.0, "EUR", "web", Q1),
        ("C3", t, 1.0, "eur", "", Q1),
        (" C4", t, 1.0, "eur", "web", Q1),
        (None, t, 1.0, "eur", "web", Q1),
        ("C6", t, float("inf"), "eur", "web", Q1),
        ("C7", datetime(2024, 4, 1), 1.0, "eur", "web", Q1),
    ]
    assert _failing(SilverOperationalEvents, broken, schema, spark) == {
        "unique",
        "silver_currency_lower_case",
        "silver_channel_lower_case",
        "silver_operational_customer_id_trimmed",
        "not_nullable",
        "silver_amount_finite",
        "silver_event_time_before_quarter_end",
    }


def test_silver_logs_scores_and_quarantine_models_enforce_the_contract(spark):
    logs = [
        ("C1", None, datetime(2024, 3, 1), Q1),
        ("C1", None, datetime(2024, 3, 1), Q1),
        ("C2", "Login", datetime(2024, 4, 1), Q1),
        ("C3", "login", None, Q1),
    ]
    schema = "customer_id string, log_event_type string, log_timestamp timestamp, quarter string"
    assert _failing(SilverInteractionLogs, logs, schema, spark) == {
        "unique",
        "silver_log_event_type_lower_case",
        "silver_log_timestamp_before_quarter_end",
        "not_nullable",
    }
    scores = [
        ("C1", 1000.0, "gold", date(2024, 3, 31), Q1),
        ("C2", 1000.5, None, date(2024, 4, 1), Q1),
        ("C3", -1.0, None, date(2023, 12, 31), Q1),
    ]
    schema = "customer_id string, partner_score double, partner_segment string, as_of_date date, quarter string"
    assert _failing(SilverPartnerScores, scores, schema, spark) == {"in_range", "silver_as_of_date_in_quarter"}
    quarantine = [
        ("C1", "x", "y", "file:/a.csv", date(2024, 2, 1), datetime(2024, 2, 1), Q1, "not_a_reason", Q1),
        ("C1", "x", "y", "file:/a.csv", date(2024, 2, 1), datetime(2024, 2, 1), Q1, None, Q1),
    ]
    schema = (
        "customer_id string, partner_score string, partner_segment string, _source_file string, _ingest_date date, "
        "_ingested_at timestamp, _batch_id string, _reject_reason string, quarter string"
    )
    assert _failing(PartnerScoresQuarantine, quarantine, schema, spark) == {"isin", "not_nullable"}


# ------------------------------------------------------------------------ through Dagster
QUARTERS = ("2024-Q1", "2024-Q2", "2024-Q3")
SOURCE_OF = {
    "operational_events": "operational",
    "interaction_logs": "logs",
    "partner_scores": "external",
    "customer_profiles": "customers",
}


RANGE_TAGS = range_tags(QUARTERS[0], QUARTERS[-1])


@pytest.fixture(scope="module")
def generated_instance(tmp_path_factory):
    """On disk: a test that needs the generated run's history but adds runs of its own works on a
    copy, so the history stays that run's alone whatever order the tests run in."""
    with dg.instance_for_test(temp_dir=str(tmp_path_factory.mktemp("generated-home"))) as instance:
        yield instance


@pytest.fixture(scope="module")
def generated_run(spark, tmp_path_factory, generated_instance):
    """A generated landing zone, and bronze + silver + checks of all its quarters in one run."""
    root = tmp_path_factory.mktemp("generated")
    # a population this small has a high quarantine rate (the generator plants a minimum of every
    # kind of dirt per quarter); the rate check's thresholds are tested in test_checks.py
    config = make_config(root, checks={"quarantine_rate_warn": 0.9, "quarantine_rate_fail": 0.95})
    manifest = generate_landing(
        config.landing_root, first_quarter=QUARTERS[0], last_quarter=QUARTERS[-1], customers=30, seed=11
    )
    result = dg.materialize(
        [*bronze_assets, *silver_assets, *silver_checks],
        resources=build_resources(config),
        tags=RANGE_TAGS,
        instance=generated_instance,
    )
    return config, manifest, result


def _metadata(result, table: str) -> dict[str, dict[str, dg.MetadataValue]]:
    return {
        event.materialization.partition: event.materialization.metadata
        for event in result.get_asset_materialization_events()
        if event.materialization.asset_key == dg.AssetKey(["silver", table])
    }


@pytest.mark.parametrize("table", list(SOURCE_OF))
def test_nothing_lost_on_a_generated_landing_zone(generated_run, table):
    config, manifest, result = generated_run
    source = SOURCE_OF[table]
    silver, quarantine = _metadata(result, table), _metadata(result, f"{table}_quarantine")
    assert sorted(silver) == sorted(quarantine) == [to_key(q) for q in QUARTERS]
    for quarter in QUARTERS:
        figures = {
            name: silver[to_key(quarter)][name]
            for name in ("bronze_rows", "silver_rows", "quarantined_rows", "duplicates_removed")
        }
        assert all(isinstance(value, dg.IntMetadataValue) for value in figures.values())
        numbers = {name: value.value for name, value in figures.items()}
        expected = manifest["expected_silver"][source][quarter]
        assert numbers == {
            "bronze_rows": manifest["rows_by_source_quarter"][source][quarter],
            "silver_rows": expected["silver"],
            "quarantined_rows": expected["quarantined"],
            "duplicates_removed": expected["duplicates"],
        }, quarter
        assert (
            numbers["bronze_rows"]
            == numbers["silver_rows"] + numbers["quarantined_rows"] + numbers["duplicates_removed"]
        )
        rejects = {k: v.value for k, v in silver[to_key(quarter)].items() if k.startswith("rejects/")}
        assert sum(rejects.values()) == numbers["quarantined_rows"]
        assert {k: v.value for k, v in quarantine[to_key(quarter)].items() if k.startswith("rejects/")} == rejects
        lake = Path(config.lake_root) / "silver"
        assert lake_arrow(lake, table, quarter).num_rows == numbers["silver_rows"]
        written = lake_arrow(lake, f"{table}_quarantine", quarter).to_pydict()
        assert len(written["_reject_reason"]) == numbers["quarantined_rows"]
        for reason, count in rejects.items():
            assert written["_reject_reason"].count(reason.removeprefix("rejects/")) == count, (quarter, reason)


def test_generated_dirt_lands_on_the_expected_reasons(generated_run):
    """The generator's dirt kinds map onto reject reasons: each quarter's counts add up per kind."""
    _, manifest, result = generated_run
    dirt = manifest["dirt_by_quarter"]
    for quarter in QUARTERS:
        key = to_key(quarter)
        ops = {k: v.value for k, v in _metadata(result, "operational_events")[key].items() if k.startswith("rejects/")}
        assert ops["rejects/customer_id_missing"] == dirt["operational"]["blank_customer_id"][quarter]
        assert ops["rejects/event_time_unparseable"] == dirt["operational"]["bad_timestamp"][quarter]
        assert (
            ops["rejects/amount_missing"] + ops["rejects/amount_unparseable"]
            == dirt["operational"]["bad_amount"][quarter]
        )
        assert ops["rejects/event_time_after_quarter"] == dirt["operational"]["future_timestamp"][quarter]
        scores = {k: v.value for k, v in _metadata(result, "partner_scores")[key].items() if k.startswith("rejects/")}
        assert scores["rejects/partner_score_out_of_range"] == dirt["external"]["out_of_range_score"][quarter]
        assert (
            scores["rejects/partner_score_missing"] + scores["rejects/partner_score_unparseable"]
            == dirt["external"]["bad_score"][quarter]
        )


def test_silver_tables_have_exactly_the_contract_columns(generated_run):
    config, _, _ = generated_run
    lake = Path(config.lake_root) / "silver"
    expected = {
        "operational_events": {
            "customer_id": "string",
            "event_time": "timestamp[us, tz=UTC]",
            "amount": "double",
            "currency": "string",
            "channel": "string",
        },
        "interaction_logs": {
            "customer_id": "string",
            "log_event_type": "string",
            "log_timestamp": "timestamp[us, tz=UTC]",
        },
        "partner_scores": {
            "customer_id": "string",
            "partner_score": "double",
            "partner_segment": "string",
            "as_of_date": "date32[day]",
        },
    }
    for table, columns in expected.items():
        for quarter in QUARTERS:
            schema = lake_arrow(lake, table, quarter).schema
            assert {field.name: str(field.type) for field in schema} == columns, (table, quarter)
        quarantine = lake_arrow(lake, f"{table}_quarantine", QUARTERS[0]).schema
        assert quarantine.names == [*SOURCE_COLUMNS[SOURCE_OF[table]], *METADATA_COLUMNS, "_reject_reason"]


def test_checks_pass_in_a_multi_quarter_run(generated_run):
    _, _, result = generated_run
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == (4 * len(SILVER_TABLES) + len(BRONZE_TABLES)) * len(
        QUARTERS
    )  # silver's 4 checks, bronze's 1
    # every silver check passes; bronze's arrival check WARNs where the generator's dirt changes a
    # source's columns from one quarter to the next, which is what it is for
    failing = [e for e in evaluations if not e.passed]
    assert {e.check_name for e in failing} <= {"arrival_and_schema"}, [(e.asset_key, e.description) for e in failing]
    assert all(e.severity == dg.AssetCheckSeverity.WARN and "since 2024-Q" in e.description for e in failing)


def test_every_materialisation_records_the_lineage_its_asset_definition_shows(generated_run):
    _, _, result = generated_run
    shown = {
        spec.key: spec.metadata.get("dagster/column_lineage")
        for a in (*bronze_assets, *silver_assets)
        for spec in a.specs
    }
    events = result.get_asset_materialization_events()
    assert len(events) == (len(BRONZE_TABLES) + 2 * len(SILVER_TABLES)) * len(QUARTERS)
    for event in events:
        materialization = event.materialization
        entry = materialization.metadata.get("dagster/column_lineage")
        recorded = None if entry is None else entry.value
        assert recorded == shown[materialization.asset_key], (materialization.asset_key, materialization.partition)
        assert (recorded is None) == (materialization.asset_key.path[0] == "bronze")


def test_a_range_run_records_one_evaluation_per_check_and_quarter(generated_run, generated_instance):
    """Read back from the instance as the UI does: every check has a result per quarter of the
    run, carrying that partition and that quarter's own figures, against that quarter's
    materialisation."""
    config, manifest, result = generated_run
    storage = generated_instance.event_log_storage
    check_keys = [key for checks in silver_checks for key in checks.check_keys]
    assert len(check_keys) == 4 * len(SILVER_TABLES)
    for check_key in check_keys:
        history = storage.get_asset_check_execution_history(check_key, limit=10)
        assert sorted(record.partition for record in history) == [to_key(q) for q in QUARTERS], check_key
        for record in history:
            evaluation = record.event.asset_check_evaluation
            assert record.run_id == result.run_id and evaluation.passed, check_key
            quarter = evaluation.metadata["quarter"].value
            assert to_key(quarter) == record.partition
            target = generated_instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=check_key.asset_key, asset_partitions=[record.partition]), limit=1
            ).records[0]
            assert evaluation.target_materialization_data.storage_id == target.storage_id
            if check_key.name == "reconciliation":
                source = SOURCE_OF[check_key.asset_key.path[-1]]
                assert evaluation.metadata["bronze_rows"].value == manifest["rows_by_source_quarter"][source][quarter]
        infos = storage.get_asset_check_partition_info([check_key])
        assert {info.partition_key: info.latest_execution_status.value for info in infos} == {
            to_key(q): "SUCCEEDED" for q in QUARTERS
        }, check_key
        assert all(info.is_current for info in infos), check_key


def test_a_quarter_failing_its_check_in_a_range_fails_alone_and_blocks_downstream(
    generated_run, generated_instance, tmp_path
):
    """One tampered quarter of three: only its reconciliation fails; the step fails, so the asset
    downstream of the silver table is not materialised for any quarter of the run. The checks
    reconcile against the generated run's materialisations, read from a copy of its instance."""
    config, _, _ = generated_run
    shutil.copytree(Path(config.lake_root), tmp_path / "lake")
    tamper_quarter(tmp_path / "lake", "silver/operational_events", QUARTERS[1], lambda rows: rows.slice(1))

    @dg.asset(
        key=["test", "after_operational_events"],
        deps=[OPERATIONAL_EVENTS.silver_key],
        partitions_def=quarterly,
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def after_silver() -> None:
        return None

    tampered = make_config(tmp_path, checks={"quarantine_rate_warn": 0.5, "quarantine_rate_fail": 0.9})
    home = shutil.copytree(generated_instance.root_directory, tmp_path / "dagster_home")
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        result = dg.materialize(
            [*bronze_assets, *silver_assets, *silver_checks, after_silver],
            selection=dg.AssetSelection.checks_for_assets(OPERATIONAL_EVENTS.silver_key)
            | dg.AssetSelection.assets(after_silver.key),
            resources=build_resources(tampered),
            tags=RANGE_TAGS,
            instance=instance,
            raise_on_error=False,
        )
    outcome = {(e.partition, e.check_name): e.passed for e in result.get_asset_check_evaluations()}
    assert len(outcome) == 4 * len(QUARTERS)
    assert [key for key, passed in outcome.items() if not passed] == [(to_key(QUARTERS[1]), "reconciliation")]
    assert not result.success
    assert result.get_asset_materialization_events() == []
