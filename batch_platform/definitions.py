"""The whole platform on one screen: its asset groups, checks, jobs, schedule, sensors and resources.

The config file is read here, once, when Dagster loads the code location (`defs` is a lazy
`@dg.definitions` function, so importing this module reads no file and starts no Spark); the
quarterly partitions are built here, once, and every builder receives them with the config section
it needs. `build_definitions(config)` is what tests and scripts call with a config of their own.
Spark starts only when a run does: the `pyspark` resource creates the session, once per run
(in-process executor).

    group      tables                                                       built by
    bronze     bronze/operational, logs, external, customers                build_bronze_assets
    silver     silver/<table> and silver/<table>_quarantine per source      build_silver_assets
    gold       gold/customer_history, customer_features, churn_labels,      build_gold_assets
               training_set
    ml         ml/churn_model, ml/churn_scores                              build_ml_assets
    publish    publish/training_set, publish/churn_scores (publish.postgres) build_publish_assets

    checks     arrival_and_schema (bronze), reconciliation, no_null_keys, no_duplicate_keys,
               quarantine_rate (silver), promotion_gate (ml/churn_model),
               out_of_time_performance (ml/churn_scores), feature_drift (gold/customer_features),
               score_drift (ml/churn_scores)                    batch_platform.checks, .monitoring
    jobs       ALL_ASSETS_JOB, training_set_job, gold_job, quarterly_job, ml_job, out_of_time_job,
               lake_vacuum_job                                              batch_platform.jobs
    schedule   quarterly_schedule (quarterly_job, 00:00 UTC on each quarter's first day)
    sensors    out_of_time_sensor (quarterly_job succeeded → out_of_time_job for Q-1),
               landing_sensor (new landing files → training_set_job)
    resources  pyspark, io_manager, landing, mlflow_store, batch, checks, ml, monitoring, customers;
               postgres with publish.postgres; s3 when the platform uses S3 batch_platform.resources

The import graph runs one way: config, partitions, layout and storage at the bottom; the table
declarations (`schemas/`); bronze → silver → gold → ml → publish; then checks, jobs, sensors and
resources; this module on top.
"""

from __future__ import annotations

import warnings

import dagster as dg

from batch_platform.assets.bronze import build_bronze_assets
from batch_platform.assets.gold import build_gold_assets
from batch_platform.assets.ml import build_ml_assets, build_ml_checks
from batch_platform.assets.publish import build_publish_assets
from batch_platform.assets.silver import build_silver_assets
from batch_platform.checks import build_silver_checks
from batch_platform.config import PlatformConfig, load_config
from batch_platform.jobs import build_jobs, build_vacuum_job, writer_pools
from batch_platform.layout import is_s3
from batch_platform.monitoring import build_monitoring_checks
from batch_platform.partitions import quarterly_partitions
from batch_platform.resources import build_resources
from batch_platform.sensors import build_landing_sensor


def build_definitions(config: PlatformConfig) -> dg.Definitions:
    # Single-run backfill policies and partitioned asset checks are marked beta/preview in Dagster
    # 1.13; the platform depends on both on purpose, so building it does not repeat the notice.
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    quarterly = quarterly_partitions(config.batch.first_quarter)

    groups = {
        "bronze": build_bronze_assets(quarterly),
        "silver": build_silver_assets(quarterly),
        "gold": build_gold_assets(quarterly, config.batch),
        "ml": build_ml_assets(quarterly, config.batch, config.ml),
        "publish": build_publish_assets(quarterly, config),
    }
    assets = [asset for group in groups.values() for asset in group]
    checks = [*build_silver_checks(quarterly), *build_ml_checks(quarterly), *build_monitoring_checks(quarterly)]

    jobs, schedules, sensors = build_jobs(quarterly)
    vacuum_job = build_vacuum_job(config.storage.delta.retention_days, writer_pools(assets))
    landing_sensor = build_landing_sensor(quarterly, on_s3=is_s3(config.landing_root))

    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=[*jobs, vacuum_job],
        schedules=schedules,
        sensors=[*sensors, landing_sensor],
        resources=build_resources(config),
        executor=dg.in_process_executor,
    )


@dg.definitions
def defs() -> dg.Definitions:
    """The code location `dagster dev` / `make ui` loads, from `$BATCH_PLATFORM_CONFIG` (or the default file)."""
    return build_definitions(load_config())
