"""Every file-system operation on the lake and the landing zone: the one storage module.

Two doors, one root: inside a run, `HadoopFS` goes through the Spark session's Hadoop
configuration, so a local folder, `s3a://` (credentials from the AWS provider chain), HDFS or any
other Hadoop file system is one code path; outside a run (`batch-platform report`,
`load_training_set`, no Spark), `arrow_filesystem` maps the same root to a pyarrow file system
(`s3a://`/`s3n://` are read as `s3://`). Switching storage is a change of root path in the config
file, never of code. Spark's own `read.parquet`/`write.parquet` take the same paths.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pyarrow as pa
    from pyarrow import fs as pafs
    from pyspark.sql import SparkSession


@dataclass(frozen=True)
class FileInfo:
    path: str
    name: str
    size: int


class HadoopFS:
    def __init__(self, spark: SparkSession):
        self._jvm = spark.sparkContext._jvm
        self._conf = spark.sparkContext._jsc.hadoopConfiguration()

    def _resolve(self, path: str):
        jpath = self._jvm.org.apache.hadoop.fs.Path(path)
        return jpath, jpath.getFileSystem(self._conf)

    def exists(self, path: str) -> bool:
        jpath, fs = self._resolve(path)
        return bool(fs.exists(jpath))

    def is_dir(self, path: str) -> bool:
        jpath, fs = self._resolve(path)
        return bool(fs.exists(jpath) and fs.getFileStatus(jpath).isDirectory())

    def list_dir(self, path: str) -> list[FileInfo]:
        """Immediate children of `path` (folders have size 0); none when it does not exist."""
        jpath, fs = self._resolve(path)
        if not fs.exists(jpath):
            return []
        return sorted(
            (
                FileInfo(str(status.getPath().toString()), status.getPath().getName(), int(status.getLen()))
                for status in fs.listStatus(jpath)
            ),
            key=lambda info: info.name,
        )

    def subdirs(self, path: str) -> list[FileInfo]:
        jpath, fs = self._resolve(path)
        if not fs.exists(jpath):
            return []
        return sorted(
            (
                FileInfo(str(s.getPath().toString()), s.getPath().getName(), 0)
                for s in fs.listStatus(jpath)
                if s.isDirectory()
            ),
            key=lambda info: info.name,
        )

    def delete(self, path: str) -> None:
        jpath, fs = self._resolve(path)
        if fs.exists(jpath):
            fs.delete(jpath, True)

    def rename(self, source: str, target: str) -> None:
        """Move `source` to `target`, which must not exist (Hadoop would nest it inside)."""
        src, fs = self._resolve(source)
        dst, _ = self._resolve(target)
        if fs.exists(dst):
            raise FileExistsError(f"cannot move {source} to {target}: the target exists")
        fs.mkdirs(dst.getParent())
        if not fs.rename(src, dst):
            raise OSError(f"could not move {source} to {target}")

    def first_line(self, path: str) -> str | None:
        """The first line of a text file (its CSV header), or None for a zero-byte file."""
        jpath, fs = self._resolve(path)
        stream = fs.open(jpath)
        try:
            reader = self._jvm.java.io.BufferedReader(self._jvm.java.io.InputStreamReader(stream, "UTF-8"))
            line = reader.readLine()
        finally:
            stream.close()
        return None if line is None else str(line).lstrip("\ufeff")


# ------------------------------------------------------------------------------- without Spark
def arrow_filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """A pyarrow file system and the path in it for a local path or a URI."""
    from pyarrow import fs

    if "://" not in uri:
        return fs.LocalFileSystem(), os.path.abspath(uri)
    if uri.startswith(("s3a://", "s3n://")):
        uri = "s3://" + uri.split("://", 1)[1]
    return fs.FileSystem.from_uri(uri)


def is_dir(uri: str) -> bool:
    from pyarrow import fs

    filesystem, path = arrow_filesystem(uri)
    return filesystem.get_file_info(path).type == fs.FileType.Directory


def read_parquet(uri: str) -> pa.Table:
    """Every Parquet file of a folder (a partition) as one Arrow table."""
    import pyarrow.parquet as pq

    filesystem, path = arrow_filesystem(uri)
    return pq.read_table(path, filesystem=filesystem)


def count_rows(uri: str) -> int | None:
    """The rows of a partition folder from its Parquet footers; None when it does not exist."""
    import pyarrow.dataset as ds

    if not is_dir(uri):
        return None
    filesystem, path = arrow_filesystem(uri)
    return ds.dataset(path, format="parquet", filesystem=filesystem).count_rows()
