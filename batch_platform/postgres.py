"""Publishing lake quarters to PostgreSQL (SPEC.md, "Delivery"): tables from the Pandera models,
one transaction per quarter, bulk loaded with COPY.

A quarter is replaced by `DELETE … WHERE quarter = Q` and `COPY` in ONE transaction. Under READ
COMMITTED every statement of a reader sees the snapshot of its start: before the commit, the old
quarter whole (the delete is not visible yet); after it, the new one whole — never a mix, never a
gap. (A `TRUNCATE`, or a drop-and-rename of a table per quarter, is not MVCC-safe that way, and
would touch the other quarters.) Two publishers of the same quarter queue on an advisory lock held
to the end of the transaction, so the second deletes the first's rows instead of colliding with
them on the primary key.

The table follows the Pandera model (`conform_table`, in that same transaction): created when
missing; a column the model gained since the table was created (a feature, a field of the scores)
is added, nullable (the quarters published before hold NULL in it until they are published
again); a column whose type differs, a column the model no longer has and a missing key column are
refused with one message naming each, and nothing is changed. Adding a column takes PostgreSQL's
ACCESS EXCLUSIVE lock on the table until the quarter's transaction commits: readers of the table
wait for that one publication, once per upgrade.

The rows are streamed from the quarter's Parquet files at one Delta version (`lake_files.QuarterSnapshot`:
a concurrent commit to the lake cannot mix versions), record batch by record batch, rendered as CSV
by Arrow's C++ writer and written to `COPY … FROM STDIN (FORMAT csv)`: no Python loop per row, and
memory bounded by one batch.

The DSN is kept as written in the config (`${NAME}` for the password) and resolved only when a
connection is made (`batch_platform.env_refs.connection_parameters`, which says how); the variable
holds the password itself, not URL-encoded. Every message that could carry it goes through `redact`.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import dagster as dg
import pandera.pyspark as pa
import pyarrow as pa_arrow
import pyarrow.csv as pa_csv
import pyspark.sql.types as T

from batch_platform.env_refs import connection_parameters, redact
from batch_platform.schemas.base import PARTITION_COLUMN, unique_key

if TYPE_CHECKING:  # pragma: no cover - typing only
    from psycopg import sql

BATCH_ROWS = 64_000

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


class TableSql(NamedTuple):
    """The statements that publish to one table (`table_sql`)."""

    create_schema: sql.Composed
    create_table: sql.Composed
    delete_quarter: sql.Composed
    """`DELETE` of one quarter's rows, the quarter its one parameter."""
    copy: sql.Composed
    """`COPY … FROM STDIN (FORMAT csv)` of every column, `quarter` first."""
    target: sql.Composed
    add_column: dict[str, sql.Composed]
    """Per column of the model, `ALTER TABLE … ADD COLUMN IF NOT EXISTS`, nullable whatever the model
    says: the rows already published have no value for it."""


def table_sql(schema: str, table: str, model: type[pa.DataFrameModel]) -> TableSql:
    """The statements that publish to `schema.table`, its columns and primary key from the Pandera
    model, identifiers quoted by psycopg's `sql`. The one place that module is imported, when a run
    publishes (start-up time: psycopg takes a few tenths of a second, and importing the definitions
    never needs it)."""
    from psycopg import sql  # start-up time: psycopg loads only when a run publishes (docstring)

    key = unique_key(model.to_schema())
    if not key:
        raise ValueError(f"{schema}.{table}: the Pandera model declares no unique key for a primary key")
    columns = pg_columns(model)
    target = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
    declared = [
        sql.SQL("{} {}{}").format(
            sql.Identifier(c.name),
            sql.SQL(c.type),
            sql.SQL("" if c.nullable else " NOT NULL"),
        )
        for c in columns
    ]
    return TableSql(
        create_schema=sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)),
        create_table=sql.SQL("CREATE TABLE IF NOT EXISTS {} ({}, PRIMARY KEY ({}))").format(
            target, sql.SQL(", ").join(declared), sql.SQL(", ").join(map(sql.Identifier, key))
        ),
        delete_quarter=sql.SQL("DELETE FROM {} WHERE {} = %s").format(target, sql.Identifier(PARTITION_COLUMN)),
        copy=sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
            target, sql.SQL(", ").join(sql.Identifier(c.name) for c in columns)
        ),
        target=target,
        add_column={
            c.name: sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
                target, sql.Identifier(c.name), sql.SQL(c.type)
            )
            for c in columns
        },
    )


_COLUMNS_SQL = (
    "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
    "WHERE attrelid = to_regclass(format('%%I.%%I', %s::text, %s::text)) AND attnum > 0 AND NOT attisdropped "
    "ORDER BY attnum"
)


class SchemaMismatch(dg.Failure):
    """An existing PostgreSQL table the platform will not change to fit the model."""


def conform_table(cursor, schema: str, table: str, model: type[pa.DataFrameModel]) -> list[str]:
    """Make `schema.table` hold the model's columns, inside the caller's transaction: create it when
    missing; add the columns the model has and the table lacks (nullable), and return their names;
    raise `SchemaMismatch`, changing nothing, when a column's type differs, the table has a column
    the model has not, or it lacks a key column.

    Only the publisher that has DDL to run takes a lock per table (an advisory lock, then the table's
    own lock by the DDL), and it looks at the columns again under it: two publishers of the new
    version never both add a column, and publishers with nothing to change run side by side."""
    statements = table_sql(schema, table, model)
    wanted = pg_columns(model)
    found = _found_columns(cursor, schema, table)
    if found and not _missing(wanted, found):
        _refuse_mismatches(schema, table, model, wanted, found)
        return []
    cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"{schema}.{table}"])
    found = _found_columns(cursor, schema, table)
    if not found:
        cursor.execute(statements.create_schema)
        cursor.execute(statements.create_table)
        return []
    _refuse_mismatches(schema, table, model, wanted, found)
    added = _missing(wanted, found)
    for column in added:
        cursor.execute(statements.add_column[column.name])
    return [column.name for column in added]


def ensure_table(conn, schema: str, table: str, model: type[pa.DataFrameModel]) -> list[str]:
    """`conform_table` in a transaction of its own (`replace_quarter` runs it in the quarter's)."""
    with conn.transaction(), conn.cursor() as cursor:
        return conform_table(cursor, schema, table, model)


def _found_columns(cursor, schema: str, table: str) -> dict[str, str]:
    """The table's columns and their PostgreSQL types; empty when there is no such table."""
    return dict(cursor.execute(_COLUMNS_SQL, [schema, table]).fetchall())


def _missing(wanted: list[PgColumn], found: dict[str, str]) -> list[PgColumn]:
    return [column for column in wanted if column.name not in found]


def _refuse_mismatches(
    schema: str, table: str, model: type[pa.DataFrameModel], wanted: list[PgColumn], found: dict[str, str]
) -> None:
    """`SchemaMismatch` listing every column the platform will not change: a type change (ALTER …
    TYPE would rewrite the table people read and may lose values), a column the model dropped
    (dropping it would lose what people read), a key column to add (it cannot be NULL)."""
    types = {column.name: column.type for column in wanted}
    key = unique_key(model.to_schema())
    problems = [
        f"{name}: table has {found[name]}, model wants {types[name]} (a type change is refused)"
        for name in types
        if name in found and found[name] != types[name]
    ]
    problems += [f"{name}: table has {kind}, the model has no such column" for name, kind in found.items()
                 if name not in types]  # fmt: skip
    problems += [f"{name}: the table lacks this key column" for name in key if name not in found]
    if problems:
        raise SchemaMismatch(
            f"{schema}.{table} exists with columns the platform does not change; migrate the table (or drop it to "
            f"have it created again), then publish again: {'; '.join(problems)}"
        )


@dataclass(frozen=True)
class Replaced:
    rows_deleted: int
    rows_loaded: int
    seconds: float
    columns_added: tuple[str, ...] = ()
    """The columns the table gained in this transaction (`conform_table`)."""


def csv_chunk(batch: pa_arrow.RecordBatch, quarter: str) -> bytes:
    """One record batch as CSV lines, `quarter` prepended. Arrow quotes every string, so an empty
    string stays `""` and a NULL is an empty field, which COPY reads as NULL."""
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
    """Replace every row of `quarter` in `schema.table` by `batches`, in one transaction, which also
    creates the table or adds the columns it lacks (`conform_table`): if the quarter fails, the table
    is left as it was."""
    started = time.perf_counter()
    statements = table_sql(schema, table, model)
    loaded = 0
    with conn.transaction(), conn.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            [f"{schema}.{table}/{quarter}"],
        )
        added = conform_table(cursor, schema, table, model)
        cursor.execute(statements.delete_quarter, [quarter])
        deleted = cursor.rowcount
        with cursor.copy(statements.copy) as stream:
            for batch in batches:
                if batch.num_rows:
                    stream.write(csv_chunk(batch, quarter))
                    loaded += batch.num_rows
    return Replaced(deleted, loaded, round(time.perf_counter() - started, 3), tuple(added))


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
        import psycopg  # start-up time, as `table_sql`: psycopg loads only when a run publishes

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
