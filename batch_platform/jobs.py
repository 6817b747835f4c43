"""Jobs and schedules. Every job runs in-process: one run, one SparkSession.

`training_set_job` materialises, for the quarter(s) of its run, `gold/training_set` and everything
upstream of it: bronze Q → silver Q → gold Q (customer_features, churn_labels, training_set), and,
when the config has `publish.postgres`, `publish/training_set` Q after it.
The features of Q also read silver Q-L … Q-1, which the job does NOT rebuild: it relies on the
earlier quarters having been materialised by earlier runs (earlier ticks of the schedule, or one
single-run backfill of the history). A lookback quarter that was never materialised is read as
empty — the features step logs a warning and lists it under `lookback_quarters_empty` in its
materialisation — so the first quarters after the platform's start still build, just with less
history; quarters before `batch.first_quarter` do not exist and are skipped. To rebuild history,
backfill a range in one run (`dagster asset materialize --select '*' --partition-range …`).

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
"""

import dagster as dg

from batch_platform.partitions import shift, to_key

TRAINING_SET_KEY = dg.AssetKey(["gold", "training_set"])
SCORES_KEY = dg.AssetKey(["ml", "churn_scores"])
ALL_ASSETS_JOB = "ALL_ASSETS_JOB"
"""The job of every asset, and the one the UI's "Materialize" on the asset graph launches.

The UI launches a selection through the first job (by name) that holds every selected asset. With
Dagster's implicit `__ASSET_JOB` first, "select all → Materialize → a range of quarters" makes an
*asset* backfill, which targets the picked quarters of the roots and then every downstream quarter
the partition mappings reach: `gold/customer_features` Q reads silver Q-L … Q-1, so silver Q
reaches gold Q+1 … Q+L, quarters whose silver is not in the backfill (the run fails on them). A
name that sorts before `__ASSET_JOB` makes the UI launch a *job* backfill of this job instead:
exactly the picked quarters, in one run (single-run backfill policies)."""


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
        name="training_set_job",
        selection=(
            dg.AssetSelection.assets(TRAINING_SET_KEY).upstream().required_multi_asset_neighbors()
            | (dg.AssetSelection.assets(TRAINING_SET_KEY).downstream(depth=1) & dg.AssetSelection.groups("publish"))
        ),
        partitions_def=partitions_def,
        description=(
            "gold/training_set of the quarter and everything upstream of it for that quarter: bronze → silver "
            "(with quarantines) → customer_features, churn_labels, training_set. The features' lookback quarters "
            "Q-L … Q-1 are read from earlier runs, not rebuilt; missing ones read as empty, with a warning. With "
            "publish.postgres, publish/training_set of the quarter too."
        ),
    )
    gold_job = dg.define_asset_job(
        name="gold_job",
        selection=dg.AssetSelection.groups("gold"),
        partitions_def=partitions_def,
        description="Only the gold tables of the quarter(s), from silver partitions already in the lake.",
    )
    ml_jobs, schedule, sensor = _ml_jobs(partitions_def)
    return [all_assets_job, training_set_job, gold_job, *ml_jobs], [schedule], [sensor]


def _ml_jobs(partitions_def: dg.PartitionsDefinition):
    quarterly_job = dg.define_asset_job(
        name="quarterly_job",
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
        name="ml_job",
        selection=dg.AssetSelection.groups("ml"),
        partitions_def=partitions_def,
        description=(
            "Retrain and rescore the quarter(s) of the run from gold/training_set and silver already in the lake: "
            "ml/churn_model and ml/churn_scores, one new MLflow model version per quarter."
        ),
    )
    quarterly_schedule = dg.build_schedule_from_partitioned_job(
        quarterly_job,
        name="quarterly_schedule",
        description=(
            "At 00:00 UTC on the first day of each quarter, builds, trains and scores the quarter that just ended "
            "(tick 2026-01-01 → partition 2025-10-01, i.e. 2025-Q4) with quarterly_job."
        ),
    )
    out_of_time_job = dg.define_asset_job(
        name="out_of_time_job",
        selection=dg.AssetSelection.checks(dg.AssetCheckKey(SCORES_KEY, "out_of_time_performance")),
        partitions_def=partitions_def,
        description="The out-of-time check of ml/churn_scores Q alone: its scores against gold/churn_labels Q+1.",
    )
    sensor = build_out_of_time_sensor(partitions_def, quarterly_job, out_of_time_job)
    return [quarterly_job, ml_job, out_of_time_job], quarterly_schedule, sensor


def build_out_of_time_sensor(partitions_def: dg.PartitionsDefinition, quarterly_job, out_of_time_job):
    """When quarterly_job succeeds for Q (its labels are in the lake), evaluate the scores of Q-1."""

    @dg.run_status_sensor(
        name="out_of_time_sensor",
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
