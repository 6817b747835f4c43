"""The platform on a real S3 server (SeaweedFS on loopback, SigV4): landing zone and lake on
`s3a://`, through Spark's S3A with the jars `make setup` fetched, and `storage.s3` from the config
(credentials from environment variables).

- the run of every asset on S3 — the suite's one, on the standalone cluster (`cluster_fixtures`;
  test_cluster compares its gold tables with the local run's) — leaves one object per partition,
  which the pandas reader reads back, and no secret in the Dagster instance's storage, the run's
  output, logs or metadata;
- in this process (local master, the S3A jars on the driver's class path): re-running a quarter
  replaces exactly its objects; a crash mid-publish leaves every quarter wholly old or wholly new;
  wrong credentials fail bronze naming the bucket.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from batch_platform.partitions import to_key
from batch_platform.tables import TABLES
from batch_platform_tests.cluster_fixtures import CLUSTER_LAKE
from batch_platform_tests.s3_pipeline import (
    GOLD_TABLES,
    LAKE_BUCKET,
    QUARTERS,
    materialize_all,
    read_table,
    s3_config,
    upload,
)

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
def test_the_lake_on_s3_holds_one_object_per_partition_and_reads_back(s3_run, local_reference, s3_server):
    config = s3_run["config"]
    # The pandas reader of notebooks reads the S3 lake with storage.s3 (pyarrow's S3FileSystem).
    from batch_platform import load_training_set

    loaded = load_training_set("2024-Q3", config=config).sort_values("customer_id").reset_index(drop=True)
    expected = local_reference[("training_set", "2024-Q3")].assign(quarter="2024-Q3")
    assert len(loaded) > 0
    pd.testing.assert_frame_equal(loaded, expected)
    bronze = read_table(config, "bronze/operational", "2024-Q2")
    assert len(bronze) > 0
    assert bronze["_source_file"].str.startswith("s3a://landing/landing/operational/2024-").all()
    # One object per partition on S3: the publish is one PUT (io_manager.py).
    lake = _objects(s3_server, LAKE_BUCKET, f"{CLUSTER_LAKE}/")
    partitions = {key.rsplit("/", 1)[0] for key in lake if "/quarter=" in key}
    tables = [t.name for t in TABLES.values() if t.name.split("/")[0] in ("bronze", "silver", "gold", "ml")]
    assert len(partitions) == len(tables) * len(QUARTERS) == 42
    for partition in partitions:
        assert [k for k in lake if k.startswith(partition + "/")] == [f"{partition}/part-00000.parquet"]
    assert not [key for key in lake if "/_staging" in key]


@pytest.mark.cluster
def test_no_secret_reaches_instance_storage_logs_or_metadata(s3_run, s3_server):
    secret = s3_server.secret_access_key
    files = [path for path in Path(s3_run["home"]).rglob("*") if path.is_file()]
    assert any(path.suffix == ".db" for path in files)  # run, event-log and schedule storage
    assert [path for path in files if secret.encode() in path.read_bytes()] == []
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
def test_rerunning_a_quarter_on_s3_replaces_exactly_it(s3_run, s3_server, local_reference):
    before = _objects(s3_server, LAKE_BUCKET, f"{CLUSTER_LAKE}/")
    config = s3_run["config"]
    result = materialize_all(config, quarters=["2024-Q2"], selection="group:gold")
    assert result.success
    after = _objects(s3_server, LAKE_BUCKET, f"{CLUSTER_LAKE}/")
    assert set(after) == set(before)
    changed = {key for key in after if after[key][1] != before[key][1]}
    assert changed == {f"{CLUSTER_LAKE}/gold/{t}/quarter=2024-Q2/part-00000.parquet" for t in GOLD_TABLES}
    for table in GOLD_TABLES:
        pd.testing.assert_frame_equal(
            read_table(config, f"gold/{table}", "2024-Q2"),
            local_reference[(table, "2024-Q2")],
        )


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


def _versions(config, quarter: str) -> tuple[int, set[float]]:
    """Rows of the widgets partition and the versions they were written with (value / id)."""
    frame = read_table(config, "test/widgets", quarter)
    ids = frame["widget_id"].str.rsplit("-", n=1).str[-1].astype(int)
    return len(frame), set((frame["value"][ids > 0] / ids[ids > 0]).round(6))


def test_crash_mid_publish_on_s3_leaves_each_quarter_wholly_old_or_new(
    s3_server, s3_landing, tmp_path, monkeypatch, widgets_table
):
    """A run of two quarters dies after publishing the first: the first is wholly new, the second
    wholly old, and the next run cleans up; while a run publishes, a reader polling the partitions
    only ever sees one complete version of each."""
    import threading

    from batch_platform.resources import build_resources
    from batch_platform.storage import HadoopFS
    from batch_platform_tests.lake_fixtures import widgets_asset

    config = s3_config(tmp_path, s3_server, s3_landing["root"], f"s3a://{LAKE_BUCKET}/crash-lake")
    quarters = ["2024-Q1", "2024-Q2"]
    tags = {
        "dagster/asset_partition_range_start": to_key(quarters[0]),
        "dagster/asset_partition_range_end": to_key(quarters[1]),
    }

    def run(version: float, **kwargs):
        return dg.materialize(
            [widgets_asset(rows_per_quarter=40, version=version)],
            resources=build_resources(config),
            tags=tags,
            **kwargs,
        )

    assert run(1.0).success
    publish = HadoopFS.copy_file
    copies: list[str] = []

    def crash_on_second_quarter(self, source, target):
        copies.append(target)
        if len(copies) == 2:
            raise OSError("simulated crash in the middle of the publish")
        publish(self, source, target)

    monkeypatch.setattr(HadoopFS, "copy_file", crash_on_second_quarter)
    assert not run(2.0, raise_on_error=False).success
    monkeypatch.undo()
    assert _versions(config, "2024-Q1") == (40, {2.0})
    assert _versions(config, "2024-Q2") == (40, {1.0})
    assert _objects(s3_server, LAKE_BUCKET, "crash-lake/test/widgets/_staging/")  # the crashed run's debris

    seen: list[tuple[str, int, set[float]]] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def reader():
        while not done.is_set():
            for quarter in quarters:
                try:
                    seen.append((quarter, *_versions(config, quarter)))
                except BaseException as error:  # a read that fails mid-publish breaks the promise too
                    errors.append(error)
                    return

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        assert run(3.0).success
    finally:
        done.set()
        thread.join()
    assert not errors, errors
    assert seen and all(rows == 40 and len(versions) == 1 for _, rows, versions in seen), seen
    assert _versions(config, "2024-Q1") == _versions(config, "2024-Q2") == (40, {3.0})
    assert not _objects(s3_server, LAKE_BUCKET, "crash-lake/test/widgets/_staging/")
    assert set(_objects(s3_server, LAKE_BUCKET, "crash-lake/test/widgets/")) == {
        f"crash-lake/test/widgets/quarter={q}/part-00000.parquet" for q in quarters
    }
