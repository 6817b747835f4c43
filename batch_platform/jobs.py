"""Jobs and schedules. Every job runs in-process: one run, one SparkSession.

`training_set_job` materialises, for the quarter(s) of its run, `gold/training_set` and everything
upstream of it: bronze Q → silver Q → gold Q (customer_features, churn_labels, training_set), and,
when the config has `publish.postgres`, `publish/training_set` Q after it.
The features of Q also read silver Q-L … Q-1, which the job does NOT rebuild: it relies on the
earlier quarters having been materialised by earlier runs (earlier ticks of the schedule, or one
single-run backfill of the history). A lookback quarter that was never materialised fails the
features step, naming the silver table and the quarter, before anything of the run's gold is
written: it is never read as empty (a gold quarter built on a missing quarter would silently lose
its history). A lookback quarter materialised with no rows reads as empty — the features step logs
a warning and lists it under `lookback_quarters_empty` — and quarters before `batch.first_quarter`
are not partitions and are skipped, so the first quarters after the platform's start build with
less history. To build or rebuild history, backfill a range in one run (`batch-platform materialize
--from … --to …`, or `dagster asset materialize --select '*' --partition-range …`).

`quarterly_job` is `training_set_job` plus the ML loop (SPEC.md, "ML"): it also trains
`ml/churn_model` Q and scores `ml/churn_scores` Q (the predictions for Q+1), and runs their checks.
`quarterly_schedule` runs it at 00:00 UTC on the first day of every quarter for the quarter that
just ended (tick 2026-01-01 → partition 2025-10-01 = 2025-Q4). The scores of Q can only be judged
once the labels of Q+1 exist, i.e. after the next quarter's run: `out_of_time_sensor` starts
`out_of_time_job` (the out-of-time check alone) for Q-1 whenever `quarterly_job` succeeds for Q.

`ml_job` retrains and rescores the quarter(s) of its run from the gold tables already in the lake:
one run for a whole range (`--partition-range` or `batch-platform materialize --select`), one
MLflow model version per quarter. Its out-of-time check evaluates every quarter of the range whose
labels Q+1 are in the lake.

`lake_vacuum_job` keeps the lake's history on purpose (SPEC.md, "Lake"; `storage.delta.retention_days`):
it VACUUMs every lake table, deleting the files no version younger than the retention needs, and
nothing else ever does (no write vacuums). Run it now and then, from the UI or with
`dagster job execute -m batch_platform.definitions -j lake_vacuum_job`; until it runs, nothing is deleted.
"""

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import dagster as dg
from delta.tables import DeltaTable

from batch_platform.delta_spark import retention_defaults
from batch_platform.partitions import shift, to_key
from batch_platform.schemas.gold import TRAINING_KEY
from batch_platform.schemas.ml import SCORES_KEY

if TYPE_CHECKING:  # pragma: no cover - typing only
    from pyspark.sql import SparkSession

# Every job, schedule and sensor name of the platform: the one place each is spelled.
ALL_ASSETS_JOB = "ALL_ASSETS_JOB"
"""The job of every asset, and the one the UI's "Materialize" on the asset graph launches.

"Materialize" on a job's own page (Jobs → ALL_ASSETS_JOB) always launches that job: a range of
quarters is a *job* backfill, exactly the picked quarters in one run (single-run backfill
policies). On the global asset graph, which belongs to no job, the UI launches a selection through
the first job (by name: the webserver lists an asset's jobs sorted) that holds every selected
asset. With Dagster's implicit `__ASSET_JOB` first, "select all → Materialize → a range of
quarters" makes an *asset* backfill, which targets the picked quarters of the roots and then every
downstream quarter the partition mappings reach: `gold/customer_features` Q reads silver Q-L … Q-1,
so silver Q reaches gold Q+1 … Q+L, quarters whose silver is not in the backfill (the run fails on
them). Dagster 1.13 has no public setting for the job the graph launches, nor for narrowing an
asset backfill's expansion, so the name is chosen to sort before `__ASSET_JOB` (an upper-case
letter sorts before `_`), and the graph launches this job as its own page does. The name is plain
public API; the order is the UI's, and `test_webserver.py` launches a backfill the way the graph
does and fails if Dagster ever changes it."""
TRAINING_SET_JOB = "training_set_job"
GOLD_JOB = "gold_job"
QUARTERLY_JOB = "quarterly_job"
ML_JOB = "ml_job"
OUT_OF_TIME_JOB = "out_of_time_job"
VACUUM_JOB = "lake_vacuum_job"
QUARTERLY_SCHEDULE = "quarterly_schedule"
OUT_OF_TIME_SENSOR = "out_of_time_sensor"
SELECTION_JOB = "cli_selection_job"
"""The job `batch-platform materialize --select` runs: the selected assets, made at the command."""


def release_abandoned_pools(instance: dg.DagsterInstance) -> list[str]:
    """Free the pool slots held by runs that can no longer free them, one line per run released.

    A step frees its slot when it ends, even when it fails; a run killed mid-step (SIGKILL, a machine
    that died) never does, and every later step of that pool would wait for it forever. Released here:
    the slots of runs that have ended (the UI's "terminate" on a dead run ends it), and of runs still
    marked started whose process is gone, which are first marked failed. The process is the one the
    run's in-process executor recorded (`Executing steps in process (pid: N)`), checked on this
    machine: only for an instance stored in `$DAGSTER_HOME` (SQLite), whose runs all run here.
    For `batch-platform materialize` to call before it launches its run."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    local = type(instance.run_storage).__name__.startswith("Sqlite")
    released = []
    for run_id in sorted(storage.get_concurrency_run_ids()):
        run = instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            why = "it has ended" if run is not None else "it no longer exists"
        else:
            pid = _executor_pid(instance, run_id) if local else None
            if pid is None or _alive(pid):
                continue
            why = f"its process {pid} is gone; marked failed"
            instance.report_run_failed(run, f"the process {pid} running it is gone (killed mid-run)")
        storage.free_concurrency_slots_for_run(run_id)
        released.append(f"run {run_id}: {why}; its pool slots freed")
    return released


def _executor_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The process the run's steps execute in, from its last engine event that names one."""
    pids = [
        entry.dagster_event.engine_event_data.metadata["pid"].value
        for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
        if entry.dagster_event and "pid" in (entry.dagster_event.engine_event_data.metadata or {})
    ]
    return int(pids[-1]) if pids else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def build_jobs(
    partitions_def: dg.PartitionsDefinition,
) -> tuple[list, list[dg.ScheduleDefinition], list[dg.SensorDefinition]]:
    """The jobs, the quarterly schedule and the out-of-time sensor, on the platform's partitions."""
    all_assets_job = dg.define_asset_job(
        name=ALL_ASSETS_JOB,
        selection=dg.AssetSelection.all(),
        partitions_def=partitions_def,
        description="Every bronze, silver, gold and ml table for the selected quarter(s).",
    )
    training_set_job = dg.define_asset_job(
        name=TRAINING_SET_JOB,
        selection=(
            dg.AssetSelection.assets(TRAINING_KEY).upstream().required_multi_asset_neighbors()
            | (dg.AssetSelection.assets(TRAINING_KEY).downstream(depth=1) & dg.AssetSelection.groups("publish"))
        ),
        partitions_def=partitions_def,
        description=(
            "gold/training_set of the quarter and everything upstream of it for that quarter: bronze → silver "
            "(with quarantines) → customer_features, churn_labels, training_set. The features' lookback quarters "
            "Q-L … Q-1 are read from earlier runs, not rebuilt: one never materialised fails the features step, "
            "naming it, before any gold is written (backfill the history first); one materialised empty reads as "
            "empty, with a warning. With publish.postgres, publish/training_set of the quarter too."
        ),
    )
    gold_job = dg.define_asset_job(
        name=GOLD_JOB,
        selection=dg.AssetSelection.groups("gold"),
        partitions_def=partitions_def,
        description="Only the gold tables of the quarter(s), from silver partitions already in the lake.",
    )
    ml_jobs, schedule, sensor = _ml_jobs(partitions_def)
    return [all_assets_job, training_set_job, gold_job, *ml_jobs], [schedule], [sensor]


def _ml_jobs(partitions_def: dg.PartitionsDefinition):
    quarterly_job = dg.define_asset_job(
        name=QUARTERLY_JOB,
        selection=(
            dg.AssetSelection.assets(SCORES_KEY).upstream().required_multi_asset_neighbors()
            | dg.AssetSelection.groups("publish")
        ),
        partitions_def=partitions_def,
        description=(
            "The quarter end to end: bronze → silver → gold/training_set (as training_set_job), then ml/churn_model "
            "(train, evaluate, register the champion in MLflow) and ml/churn_scores (the predictions for the next "
            "quarter); with publish.postgres, both published to PostgreSQL."
        ),
    )
    ml_job = dg.define_asset_job(
        name=ML_JOB,
        selection=dg.AssetSelection.groups("ml"),
        partitions_def=partitions_def,
        description=(
            "Retrain and rescore the quarter(s) of the run from gold/training_set and silver already in the lake: "
            "ml/churn_model and ml/churn_scores, one new MLflow model version per quarter."
        ),
    )
    quarterly_schedule = dg.build_schedule_from_partitioned_job(
        quarterly_job,
        name=QUARTERLY_SCHEDULE,
        description=(
            "At 00:00 UTC on the first day of each quarter, builds, trains and scores the quarter that just ended "
            "(tick 2026-01-01 → partition 2025-10-01, i.e. 2025-Q4) with quarterly_job."
        ),
    )
    out_of_time_job = dg.define_asset_job(
        name=OUT_OF_TIME_JOB,
        selection=dg.AssetSelection.checks_for_assets(SCORES_KEY),  # its one check: out_of_time_performance
        partitions_def=partitions_def,
        description="The out-of-time check of ml/churn_scores Q alone: its scores against gold/churn_labels Q+1.",
    )
    sensor = build_out_of_time_sensor(partitions_def, quarterly_job, out_of_time_job)
    return [quarterly_job, ml_job, out_of_time_job], quarterly_schedule, sensor


def build_out_of_time_sensor(partitions_def: dg.PartitionsDefinition, quarterly_job, out_of_time_job):
    """When quarterly_job succeeds for Q (its labels are in the lake), evaluate the scores of Q-1."""

    @dg.run_status_sensor(
        name=OUT_OF_TIME_SENSOR,
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitored_jobs=[quarterly_job],
        request_job=out_of_time_job,
        description="When quarterly_job succeeds for Q (its labels are in the lake), evaluate the scores of Q-1.",
    )
    def out_of_time_sensor(context: dg.RunStatusSensorContext):
        tags = context.dagster_run.tags
        quarter = tags.get("dagster/partition") or tags.get("dagster/asset_partition_range_end")
        if not quarter or to_key(shift(quarter, -1)) not in partitions_def.get_partition_keys():
            return dg.SkipReason(f"run {context.dagster_run.run_id} has no quarter with one before it")
        previous = to_key(shift(quarter, -1))
        return dg.RunRequest(run_key=f"out_of_time-{previous}-{context.dagster_run.run_id}", partition_key=previous)

    return out_of_time_sensor


# ------------------------------------------------------------------------------------ lake history
_SESSION_DEFAULTS = "spark.databricks.delta.properties.defaults."
_LISTING_PARALLELISM = "spark.sql.sources.parallelPartitionDiscovery.parallelism"


def retention_properties(days: int) -> dict[str, str]:
    """The table properties that keep `days` of a Delta table's history: `delta.logRetentionDuration`
    (how long its log keeps a commit, so that the version can still be opened) and
    `delta.deletedFileRetentionDuration` (how long VACUUM keeps a file after a commit replaced it, so
    that the version can still be read), both `interval <days> days`. The same values the session gives
    every table the IO manager creates (`delta_spark.retention_defaults`): a version stays readable for
    `days` after it was superseded, by its log and by its files alike."""
    return {f"delta.{key.removeprefix(_SESSION_DEFAULTS)}": value for key, value in retention_defaults(days).items()}


@dataclass(frozen=True)
class Vacuumed:
    """What vacuuming one table did."""

    version: int
    """The table's latest version afterwards (VACUUM records its start and end as commits)."""
    deleted_files: int
    properties_set: dict[str, str] = field(default_factory=dict)
    """The retention properties the table did not have yet (none: it had them)."""


def vacuum_table(
    spark: "SparkSession", path: str, retention_days: int, *, retention_hours: float | None = None
) -> Vacuumed | None:
    """VACUUM the Delta table at `path` (None when there is none: never materialised).

    First the table gets `retention_properties(retention_days)` where its own differ — a table created
    before the setting changed, or by another writer — with one `ALTER TABLE … SET TBLPROPERTIES`
    (a metadata commit, which a concurrent writer's commit would fail on: the job's op holds the
    table's pool, and nothing is altered when the properties already match). Then the files that no
    version of the last `retention_days` days references — replaced by a commit at least that long
    ago, or never committed (a crashed writer's) — are deleted. `retention_hours` overrides the
    retention of the VACUUM alone, for tests; Delta refuses one shorter than the table's
    `delta.deletedFileRetentionDuration` unless `spark.databricks.delta.retentionDurationCheck.enabled`
    is false."""
    if not DeltaTable.isDeltaTable(spark, path):
        return None
    table = DeltaTable.forPath(spark, path)
    current = table.detail().first()["properties"] or {}
    changed = {key: value for key, value in retention_properties(retention_days).items() if current.get(key) != value}
    if changed:
        assignments = ", ".join(f"'{key}' = '{value}'" for key, value in changed.items())
        spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ({assignments})")
    # VACUUM lists the table's folders with a Spark job of `parallelPartitionDiscovery.parallelism`
    # tasks, 10,000 by default: a minute of empty tasks for a table of a few quarters (measured on 2
    # cores: 60 s against 10 s with one task per core).
    previous = spark.conf.get(_LISTING_PARALLELISM, None)
    spark.conf.set(_LISTING_PARALLELISM, str(spark.sparkContext.defaultParallelism))
    try:
        table.vacuum(retention_days * 24 if retention_hours is None else retention_hours)
    finally:
        if previous is None:
            spark.conf.unset(_LISTING_PARALLELISM)
        else:
            spark.conf.set(_LISTING_PARALLELISM, previous)
    last = table.history(1).first()
    metrics = last["operationMetrics"] or {}
    deleted = int(metrics.get("numDeletedFiles", 0)) if last["operation"] == "VACUUM END" else 0
    return Vacuumed(int(last["version"]), deleted, changed)


def writer_pools(assets: Iterable[dg.AssetsDefinition]) -> dict[dg.AssetKey, str]:
    """Every lake table → the pool of the step that writes it (a quarantine: its silver table's)."""
    return {key: asset.op.pool for asset in assets if asset.is_executable and asset.op.pool for key in asset.keys}


def build_vacuum_job(retention_days: int, pools: Mapping[dg.AssetKey, str]) -> dg.JobDefinition:
    """`lake_vacuum_job`: one op per lake table of `pools`, each holding the pool of the step that
    writes the table (`writer_pools`), so a table is never vacuumed or altered while a run writes it;
    tables never materialised are skipped."""
    ops = [_vacuum_op(key, pool, retention_days) for key, pool in pools.items()]

    @dg.job(
        name=VACUUM_JOB,
        description=(
            f"VACUUM every lake table: delete the files no Delta version of the last storage.delta.retention_days "
            f"= {retention_days} days needs, after giving each table that retention for its log and its files "
            "(delta.logRetentionDuration, delta.deletedFileRetentionDuration). Versions older than that can no "
            "longer be read; nothing else in the platform deletes history."
        ),
        executor_def=dg.in_process_executor,
    )
    def lake_vacuum_job():
        for op in ops:
            op()

    return lake_vacuum_job


def _vacuum_op(key: dg.AssetKey, pool: str, retention_days: int) -> dg.OpDefinition:
    table = "/".join(key.path)

    @dg.op(
        name=f"vacuum_{'__'.join(key.path)}",
        pool=pool,
        required_resource_keys={"pyspark", "io_manager"},
        description=f"VACUUM {table}, keeping {retention_days} days of its history.",
    )
    def vacuum(context: dg.OpExecutionContext) -> None:
        path = context.resources.io_manager.table_path(key)
        done = vacuum_table(context.resources.pyspark.spark_session, path, retention_days)
        if done is None:
            context.log.info(f"{table}: no Delta table at {path} (never materialised), nothing to vacuum")
            return
        context.log_event(
            dg.AssetObservation(
                asset_key=key,
                metadata={
                    "vacuum/deleted_files": dg.MetadataValue.int(done.deleted_files),
                    "vacuum/retention_days": dg.MetadataValue.int(retention_days),
                    "delta_version": dg.MetadataValue.int(done.version),
                },
            )
        )
        changed = (
            f"; set {', '.join(f'{k} = {v}' for k, v in done.properties_set.items())}" if done.properties_set else ""
        )
        context.log.info(
            f"{table}: vacuumed with a retention of {retention_days} days, {done.deleted_files} file(s) deleted{changed}"
        )

    return vacuum
