"""`python -m benchmarks.publish [--rows 1000000] [--dsn postgresql://…]`: publishing one quarter of
`gold/training_set` to PostgreSQL through the real publishing asset, timed.

Writes `--rows` rows of random but schema-valid training-set data as Parquet files (about 250k rows
each, as the IO manager's coalesced writes leave them) into a temporary lake, then materialises
`publish/training_set` for that quarter in one Dagster run, twice: into an empty table, and again
over the published quarter (DELETE + COPY). The database is a throwaway cluster on loopback
(`batch_platform_tests.pg_fixtures`) unless `--dsn` names one (its password in `${NAME}`).
Prints one line per run and writes `benchmarks/results/publish-<rows>.md`.
"""

import argparse
import os
import platform
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from batch_platform.assets.publish import build_publish_assets
from batch_platform.config import parse_config
from batch_platform.partitions import quarter_start, quarterly_partitions, to_key
from batch_platform.resources import build_resources

QUARTER = "2025-Q4"
ROWS_PER_FILE = 250_000
RESULTS = Path(__file__).parent / "results"
PASSWORD_VAR = "BENCH_PUBLISH_PG_PASSWORD"


def training_rows(offset: int, n: int, rng: np.random.Generator) -> pa.Table:
    """`n` rows shaped like `gold/training_set` (the quarter is the folder, not a column)."""
    cutoff = np.datetime64(quarter_start(QUARTER).replace(tzinfo=None), "us")
    utc = pa.timestamp("us", tz="UTC")

    def days_before_cutoff(days: np.ndarray) -> pa.Array:
        return pa.array(cutoff - days.astype("timedelta64[D]").astype("timedelta64[us]"), utc)

    recency, tenure = rng.integers(0, 300, n), rng.integers(300, 700, n)
    txn = rng.integers(1, 200, n)
    total = rng.normal(500, 200, n).round(2)
    score = rng.uniform(0, 1000, n)
    return pa.table(
        {
            "customer_id": pa.array([f"C{offset + i:09d}" for i in range(n)]),
            "feature_cutoff": pa.array(np.full(n, cutoff), utc),
            "txn_count": pa.array(txn, pa.int64()),
            "total_amount": total,
            "avg_amount": total / txn,
            "active_days": pa.array(np.minimum(txn, rng.integers(1, 90, n)), pa.int64()),
            "first_activity_ts": days_before_cutoff(tenure),
            "last_activity_ts": days_before_cutoff(recency),
            "recency_days": pa.array(recency, pa.int32()),
            "tenure_days": pa.array(tenure, pa.int32()),
            "txn_count_90d": pa.array(txn // 3, pa.int64()),
            "amount_90d": (total / 3).round(2),
            "distinct_channels": pa.array(rng.integers(0, 4, n), pa.int64()),
            "log_event_count": pa.array(rng.integers(0, 50, n), pa.int64()),
            "partner_score": pa.array(np.where(rng.random(n) < 0.1, np.nan, score), from_pandas=True),
            "partner_segment": pa.array(rng.choice(["gold", "silver", "bronze"], n)),
            "label": pa.array(rng.integers(0, 2, n), pa.int32()),
            "label_window_start": pa.array(np.full(n, cutoff), utc),
            "label_window_end": pa.array(np.full(n, cutoff + np.timedelta64(90, "D")), utc),
            "split": pa.array(rng.choice(["train", "eval"], n, p=[0.8, 0.2])),
        }
    )


def write_lake(lake: Path, rows: int) -> None:
    folder = lake / "gold" / "training_set" / f"quarter={QUARTER}"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(7)
    for part, offset in enumerate(range(0, rows, ROWS_PER_FILE)):
        pq.write_table(
            training_rows(offset, min(ROWS_PER_FILE, rows - offset), rng),
            folder / f"part-{part:05d}.parquet",
        )


def publish_once(config) -> tuple[float, dict]:
    started = time.perf_counter()
    result = dg.materialize(
        build_publish_assets(quarterly_partitions(config.batch.first_quarter), config),
        resources={"postgres": build_resources(config)["postgres"]},
        partition_key=to_key(QUARTER),
    )
    wall = time.perf_counter() - started
    metadata = result.asset_materializations_for_node("publish__training_set")[0].metadata
    return wall, {key: value.value for key, value in metadata.items()}


def run(rows: int, dsn: str) -> list[str]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-publish-"))
    try:
        write_lake(workdir / "lake", rows)
        config = parse_config(
            {
                "storage": {"lake_root": str(workdir / "lake")},
                "publish": {"postgres": {"dsn": dsn, "schema": "bench"}},
            }
        )
        lines = []
        for attempt in ("into an empty quarter", "replacing the published quarter"):
            wall, metadata = publish_once(config)
            lines.append(
                f"publish {metadata['dagster/row_count']:,} rows {attempt}: {metadata['seconds']:.1f} s in the "
                f"transaction (replaced {metadata['rows_replaced']:,}), {wall:.1f} s for the whole Dagster run"
            )
            print(lines[-1], flush=True)
        return lines
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--dsn",
        help="a DSN with its password written ${NAME} (default: a throwaway cluster)",
    )
    args = parser.parse_args()
    if args.dsn:
        lines = run(args.rows, args.dsn)
    else:
        from batch_platform_tests.pg_fixtures import TemporaryPostgres

        with TemporaryPostgres() as server:
            os.environ[PASSWORD_VAR] = server.password
            lines = run(args.rows, server.dsn_with_env(PASSWORD_VAR))
    RESULTS.mkdir(exist_ok=True)
    report = RESULTS / f"publish-{args.rows}.md"
    report.write_text(
        f"# Publishing to PostgreSQL, {args.rows:,} rows\n\n`python -m benchmarks.publish --rows {args.rows}` on "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores ({platform.machine()}), load average "
        f"{os.getloadavg()[0]:.1f} at the end (the machine is shared with other work).\n\n"
        + "\n".join(f"- {line}" for line in lines)
        + "\n"
    )
    print(f"written {report}")


if __name__ == "__main__":
    main()
