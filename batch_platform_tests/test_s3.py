"""The platform on a real S3 server (SeaweedFS on loopback, SigV4): landing zone and lake on
`s3a://`, through Spark's S3A with the jars `make setup` fetched, and `storage.s3` from the config
(credentials from environment variables).

- the run of every asset on S3 — the suite's one, on the standalone cluster (`cluster_fixtures`;
  test_cluster compares its gold tables with the local run's) — leaves a Delta table per lake table,
  one commit of the run's quarters each, which the pandas reader (delta-rs) reads back, and no
  secret in the Dagster instance's storage, the run's output, logs or metadata;
- in this process (local master, the S3A jars on the driver's class path): re-running a quarter
  commits a new version replacing exactly it, the previous one still readable; a writer killed
  mid-commit leaves the previous version whole, and a reader polling while a run commits only ever
  sees one whole version of the table; wrong credentials fail bronze naming the bucket; a landing
  file that is not UTF-8, or never closes a quote, fails bronze naming its line.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from batch_platform import delta, delta_log
from batch_platform.tables import TABLES
from batch_platform_tests.cluster_fixtures import CLUSTER_LAKE
from batch_platform_tests.s3_pipeline import (
    GOLD_TABLES,
    KEY_ENV,
    LAKE_BUCKET,
    QUARTERS,
    SECRET_ENV,
    materialize_all,
    read_table,
    s3_config,
    s3_raw_config,
    upload,
)
from batch_platform_tests.secret_scan import places_holding

pytestmark = pytest.mark.s3


def _objects(s3_server, bucket: str, prefix: str) -> dict[str, tuple[str, object]]:
    client = s3_server.client()
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            found[item["Key"]] = (item["ETag"], item["LastModified"])
    return found


@pytest.fixture(scope="module")
def s3_run(cluster_run):
    """The suite's run of every asset on S3 (`cluster_fixtures`: on the standalone cluster), and
    its instance."""
    done = cluster_run["done"]
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    with dg.DagsterInstance.from_config(str(cluster_run["home"])) as instance:
        yield {**cluster_run, "instance": instance}


@pytest.mark.cluster
def test_the_lake_on_s3_is_delta_tables_committed_once_by_the_run_and_reads_back(s3_run, local_reference, s3_server):
    config = s3_run["config"]
    # The pandas reader of notebooks reads the S3 lake with storage.s3 (delta-rs).
    from batch_platform import load_training_set

    loaded = load_training_set("2024-Q3", config=config).sort_values("customer_id").reset_index(drop=True)
    expected = local_reference[("training_set", "2024-Q3")].assign(quarter="2024-Q3")
    assert len(loaded) > 0
    pd.testing.assert_frame_equal(loaded, expected)
    bronze = read_table(config, "bronze/operational", "2024-Q2")
    assert len(bronze) > 0
    assert bronze["_source_file"].str.startswith("s3a://landing/landing/operational/2024-").all()
    # Every lake table is a Delta table whose first version is the run's one commit of its three
    # quarters (a rerun test may have added versions since), and every file of its latest version is
    # an object of the bucket.
    (run,) = s3_run["instance"].get_runs()
    lake = _objects(s3_server, LAKE_BUCKET, f"{CLUSTER_LAKE}/")
    tables = [t.name for t in TABLES.values() if t.name.split("/")[0] in ("bronze", "silver", "gold", "ml")]
    assert len(tables) == 18  # 4 bronze, 4 silver with their quarantines, 4 gold, 2 ml
    for table in tables:
        opened = delta.open_table(f"{config.lake_root}/{table}", config.storage.s3)
        first = delta_log.history(opened)[-1]
        assert (first.version, first.run_id, first.quarters) == (0, run.run_id, list(QUARTERS)), table
        assert f"{CLUSTER_LAKE}/{table}/_delta_log/{0:020d}.json" in lake, table
        assert delta.materialised_quarters(opened) == list(QUARTERS), table
        files = [f.path for quarter in QUARTERS for f in delta.quarter_files(opened, quarter)]
        assert [f"{CLUSTER_LAKE}/{table}/{path}" in lake for path in files] == [True] * len(files), table
    assert not [key for key in lake if "/_staging" in key]


@pytest.mark.cluster
def test_no_secret_reaches_instance_storage_logs_or_metadata(s3_run, s3_server):
    secret = s3_server.secret_access_key
    home = Path(s3_run["home"])
    assert any(path.suffix == ".db" for path in home.rglob("*"))  # run, event-log and schedule storage
    # Every file and every database value, decompressed: the job snapshots (zlib) hold the resource
    # config, the variable's name and never its value.
    assert places_holding(home, ["BP_TEST_S3_SECRET_ACCESS_KEY"])
    assert places_holding(home, [secret]) == []
    done = s3_run["done"]
    assert secret not in done.stdout and secret not in done.stderr
    instance = s3_run["instance"]
    (run,) = instance.get_runs()
    events = instance.all_logs(run.run_id)
    messages = [event.message or "" for event in events]
    assert messages and not [line for line in messages if secret in line]
    metadata = [
        str(event.dagster_event.event_specific_data)
        for event in events
        if event.is_dagster_event and event.dagster_event.is_step_materialization
    ]
    assert metadata and not [m for m in metadata if secret in m]
    # The resource config Dagster keeps (and the UI shows) names the variables, not the values.
    shown = str(run.run_config) + str(instance.get_job_snapshot(run.job_snapshot_id))
    assert "BP_TEST_S3_SECRET_ACCESS_KEY" in shown and secret not in shown


@pytest.mark.cluster
def test_rerunning_a_quarter_on_s3_commits_a_version_replacing_exactly_it(s3_run, s3_server, local_reference):
    config = s3_run["config"]

    def state() -> dict[str, tuple[int, dict[str, list[str]]]]:
        found = {}
        for table in TABLES.values():
            if table.name.split("/")[0] in ("bronze", "silver", "gold", "ml"):
                opened = delta.open_table(f"{config.lake_root}/{table.name}", config.storage.s3)
                files = {q: [f.path for f in delta.quarter_files(opened, q)] for q in QUARTERS}
                found[table.name] = (opened.version, files)
        return found

    before, objects = state(), _objects(s3_server, LAKE_BUCKET, f"{CLUSTER_LAKE}/")
    result = materialize_all(config, quarters=["2024-Q2"], selection="group:gold")
    assert result.success
    after = state()
    for table, (version, files) in after.items():
        old_version, old_files = before[table]
        if not table.startswith("gold/"):
            assert (version, files) == (old_version, old_files), table
            continue
        assert version == old_version + 1, table
        (commit,) = [
            c for c in delta_log.history(delta.open_table(f"{config.lake_root}/{table}", config.storage.s3), 1)
        ]
        assert commit.quarters == ["2024-Q2"], table
        assert {q: files[q] for q in ("2024-Q1", "2024-Q3")} == {q: old_files[q] for q in ("2024-Q1", "2024-Q3")}
        assert set(files["2024-Q2"]).isdisjoint(old_files["2024-Q2"]), table
    assert set(objects) <= set(_objects(s3_server, LAKE_BUCKET, f"{CLUSTER_LAKE}/"))  # kept for time travel
    for table in GOLD_TABLES:
        expected = local_reference[(table, "2024-Q2")]
        pd.testing.assert_frame_equal(read_table(config, f"gold/{table}", "2024-Q2"), expected)
        previous = before[f"gold/{table}"][0]
        pd.testing.assert_frame_equal(read_table(config, f"gold/{table}", "2024-Q2", version=previous), expected)


def test_wrong_credentials_fail_bronze_naming_the_bucket(s3_server, s3_landing, tmp_path, monkeypatch):
    bucket = "landing-wrong-credentials"  # a bucket of its own: S3A caches a client per bucket
    upload(s3_server, s3_landing["local"], bucket, "landing")
    monkeypatch.setenv("BP_TEST_WRONG_SECRET", "not-the-secret")
    config = s3_config(
        tmp_path,
        s3_server,
        f"s3a://{bucket}/landing",
        f"s3a://{bucket}/lake",
        secret_env="BP_TEST_WRONG_SECRET",
    )
    result = materialize_all(
        config,
        quarters=["2024-Q1"],
        selection="bronze/operational",
        raise_on_error=False,
    )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.message
    assert failure.step_key.startswith("bronze")
    assert f"bucket '{bucket}'" in message and "credentials" in message, message
    assert "not-the-secret" not in message
    assert not _objects(s3_server, bucket, "lake/")


def test_bad_text_in_landing_files_on_s3_fails_bronze_naming_file_and_line(s3_server, tmp_path, monkeypatch):
    """The files the read marks are read whole from S3 (downloaded); the one that is sound passes."""
    monkeypatch.setenv(KEY_ENV, s3_server.access_key_id)
    monkeypatch.setenv(SECRET_ENV, s3_server.secret_access_key)
    header = "customer_id,event_time,amount,currency,channel\n"
    files = {
        "latin1.csv": (header + "JOSÉ-02,2024-01-02,1,eur,web\n").encode("latin-1"),
        "open.csv": (header + 'C1,2024-01-02,1,eur,web\nC2,2024-01-03,2,eur,"web').encode(),
        "sound.csv": (header + 'C\ufffd3,2024-01-04,3,eur,"two\nlines"\n').encode(),
    }
    local = tmp_path / "landing"
    for name, content in files.items():
        path = local / "operational" / "2024-01-05" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    upload(s3_server, local, "landing-text", "landing")
    config = s3_config(tmp_path, s3_server, "s3a://landing-text/landing", str(tmp_path / "lake"))
    result = materialize_all(config, quarters=["2024-Q1"], selection="bronze/operational", raise_on_error=False)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.message
    assert "s3a://landing-text/landing/operational/2024-01-05/latin1.csv: not valid UTF-8 at line 2" in message
    assert "s3a://landing-text/landing/operational/2024-01-05/open.csv: a quoted field opened at line 3" in message
    assert "sound.csv" not in message


def _versions(config) -> tuple[int, dict[str, tuple[int, set[float]]]]:
    """The widgets table's latest version, and per quarter of that one version its rows and the
    versions they were written with (value / id)."""
    opened = delta.open_table(f"{config.lake_root}/test/widgets", config.storage.s3)
    found = {}
    for quarter in ("2024-Q1", "2024-Q2"):
        frame = delta.read_quarter(opened, quarter).to_pandas()
        ids = frame["widget_id"].str.rsplit("-", n=1).str[-1].astype(int)
        found[quarter] = (len(frame), set((frame["value"][ids > 0] / ids[ids > 0]).round(6)))
    return opened.version, found


def test_a_writer_killed_mid_commit_on_s3_leaves_the_previous_version_whole(
    s3_server, s3_landing, tmp_path, widgets_table
):
    """A process writing two quarters (one commit) is SIGKILLed once its first data object is on S3:
    the table stays at its previous version, both quarters wholly old, the killed writer's objects in
    no version. While the next run commits, a reader polling the table only ever sees one whole
    version of both quarters; then both are new.

    The writer's quarters are one write task's, written one after the other, a small one before a
    large one (`rows`), so between its first object and its commit lies the write of the large one
    (1.5–1.9 s here, against 0.7 s for two equal quarters in two tasks). The kill is polled, not held
    (S3 has no FIFO to hold a commit at, unlike `test_io_manager`'s): a writer whose commit still
    beats it has left a whole new version, which is checked, and the scenario is tried again on a
    fresh table, at most `attempts` times."""
    import threading

    from batch_platform.io_manager import ROWS_PER_WRITE_TASK
    from batch_platform.resources import build_resources
    from batch_platform_tests.lake_fixtures import kill_when, start_widgets_writer, widgets_asset
    from batch_platform_tests.platform import materialize_range

    quarters = ["2024-Q1", "2024-Q2"]
    rows, attempts = {"2024-Q1": 1_000, "2024-Q2": 480_000}, 3
    assert sum(rows.values()) < ROWS_PER_WRITE_TASK, "both quarters in one write task"

    def run(config, version: float, **kwargs):
        return materialize_range(
            [widgets_asset(rows_per_quarter=40, version=version)], build_resources(config), *quarters, **kwargs
        )

    for attempt in range(attempts):
        lake = f"crash-lake-{attempt}"
        raw = s3_raw_config(s3_server, s3_landing["root"], f"s3a://{LAKE_BUCKET}/{lake}")
        config = s3_config(tmp_path / lake, s3_server, raw["storage"]["landing_root"], raw["storage"]["lake_root"])
        assert run(config, 1.0).success
        prefix = f"{lake}/test/widgets/quarter="
        kept = set(_objects(s3_server, LAKE_BUCKET, prefix))
        writer = start_widgets_writer(raw, rows, *quarters)
        kill_when(
            writer,
            lambda prefix=prefix, kept=kept: bool(set(_objects(s3_server, LAKE_BUCKET, prefix)) - kept),
            "its first data object",
        )
        found = _versions(config)
        if found[0] == 0:
            break
        assert found == (1, {q: (rows[q], {7.0}) for q in quarters}), "a commit that beat the kill, whole"
    else:
        pytest.fail(f"the writer committed before its kill in each of {attempts} attempts")
    assert set(_objects(s3_server, LAKE_BUCKET, prefix)) - kept, "the killed writer's objects, in no version"
    assert _versions(config) == (0, {q: (40, {1.0}) for q in quarters})

    seen: list[tuple[int, dict]] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def reader():
        while not done.is_set():
            try:
                seen.append(_versions(config))
            except BaseException as error:  # a read that fails mid-commit breaks the promise too
                errors.append(error)
                return

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        assert run(config, 3.0).success
    finally:
        done.set()
        thread.join()
    assert not errors, errors
    whole = {0: {q: (40, {1.0}) for q in quarters}, 1: {q: (40, {3.0}) for q in quarters}}
    assert seen and all(found == whole[version] for version, found in seen), seen
    assert _versions(config) == (1, whole[1])
