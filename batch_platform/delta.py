"""Reading a lake table without Spark (SPEC.md, "Lake": readers go through Delta, never by listing
Parquet files): `load_training_set` and the other `consume` readers, `batch-platform report`, the
datasets API and the PostgreSQL publisher, with the `deltalake` package (delta-rs). A Delta folder
holds files that are no longer part of the table (replaced, kept for time travel until VACUUM), so
what a quarter holds is what the table's log says at one version, never what a listing finds.
Its errors (`DeltaReadError`, `TableMissing`, `VersionNotAvailable`) are declared in the light
`batch_platform.layout`, which the command line reports them with.

The Delta versions, jars and session settings Spark needs are in `batch_platform.delta_spark`; what
a commit records and the table's history, in `batch_platform.delta_log`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError, TableNotFoundError
from pyarrow import fs as pafs

from batch_platform.config import DEFAULT_RETENTION_DAYS, S3Config
from batch_platform.delta_log import latest_platform_metadata
from batch_platform.env_refs import env_value
from batch_platform.layout import PARTITION_COLUMN, DeltaReadError, TableMissing, VersionNotAvailable, is_s3
from batch_platform.s3 import pyarrow_filesystem

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pyarrow.dataset as pads


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

    def latest_delta(self) -> DeltaTable:
        """delta-rs's table at its latest version (this one when opened at its latest)."""
        return self.delta if self.latest else _delta_table(self.uri, self.delta.table_uri, self.options)


@dataclass(frozen=True)
class DeltaFile:
    path: str
    """Relative to the table's folder: `quarter=2025-Q1/part-00000-….snappy.parquet`."""
    size: int
    rows: int | None
    """From the file's statistics in the log (None when the writer kept none)."""


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
    location, options = table_location(uri), storage_options(uri, s3)
    latest = _delta_table(uri, location, options)
    newest = LakeTable(uri, latest, options, retention_days, latest=True, s3=s3)
    if as_of is not None:
        version = _version_at(newest, parse_time(as_of))
    if version is None or version == latest.version():
        return newest
    if not 0 <= version <= latest.version():
        raise VersionNotAvailable(f"{uri} has no version {version}: its latest version is {latest.version()}")
    try:
        table = _delta_table(uri, location, options, version=version)
    except DeltaReadError:
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
    metadata = latest_platform_metadata(table)
    if metadata:
        quarters |= set(metadata.get("materialised", []))
    return sorted(quarters)


def file_schema(table: LakeTable) -> pa.Schema:
    """The columns of the table's data files: its schema without the partition column, which is the
    folder (`quarter=2025-Q1/`), not a column of the files."""
    schema = pa.schema(table.delta.schema().to_arrow())
    partitions = set(table.delta.metadata().partition_columns)
    return pa.schema([field for field in schema if field.name not in partitions])


# ------------------------------------------------------------------------------------------- helpers
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _delta_table(uri: str, location: str, options: dict[str, str], **kwargs: Any) -> DeltaTable:
    """delta-rs's table at `location` (`uri` as configured, for messages); `TableMissing` when there is
    none, `DeltaReadError` when it cannot be read."""
    try:
        return DeltaTable(location, storage_options=options, **kwargs)
    except TableNotFoundError:
        raise TableMissing(f"there is no Delta table at {uri}") from None
    except (DeltaError, OSError) as exc:
        raise DeltaReadError(f"cannot read the Delta table {uri}: {_first_line(exc)}") from None


def _add_actions(table: LakeTable) -> list[dict[str, Any]]:
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
    location = table.delta.table_uri
    try:
        versions = sorted(entry["version"] for entry in table.latest_delta().history())
    except Exception:  # noqa: BLE001 - a log that cannot be read: the message names no oldest version
        return None
    for version in versions[:20]:
        try:
            _delta_table(table.uri, location, table.options, version=version, without_files=True)
        except DeltaReadError:
            continue
        return version
    return versions[-1] if versions else None


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _first_line(exc: BaseException) -> str:
    return next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
