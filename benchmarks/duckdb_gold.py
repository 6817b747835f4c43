"""SPEC.md's gold tables with DuckDB, from the landing files: the single-machine anchor.

    python -m benchmarks.duckdb_gold --landing L --lake OUT --from 2024-Q1 --to 2025-Q4 \
        [--lookback 4] [--window-days 90] [--eval-fraction 0.2] [--threads N]

An independent implementation: it imports nothing from the platform and restates the rules of
SPEC.md in SQL, so that when it agrees with the platform on every gold figure, two readings of the
contract agree; when it does not, the harness says where. It writes the gold tables in the lake
layout (`<lake>/gold/<table>/quarter=<YYYY-QN>/*.parquet`, a schema-only file for an empty
quarter). It writes no bronze or silver: the anchor is the cost of the gold result, not of the
intermediate layers.

Bronze: every file under `<landing>/<source>/<YYYY-MM-DD>/` (a folder name that is not a valid
date is skipped; names starting with `_` or `.` are hidden; `.csv`, `.json`, `.jsonl`,
`.parquet`; zero-byte files contribute nothing), read with every column as VARCHAR and unioned by
name; the row's quarter is the quarter of its folder date.

Silver (after trimming white space): customer_id non-empty; timestamps ISO-8601 `YYYY-MM-DD`
or `YYYY-MM-DD[ T]HH:MM:SS[.f{1,9}][Z|±HH:MM]` (no offset = UTC; impossible dates and times,
offsets beyond ±18:00, invalid); numbers `[+-]digits[.digits]` / `.digits` with an optional
exponent, finite; categories lower case, blank = NULL; event/log time before the end of the row's
quarter; partner score in [0, 1000]. Duplicates within a quarter: operational and logs keep the
first arrival (folder date, then file name), partner scores the highest score of the
(customer, day).

Gold, for target quarter Q with cutoff C = start of Q, from silver partitions Q-L … Q-1: events
deduplicated across partitions on (customer_id, event_time, amount), features per SPEC.md's table
(amounts summed as DECIMAL(38,10), as exact as the data), log count over distinct
(customer, type, timestamp), partner score of the latest as_of_date before C (ties: highest
score, then smallest segment). Label from silver partition Q: 1 when no event in [C, C + W days).
Split: the rule SPEC.md leaves to the platform, taken from its documentation so that the split
counts can be compared: SHA-256 of customer_id, the first 13 hex digits as a fraction of 16**13,
below the eval share → `eval`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from datetime import date
from pathlib import Path

import duckdb

SOURCES = {
    "operational": ("customer_id", "event_time", "amount", "currency", "channel"),
    "logs": ("customer_id", "log_event_type", "log_timestamp"),
    "external": ("customer_id", "partner_score", "partner_segment"),
    "customers": (
        "customer_id",
        "source_system",
        "updated_at",
        "email",
        "country",
        "signup_date",
        "contract",
        "payment_method",
        "monthly_charges",
    ),
}
GOLDEN = ("email", "country", "signup_date", "contract", "payment_method", "monthly_charges")
FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}
_DATE_FOLDER = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_LABEL = re.compile(r"^(\d{4})-Q([1-4])$")

MACROS = r"""
CREATE OR REPLACE MACRO trim_ws(x) AS regexp_replace(x, '^\s+|\s+$', '', 'g');
CREATE OR REPLACE MACRO blank(x) AS nullif(trim_ws(x), '') IS NULL;
CREATE OR REPLACE MACRO category(x) AS lower(nullif(trim_ws(x), ''));
CREATE OR REPLACE MACRO parse_number(x) AS CASE
    WHEN regexp_full_match(trim_ws(x), '[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?')
     AND isfinite(TRY_CAST(trim_ws(x) AS DOUBLE))
    THEN TRY_CAST(trim_ws(x) AS DOUBLE) END;
CREATE OR REPLACE MACRO ts_parts(x) AS regexp_extract(
    trim_ws(x),
    '^(\d{4}-\d{2}-\d{2})(?:[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})?)?$',
    ['d', 'hh', 'mi', 'ss', 'frac', 'zone']);
CREATE OR REPLACE MACRO ts_of(s) AS CASE
    WHEN s.d = '' THEN NULL
    WHEN s.hh <> '' AND (s.hh::INT > 23 OR s.mi::INT > 59 OR s.ss::INT > 59) THEN NULL
    WHEN s.zone NOT IN ('', 'Z')
         AND (substr(s.zone, 5, 2)::INT > 59
              OR substr(s.zone, 2, 2)::INT * 60 + substr(s.zone, 5, 2)::INT > 18 * 60) THEN NULL
    ELSE TRY_CAST(s.d AS DATE)::TIMESTAMP + to_microseconds(
        coalesce(nullif(s.hh, '')::BIGINT, 0) * 3600000000
        + coalesce(nullif(s.mi, '')::BIGINT, 0) * 60000000
        + coalesce(nullif(s.ss, '')::BIGINT, 0) * 1000000
        + rpad(left(s.frac, 6), 6, '0')::BIGINT
        - CASE WHEN s.zone IN ('', 'Z') THEN 0
               ELSE (CASE WHEN left(s.zone, 1) = '-' THEN -1 ELSE 1 END)
                    * (substr(s.zone, 2, 2)::BIGINT * 3600000000 + substr(s.zone, 5, 2)::BIGINT * 60000000)
          END)
    END;
CREATE OR REPLACE MACRO qidx_of(d) AS year(d) * 4 + quarter(d) - 1;
CREATE OR REPLACE MACRO label_of(i) AS (i // 4)::VARCHAR || '-Q' || (i % 4 + 1)::VARCHAR;
CREATE OR REPLACE MACRO start_of(i) AS make_timestamp((i // 4)::BIGINT, ((i % 4) * 3 + 1)::BIGINT, 1, 0, 0, 0);
"""


def qidx(label: str) -> int:
    m = _LABEL.match(label)
    if not m:
        raise SystemExit(f"{label!r} is not a quarter label (YYYY-QN)")
    return int(m.group(1)) * 4 + int(m.group(2)) - 1


def label(index: int) -> str:
    return f"{index // 4}-Q{index % 4 + 1}"


def landing_files(root: Path, source: str, first: int, last: int) -> dict[str, list[str]]:
    """The source's files that arrived in quarters first…last, by format."""
    found: dict[str, list[str]] = {"csv": [], "json": [], "parquet": []}
    base = root / source
    if not base.is_dir():
        return found
    for folder in sorted(base.iterdir()):
        if not folder.is_dir() or not _DATE_FOLDER.match(folder.name):
            continue
        try:
            day = date.fromisoformat(folder.name)
        except ValueError:
            continue
        if not first <= day.year * 4 + (day.month - 1) // 3 <= last:
            continue
        for item in sorted(folder.iterdir()):
            fmt = FORMATS.get(item.suffix.lower())
            if item.name.startswith(("_", ".")) or fmt is None or not item.is_file() or item.stat().st_size == 0:
                continue
            found[fmt].append(str(item))
    return found


def _list(paths: list[str]) -> str:
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


def bronze_sql(con: duckdb.DuckDBPyConnection, files: dict[str, list[str]], columns: tuple[str, ...]) -> str | None:
    """One SELECT over every file of a source: contract columns as VARCHAR (NULL where no file of a
    format has the column: a missing optional column is null), plus the file name."""
    readers = []
    if files["csv"]:
        readers.append(
            f"read_csv({_list(files['csv'])}, header = true, all_varchar = true, union_by_name = true, "
            "filename = true, delim = ',', quote = '\"', escape = '\"', auto_detect = true)"
        )
    if files["json"]:
        spec = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in columns) + "}"
        readers.append(
            f"read_json({_list(files['json'])}, format = 'newline_delimited', columns = {spec}, filename = true)"
        )
    if files["parquet"]:
        readers.append(f"read_parquet({_list(files['parquet'])}, union_by_name = true, filename = true)")
    parts = []
    for reader in readers:
        present = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()}
        cols = ", ".join(
            f'CAST("{c}" AS VARCHAR) AS "{c}"' if c in present else f'NULL::VARCHAR AS "{c}"' for c in columns
        )
        parts.append(f"SELECT {cols}, filename FROM {reader}")
    if not parts:
        return None
    return " UNION ALL BY NAME ".join(f"({p})" for p in parts)


def build(
    con: duckdb.DuckDBPyConnection,
    landing: Path,
    lake: Path,
    first: str,
    last: str,
    lookback: int,
    window_days: int,
    eval_fraction: float,
    first_quarter: str | None = None,
    system_priority: tuple[str, ...] = ("store", "online"),
) -> dict:
    """Gold for quarters first…last; `first_quarter` is the platform's first (nothing before it exists)."""
    timings: dict[str, float] = {}
    lo, hi = qidx(first), qidx(last)
    lb = int(lookback)
    # Silver is needed for the range and its lookback, never before the platform's first quarter.
    first_known = qidx(first_quarter or first)
    read_lo = max(first_known, lo - lb)
    # The customer history of Q is built from every profile partition up to Q; the features of lo
    # read the history of lo - 1.
    history_lo = max(first_known, lo - 1)
    con.execute(MACROS)

    def step(name: str, sql: str) -> None:
        began = time.perf_counter()
        con.execute(sql)
        timings[name] = round(time.perf_counter() - began, 3)

    for source, columns in SOURCES.items():
        since = first_known if source == "customers" else read_lo
        select = bronze_sql(con, landing_files(landing, source, since, hi), columns)
        if select is None:
            empty = ", ".join(f'NULL::VARCHAR AS "{c}"' for c in columns)
            select = f"SELECT {empty}, NULL::VARCHAR AS filename WHERE false"
        step(
            f"bronze/{source}",
            f"""CREATE OR REPLACE TEMP VIEW bronze_{source} AS
                SELECT *, TRY_CAST(regexp_extract(filename, '[/\\\\](\\d{{4}}-\\d{{2}}-\\d{{2}})[/\\\\][^/\\\\]*$', 1) AS DATE)
                          AS ingest_date
                FROM ({select})""",
        )

    step(
        "silver/operational_events",
        """CREATE OR REPLACE TEMP TABLE silver_ops AS
        WITH split AS (
            SELECT *, ts_parts(event_time) AS _tp, trim_ws(amount) AS _amount FROM bronze_operational),
        parsed AS (
            SELECT qidx_of(ingest_date) AS q, ingest_date, filename,
                   nullif(trim_ws(customer_id), '') AS customer_id, ts_of(_tp) AS event_time,
                   parse_number(_amount) AS amount, category(currency) AS currency, category(channel) AS channel,
                   blank(event_time) AS no_time, blank(_amount) AS no_amount
            FROM split)
        SELECT q, customer_id, event_time, amount, currency, channel FROM parsed
        WHERE customer_id IS NOT NULL AND NOT no_time AND event_time IS NOT NULL AND NOT no_amount
          AND amount IS NOT NULL AND event_time < start_of(q + 1)
        QUALIFY row_number() OVER (PARTITION BY q, customer_id, event_time, amount
                                   ORDER BY ingest_date, filename, currency NULLS LAST, channel NULLS LAST) = 1""",
    )
    step(
        "silver/interaction_logs",
        """CREATE OR REPLACE TEMP TABLE silver_logs AS
        WITH parsed AS (
            SELECT qidx_of(ingest_date) AS q, ingest_date, filename,
                   nullif(trim_ws(customer_id), '') AS customer_id, category(log_event_type) AS log_event_type,
                   ts_of(_tp) AS log_timestamp
            FROM (SELECT *, ts_parts(log_timestamp) AS _tp FROM bronze_logs))
        SELECT q, customer_id, log_event_type, log_timestamp FROM parsed
        WHERE customer_id IS NOT NULL AND log_timestamp IS NOT NULL AND log_timestamp < start_of(q + 1)
        QUALIFY row_number() OVER (PARTITION BY q, customer_id, log_event_type, log_timestamp
                                   ORDER BY ingest_date, filename) = 1""",
    )
    step(
        "silver/partner_scores",
        """CREATE OR REPLACE TEMP TABLE silver_scores AS
        WITH parsed AS (
            SELECT qidx_of(ingest_date) AS q, ingest_date AS as_of_date, filename,
                   nullif(trim_ws(customer_id), '') AS customer_id, parse_number(partner_score) AS partner_score,
                   category(partner_segment) AS partner_segment
            FROM bronze_external)
        SELECT q, customer_id, partner_score, partner_segment, as_of_date FROM parsed
        WHERE customer_id IS NOT NULL AND partner_score BETWEEN 0 AND 1000
        QUALIFY row_number() OVER (PARTITION BY q, customer_id, as_of_date
                                   ORDER BY partner_score DESC, partner_segment NULLS LAST, filename) = 1""",
    )

    step(
        "silver/customer_profiles",
        f"""CREATE OR REPLACE TEMP TABLE silver_profiles AS
        WITH parsed AS (
            SELECT qidx_of(ingest_date) AS q, ingest_date, filename,
                   nullif(trim_ws(customer_id), '') AS customer_id, category(source_system) AS source_system,
                   ts_of(ts_parts(updated_at)) AS updated_at, blank(updated_at) AS no_updated_at,
                   category(email) AS email, upper(nullif(trim_ws(country), '')) AS country,
                   ts_of(ts_parts(signup_date))::DATE AS signup_date, blank(signup_date) AS no_signup_date,
                   category(contract) AS contract, category(payment_method) AS payment_method,
                   parse_number(monthly_charges) AS monthly_charges, blank(monthly_charges) AS no_monthly_charges
            FROM bronze_customers)
        SELECT q, customer_id, source_system, updated_at, {", ".join(GOLDEN)} FROM parsed
        WHERE customer_id IS NOT NULL AND NOT no_updated_at AND updated_at IS NOT NULL
          AND updated_at < start_of(q + 1) AND source_system IN ('online', 'store')
          AND (contract IS NULL OR contract IN ('month-to-month', 'one-year', 'two-year'))
          AND (no_monthly_charges OR monthly_charges IS NOT NULL) AND coalesce(monthly_charges >= 0, true)
          AND (no_signup_date OR signup_date IS NOT NULL)
        QUALIFY row_number() OVER (PARTITION BY q, customer_id, source_system, updated_at
                                   ORDER BY ingest_date DESC, filename DESC,
                                   {", ".join(f"{a} DESC NULLS LAST" for a in GOLDEN)}) = 1""",
    )
    rank = " ".join(f"WHEN '{system}' THEN {i}" for i, system in enumerate(system_priority))
    same = " AND ".join(f"{a} IS NOT DISTINCT FROM lag({a}) OVER t" for a in GOLDEN)
    step(
        "gold/customer_history",
        f"""CREATE OR REPLACE TEMP TABLE history AS
        WITH delivered AS (
            SELECT h.range AS tq, p.*, CASE p.source_system {rank} ELSE {len(system_priority)} END AS rnk
            FROM range({history_lo}, {hi + 1}) h JOIN silver_profiles p ON p.q <= h.range
            QUALIFY row_number() OVER (PARTITION BY h.range, p.customer_id, p.source_system, p.updated_at
                                       ORDER BY p.q DESC) = 1),
        golden AS (
            SELECT tq, customer_id, updated_at, rnk,
                   {", ".join(f"last_value({a} IGNORE NULLS) OVER w AS {a}" for a in GOLDEN)}
            FROM delivered
            WINDOW w AS (PARTITION BY tq, customer_id ORDER BY updated_at, rnk DESC, source_system
                         ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)),
        at_t AS (
            SELECT * EXCLUDE (rnk) FROM golden
            QUALIFY row_number() OVER (PARTITION BY tq, customer_id, updated_at ORDER BY rnk) = 1),
        marked AS (
            SELECT *, lag(updated_at) OVER t IS NULL OR NOT ({same}) AS starts
            FROM at_t WINDOW t AS (PARTITION BY tq, customer_id ORDER BY updated_at))
        SELECT customer_id, (row_number() OVER v)::INT AS version, updated_at AS valid_from,
               lead(updated_at) OVER v AS valid_to, lead(updated_at) OVER v IS NULL AS is_current,
               {", ".join(GOLDEN)}, label_of(tq) AS quarter, tq
        FROM marked WHERE starts
        WINDOW v AS (PARTITION BY tq, customer_id ORDER BY updated_at)""",
    )

    con.execute(
        "CREATE OR REPLACE TEMP TABLE targets AS SELECT range AS tq, start_of(range) AS c FROM range(?, ?)",
        [lo, hi + 1],
    )
    step(
        "gold/customer_features",
        f"""CREATE OR REPLACE TEMP TABLE features AS
        WITH ev AS (
            SELECT t.tq, t.c, e.* EXCLUDE (q), e.q AS src
            FROM targets t JOIN silver_ops e ON e.q BETWEEN t.tq - {lb} AND t.tq - 1
            WHERE e.event_time < t.c
            QUALIFY row_number() OVER (PARTITION BY t.tq, e.customer_id, e.event_time, e.amount
                                       ORDER BY e.q, e.channel NULLS LAST) = 1),
        base AS (
            SELECT tq, customer_id, any_value(c) AS feature_cutoff,
                   count(*) AS txn_count,
                   sum(amount::DECIMAL(38, 10))::DOUBLE AS total_amount,
                   (sum(amount::DECIMAL(38, 10))::DOUBLE / count(*)) AS avg_amount,
                   count(DISTINCT event_time::DATE) AS active_days,
                   min(event_time) AS first_activity_ts, max(event_time) AS last_activity_ts,
                   count(*) FILTER (WHERE event_time >= c - INTERVAL 90 DAY) AS txn_count_90d,
                   coalesce(sum(amount::DECIMAL(38, 10)) FILTER (WHERE event_time >= c - INTERVAL 90 DAY), 0)::DOUBLE
                       AS amount_90d,
                   count(DISTINCT channel) AS distinct_channels
            FROM ev GROUP BY tq, customer_id),
        logs AS (
            SELECT tq, customer_id, count(*) AS log_event_count FROM (
                SELECT DISTINCT t.tq, l.customer_id, l.log_event_type, l.log_timestamp
                FROM targets t JOIN silver_logs l ON l.q BETWEEN t.tq - {lb} AND t.tq - 1
                WHERE l.log_timestamp < t.c)
            GROUP BY tq, customer_id),
        partner AS (
            SELECT t.tq, s.customer_id, s.partner_score, s.partner_segment
            FROM targets t JOIN silver_scores s ON s.q BETWEEN t.tq - {lb} AND t.tq - 1
            WHERE s.as_of_date < t.c::DATE
            QUALIFY row_number() OVER (PARTITION BY t.tq, s.customer_id
                                       ORDER BY s.as_of_date DESC, s.partner_score DESC, s.partner_segment NULLS LAST) = 1),
        profile AS (
            SELECT t.tq, h.customer_id, h.contract, h.payment_method, h.monthly_charges, h.country,
                   CASE WHEN h.signup_date IS NULL THEN NULL
                        WHEN h.signup_date <= t.c::DATE
                        THEN date_diff('month', h.signup_date, t.c::DATE) - (day(t.c) < day(h.signup_date))::INT
                        ELSE date_diff('month', h.signup_date, t.c::DATE) END::INT AS tenure_months
            FROM targets t JOIN history h ON h.tq = t.tq - 1
            WHERE h.valid_from <= t.c AND (h.valid_to IS NULL OR h.valid_to > t.c))
        SELECT b.customer_id, b.feature_cutoff, b.txn_count, b.total_amount, b.avg_amount, b.active_days,
               b.first_activity_ts, b.last_activity_ts,
               date_diff('day', b.last_activity_ts::DATE, b.feature_cutoff::DATE)::INT AS recency_days,
               date_diff('day', b.first_activity_ts::DATE, b.feature_cutoff::DATE)::INT AS tenure_days,
               b.txn_count_90d, b.amount_90d, b.distinct_channels,
               coalesce(l.log_event_count, 0) AS log_event_count, p.partner_score, p.partner_segment,
               pr.contract, pr.payment_method, pr.monthly_charges, pr.country, pr.tenure_months,
               label_of(b.tq) AS quarter, b.tq
        FROM base b
        LEFT JOIN logs l USING (tq, customer_id)
        LEFT JOIN partner p USING (tq, customer_id)
        LEFT JOIN profile pr USING (tq, customer_id)""",
    )
    step(
        "gold/churn_labels",
        f"""CREATE OR REPLACE TEMP TABLE labels AS
        SELECT f.customer_id,
               CASE WHEN EXISTS (
                   SELECT 1 FROM silver_ops e
                   WHERE e.q = f.tq AND e.customer_id = f.customer_id
                     AND e.event_time >= f.feature_cutoff
                     AND e.event_time < f.feature_cutoff + INTERVAL {int(window_days)} DAY) THEN 0 ELSE 1 END::INT AS label,
               f.feature_cutoff AS label_window_start,
               f.feature_cutoff + INTERVAL {int(window_days)} DAY AS label_window_end,
               f.quarter, f.tq
        FROM features f""",
    )
    step(
        "gold/training_set",
        f"""CREATE OR REPLACE TEMP TABLE training AS
        SELECT f.* EXCLUDE (quarter, tq), l.label, l.label_window_start, l.label_window_end,
               CASE WHEN ('0x' || left(sha256(f.customer_id), 13))::BIGINT / 4503599627370496.0 < {float(eval_fraction)!r}
                    THEN 'eval' ELSE 'train' END AS split,
               f.quarter
        FROM features f JOIN labels l USING (tq, customer_id)""",
    )

    timings["silver_rows"] = {
        name: {
            label(q): n for q, n in con.execute(f"SELECT q, count(*) FROM {relation} GROUP BY q ORDER BY q").fetchall()
        }
        for name, relation in (
            ("operational", "silver_ops"),
            ("logs", "silver_logs"),
            ("external", "silver_scores"),
            ("customers", "silver_profiles"),
        )
    }
    quarters = [label(i) for i in range(lo, hi + 1)]
    con.execute(f"DELETE FROM history WHERE tq < {lo}")
    for table, relation in (
        ("customer_history", "history"),
        ("customer_features", "features"),
        ("churn_labels", "labels"),
        ("training_set", "training"),
    ):
        began = time.perf_counter()
        target = lake / "gold" / table
        target.mkdir(parents=True, exist_ok=True)
        columns = "* EXCLUDE (tq)" if relation != "training" else "*"
        con.execute(
            f"COPY (SELECT {columns} FROM {relation}) TO '{target}' "
            "(FORMAT PARQUET, PARTITION_BY (quarter), OVERWRITE_OR_IGNORE true)"
        )
        for quarter in quarters:
            folder = target / f"quarter={quarter}"
            if not folder.exists():
                folder.mkdir(parents=True)
                cols = "* EXCLUDE (quarter, tq)" if relation != "training" else "* EXCLUDE (quarter)"
                con.execute(
                    f"COPY (SELECT {cols} FROM {relation} LIMIT 0) TO '{folder}/data_0.parquet' (FORMAT PARQUET)"
                )
        timings[f"write/{table}"] = round(time.perf_counter() - began, 3)
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--landing", required=True)
    parser.add_argument("--lake", required=True)
    parser.add_argument("--from", dest="first", required=True)
    parser.add_argument("--to", dest="last", required=True)
    parser.add_argument("--first-quarter", help="the platform's first quarter (default: --from)")
    parser.add_argument("--lookback", type=int, default=4)
    parser.add_argument("--window-days", type=int, default=90)
    parser.add_argument("--eval-fraction", type=float, default=0.2)
    parser.add_argument("--system-priority", default="store,online", help="customers.system_priority, comma-separated")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--memory-limit", default=None, help="DuckDB memory_limit, e.g. 4GB")
    parser.add_argument("--report", help="write step timings here (JSON)")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET threads = {int(args.threads)}")
    if args.memory_limit:
        con.execute(f"SET memory_limit = '{args.memory_limit}'")
    timings = build(
        con,
        Path(args.landing),
        Path(args.lake),
        args.first,
        args.last,
        args.lookback,
        args.window_days,
        args.eval_fraction,
        args.first_quarter,
        tuple(args.system_priority.split(",")),
    )
    con.close()
    total = time.perf_counter() - began
    if args.report:
        Path(args.report).write_text(json.dumps({"seconds": total, "steps": timings}, indent=1))
    print(f"duckdb gold: {args.first}..{args.last} in {total:.1f} s {timings}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
