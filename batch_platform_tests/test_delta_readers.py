"""Reading the lake without Spark goes through Delta (SPEC.md, "Lake"): `load_training_set`,
`load_scores` and the other `consume` readers, `batch-platform report` and `history`, with delta-rs
(`batch_platform.delta`), on real Delta tables that Spark wrote as the IO manager commits
(`delta_fixtures`), never by listing Parquet files; time travel by version and by time, with clear
errors for what the table no longer keeps (`storage.delta.retention_days`); and the golden customer
record at a moment (`load_customer_history`), on a `gold/customer_history` written by hand with
delta-rs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import yaml
from deltalake import DeltaTable

import batch_platform
from batch_platform import delta, delta_log
from batch_platform.cli import main
from batch_platform.config import S3Config, parse_config
from batch_platform.consume import (
    PartitionNotMaterialised,
    load_customer_history,
    load_out_of_time_rows,
    load_scores,
    load_training_set,
)
from batch_platform.schemas.customer_history import CustomerHistory
from batch_platform.schemas.gold import TrainingSet
from batch_platform.tables import TABLES
from batch_platform_tests.delta_fixtures import (
    SCORES,
    TRAINING,
    by_customer,
    copy_lake,
    frame_of,
    utc,
    write_quarters,
)
from batch_platform_tests.s3_fixtures import S3Server


def config_file(tmp_path: Path, lake_root: str, **storage) -> Path:
    raw = {"storage": {"lake_root": lake_root, "landing_root": str(tmp_path / "landing"), **storage}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


# ------------------------------------------------------------------------------ storage options
def test_delta_rs_gets_storage_s3_with_its_credentials_from_the_environment(monkeypatch):
    monkeypatch.setenv("DELTA_TEST_KEY", "AKIA-test")
    monkeypatch.setenv("DELTA_TEST_SECRET", "s3cr3t/+=")
    path_style = S3Config(
        endpoint_url="http://127.0.0.1:8333", region="eu-west-1", path_style_access=True,
        access_key_id="${DELTA_TEST_KEY}", secret_access_key="${DELTA_TEST_SECRET}",
    )  # fmt: skip
    assert delta.table_location("s3a://lake/prefix/gold/training_set") == "s3://lake/prefix/gold/training_set"
    assert delta.storage_options("s3a://lake/prefix/gold/training_set", path_style) == {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:8333",
        "AWS_ALLOW_HTTP": "true",
        "AWS_REGION": "eu-west-1",
        "AWS_VIRTUAL_HOSTED_STYLE_REQUEST": "false",
        "AWS_ACCESS_KEY_ID": "AKIA-test",
        "AWS_SECRET_ACCESS_KEY": "s3cr3t/+=",
    }
    hosted = delta.storage_options("s3a://lake/x", S3Config(endpoint_url="https://s3.example.com", region="r"))
    assert hosted == {
        "AWS_ENDPOINT_URL": "https://lake.s3.example.com",  # delta-rs wants the bucket in a virtual-hosted endpoint
        "AWS_REGION": "r",
        "AWS_VIRTUAL_HOSTED_STYLE_REQUEST": "true",
    }
    assert delta.storage_options("s3a://lake/x") == {"AWS_VIRTUAL_HOSTED_STYLE_REQUEST": "true"}  # AWS, default chain
    assert delta.storage_options("/data/lake/gold/training_set", path_style) == {}
    assert delta.table_location("data/lake") == os.path.abspath("data/lake")


# --------------------------------------------------------------------------------- reading
def test_a_quarter_reads_at_the_latest_version_at_a_version_or_as_of_a_time(delta_lake):
    root, times = delta_lake.root, delta_lake.times
    latest = frame_of(delta_lake.rows[(TRAINING, "2024-Q2", 1)], "2024-Q2")
    first = frame_of(delta_lake.rows[(TRAINING, "2024-Q2", 0)], "2024-Q2")
    for frame in (
        load_training_set("2024-Q2", lake_root=root),
        batch_platform.load_training_set("2024-04-01", lake_root=Path(root)),
        load_training_set("2024-Q2", lake_root=root, version=1),
    ):
        pd.testing.assert_frame_equal(by_customer(frame), latest, check_dtype=False)
    between = times[(TRAINING, 0)] + (times[(TRAINING, 1)] - times[(TRAINING, 0)]) / 2
    for frame in (
        load_training_set("2024-Q2", lake_root=root, version=0),
        load_training_set("2024-Q2", lake_root=root, as_of=utc(between)),
        load_training_set("2024-Q2", lake_root=root, as_of=times[(TRAINING, 0)]),
    ):
        pd.testing.assert_frame_equal(by_customer(frame), first, check_dtype=False)
    later = load_training_set("2024-Q2", lake_root=root, as_of=times[(TRAINING, 1)] + timedelta(days=365))
    pd.testing.assert_frame_equal(by_customer(later), latest, check_dtype=False)
    assert len(first) == 30 and len(latest) == 32 and set(first.customer_id).isdisjoint(latest.customer_id)
    # 2024-Q3 was not replaced: every version holds the same rows.
    q3 = [by_customer(load_training_set("2024-Q3", lake_root=root, version=v)) for v in (0, 1)]
    pd.testing.assert_frame_equal(q3[0], q3[1])

    frame = load_training_set("2024-Q2", lake_root=root)
    assert list(frame.columns)[-1] == "quarter" and set(frame["quarter"]) == {"2024-Q2"}
    assert str(frame["feature_cutoff"].dtype) == "datetime64[us, UTC]"
    assert str(frame["txn_count"].dtype) == "int64" and str(frame["recency_days"].dtype) == "int32"
    scores = load_scores("2024-Q3", lake_root=root, version=0)
    pd.testing.assert_frame_equal(
        by_customer(scores), frame_of(delta_lake.rows[(SCORES, "2024-Q3", 0)], "2024-Q3"), check_dtype=False
    )


def test_a_quarter_materialised_empty_is_an_empty_frame_and_one_never_materialised_raises(delta_lake):
    root = delta_lake.root
    empty = load_training_set("2024-Q1", lake_root=root)
    declared = [f.name for f in TrainingSet.to_structtype().fields if f.name != "quarter"]
    assert empty.empty and list(empty.columns) == [*declared, "quarter"]
    assert str(empty["feature_cutoff"].dtype) == "datetime64[us, UTC]" and str(empty["label"].dtype) == "int32"
    assert load_training_set("2024-Q1", lake_root=root, version=0).empty

    with pytest.raises(PartitionNotMaterialised) as never:
        load_training_set("2024-Q4", lake_root=root)
    message = str(never.value)
    assert message.startswith("gold/training_set has no partition 2024-Q4: the Delta table ")
    assert "holds 2024-Q1, 2024-Q2, 2024-Q3" in message and "training_set_job" in message
    assert isinstance(never.value, FileNotFoundError)
    with pytest.raises(PartitionNotMaterialised, match="ml/churn_scores has no partition 2024-Q1"):
        load_scores("2024-Q1", lake_root=root)  # the scores never wrote 2024-Q1, not even empty
    with pytest.raises(PartitionNotMaterialised, match="there is no Delta table at .*ml/churn_model"):
        batch_platform.load_model_card("2024-Q2", lake_root=root)


def test_the_folder_keeps_replaced_files_that_no_reader_sees(delta_lake):
    """A Delta folder holds files that are no longer part of the table: listing it would read 2024-Q2
    twice over (the old code's way); the readers take the files of the log's version."""
    folder = Path(delta_lake.root, TRAINING, "quarter=2024-Q2")
    on_disk = {p.name: p.stat().st_size for p in folder.glob("*.parquet")}
    opened = delta.open_table(delta_lake.uri(TRAINING))
    current = delta.quarter_files(opened, "2024-Q2")
    assert {Path(f.path).name: f.size for f in current}.items() < on_disk.items()
    assert all(f.path.startswith("quarter=2024-Q2/") for f in current)
    assert sum(f.rows for f in current) == 32 == delta.rows_per_quarter(opened)["2024-Q2"]
    assert len(pd.read_parquet(folder)) == 30 + 32  # what a listing of the folder reads
    first = delta.quarter_files(delta.open_table(delta_lake.uri(TRAINING), version=0), "2024-Q2")
    assert {f.path for f in first}.isdisjoint({f.path for f in current})
    assert delta.materialised_quarters(opened) == ["2024-Q1", "2024-Q2", "2024-Q3"]
    assert delta.rows_per_quarter(opened) == {"2024-Q2": 32, "2024-Q3": 35}  # 2024-Q1 has no file


def test_history_lists_each_commit_with_its_run_quarters_and_rows(delta_lake):
    commits = delta_log.history(delta.open_table(delta_lake.uri(TRAINING)))
    assert [(c.version, c.run_id, c.quarters, c.rows) for c in commits] == [
        (1, "run-b", ["2024-Q2"], 32),
        (0, "run-a", ["2024-Q1", "2024-Q2", "2024-Q3"], 65),
    ]
    assert commits[1].rows_per_quarter == {"2024-Q1": 0, "2024-Q2": 30, "2024-Q3": 35}
    assert commits[0].time > commits[1].time and commits[0].time.tzinfo is not None
    assert {c.operation for c in commits} == {"WRITE"}
    at_first = delta_log.history(delta.open_table(delta_lake.uri(TRAINING), version=0))
    assert [(c.version, c.run_id) for c in at_first] == [(0, "run-a")]


def test_the_out_of_time_rows_read_each_table_as_of_a_time(delta_lake):
    root, scores_time = delta_lake.root, delta_lake.times[(SCORES, 0)]
    rows, labels_exist = load_out_of_time_rows("2024-Q2", lake_root=root)
    assert not labels_exist and len(rows) == 20 and rows["label"].isna().all()  # no gold/churn_labels yet
    before, _ = load_out_of_time_rows("2024-Q2", lake_root=root, as_of=scores_time - timedelta(milliseconds=1))
    assert before.empty and list(before.columns) == ["customer_id", "churn_probability", "label", "recency_days"]
    at, _ = load_out_of_time_rows("2024-Q2", lake_root=root, as_of=scores_time)
    assert len(at) == 20


# ---------------------------------------------------------------------------------- errors
def test_a_version_or_time_the_table_does_not_have_is_one_clear_line(delta_lake):
    root = delta_lake.root
    with pytest.raises(delta.VersionNotAvailable) as after:
        load_training_set("2024-Q2", lake_root=root, version=5)
    assert str(after.value) == f"{root}/{TRAINING} has no version 5: its latest version is 1"
    with pytest.raises(PartitionNotMaterialised) as before:
        load_training_set("2024-Q2", lake_root=root, as_of="2020-01-01")
    first = delta_lake.times[(TRAINING, 0)].strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f"did not exist at 2020-01-01T00:00:00Z: its first commit, version 0, was made at {first}" in str(
        before.value
    )
    with pytest.raises(ValueError, match="as_of='last week' is not a time: write ISO-8601"):
        load_training_set("2024-Q2", lake_root=root, as_of="last week")
    with pytest.raises(ValueError, match="version= or as_of=, not both"):
        load_training_set("2024-Q2", lake_root=root, version=0, as_of="2026-01-01")


VACUUMED_CHILD = """
import sys
from batch_platform import delta, load_training_set
from batch_platform.config import load_config

config = load_config(sys.argv[1])
for quarter, version in (("2024-Q2", 0), ("2024-Q3", 0), ("2024-Q2", 1)):
    try:
        print(quarter, version, "rows", len(load_training_set(quarter, version=version, config=config)))
    except delta.VersionNotAvailable as exc:
        print(quarter, version, "error", exc)
"""


def test_a_vacuumed_version_names_the_version_and_the_retention_and_the_process_ends_well(delta_lake, tmp_path):
    """VACUUM (delta-rs's, retention forced to 0) deletes the files version 0 held of 2024-Q2, which
    version 1 replaced; 2024-Q3's files are still current. Run in a process of its own: it ends with
    its own exit code, not an abort."""
    lake = copy_lake(delta_lake, tmp_path / "lake")
    removed = DeltaTable(lake.uri(TRAINING)).vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
    assert removed and all("quarter=2024-Q2/" in path for path in removed)
    config = config_file(tmp_path, lake.root, delta={"retention_days": 30})
    done = subprocess.run(
        [sys.executable, "-c", VACUUMED_CHILD, str(config)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0] == (
        f"2024-Q2 0 error version 0 of {lake.root}/{TRAINING} is no longer available: {len(removed)} of its files "
        "of 2024-Q2 were deleted by VACUUM, which removes the files a commit replaced once "
        "storage.delta.retention_days = 30 days have passed; read a newer version (batch-platform history lists them)"
    )
    assert lines[1:] == ["2024-Q3 0 rows 35", "2024-Q2 1 rows 32"]
    assert "Traceback" not in done.stderr


def test_a_version_whose_log_was_cleaned_up_names_the_version_the_oldest_kept_and_the_retention(
    delta_lake, tmp_path, spark
):
    """Delta's log cleanup (delta-rs's `cleanup_metadata`, with the table's log retention set to 0 by
    Spark) removes the commits before the last checkpoint: their versions no longer open."""
    lake = copy_lake(delta_lake, tmp_path / "lake")
    uri = lake.uri(TRAINING)
    spark.sql(
        f"ALTER TABLE delta.`{uri}` SET TBLPROPERTIES ("
        "'delta.logRetentionDuration' = 'interval 0 seconds', 'delta.deletedFileRetentionDuration' = 'interval 0 seconds')"
    )
    table = DeltaTable(uri)
    table.create_checkpoint()
    table.cleanup_metadata()
    assert not Path(uri, "_delta_log", "00000000000000000000.json").exists()
    for kwargs, what in (({"version": 0}, "version 0"), ({"as_of": lake.times[(TRAINING, 0)]}, "its version as of")):
        with pytest.raises(delta.VersionNotAvailable) as gone:
            load_training_set("2024-Q2", lake_root=lake.root, **kwargs)
        message = str(gone.value)
        assert message.startswith(f"{what}") and f"of {uri} is no longer available" in message
        assert "storage.delta.retention_days = 400 days; the oldest version kept is 2" in message
        assert "\n" not in message and "Kernel" not in message
    assert len(load_training_set("2024-Q2", lake_root=lake.root, version=2)) == 32


# ------------------------------------------------------------------------------- command line
def test_report_counts_rows_per_quarter_from_the_delta_log_without_reading_data(
    delta_lake, tmp_path, monkeypatch, capsys
):
    lake = copy_lake(delta_lake, tmp_path / "lake")
    for data in Path(lake.root).rglob("*.parquet"):  # the report must not open a data file
        data.write_bytes(b"not parquet")
    monkeypatch.setenv("BATCH_PLATFORM_CONFIG", str(config_file(tmp_path, lake.root)))
    assert main(["report", "--from", "2024-Q1", "--to", "2024-Q4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("table "))
    rows = [line.split()[0] for line in lines[header + 1 : header + 1 + len(TABLES)]]
    assert rows == [table.name for table in TABLES.values()]  # the declarations', the customers source's too
    cells = {line.split()[0]: line.split()[1:] for line in lines if line.startswith(("gold/", "ml/", "bronze/"))}
    assert cells[TRAINING] == ["0", "32", "35", "-", "1"]  # 2024-Q1 materialised empty; version 1
    assert cells[SCORES] == ["-", "20", "21", "-", "0"]
    assert cells["bronze/operational"] == ["-", "-", "-", "-", "-"]
    listed = lines[lines.index(f"training sets (Delta table {lake.root}/{TRAINING}, version 1):") + 1 :][:3]
    assert [line.split() for line in listed] == [
        ["2024-Q1", "0", "rows"],
        ["2024-Q2", "32", "rows"],
        ["2024-Q3", "35", "rows"],
    ]
    assert any(line.startswith("read one:") and 'load_training_set("2024-Q3")' in line for line in lines)


def test_history_lists_a_tables_commits_and_refuses_an_unknown_table_in_one_line(
    delta_lake, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("BATCH_PLATFORM_CONFIG", str(config_file(tmp_path, delta_lake.root)))
    assert main(["history", TRAINING]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        f"{TRAINING}: Delta table {delta_lake.root}/{TRAINING}, version 1; history kept "
        "storage.delta.retention_days = 400 days"
    )
    assert lines[1].split() == ["version", "time", "(UTC)", "operation", "run", "id", "quarters", "replaced", "rows"]
    times = [delta_lake.times[(TRAINING, v)].strftime("%Y-%m-%d %H:%M:%S") for v in (1, 0)]
    assert lines[2].split() == ["1", *times[0].split(), "WRITE", "run-b", "2024-Q2", "32"]
    assert lines[3].split() == ["0", *times[1].split(), "WRITE", "run-a", "2024-Q1…2024-Q3", "65"]

    assert main(["history", TRAINING, "--limit", "1"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()[2:] if line.strip()][:2] == ["1", "read"]
    with pytest.raises(SystemExit):
        main(["history", TRAINING, "--limit", "0"])
    assert "'0' is not a positive whole number" in capsys.readouterr().err

    assert main(["history", "ml/churn_model"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("batch-platform history: ml/churn_model is not in the lake yet") and "\n" not in err

    monkeypatch.setenv("BATCH_PLATFORM_CONFIG", str(tmp_path / "missing.yaml"))  # refused before the config
    assert main(["history", "gold/no_such_table"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("batch-platform history: 'gold/no_such_table' is not a lake table")
    assert "bronze/operational, " in err[0] and "gold/training_set" in err[0] and "ml/churn_scores" in err[0]


# -------------------------------------------------------------------------------------- S3
@pytest.mark.s3
def test_an_s3_lake_reads_through_delta_with_storage_s3_also_at_an_older_version(
    delta_lake, s3_server: S3Server, tmp_path, monkeypatch
):
    client, bucket = s3_server.client(), "delta-readers"
    s3_server.bucket(bucket)
    for path in Path(delta_lake.root).rglob("*"):
        if path.is_file():
            client.upload_file(str(path), bucket, f"lake/{path.relative_to(delta_lake.root)}")
    monkeypatch.setenv("DELTA_READERS_KEY", s3_server.access_key_id)
    monkeypatch.setenv("DELTA_READERS_SECRET", s3_server.secret_access_key)
    config = parse_config({"storage": {"lake_root": f"s3a://{bucket}/lake", "s3": {
        "endpoint_url": s3_server.endpoint_url, "region": s3_server.region, "path_style_access": True,
        "access_key_id": "${DELTA_READERS_KEY}", "secret_access_key": "${DELTA_READERS_SECRET}"}}})  # fmt: skip
    for version in (None, 0):
        frame = load_training_set("2024-Q2", config=config, version=version)
        expected = frame_of(delta_lake.rows[(TRAINING, "2024-Q2", 1 if version is None else 0)], "2024-Q2")
        pd.testing.assert_frame_equal(by_customer(frame), expected, check_dtype=False)
    assert load_training_set("2024-Q1", config=config).empty
    with pytest.raises(PartitionNotMaterialised):
        load_training_set("2024-Q4", config=config)
    monkeypatch.setenv("DELTA_READERS_SECRET", "wrong")
    with pytest.raises(delta.DeltaReadError, match=f"cannot read the Delta table s3a://{bucket}/lake/{TRAINING}"):
        load_training_set("2024-Q2", config=parse_config(config.model_dump(exclude={"source_path", "base_dir"})))


# ---------------------------------------------------------------------- the API's latest versions
def test_latest_versions_follow_new_commits_and_answer_each_call_from_one_version(delta_lake, tmp_path):
    """`LatestVersions` (the datasets API's view) keeps each table open and reads only new commits;
    threads asking while a commit lands each get one whole version, never an error or a mix."""
    import threading

    from batch_platform.lake_files import Lake, LatestVersions

    lake = copy_lake(delta_lake, tmp_path / "lake")
    versions = LatestVersions(Lake(lake.root))
    assert versions.get("gold/customer_features") is None
    first = versions.get(TRAINING)
    assert (first.version, first.quarters, first.rows) == (1, ["2024-Q1", "2024-Q2", "2024-Q3"], {
        "2024-Q1": 0, "2024-Q2": 32, "2024-Q3": 35})  # fmt: skip
    assert first.files["2024-Q1"] == [] and sum(f.rows for f in first.files["2024-Q2"]) == 32
    assert versions.get(TRAINING) is first  # nothing committed: not described again

    seen, errors, done = set(), [], threading.Event()

    def ask():
        while not done.is_set():
            try:
                got = versions.get(TRAINING)
                seen.add((got.version, got.rows["2024-Q2"], sum(f.rows for f in got.files["2024-Q2"])))
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    frame = frame_of(delta_lake.rows[(TRAINING, "2024-Q2", 0)], "2024-Q2").head(7)
    write_quarters(lake.root, TRAINING, frame, run_id="run-c")  # version 2: 2024-Q2 holds 7 rows
    write_quarters(lake.root, "gold/customer_features", pd.DataFrame({"customer_id": ["C1"], "quarter": ["2024-Q3"]}))
    done.set()
    for thread in threads:
        thread.join(30)
    assert not errors and seen <= {(1, 32, 32), (2, 7, 7)}
    assert versions.get(TRAINING).version == 2 and versions.get(TRAINING).quarters == first.quarters
    assert versions.every()["gold/customer_features"] is not None


# ------------------------------------------------------------------------- the golden record at t
HISTORY = "gold/customer_history"
HISTORY_COLUMNS_READ = [f.name for f in CustomerHistory.to_structtype().fields if f.name != "quarter"]
START_C1 = datetime(2024, 2, 1, 9, tzinfo=UTC)
CHANGE_C1 = datetime(2024, 5, 1, 9, tzinfo=UTC)


def history_row(quarter, customer, version, valid_from, valid_to, contract, charges) -> dict:
    return {
        "customer_id": customer, "version": version, "valid_from": valid_from, "valid_to": valid_to,
        "is_current": valid_to is None, "email": f"{customer.lower()}@x.com", "country": "DE",
        "signup_date": date(2020, 1, 15), "contract": contract, "payment_method": "cash",
        "monthly_charges": charges, "quarter": quarter,
    }  # fmt: skip


def history_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows in `gold/customer_history`'s column types (Spark's: int32 version, UTC microseconds)."""
    frame = pd.DataFrame(rows)
    for column in ("valid_from", "valid_to"):
        frame[column] = pd.to_datetime(frame[column], utc=True).astype("datetime64[us, UTC]")
    return frame.astype({"version": "int32"})


@pytest.fixture(scope="module")
def history_lake(tmp_path_factory) -> str:
    """`gold/customer_history` by hand, committed by delta-rs as the IO manager commits:

    v0  2024-Q1  C1 v1 [02-01 09:00, –)                     known at the end of Q1
                 C2 v1 [03-01, –)
        2024-Q2  C1 v1 [02-01 09:00, 05-01 09:00) one-year 60, v2 [05-01 09:00, –) one-year 65
                 C2 v1 [03-01, –)
                 C3 v1 [03-15, –)   an update of Q1 that arrived in Q2: only Q2 knows it
    v1  2024-Q2  again, with C4 v1 [06-01, –)
    """
    root = str(tmp_path_factory.mktemp("history") / "lake")
    q1 = [
        history_row("2024-Q1", "C1", 1, START_C1, None, "one-year", 60.0),
        history_row("2024-Q1", "C2", 1, datetime(2024, 3, 1, tzinfo=UTC), None, "two-year", 50.0),
    ]
    q2 = [
        history_row("2024-Q2", "C1", 1, START_C1, CHANGE_C1, "one-year", 60.0),
        history_row("2024-Q2", "C1", 2, CHANGE_C1, None, "one-year", 65.0),
        history_row("2024-Q2", "C2", 1, datetime(2024, 3, 1, tzinfo=UTC), None, "two-year", 50.0),
        history_row("2024-Q2", "C3", 1, datetime(2024, 3, 15, tzinfo=UTC), None, "month-to-month", 30.0),
    ]
    assert write_quarters(root, HISTORY, history_frame(q1 + q2)) == 0
    c4 = history_row("2024-Q2", "C4", 1, datetime(2024, 6, 1, tzinfo=UTC), None, "month-to-month", 20.0)
    assert write_quarters(root, HISTORY, history_frame([*q2, c4])) == 1
    return root


def versions_at(root: str, at, **kwargs) -> dict[str, tuple[int, float]]:
    frame = load_customer_history(at, lake_root=root, **kwargs)
    assert frame["customer_id"].is_unique
    return {row.customer_id: (row.version, row.monthly_charges) for row in frame.itertuples()}


def test_the_record_at_a_moment_is_the_version_valid_then_in_the_latest_quarter(history_lake):
    frame = load_customer_history("2024-04-15", lake_root=history_lake)
    assert list(frame["customer_id"]) == ["C1", "C2", "C3"]  # C4 starts later: absent
    assert set(frame["quarter"]) == {"2024-Q2"}  # the latest quarter knows the most: C3 arrived late
    assert list(frame.columns) == [*HISTORY_COLUMNS_READ, "quarter"]
    assert str(frame["valid_from"].dtype) == "datetime64[us, UTC]"
    c1 = frame.iloc[0]
    assert (c1.version, c1.valid_to, c1.is_current, c1.contract) == (1, pd.Timestamp(CHANGE_C1), False, "one-year")


def test_a_version_starts_exactly_at_its_valid_from(history_lake):
    just_before = CHANGE_C1 - timedelta(microseconds=1)
    assert versions_at(history_lake, just_before)["C1"] == (1, 60.0)
    assert versions_at(history_lake, CHANGE_C1)["C1"] == (2, 65.0)
    assert versions_at(history_lake, "2024-05-01T11:00:00+02:00")["C1"] == (2, 65.0)  # the same instant
    assert versions_at(history_lake, date(2024, 5, 1))["C1"] == (1, 60.0)  # a date: its midnight UTC
    assert "C1" not in versions_at(history_lake, START_C1 - timedelta(microseconds=1))
    assert versions_at(history_lake, START_C1)["C1"] == (1, 60.0)


def test_before_any_version_no_customer_is_known(history_lake):
    frame = load_customer_history("2024-01-31T23:59:59Z", lake_root=history_lake)
    assert frame.empty and list(frame.columns) == [*HISTORY_COLUMNS_READ, "quarter"]


def test_a_current_record_is_valid_until_the_end_of_the_quarter_read(history_lake):
    frame = load_customer_history("2024-07-01", lake_root=history_lake)  # the end of 2024-Q2, the latest
    assert dict(zip(frame["customer_id"], frame["version"], strict=True)) == {"C1": 2, "C2": 1, "C3": 1, "C4": 1}
    assert frame["is_current"].all() and frame["valid_to"].isna().all()
    with pytest.raises(ValueError) as later:
        load_customer_history("2024-07-01T00:00:01Z", lake_root=history_lake)
    assert str(later.value).startswith(
        "gold/customer_history 2024-Q2 (the latest quarter it holds) knows the customer records until the end of "
        "2024-Q2, 2024-07-01T00:00:00Z, only; at=2024-07-01T00:00:01Z is after it"
    )


def test_known_in_reads_what_an_earlier_quarter_knew(history_lake):
    """The features of 2024-Q2 read the history of 2024-Q1 at its end: C3, which arrived in 2024-Q2,
    is unknown there although its version starts before."""
    then = load_customer_history("2024-04-01", known_in="2024-Q1", lake_root=history_lake)
    assert list(then["customer_id"]) == ["C1", "C2"] and set(then["quarter"]) == {"2024-Q1"}
    assert then.set_index("customer_id").loc["C1", "is_current"]  # as 2024-Q1 knew it
    assert "C3" in versions_at(history_lake, "2024-04-01", known_in="2024-04-01")  # a key works too
    with pytest.raises(ValueError, match=r"^gold/customer_history 2024-Q1 knows the customer records until"):
        load_customer_history("2024-04-02", known_in="2024-Q1", lake_root=history_lake)
    with pytest.raises(PartitionNotMaterialised) as never:
        load_customer_history("2024-04-02", known_in="2024-Q3", lake_root=history_lake)
    assert str(never.value).startswith("gold/customer_history has no partition 2024-Q3: the Delta table ")
    assert "holds 2024-Q1, 2024-Q2" in str(never.value)


def test_version_and_as_of_are_delta_time_travel_not_customer_time(history_lake):
    assert "C4" not in versions_at(history_lake, "2024-06-15", version=0)
    assert "C4" in versions_at(history_lake, "2024-06-15", version=1)
    first_commit = delta_log.history(delta.open_table(f"{history_lake}/{HISTORY}"))[-1].time
    assert "C4" not in versions_at(history_lake, "2024-06-15", as_of=first_commit)


def test_a_lake_without_the_history_or_a_bad_moment_says_so(history_lake, tmp_path):
    with pytest.raises(PartitionNotMaterialised) as missing:
        load_customer_history("2024-04-01", lake_root=str(tmp_path))
    message = str(missing.value)
    assert message.startswith("gold/customer_history has no materialised quarter: there is no Delta table at ")
    assert "quarterly_job" in message
    with pytest.raises(ValueError, match=r"^at='yesterday' is not a moment: write ISO-8601"):
        load_customer_history("yesterday", lake_root=history_lake)
    assert batch_platform.load_customer_history is load_customer_history
