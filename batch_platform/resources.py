"""The resources every asset runs with, built in one place from the config.

Local (`local[*]`, folders) and cluster (`spark://…`, `s3a://…`) differ only in the config file's
values: the asset code and these builders are the same. A new optional config section that assets
need at run time becomes a resource (or a field of `settings`) here.
"""

import dagster as dg
from dagster_pyspark import PySparkResource

from batch_platform.config import PlatformConfig
from batch_platform.io_manager import LakeIOManager
from batch_platform.landing import LandingZone
from batch_platform.mlflow_store import build_mlflow_store


class BatchSettings(dg.ConfigurableResource):
    """The batch rules of SPEC.md that assets read at run time (shown in the UI's resources tab)."""

    lookback_quarters: int
    prediction_window_days: int
    eval_fraction: float
    quarantine_rate_warn: float
    quarantine_rate_fail: float


def build_resources(config: PlatformConfig) -> dict[str, object]:
    pyspark = PySparkResource(spark_config=config.spark_conf())
    return {
        "pyspark": pyspark,
        "io_manager": LakeIOManager(pyspark=pyspark, lake_root=config.lake_root),
        "landing": LandingZone(root=config.landing_root),
        "mlflow_store": build_mlflow_store(config),
        "settings": BatchSettings(
            lookback_quarters=config.batch.lookback_quarters,
            prediction_window_days=config.batch.prediction_window_days,
            eval_fraction=config.batch.eval_fraction,
            quarantine_rate_warn=config.checks.quarantine_rate_warn,
            quarantine_rate_fail=config.checks.quarantine_rate_fail,
        ),
    }
