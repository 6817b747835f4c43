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
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from batch_platform.config import DEFAULT_RETENTION_DAYS, S3Config
from batch_platform.env_refs import env_value
from batch_platform.layout import PARTITION_COLUMN, is_s3
from batch_platform.s3 import JARS_DIR, pyarrow_filesystem

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pyarrow as pa
    import pyarrow.dataset as pads
    from deltalake import DeltaTable

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
    # its `userMetadata` is the record that those quarters were materialised (`commit_metadata`).
    "spark.databricks.delta.skipRecordingEmptyCommits": "false",
    # Every commit and first read of a version rebuilds the table's state from its log in a Spark job
    # of 50 tasks by default, sized for tables of millions of files. A lake table holds one file per
    # quarter per half-million rows (a few hundred at most): one task does it, 4 s down to 1 s per
    # commit of a small table on 2 cores (measured, `io_seconds/write`).
    "spark.databricks.delta.snapshotPartitions": "1",
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


# ======================================================================================================
# Commit metadata: what every IO-manager commit says about itself in Delta's `userMetadata`; the
# readers below rely on it for the quarters materialised empty.
# ======================================================================================================
PLATFORM_METADATA = "batch_platform"
"""The key (and format version) that marks a commit's `userMetadata` as the platform's."""


def commit_metadata(run_id: str, quarters: Iterable[str], rows: Mapping[str, int], materialised: Iterable[str]) -> str:
    """The `userMetadata` JSON of one IO-manager commit: the run, the quarters it replaced, the rows of
    each, and `materialised`, every quarter ever materialised in the table (the previous platform
    commit's list plus these quarters), empty ones included. A quarter with no rows has no file in the
    table: this list is the one record that it was materialised (empty) rather than never."""
    replaced = sorted(set(quarters))
    return json.dumps(
        {
            PLATFORM_METADATA: 1,
            "run_id": run_id,
            "quarters": replaced,
            "rows": {quarter: int(rows.get(quarter, 0)) for quarter in replaced},
            "materialised": sorted(set(materialised) | set(replaced)),
        },
        separators=(",", ":"),
    )


def platform_metadata(commit: Mapping[str, Any]) -> dict[str, Any] | None:
    """The platform's metadata of a commit (an entry of `DeltaTable.history()`), or None for any other
    commit: VACUUM, OPTIMIZE, a write by hand."""
    text = commit.get("userMetadata")
    if not text:
        return None
    try:
        found = json.loads(text)
    except ValueError:
        return None
    return found if isinstance(found, dict) and found.get(PLATFORM_METADATA) == 1 else None


# ======================================================================================================
# Reading without Spark (SPEC.md, "Lake": readers go through Delta, never by listing Parquet files):
# `load_training_set` and the other `consume` readers, `batch-platform report` and `history`, the
# datasets API and the PostgreSQL publisher, with the `deltalake` package (delta-rs). A Delta folder
# holds files that are no longer part of the table (replaced, kept for time travel until VACUUM), so
# what a quarter holds is what the table's log says at one version, never what a listing finds.
# ======================================================================================================
class DeltaReadError(Exception):
    """A lake table that cannot be read as asked; the message says why in a line or two."""


class TableMissing(DeltaReadError, FileNotFoundError):
    """No Delta table at the path (never materialised), or none yet at the time asked for."""


class VersionNotAvailable(DeltaReadError, LookupError):
    """A version or time the table does not have: after its latest version, or older than the history
    it keeps (`storage.delta.retention_days`: log cleaned up, files vacuumed)."""


@dataclass(frozen=True)
class LakeTable:
    """One lake table opened at one version: every read through it sees that version only."""

    uri: str
    """The table as configured: a folder or `s3a://bucket/prefix/<layer>/<table>`."""
    delta: DeltaTable
    options: dict[str, str]
    retention_days: int
    latest: bool
    """Opened at its latest version (no `version`/`as_of`)."""
    s3: S3Config | None = None

    @property
    def version(self) -> int:
        return self.delta.version()


@dataclass(frozen=True)
class DeltaFile:
    path: str
    """Relative to the table's folder: `quarter=2025-Q1/part-00000-….snappy.parquet`."""
    size: int
    rows: int | None
    """From the file's statistics in the log (None when the writer kept none)."""


@dataclass(frozen=True)
class Commit:
    version: int
    time: datetime
    operation: str
    run_id: str | None
    quarters: list[str]
    """The quarters the commit replaced (the platform's metadata, else the quarters its predicate names)."""
    rows: int | None
    """The rows it wrote (the platform's metadata, else Delta's `numOutputRows`)."""
    rows_per_quarter: dict[str, int]


def table_location(uri: str) -> str:
    """`uri` as delta-rs names it: `s3a://`/`s3n://` become `s3://`, a local path becomes absolute."""
    if "://" not in uri:
        return os.path.abspath(uri)
    scheme, rest = uri.split("://", 1)
    return f"s3://{rest}" if scheme in ("s3a", "s3n") else uri


def storage_options(uri: str, s3: S3Config | None = None) -> dict[str, str]:
    """delta-rs's storage options for `uri`: none for a folder; for S3, `storage.s3` (endpoint,
    region, path-style access, and the credentials read from the environment variables it names, now,
    as `batch_platform.s3` does for boto3). Without credentials, delta-rs's default chain applies
    (AWS_* variables, the instance's role). An `http://` endpoint needs `AWS_ALLOW_HTTP`."""
    if not is_s3(uri):
        return {}
    s3 = s3 or S3Config()
    options = {"AWS_VIRTUAL_HOSTED_STYLE_REQUEST": str(not s3.path_style_access).lower()}
    if s3.region:
        options["AWS_REGION"] = s3.region
    if s3.endpoint_url:
        endpoint = urlsplit(s3.endpoint_url.rstrip("/"))
        if not s3.path_style_access:  # delta-rs wants a virtual-hosted endpoint with the bucket in it
            endpoint = endpoint._replace(netloc=f"{urlsplit(uri).netloc}.{endpoint.netloc}")
        options["AWS_ENDPOINT_URL"] = urlunsplit(endpoint)
        if endpoint.scheme == "http":
            options["AWS_ALLOW_HTTP"] = "true"
    for reference, option in ((s3.access_key_id, "AWS_ACCESS_KEY_ID"), (s3.secret_access_key, "AWS_SECRET_ACCESS_KEY")):
        if value := env_value(reference):
            options[option] = value
    return options


def open_table(
    uri: str,
    s3: S3Config | None = None,
    *,
    version: int | None = None,
    as_of: datetime | str | None = None,
    retention_days: int = DEFAULT_RETENTION_DAYS,
) -> LakeTable:
    """The Delta table at `uri`: its latest version, or `version`, or the version that was the latest
    at `as_of` (a UTC datetime or ISO-8601 text, `2026-01-15T00:00:00Z`; a time without offset is
    UTC): the last commit made at or before it, by the commit times `history` shows.

    `TableMissing` when there is no table (or none yet at `as_of`); `VersionNotAvailable` for a
    version after the latest, or before the oldest the table keeps, naming the version or time, the
    oldest kept and `retention_days` (`storage.delta.retention_days`)."""
    if version is not None and as_of is not None:
        raise ValueError("give version= or as_of=, not both")
    from deltalake import DeltaTable  # start-up time: the definitions never import delta-rs
    from deltalake.exceptions import DeltaError, TableNotFoundError

    location, options = table_location(uri), storage_options(uri, s3)
    try:
        latest = DeltaTable(location, storage_options=options)
    except TableNotFoundError:
        raise TableMissing(f"there is no Delta table at {uri}") from None
    except (DeltaError, OSError) as exc:
        raise DeltaReadError(f"cannot read the Delta table {uri}: {_first_line(exc)}") from None
    newest = LakeTable(uri, latest, options, retention_days, latest=True, s3=s3)
    if as_of is not None:
        version = _version_at(newest, parse_time(as_of))
    if version is None or version == latest.version():
        return newest
    if not 0 <= version <= latest.version():
        raise VersionNotAvailable(f"{uri} has no version {version}: its latest version is {latest.version()}")
    try:
        table = DeltaTable(location, version=version, storage_options=options)
    except (DeltaError, OSError):
        raise VersionNotAvailable(_gone(newest, f"version {version}")) from None
    return LakeTable(uri, table, options, retention_days, latest=False, s3=s3)


def parse_time(moment: datetime | str) -> datetime:
    """`moment` as an aware UTC datetime; a string is ISO-8601 (`2026-01-15`, `2026-01-15T00:00:00Z`,
    `…+02:00`), a naive time is UTC (SPEC.md: all timestamps are UTC)."""
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment.strip())
        except ValueError:
            raise ValueError(
                f"as_of={moment!r} is not a time: write ISO-8601, e.g. 2026-01-15T00:00:00Z or 2026-01-15"
            ) from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def read_quarter(table: LakeTable, quarter: str, columns: Sequence[str] | None = None) -> pa.Table:
    """The rows of `quarter` at the table's version, with the `quarter` column (none when the quarter
    has no file at that version: see `materialised_quarters` to tell empty from never materialised).
    A version whose files were vacuumed raises `VersionNotAvailable` naming it and the retention."""
    dataset = quarter_dataset(table, quarter)
    return dataset.to_table(columns=list(columns) if columns is not None else None)


def quarter_dataset(table: LakeTable, quarter: str) -> pads.Dataset:
    """A pyarrow dataset of exactly the files of `quarter` at the table's version (read them with
    `to_table`/`to_batches`): a later commit adds new files and only marks these removed, so the rows
    read are those of this one version even while others commit. Checked to exist first. The files
    are read with pyarrow's own file systems (`s3.pyarrow_filesystem`), never delta-rs's default
    handler: that one goes through Python (three times slower on a folder), and a process that read
    through it aborts at exit now and then ("terminate called without an active exception", about
    one run in ten with deltalake 1.6.6 and pyarrow 25: its threads outlive Arrow's teardown)."""
    from pyarrow import fs as pafs  # start-up time: the command line loads no Arrow

    filesystem = pafs.SubTreeFileSystem(*reversed(pyarrow_filesystem(table.uri, table.s3)))
    dataset = table.delta.to_pyarrow_dataset(
        file_pruning_predicate=[(PARTITION_COLUMN, "=", quarter)], filesystem=filesystem
    )
    if dataset.files:
        missing = [info.path for info in filesystem.get_file_info(dataset.files) if info.type == pafs.FileType.NotFound]
        if missing:
            raise VersionNotAvailable(
                f"version {table.version} of {table.uri} is no longer available: {len(missing)} of its files of "
                f"{quarter} were deleted by VACUUM, which removes the files a commit replaced once "
                f"storage.delta.retention_days = {table.retention_days} days have passed; read a newer version "
                "(batch-platform history lists them)"
            )
    return dataset


def rows_per_quarter(table: LakeTable) -> dict[str, int]:
    """The rows of every quarter that has files at the table's version, from the file statistics in
    the log (no data read; a file without statistics is counted from its Parquet footer)."""
    counts: dict[str, int] = {}
    unknown: set[str] = set()
    for file in _add_actions(table):
        quarter = file["quarter"]
        if file["rows"] is None:
            unknown.add(quarter)
        else:
            counts[quarter] = counts.get(quarter, 0) + file["rows"]
    for quarter in unknown:
        counts[quarter] = quarter_dataset(table, quarter).count_rows()
    return dict(sorted(counts.items()))


def quarter_files(table: LakeTable, quarter: str) -> list[DeltaFile]:
    """The data files of `quarter` in the table's version — never a file a later or earlier commit
    replaced, though it may still lie in the folder — by path."""
    return sorted(
        (
            DeltaFile(_relative(table, f["path"]), f["size"], f["rows"])
            for f in _add_actions(table)
            if f["quarter"] == quarter
        ),
        key=lambda file: file.path,
    )


def materialised_quarters(table: LakeTable) -> list[str]:
    """The quarters materialised at the table's version, oldest first: those with files, and those the
    latest platform commit lists as materialised (the ones materialised with no rows)."""
    quarters = {file["quarter"] for file in _add_actions(table)}
    metadata = _latest_platform_metadata(table)
    if metadata:
        quarters |= set(metadata.get("materialised", []))
    return sorted(quarters)


def file_schema(table: LakeTable) -> pa.Schema:
    """The columns of the table's data files: its schema without the partition column, which is the
    folder (`quarter=2025-Q1/`), not a column of the files."""
    import pyarrow as pa  # start-up time: the command line loads no Arrow

    schema = pa.schema(table.delta.schema().to_arrow())
    partitions = set(table.delta.metadata().partition_columns)
    return pa.schema([field for field in schema if field.name not in partitions])


def history(table: LakeTable, limit: int | None = None) -> list[Commit]:
    """The table's commits up to its version, newest first (at most `limit`): version, time (UTC),
    operation, run id, quarters replaced and rows, from the platform's `userMetadata` or, for other
    commits, Delta's `operationParameters`/`operationMetrics`. Only the commits the log still keeps
    (`storage.delta.retention_days`)."""
    return [_commit(entry) for entry in _history(table, limit)]


# ------------------------------------------------------------------------------------------- helpers
_QUARTER = re.compile(r"\d{4}-Q[1-4]")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _add_actions(table: LakeTable) -> list[dict[str, Any]]:
    import pyarrow as pa  # start-up time: the command line loads no Arrow

    actions = pa.table(table.delta.get_add_actions(flatten=True))
    column = f"partition.{PARTITION_COLUMN}"
    if column not in actions.column_names:
        return []
    return [
        {"path": path, "size": size, "rows": rows, "quarter": quarter}
        for path, size, rows, quarter in zip(
            actions.column("path").to_pylist(),
            actions.column("size_bytes").to_pylist(),
            (
                actions.column("num_records") if "num_records" in actions.column_names else pa.nulls(len(actions))
            ).to_pylist(),
            actions.column(column).to_pylist(),
            strict=True,
        )
    ]


def _relative(table: LakeTable, path: str) -> str:
    """An add action's path relative to the table's folder (Spark writes relative paths; a path may be
    an absolute URI inside the table)."""
    if "://" not in path and not path.startswith("/"):
        return path
    root = table.delta.table_uri.rstrip("/") + "/"
    return path[len(root) :] if path.startswith(root) else path


def _history(table: LakeTable, limit: int | None = None) -> list[dict[str, Any]]:
    """The commit entries up to the table's version, newest first. delta-rs numbers the history of a
    table opened at an older version from that version (wrongly: it lists the later commits too), so
    the history is read from the latest version and cut at this one."""
    from deltalake import DeltaTable  # start-up time: the definitions never import delta-rs

    latest = table.delta if table.latest else DeltaTable(table.delta.table_uri, storage_options=table.options)
    if table.latest:
        return latest.history(limit)
    skip = latest.version() - table.version
    entries = [e for e in latest.history(None if limit is None else limit + skip) if e["version"] <= table.version]
    return entries[:limit] if limit is not None else entries


def _latest_platform_metadata(table: LakeTable) -> dict[str, Any] | None:
    """The metadata of the platform's latest commit at the table's version (a VACUUM or OPTIMIZE may
    have committed after it): the last commit first (each commit read is a file read, a GET on S3),
    then the last 8, 64, …, the whole history only if need be."""
    limit = 1
    while True:
        entries = _history(table, limit)
        for entry in entries:
            if (metadata := platform_metadata(entry)) is not None:
                return metadata
        if len(entries) < limit:
            return None
        limit *= 8


def _commit(entry: Mapping[str, Any]) -> Commit:
    metadata = platform_metadata(entry)
    time = datetime.fromtimestamp(int(entry.get("timestamp", 0)) / 1000, UTC)
    operation = str(entry.get("operation", ""))
    if metadata is not None:
        per_quarter = {str(q): int(n) for q, n in (metadata.get("rows") or {}).items()}
        return Commit(
            int(entry["version"]), time, operation, metadata.get("run_id"), sorted(metadata.get("quarters") or []),
            sum(per_quarter.values()), per_quarter,
        )  # fmt: skip
    predicate = str((entry.get("operationParameters") or {}).get("predicate", ""))
    written = (entry.get("operationMetrics") or {}).get("numOutputRows")
    return Commit(
        int(entry["version"]), time, operation, None, sorted(set(_QUARTER.findall(predicate))),
        None if written is None else int(written), {},
    )  # fmt: skip


def _version_at(table: LakeTable, moment: datetime) -> int:
    """The last version committed at or before `moment` (`open_table`'s `as_of`)."""
    entries = table.delta.history()
    at = (moment - _EPOCH) // timedelta(milliseconds=1)  # exact: commit times are whole milliseconds
    before = [entry["version"] for entry in entries if entry["timestamp"] <= at]
    if before:
        return max(before)
    oldest = min(entries, key=lambda entry: entry["version"])
    first = _utc_text(datetime.fromtimestamp(oldest["timestamp"] / 1000, UTC))
    if oldest["version"] == 0:
        raise TableMissing(
            f"{table.uri} did not exist at {_utc_text(moment)}: its first commit, version 0, was made at {first}"
        )
    raise VersionNotAvailable(_gone(table, f"its version as of {_utc_text(moment)}"))


def _gone(table: LakeTable, what: str) -> str:
    """The message for a version older than the table keeps, naming the oldest one that still opens."""
    oldest = _oldest_version(table)
    kept = f"the oldest version kept is {oldest}" if oldest is not None else "no older version is kept"
    return (
        f"{what} of {table.uri} is no longer available: its log was cleaned up after the retention of "
        f"storage.delta.retention_days = {table.retention_days} days; {kept} (batch-platform history lists them)"
    )


def _oldest_version(table: LakeTable) -> int | None:
    """The oldest version that still opens: the oldest commit in the log after the last cleanup, or
    the first one after it that has a checkpoint (a few tries at most)."""
    from deltalake import DeltaTable  # start-up time: the definitions never import delta-rs
    from deltalake.exceptions import DeltaError  # start-up time: the definitions never import delta-rs

    try:
        latest = DeltaTable(table.delta.table_uri, storage_options=table.options)
        versions = sorted(entry["version"] for entry in latest.history())
    except (DeltaError, OSError):
        return None
    for version in versions[:20]:
        try:
            DeltaTable(table.delta.table_uri, version=version, storage_options=table.options, without_files=True)
        except (DeltaError, OSError):
            continue
        return version
    return versions[-1] if versions else None


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _first_line(exc: BaseException) -> str:
    return next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)


# ======================================================================================================
# Writing with Spark: the IO manager (`batch_platform.io_manager`) commits a run's quarters with Spark
# and Delta, then reads from the log, in the driver, the version its commit made.
# ======================================================================================================
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
    table = open_table(uri, s3)
    limit = 8
    while True:
        entries = table.delta.history(limit)
        for entry in entries:
            if entry.get("userMetadata") == metadata:
                return int(entry["version"])
        if len(entries) < limit:
            raise LookupError(f"no commit of the Delta table {uri} carries the userMetadata {metadata}")
        limit *= 8
