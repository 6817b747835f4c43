"""Reading the landing zone (SPEC.md, "Landing zone"): `<landing>/<source>/<YYYY-MM-DD>/<file>`.

Rules the reader enforces, each one a line of the contract:
- columns are matched by name (trimmed, case-insensitive) in any order; extra columns are kept;
  a missing contract column is null;
- every value stays text: CSV is read with an all-string schema, JSON with `primitivesAsString`,
  Parquet columns are cast to string;
- Spark maps CSV columns by position after the first file's header, so CSV files are grouped by
  header and each group read on its own, then unioned by name;
- zero-byte and header-only files contribute no rows; files whose name starts with `_` or `.` are
  hidden (Hadoop's convention); other extensions are ignored and reported;
- a file that cannot be read (a row with the wrong number of fields, malformed JSON, a broken
  Parquet footer, a header without any contract column) fails with the file named.

An empty field of a CSV file reads as NULL (Spark's CSV semantics): bronze cannot tell `,,` from a
missing value, and silver treats both alike.
"""

import csv
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

import dagster as dg
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from batch_platform.s3 import access_error
from batch_platform.storage import HadoopFS

FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}
CORRUPT = "_corrupt_record"
_FOLDER_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class UnreadableFileError(dg.Failure):
    """A landing file that cannot be read at all; nothing of the partition is published."""


@dataclass
class LandingFile:
    path: str
    arrival: date
    format: str
    size: int


@dataclass
class LandingBatch:
    """What one read of the landing zone found: its rows, the files read and the files ignored."""

    frame: DataFrame | None
    files: list[LandingFile] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


class LandingZone(dg.ConfigurableResource):
    """The landing zone's root: a local folder or any Hadoop URI (`s3a://bucket/landing`)."""

    root: str

    def source_path(self, source: str) -> str:
        return f"{self.root.rstrip('/')}/{source}"

    def list_files(
        self, spark: SparkSession, source: str, start: date, end: date
    ) -> tuple[list[LandingFile], list[str]]:
        """Files of `source` whose arrival folder date is in `[start, end)`, and the ignored ones."""
        fs = HadoopFS(spark)
        files: list[LandingFile] = []
        ignored: list[str] = []
        try:
            folders = fs.subdirs(self.source_path(source))
        except Exception as exc:  # noqa: BLE001 - py4j wraps every Hadoop error alike
            raise dg.Failure(f"landing {source}: {access_error(self.source_path(source), exc)}") from None
        for folder in folders:
            if not _FOLDER_DATE.match(folder.name):
                ignored.append(folder.path)
                continue
            try:
                arrival = date.fromisoformat(folder.name)
            except ValueError:
                ignored.append(folder.path)
                continue
            if not start <= arrival < end:
                continue
            for info in fs.list_dir(folder.path):
                if info.name.startswith(("_", ".")):
                    continue
                suffix = "." + info.name.rsplit(".", 1)[-1].lower() if "." in info.name else ""
                if suffix not in FORMATS or info.is_dir:
                    ignored.append(info.path)
                    continue
                files.append(LandingFile(info.path, arrival, FORMATS[suffix], info.size))
        return files, ignored

    def read(self, spark: SparkSession, source: str, columns: tuple[str, ...], start: date, end: date) -> LandingBatch:
        """Every row of every `source` file that arrived in `[start, end)`, all values as text.

        The frame has the contract `columns`, then any extra columns (sorted), then `_source_file`;
        None when no file holds a row.
        """
        files, ignored = self.list_files(spark, source, start, end)
        fs = HadoopFS(spark)
        frames: list[DataFrame] = []
        by_header: dict[tuple[str, ...], list[str]] = {}
        json_files: list[str] = []
        parquet_files: list[str] = []
        for item in files:
            if item.size == 0:
                continue
            if item.format == "csv":
                header = _csv_header(fs, item.path, columns)
                if header:
                    by_header.setdefault(header, []).append(item.path)
            elif item.format == "json":
                json_files.append(item.path)
            else:
                parquet_files.append(item.path)
        if parquet_files:
            frames += _read_parquet_files(spark, parquet_files, columns)
        for header, paths in by_header.items():
            frames.append(_read_csv(spark, header, paths))
        if json_files:
            frames.append(_read_json(spark, json_files))
        if not frames:
            return LandingBatch(None, files, ignored)
        frame = frames[0]
        for other in frames[1:]:
            frame = frame.unionByName(other, allowMissingColumns=True)
        for name in columns:
            if name not in frame.columns:
                frame = frame.withColumn(name, F.lit(None).cast("string"))
        extras = sorted(c for c in frame.columns if c not in columns and c not in ("_source_file", CORRUPT))
        ordered = [*columns, *extras, "_source_file"] + ([CORRUPT] if CORRUPT in frame.columns else [])
        return LandingBatch(frame.select(*ordered), files, ignored)


def raise_for_corrupt_rows(frame: DataFrame, source: str) -> DataFrame:
    """Fail naming the file and the raw line when any row could not be parsed; else drop the marker.

    Counting first is one scan (which also fills the cache of a cached `frame`); `limit().collect()`
    alone runs up to three growing jobs when no row is bad, the usual case.
    """
    if CORRUPT not in frame.columns:
        return frame
    broken = frame.select(F.count_if(F.col(CORRUPT).isNotNull())).first()[0]
    if broken:
        bad = frame.filter(F.col(CORRUPT).isNotNull()).select("_source_file", CORRUPT).limit(5).collect()
        lines = "\n".join(f"  - {row['_source_file']}: {row[CORRUPT]!r}" for row in bad)
        raise UnreadableFileError(
            f"landing {source}: {broken} row(s) could not be parsed (wrong number of fields or "
            f"malformed JSON); fix or remove the file(s) and re-run. Nothing of this partition was "
            f"published. First rows:\n{lines}"
        )
    return frame.drop(CORRUPT)


def _normalise(name: str) -> str:
    return name.strip().lower()


def _csv_header(fs: HadoopFS, path: str, columns: tuple[str, ...]) -> tuple[str, ...] | None:
    try:
        line = fs.first_line(path)
    except Exception as exc:  # noqa: BLE001 - any I/O error means the file cannot be read
        raise UnreadableFileError(f"landing file {path} cannot be opened: {exc}") from exc
    if line is None or not line.strip():
        return None
    header = tuple(_normalise(name) for name in next(csv.reader([line])))
    if any(not name for name in header) or len(set(header)) != len(header):
        raise UnreadableFileError(f"landing file {path} has an empty or repeated column name in its header {line!r}")
    if not set(header) & set(columns):
        raise UnreadableFileError(
            f"landing file {path}: header {line!r} has none of the expected columns {', '.join(columns)}"
        )
    return header


def _read_csv(spark: SparkSession, header: tuple[str, ...], paths: list[str]) -> DataFrame:
    schema = T.StructType(
        [T.StructField(name, T.StringType()) for name in header] + [T.StructField(CORRUPT, T.StringType())]
    )
    return (
        spark.read.schema(schema)
        .option("header", True)
        .option("enforceSchema", True)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT)
        .option("encoding", "UTF-8")
        .csv(paths)
        .withColumn("_source_file", F.col("_metadata.file_path"))
    )


def _read_json(spark: SparkSession, paths: list[str]) -> DataFrame:
    frame = (
        spark.read.option("primitivesAsString", True)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT)
        .json(paths)
    )
    return _as_text(frame)


def _read_parquet_files(spark: SparkSession, paths: list[str], columns: tuple[str, ...]) -> list[DataFrame]:
    """The Parquet files `paths` as frames of text columns: one read when their schemas agree.

    Reading file by file costs a Spark job per file for its schema (landing zones hold a file a day).
    The driver reads each footer instead (a file without any contract column fails, named), and when
    every column has one type in all files and no two names differ only in their surrounding spaces,
    one `mergeSchema` read (one job for all footers) reads the rows; Spark matches names that differ
    in case. Otherwise each file is read on its own, each value cast from its own file's type.
    """
    fs = HadoopFS(spark)
    types: dict[str, set[str]] = defaultdict(set)
    for path in paths:
        try:
            found = fs.parquet_columns(path)
        except Exception as exc:  # noqa: BLE001 - py4j wraps every reader error alike
            raise UnreadableFileError(
                f"landing file {path} is not readable Parquet: {str(exc).splitlines()[0]}"
            ) from exc
        if not {_normalise(n) for n in found} & set(columns):
            raise UnreadableFileError(f"landing file {path}: columns {list(found)} have none of the expected {columns}")
        for name, kind in found.items():
            types[name.lower()].add(kind)
    agree = all(len(kinds) == 1 for kinds in types.values())
    if agree and len({_normalise(n) for n in types}) == len(types):
        return [_as_text(spark.read.option("mergeSchema", True).parquet(*paths))]
    return [_as_text(spark.read.parquet(path)) for path in paths]


def _as_text(frame: DataFrame) -> DataFrame:
    """Every column cast to text under its normalised name, plus `_source_file`."""
    return frame.select(
        *[F.col(f"`{c}`").cast("string").alias(_normalise(c)) for c in frame.columns],
        F.col("_metadata.file_path").alias("_source_file"),
    )
