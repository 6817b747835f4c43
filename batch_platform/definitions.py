"""The whole platform on one screen: assets, checks, jobs, schedules and resources.

Importing this module starts no Spark session: the session is created by the `pyspark` resource
when a run starts, once per run (in-process executor).
"""

from __future__ import annotations

import dagster as dg

from batch_platform.assets.bronze import bronze_assets
from batch_platform.config import platform_config
from batch_platform.jobs import all_assets_job
from batch_platform.resources import build_resources

defs = dg.Definitions(
    assets=[*bronze_assets],
    jobs=[all_assets_job],
    resources=build_resources(platform_config()),
    executor=dg.in_process_executor,
)
