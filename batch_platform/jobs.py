"""Jobs and schedules. Every job runs in-process: one run, one SparkSession.

`training_set_job` materialises, for the quarter(s) of its run, `gold/training_set` and everything
upstream of it: bronze Q → silver Q → gold Q (customer_features, churn_labels, training_set).
The features of Q also read silver Q-L … Q-1, which the job does NOT rebuild: it relies on the
earlier quarters having been materialised by earlier runs (earlier ticks of the schedule, or one
single-run backfill of the history). A lookback quarter that was never materialised is read as
empty — the features step logs a warning and lists it under `lookback_quarters_empty` in its
materialisation — so the first quarters after the platform's start still build, just with less
history; quarters before `batch.first_quarter` do not exist and are skipped. To rebuild history,
backfill a range in one run (`dagster asset materialize --select '*' --partition-range …`).

`quarterly_training_set_schedule` runs `training_set_job` at 00:00 UTC on the first day of every
quarter for the quarter that just ended (tick 2026-01-01 → partition 2025-10-01 = 2025-Q4).
"""

import dagster as dg

TRAINING_SET_KEY = dg.AssetKey(["gold", "training_set"])
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
) -> tuple[list, list[dg.ScheduleDefinition]]:
    """The three jobs and the quarterly schedule, on the platform's partitions."""
    all_assets_job = dg.define_asset_job(
        name=ALL_ASSETS_JOB,
        selection=dg.AssetSelection.all(),
        partitions_def=partitions_def,
        description="Every bronze, silver and gold table for the selected quarter(s).",
    )
    training_set_job = dg.define_asset_job(
        name="training_set_job",
        selection=dg.AssetSelection.assets(TRAINING_SET_KEY).upstream().required_multi_asset_neighbors(),
        partitions_def=partitions_def,
        description=(
            "gold/training_set of the quarter and everything upstream of it for that quarter: bronze → silver "
            "(with quarantines) → customer_features, churn_labels, training_set. The features' lookback quarters "
            "Q-L … Q-1 are read from earlier runs, not rebuilt; missing ones read as empty, with a warning."
        ),
    )
    gold_job = dg.define_asset_job(
        name="gold_job",
        selection=dg.AssetSelection.groups("gold"),
        partitions_def=partitions_def,
        description="Only the gold tables of the quarter(s), from silver partitions already in the lake.",
    )
    schedule = dg.build_schedule_from_partitioned_job(
        training_set_job,
        name="quarterly_training_set_schedule",
        description=(
            "At 00:00 UTC on the first day of each quarter, builds the quarter that just ended "
            "(tick 2026-01-01 → partition 2025-10-01, i.e. 2025-Q4) with training_set_job."
        ),
    )
    return [all_assets_job, training_set_job, gold_job], [schedule]
