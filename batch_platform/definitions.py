"""The whole platform on one screen: assets, checks, jobs, schedules and resources.

Importing this module starts no Spark session: the session is created by the `pyspark` resource
when a run starts, once per run (in-process executor).
"""

from __future__ import annotations

import warnings

import dagster as dg

# Single-run backfill policies and partitioned asset checks are marked beta/preview in Dagster 1.13;
# the platform depends on both on purpose, so the code location does not repeat the notice on load.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

from batch_platform.assets.bronze import bronze_assets  # noqa: E402
from batch_platform.assets.gold import gold_assets
from batch_platform.assets.ml import build_ml_assets, ml_checks
from batch_platform.assets.silver import silver_assets
from batch_platform.checks import silver_checks
from batch_platform.config import platform_config
from batch_platform.jobs import jobs, schedules, sensors
from batch_platform.resources import build_resources

config = platform_config()
defs = dg.Definitions(
    assets=[*bronze_assets, *silver_assets, *gold_assets, *build_ml_assets(config.batch.lookback_quarters)],
    asset_checks=[*silver_checks, *ml_checks],
    jobs=jobs,
    schedules=schedules,
    sensors=sensors,
    resources=build_resources(config),
    executor=dg.in_process_executor,
)
