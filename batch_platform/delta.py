"""Delta Lake, the lake's table format (SPEC.md, "Lake"): the versions that work together, the jars
Spark needs and the session settings that enable it.

Delta 4.3.1 is the newest Delta for a Spark the platform can run: its `delta-spark` wheel requires
`pyspark>=4.0.1,<=4.1.1` and its jar is built for Spark 4.1 (`delta-spark_4.1_2.13`), hence the
pins in `setup.py`. When a Delta release supports a newer Spark, change `DELTA_VERSION` and
`DELTA_SPARK_BUILD` here and the `pyspark`/`delta-spark` pins together; `make setup` then fetches
the matching jars (README, "Versions").

The jars are fetched once by `make setup` (`scripts/fetch_jars.py`) into the git-ignored `.jars/`
folder and put on the session's class path by `PlatformConfig.spark_conf`: no session downloads
anything (`configure_spark_with_delta_pip` would, at every start).
"""

from __future__ import annotations

from pathlib import Path

from batch_platform.s3 import JARS_DIR

DELTA_VERSION = "4.3.1"
DELTA_SPARK_BUILD = "4.1_2.13"
"""The Spark line and Scala version the `delta-spark` jar is built for."""
DELTA_PACKAGES = (
    f"io.delta:delta-spark_{DELTA_SPARK_BUILD}:{DELTA_VERSION}",
    f"io.delta:delta-storage:{DELTA_VERSION}",
)
DELTA_JARS_DIR = JARS_DIR / "delta"
SESSION_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


def jar_name(package: str) -> str:
    """The file name Ivy gives a package's jar: `io.delta_delta-storage-4.3.1.jar`."""
    group, artifact, version = package.split(":")
    return f"{group}_{artifact}-{version}.jar"


def delta_jars() -> list[Path]:
    """The fetched Delta jars, or a clear error saying how to fetch them (every session needs them)."""
    jars = [DELTA_JARS_DIR / jar_name(package) for package in DELTA_PACKAGES]
    missing = [jar.name for jar in jars if not jar.exists()]
    if missing:
        raise RuntimeError(
            f"the Delta Lake jars {', '.join(missing)} are not in {DELTA_JARS_DIR}: run `make setup` "
            "(or `python scripts/fetch_jars.py`) once"
        )
    return jars
