"""Reading the landing zone (SPEC.md, "Landing zone"): `<landing>/<source>/<YYYY-MM-DD>/<file>`.

Rules the reader enforces, each one a line of the contract:
- columns are matched by name (trimmed, case-insensitive) in any order; extra columns are kept;
  a missing contract column is null;
- every value stays text: CSV is read with an all-string schema, JSON with `primitivesAsString`,
  Parquet columns are cast to string;
- text is UTF-8, strictly: a CSV or JSON file that is not fails with the file, line and byte offset
  named, never read with replacement characters;
- CSV is RFC 4180: a quoted field may hold delimiters, doubled quotes and line breaks (so Spark reads
  each CSV file whole, `multiLine`); a quote that opens a field and is never closed fails with the
  file and line named;
- Spark maps CSV columns by position after the first file's header, so CSV files are grouped by
  header and each group read on its own, then unioned by name;
- zero-byte and header-only files contribute no rows; files whose name starts with `_` or `.` are
  hidden (Hadoop's convention); other extensions are ignored and reported;
- a file that cannot be read (a row with the wrong number of fields, malformed JSON, a broken
  Parquet footer, a header without any contract column) fails with the file named;
- which contract columns each file lacks is recorded (`LandingFile.missing`): its CSV header or
  Parquet footer says; a JSON-lines file lacks a column none of its rows gives a value.

Spark's readers replace bytes that are not UTF-8 by U+FFFD without a word, and its CSV reader takes
an unclosed quote to the end of the file as one value. Reading every file's bytes again to catch
either would be a second pass over the data, so the pass that already reads the rows (`verify_rows`)
marks the files holding a value with U+FFFD or a line break (or a JSON line that is not UTF-8), and
the driver reads the last bytes of every CSV file with its header (an unclosed quote in a file's
last line leaves no line break). Only the files so marked are read whole, by the driver, and decoded
strictly: a U+FFFD written as such, or a quoted line break, passes. Error messages quote at most a
short escaped excerpt of a file.

An empty field of a CSV file reads as NULL (Spark's CSV semantics): bronze cannot tell `,,` from a
missing value, and silver treats both alike.
"""

import codecs
import csv
import mmap
import operator
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from functools import reduce
from urllib.parse import unquote

import dagster as dg
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from batch_platform.s3 import access_error
from batch_platform.storage import HadoopFS

FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}
CORRUPT = "_corrupt_record"
EXCERPT = 60
"""The most characters of a file an error message quotes."""
HEADER_LIMIT = 1 << 20
TAIL = 1 << 12
SCAN_CHUNK = 1 << 24
_FOLDER_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SOUND_CSV = re.compile(rb'(?:[^"]++|(?<![^,\r\n])"(?:[^"]|"")*+"|(?<=[^,\r\n])")*+')
"""CSV text up to the first quote that opens a field and is never closed: a quote at the start of a
field opens it, `""` inside it is a quote, and a quote anywhere else is a character."""


class UnreadableFileError(dg.Failure):
    """A landing file that cannot be read at all; nothing of the partition is published."""


@dataclass
class LandingFile:
    path: str
    arrival: date
    format: str
    size: int
    columns: frozenset[str] | None = None
    """The columns it holds (normalised), None until known or when it holds no header and no row."""
    suspect: bool = False
    """Its last line may open a quote it never closes (`verify_rows` reads it whole)."""

    def missing(self, contract: tuple[str, ...]) -> list[str]:
        return [] if self.columns is None else [name for name in contract if name not in self.columns]


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
                if format_of(info.name) is None or info.is_dir:
                    ignored.append(info.path)
                    continue
                files.append(LandingFile(info.path, arrival, format_of(info.name), info.size))
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
        parquet_files: list[LandingFile] = []
        for item in (item for item in files if item.size):  # a zero-byte file holds no row
            if item.format == "csv":
                header = _csv_header(fs, item, columns)
                if header:
                    by_header.setdefault(header, []).append(item.path)
            elif item.format == "json":
                json_files.append(item.path)
            else:
                parquet_files.append(item)
        if parquet_files:
            frames += _read_parquet_files(spark, parquet_files, columns)
        for header, paths in by_header.items():
            frames.append(_read_csv(spark, header, paths))
        if json_files:
            frames.append(_read_json(spark, json_files))
        if not frames:
            return LandingBatch(None, files, ignored)
        frame = reduce(lambda left, right: left.unionByName(right, allowMissingColumns=True), frames)
        for name in columns:
            if name not in frame.columns:
                frame = frame.withColumn(name, F.lit(None).cast("string"))
        extras = sorted(c for c in frame.columns if c not in columns and c not in ("_source_file", CORRUPT))
        ordered = [*columns, *extras, "_source_file"] + ([CORRUPT] if CORRUPT in frame.columns else [])
        return LandingBatch(frame.select(*ordered), files, ignored)


def verify_rows(frame: DataFrame, batch: LandingBatch, source: str, columns: tuple[str, ...]) -> DataFrame:
    """`frame` (the batch's rows) without the parser's marker, once no file is unreadable; fills in the
    columns of the JSON files.

    One aggregation per file, the scan that also fills the cache of a cached `frame`: its rows that
    could not be parsed, whether a value holds U+FFFD or a line break, and (for JSON) which columns,
    extras too, have a value. The files so marked, and the CSV files whose last line may open a
    quote, are then read whole by the driver (`_text_problem`); a file that is not valid UTF-8 or
    never closes a quote fails, named, before any row that could not be parsed is reported.
    """
    text = [name for name in batch.frame.columns if name != "_source_file"]
    named = [name for name in text if name != CORRUPT]
    odd = reduce(operator.or_, [_odd(F.col(f"`{name}`")) for name in text])
    corrupt = F.lit(0)
    if CORRUPT in text:  # a JSON line Jackson could not decode is kept as its raw bytes
        odd, corrupt = odd | ~F.is_valid_utf8(CORRUPT), F.count_if(F.col(CORRUPT).isNotNull())
    found = (
        frame.groupBy("_source_file")
        .agg(
            corrupt.alias(CORRUPT),
            F.bool_or(odd).alias("_odd"),
            *[F.bool_or(F.col(f"`{name}`").isNotNull()).alias(name) for name in named],
        )
        .collect()
    )
    files = {item.path: item for item in batch.files}
    suspects = {item.path for item in batch.files if item.suspect}
    for row in found:
        path = unquote(row["_source_file"])  # the file's URI; the listing's path is not encoded
        if row["_odd"]:
            suspects.add(path)
        if path in files and files[path].format == "json":
            files[path].columns = frozenset(name for name in named if row[name])
    fs = HadoopFS(frame.sparkSession)
    problems = [
        f"  - {path}: {problem}"
        for path in sorted(suspects)
        if format_of(path) != "parquet" and (problem := _text_problem(fs, path, format_of(path) == "csv"))
    ]
    if problems:
        raise UnreadableFileError(
            f"landing {source}: {len(problems)} file(s) cannot be read as UTF-8 CSV or JSON text; fix or remove "
            "them and re-run. Nothing of this partition was published.\n" + "\n".join(problems)
        )
    broken = sum(row[CORRUPT] for row in found)
    if broken:
        bad = frame.filter(F.col(CORRUPT).isNotNull()).select("_source_file", CORRUPT).limit(5).collect()
        lines = "\n".join(f"  - {row['_source_file']}: {excerpt(row[CORRUPT])}" for row in bad)
        raise UnreadableFileError(
            f"landing {source}: {broken} row(s) could not be parsed (wrong number of fields or "
            f"malformed JSON); fix or remove the file(s) and re-run. Nothing of this partition was "
            f"published. First rows:\n{lines}"
        )
    return frame.drop(CORRUPT)


def format_of(name: str) -> str | None:
    """A landing file's format, from its extension; None for a file the platform does not read."""
    return FORMATS.get("." + name.rsplit(".", 1)[-1].lower() if "." in name else "")


def excerpt(value: str | bytes, limit: int = EXCERPT) -> str:
    """At most `limit` characters of `value`, escaped as Python escapes it (`ascii`), `...` if cut."""
    cut = value[:limit]
    while len(ascii(cut)) + (3 if len(cut) < len(value) else 0) > limit:
        cut = cut[:-1]
    return ascii(cut) + ("..." if len(cut) < len(value) else "")


def _odd(value: F.Column) -> F.Column:
    return value.contains("\ufffd") | value.contains("\n") | value.contains("\r")


def _text_problem(fs: HadoopFS, path: str, quoted: bool) -> str | None:
    """Where the file stops being UTF-8 or (`quoted`: CSV) opens a quote it never closes; None if nowhere.

    Read from a local copy (a memory map): the regular expressions and the decoder run at C speed."""
    with (
        fs.local_copy(path) as local,
        open(local, "rb") as handle,
        mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data,
    ):
        start = 0
        while start < len(data):
            end = data.find(b"\n", start + SCAN_CHUNK) + 1 or len(data)
            try:
                codecs.utf_8_decode(data[start:end], "strict", True)
            except UnicodeDecodeError as exc:
                return _not_utf8(data, start + exc.start)
            start = end
        stop = _SOUND_CSV.match(data).end() if quoted else len(data)
        if stop < len(data):
            return (
                f"a quoted field opened at line {_line(data, stop)} is never closed "
                f"({excerpt(data[stop : stop + EXCERPT])})"
            )
    return None


def _line(data, offset: int) -> int:
    return data[:offset].count(b"\n") + 1


def _not_utf8(data, offset: int) -> str:
    start = max(data.rfind(b"\n", 0, offset) + 1, offset - 8)
    return (
        f"not valid UTF-8 at line {_line(data, offset)}, byte offset {offset} "
        f"({excerpt(data[start : start + EXCERPT])}); the platform reads text as UTF-8 only"
    )


def _ends_in_open_quote(tail: bytes, whole: bool) -> bool:
    """Whether the last line of `tail` (the end of a CSV file; `whole`: it starts at a line's start)
    may open a quote it never closes. Before a final line break, such a quote leaves a line break in
    a value, which `verify_rows` sees."""
    if tail.endswith((b"\n", b"\r")):
        return False
    start = max(tail.rfind(b"\n"), tail.rfind(b"\r")) + 1
    if start == 0 and not whole:
        return True
    return _SOUND_CSV.match(tail, start).end() < len(tail)


def _normalise(name: str) -> str:
    return name.strip().lower()


def _csv_header(fs: HadoopFS, item: LandingFile, columns: tuple[str, ...]) -> tuple[str, ...] | None:
    """The normalised header of a CSV file (None when its first line is blank), read with the file's
    last bytes: `item` learns its columns and whether its last line may open a quote."""
    try:
        with fs.open(item.path) as stream:
            first = stream.readline(HEADER_LIMIT)
            start = max(len(first), item.size - TAIL)
            stream.seek(start)
            tail = stream.read() if start < item.size else first
    except Exception as exc:  # noqa: BLE001 - any I/O error means the file cannot be read
        raise UnreadableFileError(f"landing file {item.path} cannot be opened: {str(exc).splitlines()[0]}") from exc
    if len(first) == HEADER_LIMIT and not first.endswith(b"\n"):
        raise UnreadableFileError(f"landing file {item.path}: no CSV header, its first line is longer than 1 MiB")
    try:
        line = first.decode("utf-8").lstrip("\ufeff").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise UnreadableFileError(f"landing file {item.path} is {_not_utf8(first, exc.start)}") from None
    if not line.strip():
        return None
    try:
        header = tuple(_normalise(name) for name in next(csv.reader([line], strict=True)))
    except csv.Error as exc:
        raise UnreadableFileError(f"landing file {item.path}: malformed header {excerpt(line)} ({exc})") from None
    if any(not name for name in header) or len(set(header)) != len(header):
        raise UnreadableFileError(
            f"landing file {item.path} has an empty or repeated column name in its header {excerpt(line)}"
        )
    if not set(header) & set(columns):
        raise UnreadableFileError(
            f"landing file {item.path}: header {excerpt(line)} has none of the expected columns {', '.join(columns)}"
        )
    item.columns = frozenset(header)
    item.suspect = _ends_in_open_quote(tail, whole=start == len(first))
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
        .option("multiLine", True)
        .option("escape", '"')
        .csv(paths)
        .withColumn("_source_file", F.col("_metadata.file_path"))
    )


def _read_json(spark: SparkSession, paths: list[str]) -> DataFrame:
    return _as_text(
        spark.read.option("primitivesAsString", True)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT)
        .json(paths)
    )


def _read_parquet_files(spark: SparkSession, files: list[LandingFile], columns: tuple[str, ...]) -> list[DataFrame]:
    """The Parquet `files` as frames of text columns: one read when their schemas agree.

    Reading file by file costs a Spark job per file for its schema (landing zones hold a file a day).
    The driver reads each footer instead (a file without any contract column fails, named), and when
    every column has one type in all files and no two names differ only in their surrounding spaces,
    one `mergeSchema` read (one job for all footers) reads the rows; Spark matches names that differ
    in case. Otherwise each file is read on its own, each value cast from its own file's type.
    """
    fs = HadoopFS(spark)
    types: dict[str, set[str]] = defaultdict(set)
    paths = [item.path for item in files]
    for item in files:
        try:
            found = fs.parquet_columns(item.path)
        except Exception as exc:  # noqa: BLE001 - py4j wraps every reader error alike
            raise UnreadableFileError(
                f"landing file {item.path} is not readable Parquet: {str(exc).splitlines()[0]}"
            ) from exc
        item.columns = frozenset(_normalise(n) for n in found)
        if not item.columns & set(columns):
            raise UnreadableFileError(
                f"landing file {item.path}: columns {list(found)} have none of the expected {columns}"
            )
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
