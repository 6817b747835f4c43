"""Silver and gold do not depend on the machine's or the JVM's time zone (SPEC.md, "Quarters").

The same landing zone is materialised (bronze, silver and gold of 2024-Q1…2024-Q2, one range
run) twice, side by side: here, in the test session (TZ=UTC, JVM in UTC), and in a child Python process whose TZ
is America/New_York and whose Spark driver JVM runs with `-Duser.timezone=Asia/Tokyo` (set through
the config file's `spark.conf`, the way an operator would). Every silver and quarantine table must
hold the same rows, every gold table the same rows and values with the same types. The landing
zone is chosen so that reading a time without an offset in either zone would move rows across the
quarter's end, in both directions, and move events across the label window's end and the day
boundaries the features count. `_ingested_at`, the one column that differs between two runs, is
checked on its own: a UTC timestamp taken during the child's run.
"""

import itertools
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from batch_platform.config import PROJECT_ROOT
from batch_platform.resources import build_resources
from batch_platform_tests.lake_fixtures import lake_arrow
from batch_platform_tests.platform import (
    TEST_JVM,
    TEST_SPARK,
    bronze_assets,
    gold_assets,
    make_config,
    materialize_range,
    silver_assets,
)

KEY, QUARTER = "2024-01-01", "2024-Q1"
QUARTERS = ("2024-Q1", "2024-Q2")
GOLD_TABLES = ("customer_features", "churn_labels", "training_set")
TABLES = [
    "operational_events",
    "operational_events_quarantine",
    "interaction_logs",
    "interaction_logs_quarantine",
    "partner_scores",
    "partner_scores_quarantine",
]
VOLATILE = {"_ingested_at"}
"""The wall-clock time of the bronze read: the one column that differs between any two runs."""

LANDING = {
    "operational": (
        "2024-03-20",
        "customer_id,event_time,amount,currency,channel\n"
        # no offset = UTC: inside Q1 (New York would read it as 2024-04-01 03:30 UTC: after Q1)
        "C1,2024-03-31 23:30:00,10,eur,web\n"
        # no offset = UTC: after Q1 (Tokyo would read it as 2024-03-31 20:00 UTC: inside Q1)
        "C2,2024-04-01 05:00:00,10,eur,web\n"
        "C3,2024-04-01,10,eur,web\n"
        "C4,2024-04-01T01:00:00+02:00,12.50,eur,web\n"
        "C4,2024-03-31T23:00:00Z,12.5,EUR,web\n"
        "C5,2024-03-10 02:30:00,1,usd,app\n"  # inside New York's DST gap
        "C6,2023-12-31T22:00:00-05:00,1,usd,app\n"
        "C7,2024-01-01,1,usd,app\n"
        "C8,2024-02-15T12:00:00.123456+09:00,1,usd,app\n",
    ),
    "logs": (
        "2024-03-21",
        "customer_id,log_event_type,log_timestamp\n"
        "C1,login,2024-03-31 23:30:00\n"
        "C2,login,2024-04-01 05:00:00\n"
        "C3,login,2024-01-01 00:00:00\n"
        "C4,login,2024-03-31T20:00:00-04:00\n",  # 2024-04-01 00:00 UTC: the first instant after Q1
    ),
    "external": (
        "2024-03-31",
        "customer_id,partner_score,partner_segment\nC1,500,gold\nC2,9999,gold\n",
    ),
}

CHILD = """
import json, sys, time
from pyspark.sql import SparkSession
from batch_platform.assets.bronze import build_bronze_assets
from batch_platform.assets.gold import build_gold_assets
from batch_platform.assets.silver import build_silver_assets
from batch_platform.config import load_config
from batch_platform.partitions import quarterly_partitions
from batch_platform.resources import build_resources
from batch_platform_tests.platform import materialize_range

config = load_config()
quarterly = quarterly_partitions(config.batch.first_quarter)
result = materialize_range(
    [*build_bronze_assets(quarterly), *build_silver_assets(quarterly), *build_gold_assets(quarterly, config.batch)],
    build_resources(config),
    sys.argv[1],
    sys.argv[2],
)
spark = SparkSession.builder.getOrCreate()
print(json.dumps({
    "success": result.success,
    "python_zone": time.strftime("%Z", time.localtime(1719792000)),
    "jvm_zone": spark._jvm.java.util.TimeZone.getDefault().getID(),
    "session_zone": spark.conf.get("spark.sql.session.timeZone"),
}))
"""


LANDING_Q2 = {
    # Gold 2024-Q2: C = 2024-04-01, label window [C, C + 90 days) = [2024-04-01, 2024-06-30).
    "operational": (
        "2024-05-02",
        "customer_id,event_time,amount,currency,channel\n"
        "C1,2024-04-15 10:00:00,5,eur,web\n"
        "C5,2024-06-29T23:30:00Z,1,usd,app\n"  # inside the window
        "C6,2024-06-30T00:30:00+09:00,1,usd,app\n"  # 2024-06-29 15:30 UTC: inside the window
        # no offset = UTC: the window's end, outside (Tokyo would read 2024-06-29 15:00 UTC: inside)
        "C7,2024-06-30 00:00:00,1,usd,app\n",
    ),
    "logs": ("2024-05-03", "customer_id,log_event_type,log_timestamp\nC1,login,2024-04-02 00:30:00\n"),
    "external": ("2024-06-30", "customer_id,partner_score,partner_segment\nC1,600,silver\n"),
}


def _write_landing(landing: Path) -> None:
    for files in (LANDING, LANDING_Q2):
        for source, (day, text) in files.items():
            folder = landing / source / day
            folder.mkdir(parents=True)
            (folder / f"{source}.csv").write_text(text)


def _rows(lake: Path, table: str, quarter: str = QUARTER) -> list[dict]:
    data = lake_arrow(lake, f"silver/{table}", quarter)
    rows = [{k: v for k, v in row.items() if k not in VOLATILE} for row in data.to_pylist()]
    return sorted(rows, key=lambda row: json.dumps(row, default=str, sort_keys=True))


def _gold(lake: Path, table: str, quarter: str) -> pa.Table:
    """The partition's rows in a fixed order: the same table whatever the files are called."""
    data = lake_arrow(lake, f"gold/{table}", quarter)
    return data.sort_by([(name, "ascending") for name in data.column_names])


def test_silver_and_gold_are_identical_whatever_the_process_and_jvm_time_zones(spark, tmp_path):
    landing = tmp_path / "landing"
    _write_landing(landing)

    child_config = tmp_path / "child.yaml"
    jvm_tokyo = f"{TEST_JVM} -Duser.timezone=Asia/Tokyo"
    child_config.write_text(
        yaml.safe_dump(
            {
                "storage": {"landing_root": str(landing), "lake_root": str(tmp_path / "lake_other")},
                "spark": {
                    **TEST_SPARK,
                    "conf": {"spark.driver.extraJavaOptions": jvm_tokyo, "spark.executor.extraJavaOptions": jvm_tokyo},
                },
            }
        )
    )
    env = {
        **os.environ,
        "TZ": "America/New_York",
        "BATCH_PLATFORM_CONFIG": str(child_config),
        "PYTHONWARNINGS": "ignore",
    }
    child_started = datetime.now(UTC)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, *QUARTERS],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:  # the UTC run here while the child runs (two lakes, one landing zone read by both)
        utc_config = make_config(tmp_path, storage={"lake_root": str(tmp_path / "lake_utc")})
        assert materialize_range(
            [*bronze_assets, *silver_assets, *gold_assets], build_resources(utc_config), *QUARTERS
        ).success
        stdout, stderr = child.communicate(timeout=900)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    child_ended = datetime.now(UTC)
    assert child.returncode == 0, stderr[-5000:]
    report = json.loads(stdout.strip().splitlines()[-1])
    assert report == {"success": True, "python_zone": "EDT", "jvm_zone": "Asia/Tokyo", "session_zone": "UTC"}

    for table, quarter in itertools.product(TABLES, QUARTERS):
        assert _rows(tmp_path / "lake_other", table, quarter) == _rows(tmp_path / "lake_utc", table, quarter), table
    for table, quarter in itertools.product(GOLD_TABLES, QUARTERS):
        other, utc_gold = _gold(tmp_path / "lake_other", table, quarter), _gold(tmp_path / "lake_utc", table, quarter)
        assert other.schema == utc_gold.schema, table
        assert other.equals(utc_gold), (table, quarter, other.to_pylist(), utc_gold.to_pylist())

    labels = _gold(tmp_path / "lake_utc", "churn_labels", "2024-Q2").to_pylist()
    expected = {"C1": 0, "C4": 1, "C5": 0, "C6": 0, "C7": 1, "C8": 1}
    assert {row["customer_id"]: row["label"] for row in labels} == expected
    features = _gold(tmp_path / "lake_utc", "customer_features", "2024-Q2").to_pylist()
    recency = {row["customer_id"]: row["recency_days"] for row in features}
    assert recency["C1"] == 1  # 2024-03-31 23:30 UTC: the day before C (in Tokyo it would be C's own day)

    stamped = {}
    for table in [*(f"bronze/{source}" for source in LANDING), *(f"silver/{t}" for t in TABLES)]:
        data = pq.read_table(tmp_path / "lake_other" / table)
        if table.startswith("bronze/") or "_ingested_at" in data.column_names:
            assert data.schema.field("_ingested_at").type == pa.timestamp("us", tz="UTC"), table
            stamped[table] = data.column("_ingested_at").to_pylist()
    assert all(stamped[f"bronze/{source}"] for source in LANDING), stamped
    moments = [moment for values in stamped.values() for moment in values]
    assert all(child_started <= moment <= child_ended for moment in moments), (child_started, child_ended, moments)

    utc = UTC
    events = {row["customer_id"]: row["event_time"] for row in _rows(tmp_path / "lake_utc", "operational_events")}
    assert events == {
        "C1": datetime(2024, 3, 31, 23, 30, tzinfo=utc),
        "C4": datetime(2024, 3, 31, 23, 0, tzinfo=utc),
        "C5": datetime(2024, 3, 10, 2, 30, tzinfo=utc),
        "C6": datetime(2024, 1, 1, 3, 0, tzinfo=utc),
        "C7": datetime(2024, 1, 1, 0, 0, tzinfo=utc),
        "C8": datetime(2024, 2, 15, 3, 0, 0, 123456, tzinfo=utc),
    }
    rejected = {
        row["customer_id"]: row["_reject_reason"]
        for row in _rows(tmp_path / "lake_utc", "operational_events_quarantine")
    }
    assert rejected == {"C2": "event_time_after_quarter", "C3": "event_time_after_quarter"}
    logs = {row["customer_id"] for row in _rows(tmp_path / "lake_utc", "interaction_logs")}
    assert logs == {"C1", "C3"}
    rejected = {
        row["customer_id"]: row["_reject_reason"] for row in _rows(tmp_path / "lake_utc", "interaction_logs_quarantine")
    }
    assert rejected == {"C2": "log_timestamp_after_quarter", "C4": "log_timestamp_after_quarter"}
    (score,) = _rows(tmp_path / "lake_utc", "partner_scores")
    assert (score["customer_id"], str(score["as_of_date"])) == ("C1", "2024-03-31")
