"""The lake seen without Spark, for publishing to PostgreSQL and for the HTTP API: its tables, their
materialised quarters and, per quarter, the Parquet files of the table's current version, read
through Delta (`batch_platform.delta`, delta-rs).

Layout (SPEC.md, "Lake"; `batch_platform.layout`): `<lake>/<layer>/<table>/` is a Delta table
partitioned by `quarter`; its `quarter=<YYYY-QN>/` folders may hold files that are no longer part of the table (replaced by a
later commit, kept for time travel until VACUUM), so a quarter's files are those the table's log
lists at one version, never what a listing of the folder finds. A lake root is a local folder or
`s3a://bucket/prefix`; S3 is reached with `storage.s3` (delta-rs's storage options here, boto3 for
the presigned urls in `batch_platform.api`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pyarrow as pa

from batch_platform import delta
from batch_platform.config import DEFAULT_RETENTION_DAYS, PlatformConfig, S3Config
from batch_platform.layout import LakeLayout
from batch_platform.partitions import to_label
from batch_platform.tables import TABLES


@dataclass(frozen=True)
class LakeFile:
    key: str
    """Path relative to the lake root: `<layer>/<table>/quarter=<YYYY-QN>/<name>.parquet`."""
    size: int
    rows: int | None = None


@dataclass(frozen=True)
class QuarterSnapshot:
    """One quarter of a table at one Delta version: its files, rows and columns, and its rows read
    from exactly those files. Delta never rewrites a file (a commit adds new ones and marks the old
    ones removed; VACUUM deletes them only `storage.delta.retention_days` later), so what is read
    through a snapshot is that version's quarter whole, however many commits happen meanwhile."""

    table: str
    quarter: str
    version: int
    files: list[LakeFile]
    schema: pa.Schema
    """The columns of the files (the quarter is their folder, not a column)."""
    opened: delta.LakeTable

    @property
    def rows(self) -> int:
        if all(file.rows is not None for file in self.files):
            return sum(file.rows for file in self.files)
        return delta.quarter_dataset(self.opened, self.quarter).count_rows()

    def batches(self, columns: Sequence[str], batch_size: int) -> Iterator[pa.RecordBatch]:
        """The quarter's rows, `columns` only, streamed in record batches (never the whole quarter in
        memory), from this version's files."""
        dataset = delta.quarter_dataset(self.opened, self.quarter)
        missing = [c for c in columns if c not in dataset.schema.names]
        if missing:
            raise ValueError(f"{self.table} (version {self.version}) lacks column(s) {missing}")
        return dataset.to_batches(columns=list(columns), batch_size=batch_size)


@dataclass(frozen=True)
class Lake(LakeLayout):
    """The lake at `root` (its paths: `LakeLayout`), read with delta-rs and `storage.s3`."""

    s3: S3Config | None = None
    retention_days: int = DEFAULT_RETENTION_DAYS

    @classmethod
    def from_config(cls, config: PlatformConfig) -> Lake:
        return cls(config.lake_root, config.storage.s3, config.storage.delta.retention_days)

    # --------------------------------------------------------------------------- listing
    @staticmethod
    def tables() -> list[str]:
        """Every declared lake table (`batch_platform.tables`), e.g. `gold/training_set`."""
        return sorted(table.name for table in TABLES.values())

    def open(self, table: str) -> delta.LakeTable | None:
        """The Delta table of `table` at its latest version; None when it is not in the lake yet."""
        try:
            return delta.open_table(self.table_uri(table), self.s3, retention_days=self.retention_days)
        except delta.TableMissing:
            return None

    def quarters(self, table: str, opened: delta.LakeTable | None = None) -> list[str]:
        """The materialised quarters of `table` (at `opened`'s version, else the latest), oldest first."""
        opened = opened or self.open(table)
        return delta.materialised_quarters(opened) if opened is not None else []

    def quarter(self, table: str, quarter: str, opened: delta.LakeTable | None = None) -> QuarterSnapshot:
        """One quarter of `table` at `opened`'s version (else the latest); `PartitionNotMaterialised`
        when it was never materialised. A quarter materialised empty has no file."""
        label = to_label(quarter)
        opened = opened or self.open(table)
        files = (
            [LakeFile(f"{table}/{f.path}", f.size, f.rows) for f in delta.quarter_files(opened, label)]
            if opened
            else []
        )
        if not files:
            self.require(table, [label], self.quarters(table, opened) if opened else None)
        return QuarterSnapshot(table, label, opened.version, files, delta.file_schema(opened), opened)


@dataclass(frozen=True)
class TableVersion:
    """One version of one table as the API describes it, read once from its log: its materialised
    quarters and, per quarter, its files and rows; immutable, so one request answers from one version."""

    table: str
    version: int
    quarters: list[str]
    files: dict[str, list[LakeFile]]
    rows: dict[str, int]
    schema: pa.Schema
    """The columns of the files (the quarter is their folder, not a column)."""


class LatestVersions:
    """The latest version of every lake table, for a long-running reader (the API): each table is
    opened once, then brought up to date by reading only the commits made since (delta-rs's
    `update_incremental`: one listing of the log when nothing changed, where opening reads the
    checkpoint and every commit after it), and described again only when its version moved. A lock
    per table: delta-rs tables are not to be updated by two threads at once."""

    def __init__(self, lake: Lake):
        self.lake = lake
        self._locks = {table: threading.Lock() for table in lake.tables()}
        self._opened: dict[str, delta.LakeTable] = {}
        self._described: dict[str, TableVersion] = {}

    def get(self, table: str) -> TableVersion | None:
        """`table` at its latest version; None while it is not in the lake."""
        with self._locks[table]:
            opened = self._opened.get(table)
            if opened is not None:
                try:
                    opened.delta.update_incremental()
                except Exception:  # noqa: BLE001 - the table was replaced or removed: open it afresh
                    opened = None
            if opened is None:
                opened = self.lake.open(table)
            if opened is None:
                self._opened.pop(table, None)
                return None
            self._opened[table] = opened
            described = self._described.get(table)
            if described is None or described.version != opened.version:
                described = self._described[table] = _describe(table, opened)
            return described

    def every(self) -> dict[str, TableVersion | None]:
        """Every table (several at a time: on S3 each is a round trip or more; delta-rs reads without
        holding the GIL)."""
        tables = self.lake.tables()
        with ThreadPoolExecutor(max_workers=min(8, len(tables)), thread_name_prefix="lake") as pool:
            return dict(zip(tables, pool.map(self.get, tables), strict=True))


def _describe(table: str, opened: delta.LakeTable) -> TableVersion:
    files: dict[str, list[LakeFile]] = {}
    for quarter in delta.materialised_quarters(opened):
        files[quarter] = [LakeFile(f"{table}/{f.path}", f.size, f.rows) for f in delta.quarter_files(opened, quarter)]
    rows = delta.rows_per_quarter(opened)
    return TableVersion(
        table, opened.version, sorted(files), files, {q: rows.get(q, 0) for q in files}, delta.file_schema(opened)
    )
