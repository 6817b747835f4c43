"""Fetch, once, the jars the platform's Spark sessions put on their class path, into the project's
git-ignored `.jars/` folder (`make setup` runs this):

- Delta Lake (`batch_platform.delta_spark.DELTA_PACKAGES`: `delta-spark` and `delta-storage`), which every
  session needs (the lake is Delta; SPEC.md, "Lake"). Spark itself provides everything else those
  jars depend on, so only these two are kept.
- The S3A connector (`hadoop-aws`) matching the Hadoop inside the installed pyspark, with the AWS
  SDK it depends on, for `s3a://` roots.

Spark's own Ivy resolution does the fetching (`spark.jars.packages`, its default repository), here
only: the platform then only adds the local jars to a session (`PlatformConfig.spark_conf`), so no
run ever downloads anything.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from batch_platform.delta_spark import DELTA_JARS_DIR, DELTA_PACKAGES, jar_name
from batch_platform.s3 import JARS_DIR, hadoop_version, s3a_jars
from batch_platform.session import loopback_env


def resolve(packages: list[str], ivy: Path) -> None:
    """Let Spark's Ivy resolve `packages` (and their dependencies) into `ivy/jars`, in a process of
    its own: a second resolution in the same JVM would look for the first one's jars. Its JVM
    listens on loopback only, as every local session's (`batch_platform.session.loopback_env`)."""
    code = (
        "import sys; from pyspark.sql import SparkSession; "
        "SparkSession.builder.master('local[1]').appName('fetch-jars')"
        ".config('spark.jars.packages', sys.argv[1]).config('spark.jars.ivy', sys.argv[2])"
        ".config('spark.ui.enabled', 'false').config('spark.driver.host', '127.0.0.1').getOrCreate().stop()"
    )
    loopback = {**os.environ, **loopback_env("local[1]")}
    subprocess.run([sys.executable, "-c", code, ",".join(packages), str(ivy)], check=True, env=loopback)
    shutil.rmtree(ivy / "cache", ignore_errors=True)  # the resolved copies are in ivy/jars


def fetch_delta() -> int:
    wanted = [jar_name(package) for package in DELTA_PACKAGES]
    if all((DELTA_JARS_DIR / name).exists() for name in wanted):
        print(f"Delta jars already in {DELTA_JARS_DIR}")
        return 0
    ivy = JARS_DIR / "delta-ivy"
    print(f"fetching {', '.join(DELTA_PACKAGES)} into {DELTA_JARS_DIR}")
    resolve(list(DELTA_PACKAGES), ivy)
    DELTA_JARS_DIR.mkdir(parents=True, exist_ok=True)
    for name in wanted:
        source = ivy / "jars" / name
        if not source.exists():
            print(f"no {name} under {ivy / 'jars'} after resolution", file=sys.stderr)
            return 1
        shutil.copy2(source, DELTA_JARS_DIR / name)
        print(f"  {name}")
    shutil.rmtree(ivy)
    return 0


def fetch_s3a() -> int:
    version = hadoop_version()
    if s3a_jars():
        print(f"S3A jars for Hadoop {version} already in {JARS_DIR}")
        return 0
    ivy = JARS_DIR / "ivy"
    print(f"fetching org.apache.hadoop:hadoop-aws:{version} and its AWS SDK into {ivy}")
    resolve([f"org.apache.hadoop:hadoop-aws:{version}"], ivy)
    jars = s3a_jars()
    if not jars:
        print(f"no hadoop-aws jar found under {ivy / 'jars'} after resolution", file=sys.stderr)
        return 1
    for jar in jars:
        print(f"  {jar.name}")
    return 0


def main() -> int:
    return fetch_delta() or fetch_s3a()


if __name__ == "__main__":
    sys.exit(main())
