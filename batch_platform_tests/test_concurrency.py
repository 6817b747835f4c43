"""Two writers (SPEC.md, "Lake"; docs/lake.md, "Two writers"): every step that writes a lake table holds the
Dagster concurrency pool named after it, one slot each (`config/dagster.yaml`), so two runs of the
same quarter — a schedule tick and a manual backfill — take turns table by table and the lake ends as
one clean run leaves it. And if two writers still meet (no pools: another Dagster instance, a script),
Delta's conflict check fails the later commit, naming the table, and commits nothing of it."""

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from dagster_pyspark import PySparkResource
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.readwriter import DataFrameWriter

from batch_platform import delta
from batch_platform.cli import main
from batch_platform.jobs import release_abandoned_pools
from batch_platform.partitions import to_key
from batch_platform.sample_data import generate_landing
from batch_platform_tests.conftest import TEST_SPARK
from batch_platform_tests.lake_fixtures import lake_quarter, widget_rows
from batch_platform_tests.platform import quarterly

ROOT = Path(__file__).resolve().parents[1]
Q = "2024-Q2"
TABLES = ("bronze/operational", "silver/operational_events", "silver/operational_events_quarantine")
SELECTION = [arg for table in TABLES for arg in ("--select", f"key:{table}")]


def test_every_step_that_writes_a_lake_table_holds_the_pool_named_after_it():
    from batch_platform.config import parse_config
    from batch_platform.definitions import build_definitions
    from batch_platform.tables import TABLES

    defs = build_definitions(parse_config({"publish": {"postgres": {"dsn": "postgresql://localhost/x"}}}, "test"))
    pools = {}
    for asset in defs.resolve_asset_graph().assets_defs:
        if asset.is_executable:
            pools.update({key.to_user_string(): asset.op.pool for key in asset.keys})
    lake = {key.to_user_string() for key in TABLES}
    assert {table: pool for table, pool in pools.items() if pool} == {
        table: table.removesuffix("_quarantine") for table in lake
    }
    assert {table for table, pool in pools.items() if not pool} == {"publish/training_set", "publish/churn_scores"}


def project(root: Path, home: Path | None) -> dict[str, str]:
    """A config file of `root`'s landing zone and lake; with `home`, a Dagster home holding the
    project's `config/dagster.yaml` (as `make` copies it), its storage created once beforehand."""
    import yaml

    storage = {"landing_root": str(root.parent / "landing"), "lake_root": str(root / "lake")}
    (root / "config.yaml").write_text(yaml.safe_dump({"storage": storage, "spark": dict(TEST_SPARK)}))
    env = {**os.environ, "BATCH_PLATFORM_CONFIG": str(root / "config.yaml")}
    env.pop("DAGSTER_HOME", None)
    if home is not None:
        home.mkdir()
        shutil.copy(ROOT / "config" / "dagster.yaml", home / "dagster.yaml")
        # Two processes creating a fresh SQLite storage at once would both stamp its schema version.
        with dg.DagsterInstance.from_config(str(home)) as instance:
            instance.get_runs(limit=1)
            instance.fetch_materializations(dg.AssetKey(["bronze", "operational"]), limit=1)
        env["DAGSTER_HOME"] = str(home)
    return env


def comparable(lake: Path, table: str, version: int | None = None) -> pd.DataFrame:
    """The quarter's rows, without the time each run ingested them, in one order."""
    rows = lake_quarter(lake, table, Q, version=version).drop(columns=["_ingested_at"], errors="ignore")
    return rows.sort_values(list(rows.columns), ignore_index=True)


def step_spans(instance: dg.DagsterInstance, run_id: str) -> tuple[dict[str, tuple[float, float]], list[str]]:
    """(step → (start, end) times, the pools the run's steps were blocked by) from the event log."""
    starts, spans, blocked = {}, {}, []
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type_value == "STEP_START":
            starts[event.step_key] = entry.timestamp
        elif event.event_type_value == "STEP_SUCCESS":
            spans[event.step_key] = (starts[event.step_key], entry.timestamp)
        elif event.event_type_value == "ENGINE_EVENT" and (entry.message or "").startswith("Step blocked by limit"):
            blocked.append(entry.message.rsplit(" ", 1)[-1])
    return spans, blocked


def test_two_cli_runs_of_the_same_quarter_take_turns_by_pool_and_leave_the_lake_of_one_clean_run(tmp_path, monkeypatch):
    generate_landing(tmp_path / "landing", first_quarter=Q, last_quarter=Q, customers=60, seed=5)
    shared, clean = tmp_path / "shared", tmp_path / "clean"
    shared.mkdir(), clean.mkdir()
    env = project(shared, shared / "dagster_home")
    command = [sys.executable, "-m", "batch_platform.cli", "materialize", "--from", Q, *SELECTION]
    started = time.monotonic()
    runs = [
        subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=900)[0] for run in runs]
    elapsed = time.monotonic() - started
    for run, out in zip(runs, outputs, strict=True):
        assert run.returncode == 0, out[-4000:]
        assert "succeeded" in out

    instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])
    try:
        run_ids = [record.dagster_run.run_id for record in instance.get_run_records()]
        assert len(run_ids) == 2
        (first, blocked_a), (second, blocked_b) = (step_spans(instance, run_id) for run_id in run_ids)
    finally:
        instance.dispose()
    # Both runs wrote every table; no table was written by both at once: the later one waited for its pool.
    writers = {"bronze__operational", "silver_operational_events"}  # and the silver checks, which write nothing
    assert writers <= set(first) and writers <= set(second)
    for step in writers:
        (a_start, a_end), (b_start, b_end) = first[step], second[step]
        assert a_end <= b_start or b_end <= a_start, (step, first[step], second[step])
    assert "bronze/operational" in blocked_a + blocked_b  # both wanted it first

    # Each table: one commit per run, the quarter replaced twice with the same rows, nothing appended.
    lake = shared / "lake"
    for table in TABLES:
        commits = delta.history(delta.open_table(str(lake / table)))
        assert [(c.version, c.quarters) for c in commits] == [(1, [Q]), (0, [Q])], table
        assert {c.run_id for c in commits} == set(run_ids)
        pd.testing.assert_frame_equal(comparable(lake, table, version=0), comparable(lake, table))

    # The same rows as one run alone (in this process, on an ephemeral instance).
    monkeypatch.setenv("BATCH_PLATFORM_CONFIG", project(clean, None)["BATCH_PLATFORM_CONFIG"])
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    assert main(["materialize", "--from", Q, *SELECTION]) == 0
    for table in TABLES:
        alone = comparable(clean / "lake", table)
        assert len(alone) > 0 or table.endswith("_quarantine")
        pd.testing.assert_frame_equal(comparable(lake, table), alone)
    print(f"two concurrent CLI runs of {len(TABLES)} tables: {elapsed:.0f} s")


def test_a_run_killed_holding_a_pool_is_released_so_the_next_run_does_not_wait_forever(tmp_path):
    generate_landing(tmp_path / "landing", first_quarter=Q, last_quarter=Q, customers=30, seed=7)
    shared = tmp_path / "shared"
    shared.mkdir()
    env = project(shared, shared / "dagster_home")
    command = [
        sys.executable,
        "-m",
        "batch_platform.cli",
        "materialize",
        "--from",
        Q,
        "--select",
        "key:bronze/operational",
    ]
    killed = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        storage = instance.event_log_storage
        deadline = time.monotonic() + 300
        while not storage.get_concurrency_run_ids():  # its step holds the pool
            assert time.monotonic() < deadline and killed.poll() is None
            time.sleep(0.2)
        killed.kill()
        killed.wait()
        (run_id,) = storage.get_concurrency_run_ids()
        assert storage.get_concurrency_info("bronze/operational").active_run_ids == {run_id}
        assert release_abandoned_pools(instance) == [
            f"run {run_id}: its process {killed.pid} is gone; marked failed; its pool slots freed"
        ]
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
        assert not storage.get_concurrency_run_ids() and release_abandoned_pools(instance) == []
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert [c.quarters for c in delta.history(delta.open_table(str(shared / "lake" / "bronze" / "operational")))][
        0
    ] == [Q]


# ------------------------------------------------------------------------------ writers that meet
@pytest.fixture
def gate(tmp_path):
    """Files that hold the IO manager's Delta write of `test/widgets` mid-job, once (`gated_widgets`)."""
    folder = tmp_path / "gate"
    folder.mkdir()
    return folder


def gated_widgets(gate: Path) -> dg.AssetsDefinition:
    """`test/widgets`, whose `value` passes through a Python UDF: once the file `armed` exists, the first
    task to compute it writes `waiting` and waits for `released`. The frame is a projection of a cached
    one, which the IO manager computes again at every pass, the write's included."""
    armed, waiting, released = (str(gate / name) for name in ("armed", "waiting", "released"))

    def hold(value):
        if os.path.exists(armed) and not os.path.exists(released):
            open(waiting, "w").close()
            while not os.path.exists(released):
                time.sleep(0.05)
        return value

    @dg.asset(key=["test", "widgets"], partitions_def=quarterly, backfill_policy=dg.BackfillPolicy.single_run())
    def widgets(context: dg.AssetExecutionContext, pyspark: PySparkResource) -> DataFrame:
        rows = widget_rows(pyspark.spark_session, context.partition_key, 5).persist()
        held = F.udf(hold, "double")
        return rows.select("widget_id", held("value").alias("value"), "seen_at", "quarter")

    return widgets


def test_a_second_writer_that_commits_mid_write_makes_delta_refuse_the_first_naming_the_table(
    spark, widgets_table, resources, platform_config, gate, monkeypatch
):
    uri = f"{platform_config.lake_root}/test/widgets"
    asset = gated_widgets(gate)
    first = dg.materialize([asset], resources=resources, partition_key=to_key(Q))  # version 0
    assert first.success

    # The IO manager's write arms the gate as it starts: Delta has read the table's version 0, and
    # its job waits in the UDF. Meanwhile another writer replaces the same quarter (version 1).
    original_save = DataFrameWriter.save

    def save(writer, path=None, *args, **kwargs):
        if path == uri and not (gate / "armed").exists():
            (gate / "armed").touch()
        return original_save(writer, path, *args, **kwargs)

    def other_writer():
        while not (gate / "waiting").exists():
            time.sleep(0.05)
        other = widget_rows(spark, to_key(Q), 7, version=3.0)
        (
            other.write.format("delta")
            .mode("overwrite")
            .option("replaceWhere", f"quarter = '{Q}'")
            .option("userMetadata", delta.commit_metadata("other-run", [Q], {Q: 7}, [Q]))
            .save(uri)
        )
        (gate / "released").touch()

    monkeypatch.setattr(DataFrameWriter, "save", save)
    meanwhile = threading.Thread(target=other_writer)
    meanwhile.start()
    result = dg.materialize([asset], resources=resources, partition_key=to_key(Q), raise_on_error=False)
    meanwhile.join(timeout=120)
    (gate / "released").touch()

    assert not result.success
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    message = failure.step_failure_data.error.message
    assert "test/widgets: another run committed to the Delta table at " in message and uri in message
    assert f"quarter(s) {Q}" in message and "nothing of it was committed" in message
    # The table holds the other writer's version, whole; the refused run left no commit.
    table = delta.open_table(uri)
    assert table.version == 1
    assert [c.run_id for c in delta.history(table)] == ["other-run", first.run_id]
    assert sorted(lake_quarter(platform_config.lake_root, "test/widgets", Q)["value"]) == [i * 3.0 for i in range(7)]

    # Nothing is stuck: the next run commits (version 2).
    monkeypatch.setattr(DataFrameWriter, "save", original_save)
    assert dg.materialize([asset], resources=resources, partition_key=to_key(Q)).success
    assert delta.open_table(uri).version == 2
    assert len(lake_quarter(platform_config.lake_root, "test/widgets", Q)) == 5
