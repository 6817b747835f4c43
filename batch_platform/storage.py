"""Every file-system operation on the lake and the landing zone: the one storage module.

Inside a run, `HadoopFS` goes through the Spark session's Hadoop configuration, so a local folder,
`s3a://` (`storage.s3`, set on the session by the `pyspark` resource), HDFS or any other Hadoop file
system is one code path. Outside a run, the landing sensor lists arrivals with `list_tree` (dagster-aws's
S3 resource on S3); the lake's tables are Delta tables, read by `batch_platform.delta` (delta-rs), never
by listing their folders. Switching storage is a change of root path in the config file, never of code.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:  # pragma: no cover - typing only
    from pyspark.sql import SparkSession


OBJECT_STORES = frozenset({"s3a", "s3", "s3n", "gs", "abfs", "abfss", "wasb", "wasbs", "oss", "cos"})
"""Schemes whose "rename" is a copy of every object then a delete: never atomic for a folder."""


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

    def glob(self, pattern: str) -> list[FileInfo]:
        """The files and folders matching a Hadoop glob (`<table>/quarter=*/*.parquet`), in one call."""
        jpath, fs = self._resolve(pattern)
        found = fs.globStatus(jpath) or []
        return sorted(
            (
                FileInfo(str(s.getPath().toString()), s.getPath().getName(), int(s.getLen()), bool(s.isDirectory()))
                for s in found
            ),
            key=lambda info: info.path,
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

    def is_object_store(self, path: str) -> bool:
        _, fs = self._resolve(path)
        return str(fs.getScheme()) in OBJECT_STORES

    def copy_file(self, source: str, target: str) -> None:
        """Copy one file onto `target`, replacing it. On an object store the target object is
        written in one PUT (or one completed multipart upload): a reader sees the old object or
        the new one, never part of either."""
        src, src_fs = self._resolve(source)
        dst, dst_fs = self._resolve(target)
        if not self._jvm.org.apache.hadoop.fs.FileUtil.copy(src_fs, src, dst_fs, dst, False, True, self._conf):
            raise OSError(f"could not copy {source} to {target}")

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
    from urllib.parse import urlparse

    from batch_platform.s3 import is_s3

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
