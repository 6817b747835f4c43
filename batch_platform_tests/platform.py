"""The platform as the tests configure, build and run it; no config file is read.

- `make_config`: a config on a temp dir with the suite's Spark settings (`TEST_SPARK`, its JVMs'
  options `TEST_JVM`); `dagster_env`: the same for a `dagster` child process.
- The assets, checks and partitions, built by the package's own builders from a config with the
  defaults every test config shares (first quarter 2024-Q1, L = 4).
- `materialize_range`: a run over a range of quarters, as the command line's `--partition-range`
  and a single-run backfill start it; `materialisations`: the metadata it recorded per quarter.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import dagster as dg

from batch_platform.assets.bronze import build_bronze_assets
from batch_platform.assets.gold import build_gold_assets
from batch_platform.assets.ml import build_ml_assets, build_ml_checks
from batch_platform.assets.silver import build_silver_assets
from batch_platform.checks import build_silver_checks
from batch_platform.config import PlatformConfig, parse_config
from batch_platform.partitions import quarterly_partitions, to_key

TEST_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:ReservedCodeCacheSize=240m"
"""The suite's JVMs compile with C1 only and collect with the serial GC: runs on a few hundred rows
spend less on the JIT (test_gold + test_checks took 75-76 s against 82-87 s); results depend on
neither. C1 alone shrinks the code cache to 48 MB, which a run of every asset, MLlib included,
fills ("Out of space in CodeCache"): it gets the size tiered compilation would have."""
TEST_SESSION_LIMITS = {
    "spark.driver.memory": "2g",
    "spark.databricks.delta.delta.log.cacheSize": "32",
    "spark.sql.ui.retainedExecutions": "50",
    "spark.ui.retainedJobs": "100",
    "spark.ui.retainedStages": "100",
}
"""The suite's one SparkSession lives for the whole run, through hundreds of Delta tables, where a
platform run's lives for one run. With Spark's and Delta's defaults it keeps up to 10,000 `DeltaLog`s
(each with its snapshot's plans and cached state) for an hour and the last 1,000 SQL executions with
their plans; the 1 GB default heap filled (tenured generation 696 of 699 MB after 20 minutes, then
`OutOfMemoryError` in a gold step on CI). A production run sets none of these: config/config.yaml
gives the driver 2g and its session ends with the run."""
TEST_SPARK = {
    "master": "local[2]",
    "shuffle_partitions": 2,
    "ui_enabled": False,
    "conf": {
        "spark.driver.extraJavaOptions": TEST_JVM,
        "spark.executor.extraJavaOptions": TEST_JVM,
        **TEST_SESSION_LIMITS,
    },
}


def make_config(tmp_path: Path, **sections) -> PlatformConfig:
    raw = {
        "storage": {"landing_root": str(tmp_path / "landing"), "lake_root": str(tmp_path / "lake")},
        "spark": dict(TEST_SPARK),
    }
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return parse_config(raw, "test")


def dagster_env(root: Path, config: dict) -> dict[str, str]:
    """The environment of a `dagster` child process: `config` as its config file and a Dagster home
    (telemetry off) of its own, both under `root`."""
    import yaml

    (root / "config.yaml").write_text(yaml.safe_dump(config))
    home = root / "dagster_home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return {**os.environ, "BATCH_PLATFORM_CONFIG": str(root / "config.yaml"), "DAGSTER_HOME": str(home)}


DEFAULTS = parse_config({}, "test defaults")
quarterly = quarterly_partitions(DEFAULTS.batch.first_quarter)
bronze_assets = build_bronze_assets(quarterly)
bronze_operational, bronze_logs, bronze_external, bronze_customers = bronze_assets
silver_assets = build_silver_assets(quarterly)
gold_assets = build_gold_assets(quarterly, DEFAULTS.batch)
silver_checks = build_silver_checks(quarterly)
ml_assets = build_ml_assets(quarterly, DEFAULTS.batch)
ml_checks = build_ml_checks(quarterly)


def range_tags(first: str, last: str | None = None) -> dict[str, str]:
    """The tags of one run over the quarters `first` … `last` (`first` alone without `last`)."""
    return {
        "dagster/asset_partition_range_start": to_key(first),
        "dagster/asset_partition_range_end": to_key(last or first),
    }


def materialize_range(
    assets: Sequence, resources: dict, first: str, last: str | None = None, **kwargs
) -> dg.ExecuteInProcessResult:
    """`assets` (or `selection` of them) over `first` … `last` in one in-process run, as a
    single-run backfill runs them."""
    return dg.materialize(assets, resources=resources, tags=range_tags(first, last), **kwargs)


def materialisations(result, key: dg.AssetKey) -> dict[str, dict]:
    """The metadata values each partition (by key) of asset `key` recorded in the run `result`."""
    found: dict[str, dict] = {}
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        if mat.asset_key == key:
            found.setdefault(mat.partition, {}).update({name: value.value for name, value in mat.metadata.items()})
    return found
