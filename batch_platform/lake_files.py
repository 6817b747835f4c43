"""The lake's Parquet files seen without Spark: for publishing to PostgreSQL and for the HTTP API.

Layout (SPEC.md, "Lake"): `<lake>/<layer>/<table>/quarter=<YYYY-QN>/*.parquet`. A lake root is a
local folder or `s3a://bucket/prefix`; S3 is reached with `storage.s3`'s endpoint, region and
credentials (pyarrow's S3 file system here, boto3 for presigned urls in `batch_platform.api`).
Files whose name starts with `_` or `.` (Spark's `_SUCCESS`, `.crc`, the IO manager's `_staging`)
are not part of a partition.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from pyarrow import fs

from batch_platform.config import PlatformConfig, S3Config
from batch_platform.partitions import to_label
from batch_platform.s3 import is_s3, pyarrow_filesystem
from batch_platform.schemas import TABLE_SCHEMAS
from batch_platform.schemas.base import PARTITION_COLUMN

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

    @cached_property
    def _filesystem_and_base(self) -> tuple[fs.FileSystem, str]:
        return pyarrow_filesystem(self.root, self.s3)

    @property
    def filesystem(self) -> fs.FileSystem:
        return self._filesystem_and_base[0]

    @property
    def base(self) -> str:
        """The root as a path of `filesystem`."""
        return self._filesystem_and_base[1]

    def path(self, key: str) -> str:
        return f"{self.base.rstrip('/')}/{key}"

    # --------------------------------------------------------------------------- listing
    @staticmethod
    def tables() -> list[str]:
        return sorted(TABLE_SCHEMAS)

    def quarters(self, table: str) -> list[str]:
        """The materialised quarters of `table`, oldest first."""
        found = self.filesystem.get_file_info(
            fs.FileSelector(self.path(table), allow_not_found=True)
        )
        labels = [m.group(1) for info in found if info.type == fs.FileType.Directory
                  if (m := _PARTITION_DIR.match(info.base_name))]  # fmt: skip
        return sorted(labels)

    def files(self, table: str, quarter: str) -> list[LakeFile]:
        """The Parquet files of one partition; `PartitionMissing` when it was never materialised."""
        folder = f"{table}/{PARTITION_COLUMN}={to_label(quarter)}"
        infos = self.filesystem.get_file_info(
            fs.FileSelector(self.path(folder), allow_not_found=True)
        )
        if (
            not infos
            and self.filesystem.get_file_info(self.path(folder)).type
            != fs.FileType.Directory
        ):
            raise PartitionMissing(
                f"{table} has no materialised quarter {to_label(quarter)} in the lake {self.root}"
            )
        return sorted(
            (
                LakeFile(f"{folder}/{info.base_name}", info.size)
                for info in infos
                if info.type == fs.FileType.File
                and info.base_name.endswith(".parquet")
                and not info.base_name.startswith(("_", "."))
            ),
            key=lambda f: f.key,
        )

    # ----------------------------------------------------------------------------- reading
    def footer(self, file: LakeFile) -> pq.FileMetaData:
        with self.filesystem.open_input_file(self.path(file.key)) as handle:
            return pq.ParquetFile(handle).metadata

    def batches(
        self, files: Sequence[LakeFile], columns: Sequence[str], batch_size: int
    ) -> Iterator[pa.RecordBatch]:
        """The rows of `files`, `columns` only, streamed in record batches (never the whole table)."""
        if not files:
            return iter(())
        dataset = ds.dataset(
            [self.path(f.key) for f in files],
            format="parquet",
            filesystem=self.filesystem,
        )
        missing = [c for c in columns if c not in dataset.schema.names]
        if missing:
            raise ValueError(
                f"the Parquet files of {files[0].key.rsplit('/', 1)[0]} lack column(s) {missing}"
            )
        return dataset.to_batches(columns=list(columns), batch_size=batch_size)
