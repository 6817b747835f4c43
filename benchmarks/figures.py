"""The gold figures of a lake, read the same way for every contender, and their comparison.

Every contender writes `<lake>/gold/<table>/quarter=<YYYY-QN>/*.parquet` (the platform's tables are
Delta tables: their files are the latest version's, from the Delta log, never the folder's listing);
one neutral reader (DuckDB over those Parquet files) turns each table and quarter into figures:

- `rows`, and `customers` (distinct customer_id) with an order-free checksum of the customer set;
- per numeric column: sum, mean and NULL count (`label`'s sum is the number of churned customers);
- per timestamp column: min, max and mean as epoch microseconds (UTC instants);
- per text column: NULL count and distinct values, and for `split` and `partner_segment` the row
  count of each value (the split counts).

Two lakes agree when every figure of every table and quarter is equal: integers exactly, doubles
within a relative tolerance (sums of doubles may differ in the last bits with the summation order).
"""

from __future__ import annotations

import math
from pathlib import Path

import duckdb

GOLD_TABLES = ("customer_history", "customer_features", "churn_labels", "training_set")
COUNTED_VALUES = ("split", "partner_segment", "label")
REL_TOL = 1e-9
ABS_TOL = 1e-6


def table_files(folder: Path, quarter: str | None = None) -> list[Path]:
    """The Parquet files of a table (of one `quarter`): a Delta table's latest version, read from its
    log (its folder also holds replaced files); a plain folder's every file."""
    if (folder / "_delta_log").is_dir():
        from deltalake import DeltaTable

        predicate = [("quarter", "=", quarter)] if quarter else None
        files = [Path(uri) for uri in DeltaTable(str(folder.resolve())).file_uris(file_pruning_predicate=predicate)]
    elif folder.is_dir():
        files = list(folder.glob(f"quarter={quarter or '*'}/*.parquet"))
    else:
        files = []
    return sorted(files)


def _relation(con: duckdb.DuckDBPyConnection, folder: Path) -> str | None:
    files = [str(p) for p in table_files(folder)]
    if not files:
        return None
    listing = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
    return f"read_parquet({listing}, hive_partitioning = true, union_by_name = true, hive_types_autocast = false)"


def gold_figures(lake: str | Path, quarters: list[str] | None = None) -> dict[str, dict[str, dict]]:
    """{table: {quarter: {figure: value}}} for the gold tables of `lake` (only `quarters` if given)."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    out: dict[str, dict[str, dict]] = {}
    try:
        for table in GOLD_TABLES:
            relation = _relation(con, Path(lake) / "gold" / table)
            out[table] = {}
            if relation is None:
                continue
            schema = con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
            exprs = [
                "count(*) AS rows",
                "count(DISTINCT customer_id) AS customers",
                "coalesce(sum(hash(customer_id)::HUGEINT), 0)::VARCHAR AS customer_checksum",
            ]
            for name, kind, *_ in schema:
                if name in ("quarter", "customer_id"):
                    continue
                kind = kind.upper()
                col = f'"{name}"'
                if kind.startswith("TIMESTAMP"):
                    exprs += [
                        f'epoch_us(min({col})) AS "{name}.min"',
                        f'epoch_us(max({col})) AS "{name}.max"',
                        f'avg(epoch_us({col})) AS "{name}.mean"',
                    ]
                elif any(
                    kind.startswith(t)
                    for t in ("BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT", "UBIGINT", "UINTEGER")
                ):
                    exprs += [f'sum({col})::BIGINT AS "{name}.sum"', f'avg({col}) AS "{name}.mean"']
                elif kind.startswith(("DOUBLE", "FLOAT", "DECIMAL", "REAL")):
                    exprs += [f'sum({col})::DOUBLE AS "{name}.sum"', f'avg({col})::DOUBLE AS "{name}.mean"']
                elif kind == "DATE":
                    exprs += [f'min({col})::VARCHAR AS "{name}.min"', f'max({col})::VARCHAR AS "{name}.max"']
                else:
                    exprs += [f'count(DISTINCT {col}) AS "{name}.distinct"']
                exprs.append(f'count(*) - count({col}) AS "{name}.nulls"')
                if name in COUNTED_VALUES:
                    values = [
                        row[0]
                        for row in con.execute(
                            f"SELECT DISTINCT {col} FROM {relation} WHERE {col} IS NOT NULL ORDER BY 1"
                        ).fetchall()
                    ]
                    for value in values:
                        literal = f"'{value}'" if isinstance(value, str) else str(value)
                        exprs.append(f'count(*) FILTER (WHERE {col} = {literal}) AS "{name}={value}"')
            rows = con.execute(f"SELECT quarter, {', '.join(exprs)} FROM {relation} GROUP BY quarter ORDER BY quarter")
            names = [d[0] for d in rows.description]
            for row in rows.fetchall():
                quarter = row[0]
                if quarters and quarter not in quarters:
                    continue
                out[table][quarter] = {k: v for k, v in zip(names[1:], row[1:], strict=True)}
    finally:
        con.close()
    return out


def _equal(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=REL_TOL, abs_tol=ABS_TOL)
    return a == b


def _zero_figure(name: str) -> bool:
    """A figure an empty quarter may have as 0 where another contender has no such column value."""
    return "=" in name


def compare(
    reference: dict, other: dict, ref_name: str, other_name: str, quarters: list[str] | None = None
) -> list[dict]:
    """Every figure where `other` differs from `reference`: table, quarter, figure, both values."""
    problems: list[dict] = []
    for table in GOLD_TABLES:
        ref_t, oth_t = reference.get(table, {}), other.get(table, {})
        wanted = quarters or sorted(set(ref_t) | set(oth_t))
        for quarter in wanted:
            ref_q, oth_q = ref_t.get(quarter), oth_t.get(quarter)
            if ref_q is None or oth_q is None:
                ref_rows = (ref_q or {}).get("rows", 0)
                oth_rows = (oth_q or {}).get("rows", 0)
                if ref_rows or oth_rows:
                    problems.append(
                        {
                            "table": table,
                            "quarter": quarter,
                            "figure": "rows",
                            ref_name: ref_rows if ref_q else "missing",
                            other_name: oth_rows if oth_q else "missing",
                        }
                    )
                continue
            for figure in sorted(set(ref_q) | set(oth_q)):
                a, b = ref_q.get(figure), oth_q.get(figure)
                if figure not in ref_q or figure not in oth_q:
                    if _zero_figure(figure) and (a or 0) == 0 and (b or 0) == 0:
                        continue
                    if figure.endswith(".nulls") and (a or 0) == (b or 0) == 0:
                        continue
                if not _equal(a, b):
                    problems.append({"table": table, "quarter": quarter, "figure": figure, ref_name: a, other_name: b})
    return problems


def summary(figures: dict) -> dict[str, dict[str, dict]]:
    """The headline figures per quarter (rows, churned, eval rows) for the report."""
    out: dict[str, dict[str, dict]] = {}
    for quarter, fig in figures.get("training_set", {}).items():
        out[quarter] = {
            "customers": fig.get("rows"),
            "churned": fig.get("label.sum"),
            "eval": fig.get("split=eval", 0),
            "train": fig.get("split=train", 0),
            "total_amount": fig.get("total_amount.sum"),
        }
    return out
