"""File-system operations on the lake and the landing zone, through Spark's Hadoop FileSystem.

Going through the session's Hadoop configuration means one code path for a local folder,
`s3a://` (credentials from the AWS provider chain), HDFS or any other Hadoop file system:
switching storage is a change of root path in the config file, never of code.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import SparkSession

OBJECT_STORES = frozenset({"s3a", "s3", "s3n", "gs", "abfs", "abfss", "wasb", "wasbs", "oss", "cos"})
"""Schemes whose "rename" is a copy of every object then a delete: never atomic for a folder."""


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

    def mkdirs(self, path: str) -> None:
        jpath, fs = self._resolve(path)
        fs.mkdirs(jpath)

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
