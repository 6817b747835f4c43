"""Two writers (SPEC.md, "Lake"; docs/lake.md, "Two writers"): every step that writes a lake table holds the
Dagster concurrency pool named after it, one slot each (`config/dagster.yaml`), so two runs of the
same quarter — a schedule tick and a manual backfill — take turns table by table and the lake ends as
one clean run leaves it. And if two writers still meet (no pools: another Dagster instance, a script),
Delta's conflict check fails the later commit, and its step fails with a message naming the table and
the quarter, never Spark's raw error, having committed nothing.

The interleavings: two CLI runs of one quarter started together, with pools (both wait for a pool
a third run holds, then take turns) and without (no `DAGSTER_HOME`: they race, table by table, from an
empty lake); a writer held inside its Spark write job, before its data files, while another commits;
a writer held inside its commit, every data file written and its log entry not, while another
commits."""

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from pyspark.sql.readwriter import DataFrameWriter

from batch_platform import delta, delta_log
from batch_platform.cli import main
from batch_platform.jobs import SELECTION_JOB, release_abandoned_pools
from batch_platform.partitions import to_key
from batch_platform.sample_data import generate_landing
from batch_platform_tests.lake_fixtures import (
    CommitHold,
    Gate,
    kill,
    lake_quarter,
    parquet_whole,
    start_widgets_writer,
    wait_for,
    widget_rows,
    widgets_asset,
    writer_report,
)
from batch_platform_tests.platform import TEST_SPARK

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


def project(root: Path, landing: Path, home: Path | None) -> dict[str, str]:
    """A config file of `landing` and `root`'s lake; with `home`, a Dagster home holding the
    project's `config/dagster.yaml` (as `make` copies it), its storage created once beforehand."""
    import yaml

    storage = {"landing_root": str(landing), "lake_root": str(root / "lake")}
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


@pytest.fixture(scope="module")
def clean_lake(tmp_path_factory) -> tuple[Path, Path]:
    """(the landing zone of the two-runs tests, the lake one run alone leaves of it): quarter Q of
    60 customers, its `TABLES` materialised by the command line in this process, on an ephemeral
    instance. Both two-runs tests compare their lake with this one."""
    root = tmp_path_factory.mktemp("concurrency-clean")
    generate_landing(root / "landing", first_quarter=Q, last_quarter=Q, customers=60, seed=5)
    (root / "clean").mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BATCH_PLATFORM_CONFIG", project(root / "clean", root / "landing", None)["BATCH_PLATFORM_CONFIG"])
        patch.delenv("DAGSTER_HOME", raising=False)
        assert main(["materialize", "--from", Q, *SELECTION]) == 0
    return root / "landing", root / "clean" / "lake"


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


def test_two_cli_runs_of_the_same_quarter_take_turns_by_pool_and_leave_the_lake_of_one_clean_run(tmp_path, clean_lake):
    """Both runs ask for `bronze/operational`'s pool while a third run holds it, so both wait for it
    ("Step blocked by limit"); once it is free they take turns, table by table. The holder makes the
    contest certain instead of a matter of start-up timing, and keeps it out of Dagster's SQLite
    claim race: two steps that ask for a free one-slot pool within about a millisecond of each other
    can both get it, as SQLite has no `SELECT … FOR UPDATE` (docs/lake.md, "Two writers"); a slot
    freed is handed to one waiting step only."""
    landing, clean = clean_lake
    shared = tmp_path / "shared"
    shared.mkdir()
    env = project(shared, landing, shared / "dagster_home")
    pool = "bronze/operational"
    release = threading.Event()

    @dg.op(pool=pool)
    def hold_the_pool() -> None:
        assert release.wait(timeout=600), "the two runs never both waited for the pool"

    @dg.job
    def holder_job() -> None:
        hold_the_pool()

    holder_outcome = []
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        holder = threading.Thread(
            target=lambda: holder_outcome.append(holder_job.execute_in_process(instance=instance).success), daemon=True
        )
        holder.start()
        storage = instance.event_log_storage
        deadline = time.monotonic() + 120
        while not storage.get_concurrency_info(pool).active_run_ids:
            assert time.monotonic() < deadline and holder.is_alive(), "the holder never got the pool"
            time.sleep(0.05)

        command = [sys.executable, "-m", "batch_platform.cli", "materialize", "--from", Q, *SELECTION]
        started = time.monotonic()
        runs = [
            subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for _ in range(2)
        ]
        try:
            deadline = time.monotonic() + 600
            while len(storage.get_concurrency_info(pool).pending_run_ids) < 2:
                assert time.monotonic() < deadline and all(run.poll() is None for run in runs), (
                    "the two runs never both waited for the pool"
                )
                time.sleep(0.1)
        except AssertionError:
            for run in runs:
                run.kill()
            raise
        finally:
            release.set()
            holder.join(timeout=120)
        outputs = [run.communicate(timeout=900)[0] for run in runs]
        elapsed = time.monotonic() - started
        assert holder_outcome == [True]
        for run, out in zip(runs, outputs, strict=True):
            assert run.returncode == 0, out[-4000:]
            assert "succeeded" in out

        run_ids = [
            record.dagster_run.run_id for record in instance.get_run_records(dg.RunsFilter(job_name=SELECTION_JOB))
        ]
        assert len(run_ids) == 2
        (first, blocked_a), (second, blocked_b) = (step_spans(instance, run_id) for run_id in run_ids)
    # Both runs wrote every table; no table was written by both at once: the later one waited for its pool.
    writers = {"bronze__operational", "silver_operational_events"}  # and the silver checks, which write nothing
    assert writers <= set(first) and writers <= set(second)
    for step in writers:
        (a_start, a_end), (b_start, b_end) = first[step], second[step]
        assert a_end <= b_start or b_end <= a_start, (step, first[step], second[step])
    assert pool in blocked_a and pool in blocked_b  # both wanted it while the holder had it

    # Each table: one commit per run, the quarter replaced twice with the same rows, nothing appended.
    lake = shared / "lake"
    for table in TABLES:
        commits = delta_log.history(delta.open_table(str(lake / table)))
        assert [(c.version, c.quarters) for c in commits] == [(1, [Q]), (0, [Q])], table
        assert {c.run_id for c in commits} == set(run_ids)
        pd.testing.assert_frame_equal(comparable(lake, table, version=0), comparable(lake, table))

    # The same rows as one run alone (`clean_lake`).
    for table in TABLES:
        alone = comparable(clean, table)
        assert len(alone) > 0 or table.endswith("_quarantine")
        pd.testing.assert_frame_equal(comparable(lake, table), alone)
    print(f"two concurrent CLI runs of {len(TABLES)} tables: {elapsed:.0f} s")


def test_a_run_killed_holding_a_pool_is_released_so_the_next_run_does_not_wait_forever(tmp_path, monkeypatch):
    generate_landing(tmp_path / "landing", first_quarter=Q, last_quarter=Q, customers=30, seed=7)
    shared = tmp_path / "shared"
    shared.mkdir()
    env = project(shared, tmp_path / "landing", shared / "dagster_home")
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
        # its step holds the pool: a slot claimed, not only its step pending (as it is first)
        while not storage.get_concurrency_info("bronze/operational").active_run_ids:
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
    # The next run, in this process (the claim is about the instance's pools, not about a JVM of its
    # own), on the same instance: it gets the pool and finishes instead of waiting for the dead run.
    monkeypatch.setenv("BATCH_PLATFORM_CONFIG", env["BATCH_PLATFORM_CONFIG"])
    monkeypatch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])
    exit_codes = []
    rerun = threading.Thread(target=lambda: exit_codes.append(main(command[3:])), daemon=True)
    rerun.start()
    rerun.join(timeout=600)
    assert exit_codes == [0], "the next run did not finish in 10 minutes (waiting for the pool?) or failed"
    assert [c.quarters for c in delta_log.history(delta.open_table(str(shared / "lake" / "bronze" / "operational")))][
        0
    ] == [Q]


def _run_together(command: list[str], env: dict[str, str]) -> list[tuple[int, str]]:
    """`command` twice, started together; each one's exit code and output."""
    runs = [
        subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    return [(run.returncode, out) for run, out in ((run, run.communicate(timeout=900)[0]) for run in runs)]


REFUSED = re.compile(
    r"^  step (?P<step>\S+) failed: .*?(?P<table>(?:bronze|silver)/\w+): another run committed to the Delta table at "
    rf"\S+ while this run was writing quarter\(s\) {Q} \((?P<why>[\w.]+)\); Delta refused this run's commit",
    re.MULTILINE,
)


def test_two_cli_runs_of_the_same_quarter_without_pools_end_with_whole_tables_and_no_raw_error(tmp_path, clean_lake):
    """Without `DAGSTER_HOME` each run has a throwaway instance: no pools, nothing makes the two take
    turns. Both write the same three tables of the same quarter at once, into an empty lake, so both
    also create every table. Whatever the interleaving, each run succeeds or fails only with Delta's
    refusal of one of its commits, in a message naming the table and the quarter (never a raw Spark
    error, and never a misreading of the other writer's files as a lake from before Delta), at least
    one run succeeds, and every table holds the quarter whole, as one clean run leaves it."""
    landing, clean = clean_lake
    shared = tmp_path / "shared"
    shared.mkdir()
    env = project(shared, landing, None)
    started = time.monotonic()
    runs = _run_together([sys.executable, "-m", "batch_platform.cli", "materialize", "--from", Q, *SELECTION], env)
    elapsed = time.monotonic() - started

    outcomes = []
    for code, out in runs:
        assert code in (0, 1), out[-4000:]
        refused = [match.groupdict() for match in REFUSED.finditer(out)]
        failed_steps = re.findall(r"^  step (\S+) failed:", out, re.MULTILINE)
        if code == 0:
            assert "succeeded" in out and not failed_steps, out[-4000:]
        else:
            assert len(refused) == len(failed_steps) == 1, out[-6000:]
            assert refused[0]["table"] in TABLES
        assert "Py4JJavaError" not in out and "FILE_NOT_EXIST" not in out, out[-6000:]
        assert "lake written before the lake became Delta" not in out, out[-6000:]
        outcomes.append(refused[0] if refused else "succeeded")
    assert "succeeded" in outcomes, outcomes

    lake = shared / "lake"
    for table in TABLES:
        opened = delta.open_table(str(lake / table))
        assert delta.materialised_quarters(opened) == [Q], table
        assert all(commit.quarters == [Q] for commit in delta_log.history(opened)), table
        pd.testing.assert_frame_equal(comparable(lake, table), comparable(clean, table))
    print(f"two CLI runs without pools, {elapsed:.0f} s: {outcomes}")


# ------------------------------------------------------------------------------ writers that meet
def test_a_second_writer_that_commits_mid_write_makes_delta_refuse_the_first_naming_the_table(
    spark, widgets_table, resources, platform_config, tmp_path, monkeypatch
):
    """A writer held inside its Spark write job (Delta has read the table's version 0; no data file
    yet) while another writer replaces the same quarter (version 1): once let go, it writes its files,
    and Delta refuses its commit."""
    uri = f"{platform_config.lake_root}/test/widgets"
    gate = Gate(tmp_path / "gate")
    asset = gate.widgets()
    first = dg.materialize([asset], resources=resources, partition_key=to_key(Q))  # version 0
    assert first.success

    # The IO manager's write arms the gate as it starts, and its job waits in the UDF. Meanwhile
    # another writer replaces the same quarter.
    def other_writer():
        while not gate.waiting.exists():
            time.sleep(0.05)
        other = widget_rows(spark, to_key(Q), 7, version=3.0)
        (
            other.write.format("delta")
            .mode("overwrite")
            .option("replaceWhere", f"quarter = '{Q}'")
            .option("userMetadata", delta_log.commit_metadata("other-run", [Q], {Q: 7}, [Q]))
            .save(uri)
        )
        gate.release()

    monkeypatch.setattr(DataFrameWriter, "save", gate.arming_save(uri))
    meanwhile = threading.Thread(target=other_writer)
    meanwhile.start()
    result = dg.materialize([asset], resources=resources, partition_key=to_key(Q), raise_on_error=False)
    meanwhile.join(timeout=120)
    gate.release()

    assert not result.success
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    message = failure.step_failure_data.error.message
    assert "test/widgets: another run committed to the Delta table at " in message and uri in message
    assert f"quarter(s) {Q}" in message and "nothing of it was committed" in message
    # The table holds the other writer's version, whole; the refused run left no commit.
    table = delta.open_table(uri)
    assert table.version == 1
    assert [c.run_id for c in delta_log.history(table)] == ["other-run", first.run_id]
    assert sorted(lake_quarter(platform_config.lake_root, "test/widgets", Q)["value"]) == [i * 3.0 for i in range(7)]

    # Nothing is stuck: the next run commits (version 2).
    monkeypatch.undo()
    assert dg.materialize([asset], resources=resources, partition_key=to_key(Q)).success
    assert delta.open_table(uri).version == 2
    assert len(lake_quarter(platform_config.lake_root, "test/widgets", Q)) == 5


def test_a_writer_held_after_its_data_files_inside_its_commit_is_refused_when_another_commits_meanwhile(
    spark, widgets_table, resources, platform_config, tmp_path
):
    """A writer, in a process of its own, has written every data file of the quarter and is inside its
    commit, its log entry not written (`CommitHold`), when another writer commits the same quarter
    (version 1). Let go, it reads the other's log entry as the commit it lost to: Delta refuses its
    commit and its step fails naming the table and the quarter, no raw Spark error. The table holds the
    other writer's version, whole; the refused writer's files lie in the folder, in no version; the
    next run commits version 2."""
    table = Path(platform_config.lake_root) / "test" / "widgets"
    assert dg.materialize([widgets_asset()], resources=resources, partition_key=to_key(Q)).success  # version 0
    kept = set(table.glob("quarter=*/*.parquet"))
    gate, output = Gate(tmp_path / "gate"), tmp_path / "writer.out"
    raw = {"storage": {"lake_root": platform_config.lake_root}, "spark": TEST_SPARK}
    writer = start_widgets_writer(raw, 1_000, Q, gate=gate, output=output)
    hold = None
    try:
        wait_for(writer, gate.waiting.exists, "its Spark write job")
        hold = CommitHold(table, 1)
        gate.release()
        wait_for(writer, hold.holding, "its commit of version 1")
        held_files = sorted(set(table.glob("quarter=*/*.parquet")) - kept)
        assert len(held_files) == 1 and parquet_whole(held_files[0])  # its data file, whole, in no version
        hold.step_aside()
        other = widget_rows(spark, to_key(Q), 7, version=3.0)
        (
            other.write.format("delta")
            .mode("overwrite")
            .option("replaceWhere", f"quarter = '{Q}'")
            .option("userMetadata", delta_log.commit_metadata("other-run", [Q], {Q: 7}, [Q]))
            .save(str(table))
        )
        hold.release((table / "_delta_log" / f"{1:020d}.json").read_bytes())
        assert writer.wait(timeout=300) == 0
    finally:
        if hold is not None:
            hold.remove()
        kill(writer)

    report = writer_report(output)
    assert not report["success"]
    (message,) = report["failures"]
    assert f"test/widgets: another run committed to the Delta table at {table} while this run was writing " in message
    assert f"quarter(s) {Q}" in message and "nothing of it was committed" in message
    assert "Py4JJavaError" not in message and "org.apache.spark" not in message
    opened = delta.open_table(str(table))
    assert opened.version == 1 and delta_log.history(opened)[0].run_id == "other-run"
    assert sorted(lake_quarter(platform_config.lake_root, "test/widgets", Q)["value"]) == [i * 3.0 for i in range(7)]
    assert held_files[0].exists() and held_files[0] not in {table / f.path for f in delta.quarter_files(opened, Q)}

    assert dg.materialize([widgets_asset()], resources=resources, partition_key=to_key(Q)).success
    assert delta.open_table(str(table)).version == 2
    assert len(lake_quarter(platform_config.lake_root, "test/widgets", Q)) == 5
