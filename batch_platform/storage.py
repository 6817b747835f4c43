"""Every file-system operation on the lake and the landing zone: the one storage module.

Inside a run, `HadoopFS` goes through the Spark session's Hadoop configuration, so a local folder,
`s3a://` (`storage.s3`, set on the session by the `pyspark` resource), HDFS or any other Hadoop file
system is one code path. Outside a run, the landing sensor lists arrivals with `list_tree` (dagster-aws's
S3 resource on S3); the lake's tables are Delta tables, read by `batch_platform.delta` (delta-rs), never
by listing their folders. Switching storage is a change of root path in the config file, never of code.

PySpark has no public API for Hadoop's `FileSystem`: `HadoopFS` reaches it through the session's py4j
gateway (`sparkContext._jvm`, `_jsc`), as the `pyspark` resource does for the Hadoop settings of
`storage.s3` (`resources.PlatformPySpark`); nowhere else does the platform touch Spark's internals.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlparse, urlsplit

from batch_platform.layout import is_s3

if TYPE_CHECKING:  # pragma: no cover - typing only
    from pyspark.sql import SparkSession


PY4J_CHUNK = 4096
"""The most bytes one read through py4j returns: a call returning 4 KiB took 1-2 ms, one returning
8 KiB some 40 ms (measured on a local file)."""


@dataclass(frozen=True)
class FileInfo:
    path: str
    name: str
    size: int
    is_dir: bool = False


class HadoopFS:
    def __init__(self, spark: SparkSession):
        self._jvm = spark.sparkContext._jvm
        self._conf = spark.sparkContext._jsc.hadoopConfiguration()
        self._file_systems: dict[tuple[str, str], object] = {}

    def _resolve(self, path: str):
        """The JVM path and its file system; the file system is looked up once per scheme and
        authority (each lookup is a round trip to the JVM, and a long partition range makes
        thousands of calls)."""
        jpath = self._jvm.org.apache.hadoop.fs.Path(path)
        parts = urlsplit(path)
        fs = self._file_systems.get((parts.scheme, parts.netloc))
        if fs is None:
            fs = self._file_systems[(parts.scheme, parts.netloc)] = jpath.getFileSystem(self._conf)
        return jpath, fs

    def list_dir(self, path: str) -> list[FileInfo]:
        """Immediate children of `path` (folders have size 0); none when it does not exist."""
        jpath, fs = self._resolve(path)
        if not fs.exists(jpath):
            return []
        return sorted(
            (
                FileInfo(
                    str(status.getPath().toString()),
                    status.getPath().getName(),
                    int(status.getLen()),
                    bool(status.isDirectory()),
                )
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
                FileInfo(str(s.getPath().toString()), s.getPath().getName(), 0, True)
                for s in fs.listStatus(jpath)
                if s.isDirectory()
            ),
            key=lambda info: info.name,
        )

    def parquet_columns(self, path: str) -> dict[str, str]:
        """The top-level columns of a Parquet file and their types (`_parquet_type`), from its
        footer, read by the driver: no Spark job."""
        jpath, _ = self._resolve(path)
        parquet = self._jvm.org.apache.parquet.hadoop
        reader = parquet.ParquetFileReader.open(parquet.util.HadoopInputFile.fromPath(jpath, self._conf))
        try:
            fields = reader.getFileMetaData().getSchema().getFields()
            return {str(f.getName()): _parquet_type(f) for f in fields}
        finally:
            reader.close()

    def open(self, path: str) -> io.BufferedReader:
        """`path` as a seekable binary Python file, read through Hadoop: for a few small parts of a
        file, such as a CSV header (`local_copy` is for reading a whole one)."""
        jpath, fs = self._resolve(path)
        return io.BufferedReader(_HadoopStream(fs.open(jpath)), PY4J_CHUNK)

    def write_bytes(self, path: str, data: bytes) -> None:
        """Put `data` at `path`, replacing it: uploaded whole from a local temporary file (one PUT on
        S3, so a reader sees the old object or the new one)."""
        jpath, fs = self._resolve(path)
        with tempfile.TemporaryDirectory(prefix="batch_platform-") as folder:
            local = os.path.join(folder, jpath.getName())
            with open(local, "wb") as out:
                out.write(data)
            fs.copyFromLocalFile(True, True, self._jvm.org.apache.hadoop.fs.Path(local), jpath)

    @contextmanager
    def local_copy(self, path: str) -> Iterator[str]:
        """The local path of `path`'s bytes, for Python to read at disk speed: the file itself on a
        local file system, else a temporary download, removed afterwards."""
        jpath, fs = self._resolve(path)
        if fs.getScheme() == "file":
            yield str(fs.pathToFile(jpath).getPath())
            return
        with tempfile.TemporaryDirectory(prefix="batch_platform-") as folder:
            local = os.path.join(folder, jpath.getName())
            fs.copyToLocalFile(False, jpath, self._jvm.org.apache.hadoop.fs.Path(local), True)
            yield local


class _HadoopStream(io.RawIOBase):
    """A Hadoop `FSDataInputStream` as a raw Python stream."""

    def __init__(self, stream):
        self._stream = stream

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._stream.readNBytes(min(len(buffer), PY4J_CHUNK))
        buffer[: len(data)] = data
        return len(data)

    def tell(self) -> int:
        return int(self._stream.getPos())

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            offset += self.tell()
        elif whence != io.SEEK_SET:
            raise io.UnsupportedOperation("seek from the end")
        self._stream.seek(offset)
        return offset

    def close(self) -> None:
        if not self.closed:
            self._stream.close()
        super().close()


def _parquet_type(field) -> str:
    """A Parquet field's physical and logical type (`INT32 INTEGER(32,true)`); a group's whole
    description, name included."""
    if not field.isPrimitive():
        return str(field.toString())
    return f"{field.asPrimitiveType().getPrimitiveTypeName().toString()} {field.getLogicalTypeAnnotation()}"


# ------------------------------------------------------------------------------- without Spark
def list_tree(root: str, folders: Iterable[str], s3_client=None) -> list[str]:
    """Every file under `<root>/<folder>/` for each folder, as sorted paths relative to `root`. For an
    `s3a://` root, the boto3 `s3_client` lists the objects (the landing sensor passes its dagster-aws
    `S3Resource`'s client, configured from `storage.s3`); a local root is walked."""
    found: list[str] = []
    if not is_s3(root):
        for name in folders:
            for folder, _, names in os.walk(os.path.join(root, name)):
                found += [os.path.relpath(os.path.join(folder, n), root).replace(os.sep, "/") for n in names]
        return sorted(found)
    parsed = urlparse(root)
    prefix = parsed.path.strip("/")
    for name in folders:
        start = f"{prefix}/{name}/" if prefix else f"{name}/"
        for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=parsed.netloc, Prefix=start):
            found += [item["Key"][len(prefix) + 1 :] if prefix else item["Key"] for item in page.get("Contents", [])]
    return sorted(found)
