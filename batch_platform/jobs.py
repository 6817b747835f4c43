"""Jobs and schedules. Every job runs in-process: one run, one SparkSession."""

import dagster as dg

from batch_platform.partitions import quarterly

all_assets_job = dg.define_asset_job(
    name="all_assets_job",
    selection=dg.AssetSelection.all(),
    partitions_def=quarterly,
    description="Every bronze, silver and gold table for the selected quarter(s).",
)
