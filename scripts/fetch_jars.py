"""Fetch the S3A connector (`hadoop-aws`) matching the Hadoop inside the installed pyspark, with the
AWS SDK it depends on, into the project's git-ignored `.jars/` folder (`make setup` runs this).

Spark's own Ivy resolution does the fetching (`spark.jars.packages`, its default repository), once,
here: the platform then only adds the local jars to a session whose landing or lake root is
`s3a://` (`batch_platform.s3.spark_s3_conf`), so no run ever downloads anything.
"""

from __future__ import annotations

import shutil
import sys

from batch_platform.s3 import JARS_DIR, hadoop_version, s3a_jars


def main() -> int:
    version = hadoop_version()
    if s3a_jars():
        print(f"S3A jars for Hadoop {version} already in {JARS_DIR}")
        return 0
    from pyspark.sql import SparkSession

    ivy = JARS_DIR / "ivy"
    print(f"fetching org.apache.hadoop:hadoop-aws:{version} and its AWS SDK into {ivy}")
    session = (
        SparkSession.builder.master("local[1]")
        .appName("fetch-s3a-jars")
        .config("spark.jars.packages", f"org.apache.hadoop:hadoop-aws:{version}")
        .config("spark.jars.ivy", str(ivy))
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    session.stop()
    shutil.rmtree(ivy / "cache", ignore_errors=True)  # the resolved copies are in ivy/jars
    jars = s3a_jars()
    if not jars:
        print(
            f"no hadoop-aws jar found under {ivy / 'jars'} after resolution",
            file=sys.stderr,
        )
        return 1
    for jar in jars:
        print(f"  {jar.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
