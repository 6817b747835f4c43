"""The lake's layout seen without Spark: its tables, quarters and Parquet files, for publishing to
PostgreSQL and for the HTTP API. Every listing and read goes through `batch_platform.storage`.

Layout (SPEC.md, "Lake"): `<lake>/<layer>/<table>/quarter=<YYYY-QN>/*.parquet`. A lake root is a
local folder or `s3a://bucket/prefix`; S3 is reached with `storage.s3`'s endpoint, region and
credentials (pyarrow's S3 file system in `storage`, boto3 for presigned urls in `batch_platform.api`).
Files whose name starts with `_` or `.` (Spark's `_SUCCESS`, `.crc`, the IO manager's `_staging`)
are not part of a partition.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from batch_platform import storage
from batch_platform.config import PlatformConfig, S3Config
from batch_platform.partitions import to_label
from batch_platform.s3 import is_s3
from batch_platform.schemas.base import PARTITION_COLUMN
from batch_platform.tables import TABLES

_PARTITION_DIR = re.compile(rf"^{PARTITION_COLUMN}=(\d{{4}}-Q[1-4])$")


class PartitionMissing(LookupError):
    """The quarter of a table was never materialised."""


@dataclass(frozen=True)
class LakeFile:
    key: str
    """Path relative to the lake root: `<layer>/<table>/quarter=<YYYY-QN>/<name>.parquet`."""
    size: int


@dataclass(frozen=True)
class Lake:
    root: str
    s3: S3Config | None = None

    @classmethod
    def from_config(cls, config: PlatformConfig) -> Lake:
        return cls(config.lake_root, config.storage.s3)

    @property
    def on_s3(self) -> bool:
        return is_s3(self.root)

    @property
    def bucket_and_prefix(self) -> tuple[str, str]:
        """`s3a://bucket/some/prefix` -> ("bucket", "some/prefix")."""
        bucket, _, prefix = self.root.split("://", 1)[1].partition("/")
        return bucket, prefix.strip("/")

    @property
    def base(self) -> str:
        """The root as a path of its pyarrow file system (for a folder lake, the absolute folder)."""
        return storage.arrow_filesystem(self.root, self.s3)[1]

    def path(self, key: str) -> str:
        """`key` (relative to the root) as a path of the root's pyarrow file system."""
        return f"{self.base.rstrip('/')}/{key}"

    def uri(self, key: str) -> str:
        return f"{self.root.rstrip('/')}/{key}"

    # --------------------------------------------------------------------------- listing
    @staticmethod
    def tables() -> list[str]:
        """Every declared lake table (`batch_platform.tables`), e.g. `gold/training_set`."""
        return sorted(table.name for table in TABLES.values())

    def quarters(self, table: str) -> list[str]:
        """The materialised quarters of `table`, oldest first."""
        names = storage.subdir_names(self.uri(table), self.s3)
        return sorted(m.group(1) for name in names if (m := _PARTITION_DIR.match(name)))

    def files(self, table: str, quarter: str) -> list[LakeFile]:
        """The Parquet files of one partition; `PartitionMissing` when it was never materialised."""
        folder = f"{table}/{PARTITION_COLUMN}={to_label(quarter)}"
        found = storage.list_files(self.uri(folder), self.s3)
        if found is None:
            raise PartitionMissing(f"{table} has no materialised quarter {to_label(quarter)} in the lake {self.root}")
        return [LakeFile(f"{folder}/{info.name}", info.size) for info in storage.parquet_files(found)]

    # ----------------------------------------------------------------------------- reading
    def footer(self, file: LakeFile) -> pq.FileMetaData:
        return storage.parquet_footer(self.uri(file.key), self.s3)

    def batches(self, files: Sequence[LakeFile], columns: Sequence[str], batch_size: int) -> Iterator[pa.RecordBatch]:
        """The rows of `files` (one partition's), `columns` only, streamed in record batches."""
        if not files:
            return iter(())
        folder = files[0].key.rsplit("/", 1)[0]
        if any(f.key.rsplit("/", 1)[0] != folder for f in files):
            raise ValueError(f"the files to read must lie in one partition folder, not {[f.key for f in files]}")
        names = [f.key.rsplit("/", 1)[1] for f in files]
        return storage.parquet_batches(self.uri(folder), names, columns, batch_size, self.s3)
