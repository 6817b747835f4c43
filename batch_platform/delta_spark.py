"""Delta Lake, the lake's table format (SPEC.md, "Lake"): the versions that work together, the jars
Spark needs and the session settings that enable it.

Delta 4.3.1 is the newest Delta for a Spark the platform can run: its `delta-spark` wheel requires
`pyspark>=4.0.1,<=4.1.1` and its jar is built for Spark 4.1 (`delta-spark_4.1_2.13`), hence the
pins in `setup.py`. When a Delta release supports a newer Spark, change `DELTA_VERSION` and
`DELTA_SPARK_BUILD` here and the `pyspark`/`delta-spark` pins together; `make setup` then fetches
the matching jars (docs/development.md, "Versions").

The jars are fetched once by `make setup` (`scripts/fetch_jars.py`) into the git-ignored `.jars/`
folder and put on the session's class path by `session.spark_conf`: no session downloads
anything (`configure_spark_with_delta_pip` would, at every start).

The IO manager writes with Spark and Delta (`batch_platform.io_manager`): the session settings that give
each table its retention are here, and so is finding, in the log, the version its commit made.
"""

from __future__ import annotations

from pathlib import Path

from batch_platform import delta
from batch_platform.config import S3Config
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
    # A run whose quarters have no rows adds no file and may remove none: its commit is still made, as
    # its `userMetadata` is the record that those quarters were materialised (`delta_log.commit_metadata`).
    "spark.databricks.delta.skipRecordingEmptyCommits": "false",
    # Every commit and first read of a version rebuilds the table's state from its log in a Spark job
    # of 50 tasks by default, sized for tables of millions of files. A lake table holds one file per
    # quarter per half-million rows (a few hundred at most): one task does it, 4 s down to 1 s per
    # commit of a small table on 2 cores (measured, `io_seconds/write`).
    "spark.databricks.delta.snapshotPartitions": "1",
    # Delta records in every file's add action its row count and, for data skipping, the min, max and
    # NULL count of the table's first 32 columns. The lake's readers select quarters, which partition
    # pruning does; the row count is what `delta.rows_per_quarter` reads. Statistics of the first
    # column only (`customer_id` in every table of rows) keep a point lookup's skipping: the strings of
    # bronze and quarantine cost a third of a write (benchmarks/FINDINGS.md). A table keeps the setting
    # it was created with (`delta.dataSkippingNumIndexedCols`); raising it counts from the next write.
    "spark.databricks.delta.properties.defaults.dataSkippingNumIndexedCols": "1",
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


def retention_defaults(days: int) -> dict[str, str]:
    """Session settings giving every table the IO manager creates `storage.delta.retention_days` of
    history: its log (Delta's default keeps 30 days of it, so older versions could no longer be
    opened) and the files its commits replaced (VACUUM's default: 7 days). A table keeps what it was
    created with; changing the setting later changes new tables only."""
    interval = f"interval {days} days"
    return {
        "spark.databricks.delta.properties.defaults.logRetentionDuration": interval,
        "spark.databricks.delta.properties.defaults.deletedFileRetentionDuration": interval,
    }


def committed_version(uri: str, metadata: str, s3: S3Config | None = None) -> int:
    """The version of the newest commit of the table at `uri` whose `userMetadata` is `metadata`: the
    IO manager's commit just made (not simply the latest version: another writer may have committed
    since). The last few commits first, the whole history only if need be."""
    table = delta.open_table(uri, s3)
    limit = 8
    while True:
        entries = table.delta.history(limit)
        for entry in entries:
            if entry.get("userMetadata") == metadata:
                return int(entry["version"])
        if len(entries) < limit:
            raise LookupError(f"no commit of the Delta table {uri} carries the userMetadata {metadata}")
        limit *= 8
