"""Silver rows for the gold tests, put straight into a lake as the silver assets would put them
(`write_silver`), gold materialised over them with the real assets and IO manager
(`materialize_gold`), and gold tables read back for comparison (`lake_table`, `as_pandas`, `naive`).
Used by the gold, point-in-time, jobs and ML tests.
"""

import random
from datetime import timedelta

import pandas as pd
from pyspark.sql import DataFrame

from batch_platform import delta
from batch_platform.partitions import quarter_end, quarter_range, quarter_start, to_label
from batch_platform.schemas.base import spark_schema
from batch_platform.schemas.customer_history import HISTORY_KEY, CustomerHistory
from batch_platform_tests.lake_fixtures import commit_quarters, lake_quarter
from batch_platform_tests.platform import bronze_assets, gold_assets, materialize_range, silver_assets

EVENTS_DDL = "customer_id string, event_time timestamp, amount double, currency string, channel string, quarter string"
LOGS_DDL = "customer_id string, log_event_type string, log_timestamp timestamp, quarter string"
SCORES_DDL = "customer_id string, partner_score double, partner_segment string, as_of_date date, quarter string"
PROFILES_DDL = (
    "customer_id string, source_system string, updated_at timestamp, email string, country string, signup_date date, "
    "contract string, payment_method string, monthly_charges double, quarter string"
)
SILVER_TABLES = {"operational_events": EVENTS_DDL, "interaction_logs": LOGS_DDL, "partner_scores": SCORES_DDL}
"""The silver tables the features read over their lookback."""


def silver_frames(spark, events=(), logs=(), scores=()) -> tuple[DataFrame, DataFrame, DataFrame]:
    return (
        spark.createDataFrame(list(events), EVENTS_DDL),
        spark.createDataFrame(list(logs), LOGS_DDL),
        spark.createDataFrame(list(scores), SCORES_DDL),
    )


def random_silver(quarters: list[str], customers: int = 60, seed: int = 5) -> dict[str, list[tuple]]:
    """Silver-like rows for `quarters`: activity gaps, redeliveries into the next partition, late
    arrivals (an event of the previous quarter in partition Q), logs and partner scores."""
    rng = random.Random(seed)
    events, logs, scores = [], [], []
    for i, q in enumerate(quarters):
        start, end = quarter_start(q), quarter_end(q)
        span = int((end - start).total_seconds())
        nxt = quarters[i + 1] if i + 1 < len(quarters) else None
        for c in range(customers):
            cid = f"C{c:04d}"
            if rng.random() < 0.3:
                continue
            for _ in range(rng.randint(1, 6)):
                row = (
                    cid,
                    start + timedelta(seconds=rng.randrange(span)),
                    round(rng.uniform(-5, 120), 2),
                    "eur",
                    rng.choice(["web", "app", "store", None]),
                    q,
                )
                events.append(row)
                if nxt and rng.random() < 0.1:
                    events.append(row[:5] + (nxt,))
            if i and rng.random() < 0.1:
                events.append((cid, start - timedelta(seconds=rng.randrange(1, span)), 3.25, "eur", "web", q))
            for _ in range(rng.randint(0, 4)):
                row = (cid, rng.choice(["login", "page_view", None]), start + timedelta(seconds=rng.randrange(span)), q)
                logs.append(row)
                if nxt and rng.random() < 0.1:
                    logs.append(row[:3] + (nxt,))
            if rng.random() < 0.8:
                day = (start + timedelta(days=rng.randrange((end - start).days))).date()
                scores.append((cid, round(rng.uniform(0, 1000), 1), rng.choice(["gold", "silver", "bronze"]), day, q))
    return {"operational_events": events, "interaction_logs": logs, "partner_scores": scores}


def write_silver(spark, lake_root: str, rows: dict[str, list[tuple]], quarters: list[str]) -> None:
    """Commit silver partitions `quarters` of `rows` to the lake as the silver assets would: one
    commit per table, the quarters materialised; the customer profiles too (empty without
    `rows["customer_profiles"]`)."""
    for table, ddl in {**SILVER_TABLES, "customer_profiles": PROFILES_DDL}.items():
        commit_quarters(spark.createDataFrame(rows.get(table, []), ddl), lake_root, f"silver/{table}", quarters)


def fill_customer_history(config, first: str, last: str | None = None) -> None:
    """Make a gold run of `first` … `last` possible over silver written for a few quarters only:
    the silver customer profiles and `gold/customer_history` of every quarter from the first
    quarter to `last`, committed empty where never materialised (the features of Q read the history
    of Q-1, the scores of Q that of Q; a run that builds the history replaces those of its quarters)."""
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.getOrCreate()  # the suite's one session (conftest.py)
    start, first = config.batch.first_quarter, to_label(first)

    def up_to(quarter: str) -> list[str]:
        return quarter_range(start, quarter) if to_label(quarter) >= start else []

    wanted = {
        "silver/customer_profiles": (PROFILES_DDL, up_to(last or first)),
        "gold/customer_history": (spark_schema(CustomerHistory), up_to(last or first)),
    }
    for table, (schema, quarters) in wanted.items():
        try:
            present = set(delta.materialised_quarters(delta.open_table(f"{config.lake_root}/{table}")))
        except delta.TableMissing:
            present = set()
        missing = [q for q in quarters if q not in present]
        if missing:
            commit_quarters(spark.createDataFrame([], schema), config.lake_root, table, missing)


def materialize_gold(config, first: str, last: str | None = None, assets=None, selection=None, **kwargs):
    """Gold (`assets`, the default gold assets without) of `first` … `last` in one run, over the
    silver already in the lake (`write_silver`), or `selection` of them. By default all but
    `gold/customer_history` (its tests are `test_customer_history.py`), whose quarters the features
    read are there, empty, unless a run made them (`fill_customer_history`)."""
    from batch_platform.resources import build_resources

    gold = assets or gold_assets
    fill_customer_history(config, first, last)
    return materialize_range(
        [*bronze_assets, *silver_assets, *gold],
        build_resources(config),
        first,
        last,
        selection=selection or [a.key for a in gold if a.key != HISTORY_KEY],
        **kwargs,
    )


def lake_table(lake_root: str, table: str, quarter: str) -> pd.DataFrame:
    return lake_quarter(lake_root, table, quarter).sort_values("customer_id").reset_index(drop=True)


def as_pandas(frame: DataFrame) -> pd.DataFrame:
    return frame.toPandas().sort_values(["quarter", "customer_id"]).reset_index(drop=True)


def naive(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with its timestamps naive UTC at microsecond precision, however they were read."""
    out = frame.copy()
    for column in out.columns:
        if isinstance(out[column].dtype, pd.DatetimeTZDtype):
            out[column] = out[column].dt.tz_convert("UTC").dt.tz_localize(None)
        if pd.api.types.is_datetime64_any_dtype(out[column]):
            out[column] = out[column].astype("datetime64[us]")
    return out
