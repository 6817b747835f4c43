"""The resources every asset runs with, built in one place from the config.

Local (`local[*]`, folders) and cluster (`spark://…`, `s3a://…`) differ only in the config file's
values: the asset code and these builders are the same. A config section that assets read at run
time is a resource as it is (`batch`, `checks`, `ml`, `monitoring`, `customers`: the `BatchConfig`,
`ChecksConfig`, `MlConfig`, `MonitoringConfig` and `CustomersConfig` of the file, which the assets
and checks declare as `dg.ResourceParam[...]`), never a copy of it.
"""

from typing import Any

import dagster as dg
from dagster_pyspark import PySparkResource
from pydantic import PrivateAttr

from batch_platform.config import PlatformConfig, S3Config
from batch_platform.env_refs import env_name
from batch_platform.io_manager import LakeIOManager
from batch_platform.landing import LandingZone
from batch_platform.layout import is_s3
from batch_platform.mlflow_store import build_mlflow_store
from batch_platform.postgres import PostgresTarget
from batch_platform.s3 import hadoop_s3a_settings, s3_resource
from batch_platform.session import build_session, spark_conf


class PlatformPySpark(PySparkResource):
    """dagster-pyspark's resource, which also sets `storage.s3` on the session's Hadoop configuration
    when a run starts. Every S3A client of the run (listing the landing zone, reads, writes, the
    lake's publish; the executors get the configuration with their tasks) then uses it — also on a
    session that already exists, where static settings would be ignored. The credentials are
    `dg.EnvVar`s, and `spark_config` keeps the `${NAME}`s of `spark.conf` as written, resolved only
    for the session's builder: the UI and run storage keep the variables' names, never their values."""

    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_path_style_access: bool = False
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    _session: Any = PrivateAttr(default=None)

    # Dagster's private hook, inherited True from dagster-pyspark: its one effect is that Dagster's
    # telemetry (when enabled) counts this class as the user's own and does not send its name.
    @classmethod
    def _is_dagster_maintained(cls) -> bool:
        return False

    @property
    def spark_session(self) -> Any:
        return self._session

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        try:
            self._session = build_session(self.spark_config)
        except KeyError as exc:
            raise dg.Failure(f"spark.conf refers to environment variable {exc.args[0]}, which is not set") from None
        jsc = getattr(self._session.sparkContext, "_jsc", None)  # none under Spark Connect
        if jsc is None:
            return
        hadoop = jsc.hadoopConfiguration()
        settings = hadoop_s3a_settings(
            self.s3_endpoint_url,
            self.s3_region,
            self.s3_path_style_access,
            self.s3_access_key_id,
            self.s3_secret_access_key,
        )
        for key, value in settings.items():
            hadoop.set(key, value)


def build_pyspark(config: PlatformConfig) -> PlatformPySpark:
    s3 = config.storage.s3 or S3Config()
    key, secret = env_name(s3.access_key_id), env_name(s3.secret_access_key)
    return PlatformPySpark(
        spark_config=spark_conf(config),
        s3_endpoint_url=s3.endpoint_url,
        s3_region=s3.region,
        s3_path_style_access=s3.path_style_access,
        s3_access_key_id=dg.EnvVar(key) if key else None,
        s3_secret_access_key=dg.EnvVar(secret) if secret else None,
    )


def build_io_manager(config: PlatformConfig, pyspark: PySparkResource) -> LakeIOManager:
    """The lake's IO manager, with `storage.s3` as written (credentials as `${NAME}` references) for
    reading the Delta log from the driver."""
    s3 = config.storage.s3 or S3Config()
    return LakeIOManager(
        pyspark=pyspark,
        lake_root=config.lake_root,
        s3_endpoint_url=s3.endpoint_url,
        s3_region=s3.region,
        s3_path_style_access=s3.path_style_access,
        s3_access_key_id=s3.access_key_id,
        s3_secret_access_key=s3.secret_access_key,
    )


def uses_s3(config: PlatformConfig) -> bool:
    """Whether the platform talks to S3: `storage.s3` is set, or the landing or lake root is `s3a://`."""
    return config.storage.s3 is not None or is_s3(config.landing_root) or is_s3(config.lake_root)


def build_resources(config: PlatformConfig) -> dict[str, object]:
    """Every resource of the config. `postgres` with `publish.postgres` only; `s3` (dagster-aws's
    `S3Resource`, which the landing sensor lists an `s3a://` landing zone with) only when the
    platform uses S3 (`uses_s3`): a local platform never imports dagster-aws."""
    pyspark = build_pyspark(config)
    publish = config.publish.postgres
    optional = {"postgres": PostgresTarget(dsn=publish.dsn, db_schema=publish.db_schema)} if publish else {}
    if uses_s3(config):
        optional["s3"] = s3_resource(config.storage.s3)
    return {
        **optional,
        "pyspark": pyspark,
        "io_manager": build_io_manager(config, pyspark),
        "landing": LandingZone(root=config.landing_root),
        "mlflow_store": build_mlflow_store(config),
        "batch": config.batch,
        "checks": config.checks,
        "ml": config.ml,
        "monitoring": config.monitoring,
        "customers": config.customers,
    }
