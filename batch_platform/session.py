"""The Spark session the platform runs with: every setting (`spark_conf`) and the session built from
them (`build_session`), for the `pyspark` resource of a run and for `consume.spark_session` alike.

The settings gather what lives below: the config file's `spark` section, Delta's jars and SQL
extension (`batch_platform.delta`), the S3A jars for an `s3a://` root (`batch_platform.s3`) and the
retention of Delta's history. A `${NAME}` of `spark.conf` stays a reference in the settings (they are
Dagster resource config, which the UI and run storage show) and is resolved only by `build_session`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from batch_platform.config import PlatformConfig
from batch_platform.delta_spark import SESSION_CONF, delta_jars, retention_defaults
from batch_platform.env_refs import expand_env_refs
from batch_platform.s3 import s3a_jars_needed

_JAVA_OPTIONS = ("spark.driver.extraJavaOptions", "spark.executor.extraJavaOptions")


def spark_conf(config: PlatformConfig) -> dict[str, str]:
    """Every Spark setting the platform runs with; the file's `spark.conf` wins over ours. The
    session zone is always UTC; the JVMs run in UTC unless their options name a zone (results
    do not depend on it: a test runs a Tokyo JVM). A `${NAME}` of `spark.conf` stays a reference
    here: `build_session` resolves it."""
    spark = config.spark
    conf: dict[str, str] = {
        "spark.master": spark.master,
        "spark.app.name": spark.app_name,
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.sql.shuffle.partitions": str(spark.shuffle_partitions),
        "spark.sql.adaptive.enabled": "true",
        "spark.sql.adaptive.coalescePartitions.enabled": "true",
        "spark.ui.enabled": str(spark.ui_enabled).lower(),
        "spark.ui.showConsoleProgress": "false",
        # Hive-style `quarter=2025-Q4` folders stay strings, never guessed types.
        "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
        # INT64 micros rather than Spark's legacy INT96, so pandas, pyarrow and DuckDB read it.
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        # Every cached frame (parsed landing files, an output between the IO manager's passes) is
        # read a few times and dropped: compressing it cost more than it saved.
        "spark.sql.inMemoryColumnarStorage.compressed": "false",
        # A quarter's landing zone is ~90 daily folders; above this many paths Spark lists
        # them in a Spark job of its own (one per read), slower than the driver doing it.
        "spark.sql.sources.parallelPartitionDiscovery.threshold": "4096",
    }
    conf.update(SESSION_CONF)
    conf.update(retention_defaults(config.storage.delta.retention_days))
    conf.update(_class_path(spark.master, [*delta_jars(), *s3a_jars_needed(config)]))
    for key, value in spark.conf.items():
        if key in _JAVA_OPTIONS and "-Duser.timezone=" not in expand_env_refs(_to_str(value)):
            conf[key] = f"{_to_str(value)} -Duser.timezone=UTC"
        else:
            conf[key] = _to_str(value)
    return conf


def loopback_env(master: str) -> dict[str, str]:
    """What a JVM of `master` needs in its environment to listen on loopback only: for a `local`
    master, `SPARK_LOCAL_IP=127.0.0.1`; nothing for a cluster.

    A local master's JVM serves no other machine. Without the variable, the driver's RPC and block
    manager bind to the machine's outside address and the Spark UI to every interface (Spark's
    `WebUI.bind` reads only that variable). On a cluster the executors must reach the driver, so its
    address stays the environment's choice (docs/s3-and-cluster.md). `build_session`, the jar fetch
    and the benchmark's contenders all start their JVMs with it."""
    return {"SPARK_LOCAL_IP": "127.0.0.1"} if master.startswith("local") else {}


def build_session(conf: dict[str, Any]):
    """The SparkSession of `conf` (`spark_conf`'s settings, `${NAME}`s resolved now; KeyError naming
    an unset variable); the one already running in this process if any. A local session's JVM
    listens on loopback only (`loopback_env`), unless the environment already names an address."""
    for name, value in loopback_env(str(conf.get("spark.master", ""))).items():
        os.environ.setdefault(name, value)
    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, expand_env_refs(str(value)))
    return builder.getOrCreate()


def _class_path(master: str, jars: list[Path]) -> dict[str, str]:
    """The fetched jars (Delta, and S3A for an `s3a://` root) on the session's class path. With a
    `local` master the executors live in the driver's JVM, so the driver's class path is enough (no
    copy of the ~650 MB AWS SDK per session); on a cluster `spark.jars` also ships them to the
    executors."""
    if master.startswith("local"):
        return {"spark.driver.extraClassPath": os.pathsep.join(str(jar) for jar in jars)}
    return {"spark.jars": ",".join(str(jar) for jar in jars)}


def _to_str(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
