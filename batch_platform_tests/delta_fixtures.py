"""Small real Delta lakes for the readers' tests (`batch_platform.delta`, `consume`, the CLI's `report`
and `history`, the datasets API, the PostgreSQL publisher), written by Spark with Delta exactly as
the IO manager commits: a partition overwrite (`replaceWhere quarter IN (...)`) per table per run,
with the platform's `userMetadata` (`delta_log.commit_metadata`).

`delta_lake` (session): `gold/training_set` and `ml/churn_scores` of 2024-Q1…2024-Q3, in a few
commits whose versions and times the tests time-travel to:

    gold/training_set  v0  run-a  2024-Q1 (materialised empty), 2024-Q2 (30 rows), 2024-Q3 (35 rows)
                       v1  run-b  2024-Q2 again (32 other rows): v0's files of 2024-Q2 stay in the folder
    ml/churn_scores    v0  run-a  2024-Q2, 2024-Q3

Tests that change a lake work on a copy (`copy_lake`).
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow
import pytest

from batch_platform import delta, delta_log
from batch_platform.partitions import quarter_start
from batch_platform.tables import table_for
from batch_platform_tests.lake_fixtures import commit_arrow, commit_quarters

TRAINING = "gold/training_set"
SCORES = "ml/churn_scores"
QUARTERS = ("2024-Q1", "2024-Q2", "2024-Q3")


def customers(n: int, start: int = 0) -> list[str]:
    return [f"C{i:04d}" for i in range(start, start + n)]


def model_rows(table: str, quarter: str, ids: list[str], seed: int) -> list[dict]:
    """Rows of `table`'s declared columns for `ids` in `quarter`: every value a function of the
    column, the customer and `seed` (another seed, other values), split and label like the real ones."""
    fields = table_for(dg.AssetKey(table.split("/"))).model.to_structtype().fields
    start = quarter_start(quarter)
    rows = []
    for i, customer in enumerate(ids):
        row = {}
        for f in fields:
            kind = f.dataType.simpleString()
            if f.name == "quarter":
                row[f.name] = quarter
            elif f.name == "customer_id":
                row[f.name] = customer
            elif f.name == "split":
                row[f.name] = "eval" if int(hashlib.sha256(customer.encode()).hexdigest(), 16) % 5 == 0 else "train"
            elif f.name == "label":
                row[f.name] = (i + seed) % 3 == 0
            elif f.name == "churn_probability":
                row[f.name] = ((i * 37 + seed * 11) % 100) / 100
            elif kind == "string":
                row[f.name] = f"{f.name}-{seed}-{i % 4}"
            elif kind in ("bigint", "int", "smallint"):
                row[f.name] = seed * 1000 + i
            elif kind in ("double", "float"):
                row[f.name] = round((seed * 100 + i) / 7, 6)
            elif kind == "timestamp":
                row[f.name] = start - timedelta(days=i % 90, hours=seed)
            elif kind == "date":
                row[f.name] = date(2020, 1, 1) + timedelta(days=i + seed)
            elif kind == "boolean":
                row[f.name] = (i + seed) % 2 == 0
            else:
                raise TypeError(f"no test value for {table}.{f.name} of type {kind}")
        if "label" in row:
            row["label"] = int(row["label"])
        rows.append(row)
    return rows


def commit_rows(spark, lake_root: str, table: str, rows_by_quarter: dict[str, list[dict]], run_id: str) -> int:
    """The rows of `rows_by_quarter` (an empty list: the quarter materialised empty) in the declared
    schema of `table`, committed to `<lake>/<table>` as the IO manager commits (`commit_quarters`);
    the new version."""
    from pyspark.sql import Row

    schema = table_for(dg.AssetKey(table.split("/"))).model.to_structtype()
    quarters = sorted(rows_by_quarter)
    rows = [Row(**row) for quarter in quarters for row in rows_by_quarter[quarter]]
    frame = spark.createDataFrame(rows, schema) if rows else spark.createDataFrame([], schema)
    return commit_quarters(frame, lake_root, table, quarters, run_id, one_file=False)


def write_quarters(lake_root: str | Path, table: str, frame: pd.DataFrame, run_id: str = "test-run") -> int:
    """`frame` (with its `quarter` column) committed to `<lake>/<table>` by delta-rs, no Spark, as the
    IO manager commits (`commit_arrow`): the frame's quarters replaced, the platform's `userMetadata`;
    the new version. For the tests of small readers (`test_cli`, `test_config`)."""
    rows = pyarrow.Table.from_pandas(frame, preserve_index=False)
    return commit_arrow(rows, lake_root, table, sorted(set(frame["quarter"])), run_id)


def frame_of(rows: list[dict], quarter: str) -> pd.DataFrame:
    """`rows` as `load_training_set` returns them, sorted by customer: `quarter` last."""
    frame = pd.DataFrame(rows).drop(columns="quarter")
    frame["quarter"] = quarter
    return by_customer(frame)


def by_customer(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` in customer order, as the readers' tests compare what they read."""
    return frame.sort_values("customer_id", ignore_index=True)


@dataclass
class DeltaLake:
    root: str
    rows: dict[tuple[str, str, int], list[dict]] = field(default_factory=dict)
    """(table, quarter, version) -> the rows that version holds."""
    times: dict[tuple[str, int], datetime] = field(default_factory=dict)
    """(table, version) -> the commit's time, as `history` shows it."""

    def uri(self, table: str) -> str:
        return f"{self.root}/{table}"


def build_delta_lake(spark, root: Path) -> DeltaLake:
    lake = DeltaLake(str(root))
    q1, q2, q3 = QUARTERS
    first = {q1: [], q2: model_rows(TRAINING, q2, customers(30), 1), q3: model_rows(TRAINING, q3, customers(35, 5), 1)}
    assert commit_rows(spark, lake.root, TRAINING, first, "run-a") == 0
    again = {q2: model_rows(TRAINING, q2, customers(32, 100), 2)}
    assert commit_rows(spark, lake.root, TRAINING, again, "run-b") == 1
    scores = {q: model_rows(SCORES, q, customers(20 + i), 3) for i, q in enumerate((q2, q3))}
    assert commit_rows(spark, lake.root, SCORES, scores, "run-a") == 0
    for quarter, rows in first.items():
        lake.rows[(TRAINING, quarter, 0)] = rows
        lake.rows[(TRAINING, quarter, 1)] = again.get(quarter, rows)
    for quarter, rows in scores.items():
        lake.rows[(SCORES, quarter, 0)] = rows
    for table in (TRAINING, SCORES):
        for commit in delta_log.history(delta.open_table(lake.uri(table))):
            lake.times[(table, commit.version)] = commit.time
    return lake


def copy_lake(lake: DeltaLake, target: Path) -> DeltaLake:
    shutil.copytree(lake.root, target)
    return DeltaLake(str(target), dict(lake.rows), dict(lake.times))


@pytest.fixture(scope="session")
def delta_lake(spark, tmp_path_factory) -> DeltaLake:
    return build_delta_lake(spark, tmp_path_factory.mktemp("delta-readers") / "lake")


def utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
