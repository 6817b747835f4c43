"""Publishing lake quarters to PostgreSQL (SPEC.md, "Delivery"): tables from the Pandera models,
one transaction per quarter, bulk loaded with COPY.

A quarter is replaced by `DELETE … WHERE quarter = Q` and `COPY` in ONE transaction. Under READ
COMMITTED every statement of a reader sees the snapshot of its start: before the commit, the old
quarter whole (the delete is not visible yet); after it, the new one whole — never a mix, never a
gap. (A `TRUNCATE`, or a drop-and-rename of a table per quarter, is not MVCC-safe that way, and
would touch the other quarters.) Two publishers of the same quarter queue on an advisory lock held
to the end of the transaction, so the second deletes the first's rows instead of colliding with
them on the primary key.

The rows are streamed from the quarter's Parquet files at one Delta version (`lake_files.QuarterSnapshot`:
a concurrent commit to the lake cannot mix versions), record batch by record batch, rendered as CSV
by Arrow's C++ writer and written to `COPY … FROM STDIN (FORMAT csv)`: no Python loop per row, and
memory bounded by one batch.

The DSN is kept as written in the config (`${NAME}` for the password) and resolved only when a
connection is made (`connection_parameters`): the template is parsed first, and each variable's
value is put into the parameter it stands for, passed to libpq as a parameter of its own, never
pasted back into a URL. A password with `@ / : # % ?` is the password, and nothing of it can become
a host name; the variable holds the password itself, not URL-encoded. Every message that could
carry it goes through `redact`.
"""

from __future__ import annotations

import io
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import dagster as dg
import pandera.pyspark as pa
import pyspark.sql.types as T

from batch_platform.config import ENV_REFERENCE
from batch_platform.schemas.base import PARTITION_COLUMN, unique_key

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pyarrow as pa_arrow
    from psycopg import sql

BATCH_ROWS = 64_000
_MARKER = re.compile(r"bpenvref(\d+)x")
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")
_KEYWORD_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)

PG_TYPES: dict[type, str] = {
    T.StringType: "text",
    T.LongType: "bigint",
    T.IntegerType: "integer",
    T.ShortType: "smallint",
    T.DoubleType: "double precision",
    T.FloatType: "real",
    T.BooleanType: "boolean",
    T.DateType: "date",
    T.TimestampType: "timestamp with time zone",
    T.TimestampNTZType: "timestamp without time zone",
}


class DsnError(ValueError):
    """A DSN that writes a password into the config file instead of `${NAME}`."""


def _parse_template(dsn: str) -> tuple[dict[str, str], list[str]]:
    """The parameters of a DSN template, each `${NAME}` standing as a marker `bpenvref<i>x` (letters
    and digits, which URL and key=value parsing leave as they are), and the NAME of each marker."""
    names: list[str] = []

    def marker(match: re.Match) -> str:
        names.append(match.group(1))
        return f"bpenvref{len(names) - 1}x"

    from psycopg.conninfo import conninfo_to_dict

    marked = ENV_REFERENCE.sub(marker, dsn)
    try:
        return conninfo_to_dict(marked), names
    except Exception as exc:  # noqa: BLE001 - psycopg raises ProgrammingError; the message may echo the DSN
        raise DsnError(f"it is not a libpq connection string or URL ({redact(str(exc))})") from None


def check_dsn_template(dsn: str) -> None:
    """Refuse a DSN whose password is written in the file rather than read from the environment."""
    if ENV_REFERENCE.fullmatch(dsn.strip()):
        return  # the whole DSN comes from one environment variable
    password = _parse_template(dsn)[0].get("password")
    if password and _MARKER.sub("", password):
        raise DsnError("its password is written in the file: write it as ${NAME}, read from the environment")


def connection_parameters(dsn: str) -> dict[str, str]:
    """The libpq parameters of the DSN template `dsn`, each `${NAME}` replaced by the value of the
    environment variable NAME (KeyError if unset) after the template is parsed."""
    from psycopg.conninfo import conninfo_to_dict

    if whole := ENV_REFERENCE.fullmatch(dsn.strip()):
        return conninfo_to_dict(os.environ[whole.group(1)])
    parts, names = _parse_template(dsn)
    return {key: _MARKER.sub(lambda m: os.environ[names[int(m.group(1))]], value) for key, value in parts.items()}


def redact(text: str, *secrets: str | None) -> str:
    """`text` with URL and keyword passwords, and each of `secrets`, replaced by `***`."""
    text = _KEYWORD_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", text))
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def pg_type(spark_type: T.DataType) -> str:
    if isinstance(spark_type, T.DecimalType):
        return f"numeric({spark_type.precision},{spark_type.scale})"
    try:
        return PG_TYPES[type(spark_type)]
    except KeyError:
        raise TypeError(f"no PostgreSQL type is declared for Spark type {spark_type.simpleString()}") from None


@dataclass(frozen=True)
class PgColumn:
    name: str
    type: str
    nullable: bool


def pg_columns(model: type[pa.DataFrameModel]) -> list[PgColumn]:
    """The table's columns, `quarter` first, with types from the Pandera model."""
    fields = {f.name: f for f in model.to_structtype().fields}
    names = [PARTITION_COLUMN, *(name for name in fields if name != PARTITION_COLUMN)]
    columns = model.to_schema().columns
    return [PgColumn(n, pg_type(fields[n].dataType), bool(columns[n].nullable)) for n in names]


def create_table_sql(schema: str, table: str, model: type[pa.DataFrameModel]) -> sql.Composed:
    from psycopg import sql

    key = unique_key(model.to_schema())
    if not key:
        raise ValueError(f"{schema}.{table}: the Pandera model declares no unique key for a primary key")
    columns = [
        sql.SQL("{} {}{}").format(
            sql.Identifier(c.name),
            sql.SQL(c.type),
            sql.SQL("" if c.nullable else " NOT NULL"),
        )
        for c in pg_columns(model)
    ]
    return sql.SQL("CREATE TABLE IF NOT EXISTS {}.{} ({}, PRIMARY KEY ({}))").format(
        sql.Identifier(schema), sql.Identifier(table), sql.SQL(", ").join(columns),
        sql.SQL(", ").join(map(sql.Identifier, key)),
    )  # fmt: skip


def ensure_table(conn, schema: str, table: str, model: type[pa.DataFrameModel]) -> None:
    """Create the schema and table when missing; fail, naming the columns, when an existing table
    differs from the model (the platform never alters a table people read)."""
    from psycopg import sql

    with conn.transaction():
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        conn.execute(create_table_sql(schema, table, model))
        found = conn.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = format('%%I.%%I', %s::text, %s::text)::regclass AND attnum > 0 AND NOT attisdropped",
            [schema, table],
        ).fetchall()
    expected = {c.name: c.type for c in pg_columns(model)}
    actual = dict(found)
    if actual != expected:
        diff = sorted(f"{name}: table has {actual.get(name)}, model wants {expected.get(name)}"
                      for name in set(actual) | set(expected) if actual.get(name) != expected.get(name))  # fmt: skip
        raise dg.Failure(f"{schema}.{table} exists with other columns than the model; drop or migrate it: {diff}")


@dataclass(frozen=True)
class Replaced:
    rows_deleted: int
    rows_loaded: int
    seconds: float


def csv_chunk(batch: pa_arrow.RecordBatch, quarter: str) -> bytes:
    """One record batch as CSV lines, `quarter` prepended. Arrow quotes every string, so an empty
    string stays `""` and a NULL is an empty field, which COPY reads as NULL."""
    import pyarrow as pa_arrow
    import pyarrow.csv as pa_csv

    table = pa_arrow.Table.from_batches([batch])
    table = table.add_column(
        0,
        PARTITION_COLUMN,
        pa_arrow.array([quarter] * batch.num_rows, pa_arrow.string()),
    )
    sink = io.BytesIO()
    pa_csv.write_csv(table, sink, pa_csv.WriteOptions(include_header=False, quoting_style="needed"))
    return sink.getvalue()


def replace_quarter(
    conn, schema: str, table: str, model: type[pa.DataFrameModel], quarter: str,
    batches: Iterable[pa_arrow.RecordBatch],
) -> Replaced:  # fmt: skip
    """Replace every row of `quarter` in `schema.table` by `batches`, in one transaction."""
    from psycopg import sql

    started = time.perf_counter()
    columns = [c.name for c in pg_columns(model)]
    target = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
    copy = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
        target, sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    loaded = 0
    with conn.transaction(), conn.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            [f"{schema}.{table}/{quarter}"],
        )
        cursor.execute(
            sql.SQL("DELETE FROM {} WHERE {} = %s").format(target, sql.Identifier(PARTITION_COLUMN)),
            [quarter],
        )
        deleted = cursor.rowcount
        with cursor.copy(copy) as stream:
            for batch in batches:
                if batch.num_rows:
                    stream.write(csv_chunk(batch, quarter))
                    loaded += batch.num_rows
    return Replaced(deleted, loaded, round(time.perf_counter() - started, 3))


class PostgresTarget(dg.ConfigurableResource):
    """The database `publish.postgres` names. `dsn` is the config's template (`${NAME}` for the
    password): the Dagster UI shows it as written, and the password is read from the environment
    only in `connect`."""

    dsn: str
    db_schema: str = "public"

    def _parts(self) -> dict[str, str]:
        try:
            return connection_parameters(self.dsn)
        except Exception:  # noqa: BLE001 - an unset variable or a malformed DSN: connect() says which
            return {}

    def describe(self) -> str:
        """`user@host:port/dbname`, for messages and metadata: never the password."""
        parts = self._parts()
        return (f"{parts.get('user', '')}@{parts.get('host', 'localhost')}:{parts.get('port', '5432')}"
                f"/{parts.get('dbname', '')}")  # fmt: skip

    def connect(self):
        """A psycopg connection; a failure names the host and never shows the password."""
        import psycopg

        try:
            parameters = connection_parameters(self.dsn)
        except KeyError as exc:
            raise dg.Failure(
                f"publish.postgres.dsn refers to environment variable {exc.args[0]}, which is not set"
            ) from None
        except Exception:  # noqa: BLE001 - psycopg's message may quote the DSN
            raise dg.Failure("publish.postgres.dsn is not a libpq connection string or URL") from None
        try:
            return psycopg.connect(
                **{**parameters, "connect_timeout": 10, "application_name": "batch_platform"}, autocommit=True
            )
        except Exception as exc:  # noqa: BLE001 - psycopg's message may quote the DSN
            message = redact(str(exc), parameters.get("password"))
        raise dg.Failure(
            f"cannot connect to PostgreSQL at {self.describe()} (publish.postgres.dsn, password redacted): {message}"
        )
