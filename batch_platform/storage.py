"""Every file-system operation on the lake and the landing zone: the one storage module.

Two doors, one root: inside a run, `HadoopFS` goes through the Spark session's Hadoop
configuration, so a local folder, `s3a://` (`storage.s3`, set on the session by the `pyspark`
resource), HDFS or any other Hadoop file system is one code path; outside a run (`batch-platform
report`, `load_training_set`, the landing sensor's listing excepted — it uses dagster-aws's S3
resource), `arrow_filesystem` maps the same root to a pyarrow file system, with `storage.s3`
applied by `batch_platform.s3` on `s3a://`/`s3://`/`s3n://`. Switching storage is a change of root path in the config
file, never of code. Spark's own `read.parquet`/`write.parquet` take the same paths.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyarrow import fs as pafs
    from pyspark.sql import SparkSession

    from batch_platform.config import S3Config

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
def arrow_filesystem(uri: str, s3: S3Config | None = None) -> tuple[pafs.FileSystem, str]:
    """A pyarrow file system and the path in it for a local path or a URI. An `s3a://` (or `s3://`,
    `s3n://`) URI gets `storage.s3` (endpoint, region, path style, credentials) by `batch_platform.s3`."""
    from pyarrow import fs

    from batch_platform.s3 import is_s3, pyarrow_filesystem

    if "://" not in uri:
        return fs.LocalFileSystem(), os.path.abspath(uri)
    if is_s3(uri):
        return pyarrow_filesystem(uri, s3)
    return fs.FileSystem.from_uri(uri)


def is_dir(uri: str, s3: S3Config | None = None) -> bool:
    from pyarrow import fs

    filesystem, path = arrow_filesystem(uri, s3)
    return filesystem.get_file_info(path).type == fs.FileType.Directory


def subdir_names(uri: str, s3: S3Config | None = None) -> list[str]:
    """The names of the folders directly in `uri`, sorted; none when it does not exist."""
    from pyarrow import fs

    filesystem, path = arrow_filesystem(uri, s3)
    found = filesystem.get_file_info(fs.FileSelector(path, allow_not_found=True))
    return sorted(info.base_name for info in found if info.type == fs.FileType.Directory)


def list_files(uri: str, s3: S3Config | None = None) -> list[FileInfo] | None:
    """The files directly in the folder `uri`, by name; None when the folder does not exist."""
    from pyarrow import fs

    filesystem, path = arrow_filesystem(uri, s3)
    if filesystem.get_file_info(path).type != fs.FileType.Directory:
        return None
    found = filesystem.get_file_info(fs.FileSelector(path))
    base = uri.rstrip("/")
    return sorted(
        (
            FileInfo(f"{base}/{info.base_name}", info.base_name, int(info.size))
            for info in found
            if info.type == fs.FileType.File
        ),
        key=lambda info: info.name,
    )


def parquet_footer(uri: str, s3: S3Config | None = None) -> pq.FileMetaData:
    """One Parquet file's footer (row count, schema), without reading its rows."""
    import pyarrow.parquet as pq

    filesystem, path = arrow_filesystem(uri, s3)
    with filesystem.open_input_file(path) as handle:
        return pq.ParquetFile(handle).metadata


def read_parquet(uri: str, s3: S3Config | None = None) -> pa.Table:
    """Every Parquet file of a folder (a partition) as one Arrow table. On S3 each object is read
    whole in one GET (`_whole_objects`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from batch_platform.s3 import is_s3

    filesystem, path = arrow_filesystem(uri, s3)
    files = [f.name for f in parquet_files(list_files(uri, s3) or [])] if is_s3(uri) else []
    if not files:
        return pq.read_table(path, filesystem=filesystem)
    with _whole_objects(uri, files, s3) as local:
        tables = [pq.read_table(file) for file in local]
        return pa.concat_tables(tables, promote_options="default") if len(tables) > 1 else tables[0]


def parquet_batches(
    folder: str, names: Sequence[str], columns: Sequence[str], batch_size: int, s3: S3Config | None = None
) -> Iterator[pa.RecordBatch]:
    """The rows of the Parquet files `names` of `folder`, `columns` only, streamed in record batches
    (never the whole table in memory). On S3 each object is first copied whole, in one GET, to a
    temporary file (`_whole_objects`)."""
    import pyarrow.dataset as ds

    from batch_platform.s3 import is_s3

    if not names:
        return
    if is_s3(folder):
        with _whole_objects(folder, names, s3) as local:
            yield from _batches(folder, ds.dataset(local, format="parquet"), columns, batch_size)
        return
    filesystem, path = arrow_filesystem(folder, s3)
    paths = [f"{path.rstrip('/')}/{name}" for name in names]
    yield from _batches(folder, ds.dataset(paths, format="parquet", filesystem=filesystem), columns, batch_size)


def _batches(folder: str, dataset, columns: Sequence[str], batch_size: int) -> Iterator[pa.RecordBatch]:
    missing = [c for c in columns if c not in dataset.schema.names]
    if missing:
        raise ValueError(f"the Parquet files of {folder} lack column(s) {missing}")
    yield from dataset.to_batches(columns=list(columns), batch_size=batch_size)


def parquet_files(found: Iterable[FileInfo]) -> list[FileInfo]:
    """The Parquet data files among `found`: what Spark and pyarrow read of a folder (not `_*`, `.*`)."""
    return [f for f in found if f.name.endswith(".parquet") and not f.name.startswith(("_", "."))]


@contextmanager
def _whole_objects(folder: str, names: Sequence[str], s3: S3Config | None) -> Iterator[list[str]]:
    """The objects `names` of an S3 `folder`, each fetched in ONE GET into a temporary file.

    A partition's object is replaced in place when its quarter is published again (io_manager.py).
    A reader in several ranged requests (pyarrow reads the size, then the footer, then the column
    chunks) could get the first from the old object and the rest from the new one; one GET returns
    one version of the object, whole, so a reader sees the old quarter or the new, never a mix.
    """
    import shutil
    import tempfile

    from batch_platform.s3 import boto3_client

    client = boto3_client(s3)
    parts = urlsplit(folder)
    prefix = parts.path.strip("/")
    with tempfile.TemporaryDirectory(prefix="batch-platform-s3-") as tmp:
        local = []
        for i, name in enumerate(names):
            body = client.get_object(Bucket=parts.netloc, Key=f"{prefix}/{name}" if prefix else name)["Body"]
            target = os.path.join(tmp, f"{i:05d}.parquet")
            with body, open(target, "wb") as out:
                shutil.copyfileobj(body, out, 1 << 20)
            local.append(target)
        yield local


def count_rows(uri: str, s3: S3Config | None = None) -> int | None:
    """The rows of a partition folder from its Parquet footers; None when it does not exist."""
    import pyarrow.dataset as ds

    if not is_dir(uri, s3):
        return None
    filesystem, path = arrow_filesystem(uri, s3)
    return ds.dataset(path, format="parquet", filesystem=filesystem).count_rows()


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
