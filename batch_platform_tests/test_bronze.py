import gzip
import json
import random
import re
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batch_platform.partitions import quarter_range
from batch_platform_tests.lake_fixtures import lake_quarter
from batch_platform_tests.platform import (
    bronze_assets,
    bronze_external,
    bronze_logs,
    bronze_operational,
    materialize_range,
    quarterly,
)

OPERATIONAL = ["customer_id", "event_time", "amount", "currency", "channel"]


def _write(landing: Path, source: str, day: str, name: str, text: str | bytes) -> Path:
    path = landing / source / day / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def _bronze(config, source: str, quarter: str) -> pd.DataFrame:
    return lake_quarter(config.lake_root, f"bronze/{source}", quarter)


@pytest.fixture
def landing(platform_config) -> Path:
    return Path(platform_config.landing_root)


def test_every_file_case_of_the_landing_zone(landing, resources, platform_config):
    _write(
        landing,
        "operational",
        "2024-01-15",
        "a.csv",
        "customer_id,event_time,amount,currency,channel\nC1,2024-01-02,12.5, EUR ,Web\n  ,bad,abc,usd,app\n",
    )
    _write(
        landing,
        "operational",
        "2024-02-01",
        "shuffled.csv",
        'Channel , amount,CUSTOMER_ID,event_time,currency\nstore,"12,50",C2,2024-01-03T10:00:00+02:00,gbp\n',
    )
    _write(
        landing,
        "operational",
        "2024-02-01",
        "extra.csv",
        "customer_id,event_time,amount,currency,channel,device\nC3,2024-02-01 10:00:00,1e3,eur,web,ios\n",
    )
    _write(landing, "operational", "2024-03-01", "zero.csv", b"")
    _write(landing, "operational", "2024-03-01", "header_only.csv", "customer_id,event_time,amount,currency,channel\n")
    _write(
        landing,
        "operational",
        "2024-03-01",
        "lines.json",
        '{"customer_id": "C4", "event_time": "2024-03-01Z", "amount": 7, "channel": "app"}\n',
    )
    pq.write_table(
        pa.table({"amount": ["3.5"], "customer_id": ["C5"], "event_time": ["2024-03-02"]}),
        _write(landing, "operational", "2024-03-02", "drop.parquet", b""),
    )
    _write(landing, "operational", "2024-03-02", "_manifest.csv", "customer_id\nHIDDEN\n")
    _write(landing, "operational", "2024-03-02", "notes.txt", "not data")
    _write(
        landing,
        "operational",
        "2024-04-01",
        "next_quarter.csv",
        "customer_id,event_time,amount,currency,channel\nC9,2024-04-01,1,eur,web\n",
    )
    _write(
        landing,
        "operational",
        "2023-12-31",
        "before.csv",
        "customer_id,event_time,amount,currency,channel\nC0,2023-12-31,1,eur,web\n",
    )

    result = materialize_range([bronze_operational], resources, "2024-Q1")
    assert result.success

    frame = _bronze(platform_config, "operational", "2024-Q1").sort_values(["customer_id"], na_position="first")
    assert len(frame) == 6
    assert list(frame.columns)[:5] == OPERATIONAL
    assert set(frame.columns) == {*OPERATIONAL, "device", "_source_file", "_ingest_date", "_ingested_at", "_batch_id"}
    by_id = frame.set_index("customer_id", drop=False)
    assert by_id.loc["C1", "currency"] == " EUR " and by_id.loc["C1", "channel"] == "Web"
    assert by_id.loc["C2", "amount"] == "12,50" and by_id.loc["C2", "channel"] == "store"
    assert by_id.loc["C2", "event_time"] == "2024-01-03T10:00:00+02:00"
    assert by_id.loc["C3", "device"] == "ios" and pd.isna(by_id.loc["C1", "device"])
    assert by_id.loc["C4", "amount"] == "7" and pd.isna(by_id.loc["C4", "currency"])
    assert by_id.loc["C5", "amount"] == "3.5" and pd.isna(by_id.loc["C5", "channel"])
    assert (
        (frame.drop(columns=["_ingest_date", "_ingested_at"]).map(lambda v: v is None or isinstance(v, str)))
        .all()
        .all()
    )
    assert by_id.loc["C2", "_source_file"].endswith("/operational/2024-02-01/shuffled.csv")
    assert str(by_id.loc["C5", "_ingest_date"]) == "2024-03-02"
    assert set(frame["_batch_id"]) == {"2024-Q1"}
    assert "HIDDEN" not in set(frame["customer_id"].dropna()) and "C9" not in set(frame["customer_id"].dropna())

    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["dagster/row_count"].value == 6
    assert metadata["files_read"].value == 7
    assert any(p.endswith("notes.txt") for p in metadata["ignored_files"].value)


def test_a_source_without_files_gives_empty_partitions(resources, platform_config):
    result = materialize_range([bronze_logs, bronze_external], resources, "2024-Q2", "2024-Q3")
    assert result.success
    for source in ("logs", "external"):
        for quarter in ("2024-Q2", "2024-Q3"):
            frame = _bronze(platform_config, source, quarter)
            assert len(frame) == 0
            assert "customer_id" in frame.columns and "_batch_id" in frame.columns


def test_an_unreadable_file_fails_naming_it_and_publishes_nothing(landing, resources, platform_config):
    good = "customer_id,event_time,amount,currency,channel\nC1,2024-01-02,1,eur,web\n"
    _write(landing, "operational", "2024-01-10", "good.csv", good)
    assert materialize_range([bronze_operational], resources, "2024-Q1").success
    before = _bronze(platform_config, "operational", "2024-Q1")

    _write(landing, "operational", "2024-01-11", "broken.csv", good + "C2,2024-01-03,1,eur,web,surplus,fields\n")
    result = materialize_range([bronze_operational], resources, "2024-Q1", raise_on_error=False)

    assert not result.success
    message = result.get_step_failure_events()[0].step_failure_data.user_failure_data.description
    assert "/operational/2024-01-11/broken.csv" in message
    assert "could not be parsed" in message
    pd.testing.assert_frame_equal(_bronze(platform_config, "operational", "2024-Q1"), before)


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("broken.parquet", b"PAR1 definitely not parquet", "is not readable Parquet"),
        ("lines.json", b'{"customer_id": "C1"}\n{not json\n', "could not be parsed"),
        ("wrong.csv", b"foo,bar\n1,2\n", "has none of the expected columns"),
    ],
)
def test_unreadable_formats_are_named(landing, resources, name, content, expected):
    _write(landing, "operational", "2024-05-05", name, content)
    result = materialize_range([bronze_operational], resources, "2024-Q2", raise_on_error=False)
    assert not result.success
    message = result.get_step_failure_events()[0].step_failure_data.user_failure_data.description
    assert expected in message and f"/operational/2024-05-05/{name}" in message


def _parquet(landing: Path, day: str, name: str, columns: dict[str, pa.Array]) -> None:
    path = landing / "operational" / day / name
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path)


@pytest.mark.parametrize("amount_types", [(pa.int32(), pa.int32()), (pa.int32(), pa.float64())])
def test_a_quarters_parquet_files_keep_their_own_values_and_spellings(
    landing, resources, platform_config, amount_types
):
    """Files whose types agree are read together (one schema job), the others one by one: the text
    of every value is its own file's either way, and names match whatever their case or spaces."""
    first, second = amount_types
    _parquet(landing, "2024-04-02", "a.parquet", {"Customer_ID": pa.array(["P1"]), "amount": pa.array([5], first)})
    _parquet(
        landing,
        "2024-04-03",
        "b.parquet",
        {"customer_id": pa.array(["P2"]), "amount": pa.array([2.5 if second == pa.float64() else 2], second)},
    )
    _parquet(landing, "2024-04-04", "c.parquet", {" CHANNEL ": pa.array(["web"]), "customer_id": pa.array(["P3"])})
    result = materialize_range([bronze_operational], resources, "2024-Q2")
    assert result.success
    frame = _bronze(platform_config, "operational", "2024-Q2").set_index("customer_id")
    expected = "2.5" if second == pa.float64() else "2"
    assert frame["amount"].to_dict() == {"P1": "5", "P2": expected, "P3": None}
    assert frame["channel"].to_dict() == {"P1": None, "P2": None, "P3": "web"}
    assert frame.loc["P2", "_source_file"].endswith("/operational/2024-04-03/b.parquet")


@pytest.mark.parametrize(
    "bad, content, expected",
    [
        ("broken.parquet", b"PAR1 definitely not parquet", "is not readable Parquet"),
        ("foreign.parquet", None, "none of"),
    ],
)
def test_a_bad_parquet_file_among_others_is_named(landing, resources, bad, content, expected):
    _parquet(landing, "2024-05-01", "good.parquet", {"customer_id": pa.array(["C1"])})
    if content is None:
        _parquet(landing, "2024-05-05", bad, {"foo": pa.array(["x"])})
    else:
        _write(landing, "operational", "2024-05-05", bad, content)
    result = materialize_range([bronze_operational], resources, "2024-Q2", raise_on_error=False)
    assert not result.success
    message = result.get_step_failure_events()[0].step_failure_data.user_failure_data.description
    assert expected in message and f"/operational/2024-05-05/{bad}" in message


def test_bronze_matches_the_generated_landing_zone_exactly(resources, platform_config):
    from batch_platform.sample_data import generate_landing

    quarters = quarter_range("2024-Q1", "2024-Q4")
    manifest = generate_landing(
        platform_config.landing_root, first_quarter=quarters[0], last_quarter=quarters[-1], customers=120, seed=11
    )
    result = materialize_range(bronze_assets, resources, quarters[0], quarters[-1])
    assert result.success

    for source, counts in manifest["rows_by_source_quarter"].items():
        for quarter in quarters:
            assert len(_bronze(platform_config, source, quarter)) == counts.get(quarter, 0), (source, quarter)
    events = {
        (tuple(e.materialization.asset_key.path), e.materialization.partition): e.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    assert (
        events[(("bronze", "logs"), "2024-04-01")]["dagster/row_count"].value
        == manifest["rows_by_source_quarter"]["logs"]["2024-Q2"]
    )
    files = [
        f for f in manifest["files"] if f["source"] == "operational" and f["path"].split("/")[1].startswith("2024-0")
    ]
    kinds = {f["format"] for f in files}
    assert {"csv", "json", "parquet"} <= kinds
    assert json.loads(json.dumps(manifest))  # manifest is plain JSON


# ------------------------------------------------------------------------------- text input
HEADER = "customer_id,event_time,amount,currency,channel\n"


def _failure(result) -> str:
    assert not result.success
    return result.get_step_failure_events()[0].step_failure_data.user_failure_data.description


def test_a_file_that_is_not_utf8_fails_naming_line_and_byte_and_publishes_nothing(landing, resources, platform_config):
    """Latin-1 bytes would read as U+FFFD: CÉSAR-01 changed, JOSÉ-02 and JOSÈ-02 one customer."""
    _write(landing, "operational", "2024-01-10", "good.csv", HEADER + "C1,2024-01-02,1,eur,web\n")
    assert materialize_range([bronze_operational], resources, "2024-Q1").success
    before = _bronze(platform_config, "operational", "2024-Q1")

    rows = "CÉSAR-01,2024-01-03,1,eur,web\nJOSÉ-02,2024-01-04,2,eur,web\nJOSÈ-02,2024-01-05,3,eur,web\n"
    _write(landing, "operational", "2024-01-11", "latin1.csv", (HEADER + rows).encode("latin-1"))
    message = _failure(materialize_range([bronze_operational], resources, "2024-Q1", raise_on_error=False))

    assert "/operational/2024-01-11/latin1.csv" in message
    assert "not valid UTF-8" in message and "line 2, byte offset 48" in message and "\\xc9" in message
    pd.testing.assert_frame_equal(_bronze(platform_config, "operational", "2024-Q1"), before)


@pytest.mark.parametrize(
    "name, content, where",
    [
        (
            "lines.json",
            b'{"customer_id": "C1"}\n' + '{"customer_id": "JOSÉ-02"}\n'.encode("latin-1"),
            "line 2, byte offset 42",
        ),
        ("header.csv", "customer_id,région\nC1,x\n".encode("latin-1"), "line 1, byte offset 13"),
        (
            "late.csv",
            (HEADER + "C1,2024-05-01,1,eur,web\n" * 3000).encode() + b"C2,2024-05-01,1,eur,w\xffb\n",
            "line 3002, byte offset 72068",
        ),
    ],
    ids=["lines.json", "header.csv", "late.csv"],
)
def test_bad_bytes_anywhere_in_a_text_file_are_found(landing, resources, name, content, where):
    _write(landing, "operational", "2024-05-05", name, content)
    message = _failure(materialize_range([bronze_operational], resources, "2024-Q2", raise_on_error=False))
    assert f"/operational/2024-05-05/{name}" in message
    assert "not valid UTF-8" in message and where in message


def test_valid_rfc4180_csv_is_read_exactly(landing, resources, platform_config):
    """Quoted delimiters, doubled quotes, line breaks inside quotes (also in a file's last field),
    non-ASCII text and a literal U+FFFD all arrive in bronze as written; a file of CRLF lines too."""
    _write(
        landing,
        "operational",
        "2024-01-10",
        "quoted.csv",
        HEADER
        + '"C1","2024-01-02","1,5","eur","web\nshop"\n'
        + 'C2,2024-01-03,2,"say ""hi""",app\n'
        + "C\ufffd3,2024-01-04,3,eur,web\n"
        + "CÉSAR-01,2024-01-05,4,eur,web\nJOSÉ-02,2024-01-06,5,eur,web\nJOSÈ-02,2024-01-07,6,eur,web\n"
        + 'C7,2024-01-08,7,eur,"app"',
    )
    _write(landing, "operational", "2024-01-11", "last.csv", HEADER + 'C8,2024-01-09,8,eur,"two\nlines"')
    crlf = HEADER.replace("\n", "\r\n") + 'C9,2024-01-10,9,eur,"in\r\nstore"\r\nC10,2024-01-11,10,eur,web\r\n'
    _write(landing, "operational", "2024-01-12", "crlf.csv", crlf)
    assert materialize_range([bronze_operational], resources, "2024-Q1").success
    frame = _bronze(platform_config, "operational", "2024-Q1").set_index("customer_id")
    expected = ["C1", "C2", "C\ufffd3", "CÉSAR-01", "JOSÉ-02", "JOSÈ-02", "C7", "C8", "C9", "C10"]
    assert sorted(frame.index) == sorted(expected)
    assert frame.loc["C1", "amount"] == "1,5" and frame.loc["C1", "channel"] == "web\nshop"
    assert frame.loc["C2", "currency"] == 'say "hi"'
    assert frame.loc["C7", "channel"] == "app" and frame.loc["C8", "channel"] == "two\nlines"
    # RFC 4180's own line break, CRLF, ends a record; inside quotes it reads as LF (docs/pipeline.md)
    assert frame.loc["C9", "channel"] == "in\nstore" and frame.loc["C10", "channel"] == "web"


@pytest.mark.parametrize(
    "content, line",
    [
        (HEADER + 'C1,2024-01-02,1,eur,web\nC2,2024-01-03,2,eur,"web\nC3,2024-01-04,3,eur,web\n', 3),
        (HEADER + 'C1,2024-01-02,1,eur,web\nC2,2024-01-03,2,eur,"web', 3),
        (HEADER + 'C1,2024-01-02,1,eur,"web\n', 2),
        (HEADER + '"C1\nfirst",2024-01-02,1,eur,web\nC2,"2024-01-03,2,eur,web\nC3,2024-01-04,3,eur,web\n', 4),
    ],
    ids=["last-field", "end-of-file", "end-of-file-newline", "after-a-quoted-line-break"],
)
def test_an_unterminated_quote_fails_naming_file_and_line(landing, resources, content, line):
    _write(landing, "operational", "2024-01-10", "open.csv", content)
    message = _failure(materialize_range([bronze_operational], resources, "2024-Q1", raise_on_error=False))
    assert "/operational/2024-01-10/open.csv" in message
    assert f"line {line}" in message and "never closed" in message


def test_files_missing_contract_columns_are_named_in_metadata_and_a_warning(landing, resources, platform_config):
    _write(landing, "operational", "2024-01-10", "full.csv", HEADER + "C1,2024-01-02,1,eur,web\n")
    _write(
        landing, "operational", "2024-01-11", "no_id.csv", "event_time,amount,currency,channel\n2024-01-03,2,eur,web\n"
    )
    _write(
        landing,
        "operational",
        "2024-02-01",
        "lines.json",
        '{"customer_id": "C3", "event_time": "2024-02-01", "amount": "3", "currency": "eur"}\n',
    )
    _parquet(landing, "2024-02-02", "few.parquet", {"customer_id": pa.array(["C4"]), "device": pa.array(["ios"])})
    _write(landing, "operational", "2024-04-02", "full.csv", HEADER + "C5,2024-04-02,5,eur,web\n")
    check_key = dg.AssetCheckKey(bronze_operational.key, "arrival_and_schema")
    with dg.instance_for_test() as instance:
        result = materialize_range([bronze_operational], resources, "2024-Q1", "2024-Q2", instance=instance)
        status = instance.event_log_storage.get_asset_check_partition_info([check_key])
    assert result.success

    frame = _bronze(platform_config, "operational", "2024-Q1")
    assert len(frame) == 4 and frame["customer_id"].isna().sum() == 1
    assert frame.set_index("customer_id").loc["C4", "device"] == "ios"

    metadata = {
        e.materialization.partition: e.materialization.metadata for e in result.get_asset_materialization_events()
    }
    missing = {
        path.rsplit("/", 1)[-1]: columns for path, columns in metadata["2024-01-01"]["missing_columns"].value.items()
    }
    assert missing == {
        "no_id.csv": ["customer_id"],
        "lines.json": ["channel"],
        "few.parquet": ["event_time", "amount", "currency", "channel"],
    }
    assert metadata["2024-01-01"]["files_missing_columns"].value == 3
    assert metadata["2024-01-01"]["files_missing/customer_id"].value == 1
    assert metadata["2024-01-01"]["files_missing/channel"].value == 2
    assert metadata["2024-04-01"]["files_missing_columns"].value == 0
    assert metadata["2024-04-01"]["missing_columns"].value == {}

    assert check_key in bronze_operational.check_keys
    (spec,) = [spec for spec in bronze_operational.check_specs if spec.key == check_key]
    assert spec.partitions_def == quarterly
    evaluations = {e.partition: e for e in result.get_asset_check_evaluations() if e.check_name == "arrival_and_schema"}
    assert set(evaluations) == {"2024-01-01", "2024-04-01"}
    warned, clean = evaluations["2024-01-01"], evaluations["2024-04-01"]
    assert not warned.passed and warned.severity == dg.AssetCheckSeverity.WARN
    assert "no_id.csv" in warned.description and "customer_id" in warned.description
    assert warned.metadata["files_missing_columns"].value == 3
    # 2024-Q2 lacks no contract column, but the Parquet file's extra column of 2024-Q1 is gone
    assert clean.metadata["files_missing_columns"].value == 0
    assert not clean.passed and clean.metadata["columns_disappeared"].value == ["device"]
    assert clean.description == "2024-Q2: column(s) device disappeared since 2024-Q1"
    for key, evaluation in evaluations.items():
        assert evaluation.target_materialization_data.run_id == result.run_id, key
    # what the UI shows per quarter: each quarter's latest result, current for its latest materialisation
    assert {info.partition_key: (info.latest_execution_status.value, info.is_current) for info in status} == {
        "2024-01-01": ("FAILED", True),
        "2024-04-01": ("FAILED", True),
    }


def test_arrival_records_each_quarter_and_warns_when_a_source_stops_or_its_columns_change(landing, resources):
    for day in ("2024-01-10", "2024-01-10", "2024-02-20"):
        _write(landing, "operational", day, f"{day}-{random.random()}.csv", HEADER + "C1,2024-01-02,1,eur,web\n")
    _write(
        landing, "operational", "2024-04-02", "extra.csv", HEADER.strip() + ",loyalty\nC2,2024-04-02,2,eur,web,gold\n"
    )
    _write(
        landing,
        "operational",
        "2024-05-03",
        "extra.json",
        '{"customer_id": "C3", "event_time": "2024-05-03", "amount": "3", "currency": "eur", "channel": "app", '
        '"promo": "x"}\n',
    )
    _write(landing, "operational", "2024-12-30", "late.csv", HEADER + "C4,2024-12-30,4,eur,web\n")
    with dg.instance_for_test() as instance:
        first = materialize_range([bronze_operational], resources, "2024-Q1", "2024-Q3", instance=instance)
        # a later run of one quarter compares it with what the instance recorded of the quarters before it
        second = materialize_range([bronze_operational], resources, "2024-Q4", instance=instance)

    metadata = {
        e.materialization.partition: e.materialization.metadata for e in first.get_asset_materialization_events()
    }
    q1 = metadata["2024-01-01"]
    assert (q1["files_read"].value, q1["days_with_files"].value) == (3, 2)
    assert q1["first_arrival"].value == datetime(2024, 1, 10, tzinfo=UTC).timestamp()
    assert q1["last_arrival"].value == datetime(2024, 2, 20, tzinfo=UTC).timestamp()
    assert metadata["2024-04-01"]["columns_seen"].value == sorted([*OPERATIONAL, "loyalty", "promo"])
    assert metadata["2024-07-01"]["files_read"].value == 0 and metadata["2024-07-01"]["first_arrival"].value is None

    found = {
        e.metadata["quarter"].value: e
        for result in (first, second)
        for e in result.get_asset_check_evaluations()
        if e.check_name == "arrival_and_schema"
    }
    assert found["2024-Q1"].passed and found["2024-Q1"].metadata["columns_compared_with"].value == "none"
    assert not found["2024-Q2"].passed
    assert found["2024-Q2"].description == "2024-Q2: column(s) loyalty, promo appeared since 2024-Q1"
    assert not found["2024-Q3"].passed
    assert found["2024-Q3"].description == "2024-Q3: no file arrived, though 2024-Q2 had 2"
    assert not found["2024-Q4"].passed
    assert found["2024-Q4"].description == "2024-Q4: column(s) loyalty, promo disappeared since 2024-Q2"
    assert found["2024-Q4"].metadata["earlier_quarters_with_files"].value == 2


@pytest.mark.parametrize(
    "name, content",
    [
        ("random.csv", random.Random(23).randbytes(4096)),
        # mtime=0: the same bytes whenever it is built (each xdist worker builds its own, and their
        # test ids must agree)
        ("archive.csv", gzip.compress((HEADER + "C1,2024-05-01,1,eur,web\n" * 500).encode(), mtime=0)),
        ("binary_rows.csv", HEADER.encode() + bytes(range(256)) * 8),
        ("long_row.csv", (HEADER + "C1," + "x" * 2000 + "\n").encode()),
    ],
    ids=["random.csv", "archive.csv", "binary_rows.csv", "long_row.csv"],
)
def test_an_unreadable_file_is_quoted_in_a_short_escaped_excerpt(landing, resources, name, content):
    _write(landing, "operational", "2024-05-05", name, content)
    message = _failure(materialize_range([bronze_operational], resources, "2024-Q2", raise_on_error=False))
    path = f"/operational/2024-05-05/{name}"
    assert path in message
    assert message.isascii() and all(c.isprintable() for c in message.replace("\n", "")), message
    assert len(re.sub(rf"\S*{re.escape(path)}", "", message)) < 400, message
    assert "x" * 61 not in message
