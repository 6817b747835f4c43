"""The lake's layout (SPEC.md, "Lake"): the one place a lake path is built, the one error for a
quarter that was never materialised, and the errors of reading a lake table (`DeltaReadError`).

    <lake>/<layer>/<table>/                      a Delta table (`table_uri`)
    <lake>/<layer>/<table>/quarter=<YYYY-QN>/    one partition's data folder (`partition_folder`)

A lake root is a local folder or `s3a://bucket/prefix`. Nothing here reads the lake: the IO manager
(Spark), the readers without Spark (`batch_platform.delta`, `consume`, `lake_files`), the publisher and
the datasets API all build their paths with `LakeLayout` and say "never materialised" with
`PartitionNotMaterialised`. Light on purpose (no Spark, Dagster or Arrow): `import batch_platform`
and the command line use it before anything heavy loads (the command line reports a
`DeltaReadError` of any command in one line).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlparse

PARTITION_COLUMN = "quarter"
"""The partition column of every lake table: the `quarter=YYYY-QN` folder a row lives in."""
S3_SCHEMES = ("s3a://", "s3://", "s3n://")
FILE_KEY = re.compile(
    rf"^([a-z0-9_]+)/([a-z0-9_]+)/{PARTITION_COLUMN}=(\d{{4}}-Q[1-4])/([A-Za-z0-9][A-Za-z0-9._=-]*\.parquet)$"
)
"""A data file's key relative to the lake root: `<layer>/<table>/quarter=<YYYY-QN>/<name>.parquet`."""


def is_s3(path: str) -> bool:
    return str(path).startswith(S3_SCHEMES)


def bucket_of(path: str) -> str:
    return urlparse(str(path)).netloc


def table_name(key) -> str:
    """`<layer>/<table>` of an asset key (`AssetKey(["gold", "training_set"])`) or of that name itself."""
    return "/".join(key.path) if hasattr(key, "path") else str(key)


class PartitionNotMaterialised(LookupError, FileNotFoundError):
    """A quarter of a lake table that was never materialised (at the version read): the table has no
    file of it and its latest platform commit does not list it as materialised empty. Never read as
    an empty quarter. Raised by `LakeLayout.require` alone."""

    def __init__(self, message: str, table: str, quarters: Sequence[str]):
        super().__init__(message)
        self.table, self.quarters = table, list(quarters)


class DeltaReadError(Exception):
    """A lake table that cannot be read as asked (`batch_platform.delta`); the message says why in a
    line or two."""


class TableMissing(DeltaReadError, FileNotFoundError):
    """No Delta table at the path (never materialised), or none yet at the time asked for."""


class VersionNotAvailable(DeltaReadError, LookupError):
    """A version or time the table does not have: after its latest version, or older than the history
    it keeps (`storage.delta.retention_days`: log cleaned up, files vacuumed)."""


@dataclass(frozen=True)
class LakeLayout:
    """Every path of the lake at `root` (a folder or `s3a://bucket/prefix`)."""

    root: str

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
        """The absolute folder of a folder lake."""
        return os.path.abspath(self.root)

    def table_uri(self, table) -> str:
        """`<lake>/<layer>/<table>`: the Delta table of `table` (`gold/training_set` or its asset key)."""
        return f"{self.root.rstrip('/')}/{table_name(table)}"

    @staticmethod
    def partition_folder(quarter: str) -> str:
        """`quarter=2025-Q4`: the data folder of one quarter inside a table."""
        return f"{PARTITION_COLUMN}={quarter}"

    @staticmethod
    def is_partition_folder(name: str) -> bool:
        return name.startswith(f"{PARTITION_COLUMN}=")

    def uri(self, key: str) -> str:
        """`key` (relative to the root: a table, or a file `<layer>/<table>/quarter=…/<name>`) as a URI."""
        return f"{self.root.rstrip('/')}/{key}"

    def local_path(self, key: str) -> str:
        """`key` (relative to the root) as a local path of a folder lake."""
        return f"{self.base.rstrip('/')}/{key}"

    def object_key(self, key: str) -> str:
        """`key` (relative to the root) as the object key in the bucket of an `s3a://` lake."""
        prefix = self.bucket_and_prefix[1]
        return f"{prefix}/{key}" if prefix else key

    def require(
        self,
        table,
        quarters: Sequence[str],
        materialised: Sequence[str] | None,
        *,
        version: int | None = None,
        absent: str | None = None,
    ) -> None:
        """`PartitionNotMaterialised` naming `table` and each of `quarters` that `materialised` (the
        quarters the table holds at the version read; None: there is no table, `absent` saying why
        when it is more than that) lacks."""
        missing = [q for q in quarters if materialised is None or q not in materialised]
        if not missing:
            return
        name, uri = table_name(table), self.table_uri(table)
        partitions = ", ".join(missing)
        at = "" if version is None else f" at version {version}"
        if materialised is None:
            where = absent or f"there is no Delta table at {uri}"
        else:
            where = f"the Delta table {uri} holds {', '.join(materialised) or 'no quarter'}"
        raise PartitionNotMaterialised(f"{name} has no partition {partitions}{at}: {where}", name, missing)
