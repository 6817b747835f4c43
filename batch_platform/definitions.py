"""The whole platform on one screen: assets, checks, jobs, schedules and resources.

The config file is read here, once, when Dagster loads the code location (`defs` is a lazy
`@dg.definitions` function, so importing this module reads no file and starts no Spark); every
builder receives the `PlatformConfig`. `build_definitions(config)` is what tests and scripts call
with a config of their own. Spark starts only when a run does: the `pyspark` resource creates the
session, once per run (in-process executor).
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
from batch_platform.resources import build_resources
from batch_platform.s3 import is_s3
from batch_platform.sensors import build_landing_sensor


def build_assets(config: PlatformConfig) -> list[dg.AssetsDefinition]:
    """Every lake table's asset, in layer order, then the publishing assets (with `publish.postgres` only)."""
    return [
        *build_bronze_assets(config),
        *build_silver_assets(config),
        *build_gold_assets(config),
        *build_ml_assets(config),
        *build_publish_assets(config),
    ]


def build_definitions(config: PlatformConfig) -> dg.Definitions:
    # Single-run backfill policies and partitioned asset checks are marked beta/preview in Dagster
    # 1.13; the platform depends on both on purpose, so building it does not repeat the notice.
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    partitions = config.partitions()
    jobs, schedules, sensors = build_jobs(partitions)
    assets = build_assets(config)
    return dg.Definitions(
        assets=assets,
        asset_checks=[*build_silver_checks(config), *build_ml_checks(config)],
        jobs=[*jobs, build_vacuum_job(config.storage.delta.retention_days, writer_pools(assets))],
        schedules=schedules,
        sensors=[*sensors, build_landing_sensor(partitions, on_s3=is_s3(config.landing_root))],
        resources=build_resources(config),
        executor=dg.in_process_executor,
    )


@dg.definitions
def defs() -> dg.Definitions:
    """The code location `dagster dev` / `make ui` loads, from `$BATCH_PLATFORM_CONFIG` (or the default file)."""
    return build_definitions(load_config())
