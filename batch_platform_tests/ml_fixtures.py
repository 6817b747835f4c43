"""The ML tests' lake, once per session (`ml_lake`), and a project folder laid out as `make demo`
leaves it around the same lake, for the recipes of the README and docs/ (`demo_project`).

`ml_lake`: planted silver 2024-Q1 … 2025-Q1 (`planted_silver`), then gold and ML of
2024-Q3 … 2025-Q1 in one run (`run_ml`), with lookback L = 2, the default registered model name and
a local MLflow store under its root (`ml_config`). What it leaves is read-only: a test that writes
copies it first.

The lake is silver written straight into a temporary folder (as the silver assets would), with a
planted churn signal: each customer has an engagement e in (0, 1) that sets how often it buys, its
partner score, and how likely it is to stop for good at the start of each quarter. Lookback L = 2
keeps the Spark work small.
"""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import mlflow
import numpy as np
import pytest
import yaml

from batch_platform.assets.gold import build_gold_assets
from batch_platform.assets.ml import build_ml_assets, build_ml_checks
from batch_platform.config import parse_config
from batch_platform.partitions import quarter_end, quarter_range, quarter_start, quarterly_partitions
from batch_platform_tests.gold_fixtures import fill_customer_history, write_silver
from batch_platform_tests.platform import TEST_SPARK, bronze_assets, make_config, materialize_range, silver_assets

ROOT = Path(__file__).resolve().parents[1]

L = 2
SILVER_QUARTERS = quarter_range("2024-Q1", "2025-Q1")
RUN = quarter_range("2024-Q3", "2025-Q1")
CUSTOMERS = 1500
MODEL_NAME = "batch_platform_churn"  # the default: the recipes of the README and docs/ name it (test_readme)
GRAPH_CONFIG = parse_config({"batch": {"lookback_quarters": L}}, "test_ml graph")
GRAPH_QUARTERS = quarterly_partitions(GRAPH_CONFIG.batch.first_quarter)
GOLD = build_gold_assets(GRAPH_QUARTERS, GRAPH_CONFIG.batch)
ML = build_ml_assets(GRAPH_QUARTERS, GRAPH_CONFIG.batch)
ML_CHECKS = build_ml_checks(GRAPH_QUARTERS)


def store_client(root: Path) -> mlflow.MlflowClient:
    """A client of the local store under `root`: tracking AND registry (the registry URI would
    otherwise be the process-wide one the last run set)."""
    uri = f"sqlite:///{root}/mlflow.db"
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def planted_silver(customers: int = CUSTOMERS, seed: int = 11) -> dict[str, list[tuple]]:
    """Silver rows whose churn is driven by engagement e: Poisson(1 + 9e) events a quarter while
    active, a partner score of about 1000e, and a chance 0.45(1-e)^2 of leaving for good at the
    start of each quarter (after the first)."""
    rng = random.Random(seed)
    np_rng = np.random.default_rng(seed)
    events, logs, scores = [], [], []
    for c in range(customers):
        cid, e = f"K{c:05d}", rng.random()
        segment = "gold" if e > 0.66 else "silver" if e > 0.33 else "bronze"
        for i, q in enumerate(SILVER_QUARTERS):
            if i and rng.random() < 0.45 * (1 - e) ** 2:
                break
            start, span = (
                quarter_start(q),
                int((quarter_end(q) - quarter_start(q)).total_seconds()),
            )
            for _ in range(int(np_rng.poisson(1 + 9 * e))):
                moment = start + timedelta(seconds=rng.randrange(span))
                events.append(
                    (
                        cid,
                        moment,
                        round(rng.uniform(5, 50 + 100 * e), 2),
                        "eur",
                        rng.choice(["web", "app"]),
                        q,
                    )
                )
                if rng.random() < 0.3:
                    logs.append((cid, "login", moment, q))
            if rng.random() < 0.7:
                score = min(1000.0, max(0.0, round(1000 * e + rng.gauss(0, 120), 1)))
                scores.append((cid, score, segment, (start + timedelta(days=5)).date(), q))
    return {
        "operational_events": events,
        "interaction_logs": logs,
        "partner_scores": scores,
    }


def training_rows(spark, count: int, profiles: bool = False, seed: int = 3, quarters: tuple[str, ...] = ("2024-Q3",)):
    """`gold/training_set`-shaped rows (no split) of `count` customers in each of `quarters`, whose label is the
    contract (month-to-month churns) when `profiles`, else exactly `recency_days > 150`; without profiles
    every profile feature is null, as in a landing zone without the customers source."""
    import pandas as pd
    import pyspark.sql.types as T

    from batch_platform.features import FEATURE_COLUMNS
    from batch_platform.schemas.base import PARTITION_COLUMN, spark_schema
    from batch_platform.schemas.gold import TrainingSet

    rng = np.random.default_rng(seed)
    rows = []
    for quarter in quarters:
        for i in range(count):
            recency, txn = int(rng.integers(0, 300)), int(rng.integers(1, 200))
            monthly = bool(rng.random() < 0.5)
            rows.append(
                {
                    "customer_id": f"C{i:04d}",
                    "feature_cutoff": quarter_start(quarter),
                    "txn_count": txn,
                    "total_amount": float(txn * 20),
                    "avg_amount": 20.0,
                    "active_days": txn,
                    "first_activity_ts": quarter_start(quarter) - timedelta(days=recency + 30),
                    "last_activity_ts": quarter_start(quarter) - timedelta(days=recency),
                    "recency_days": recency,
                    "tenure_days": recency + 30,
                    "txn_count_90d": txn // 2,
                    "amount_90d": float(txn * 10),
                    "distinct_channels": 1,
                    "log_event_count": 0,
                    "partner_score": None if i % 3 else 500.0,
                    "partner_segment": None if i % 3 else "gold",
                    "contract": ("month-to-month" if monthly else "two-year") if profiles else None,
                    "payment_method": ("cash" if i % 2 else "credit card") if profiles else None,
                    "monthly_charges": float(rng.uniform(20, 90)) if profiles and i % 4 else None,
                    "country": ("DE" if i % 5 else "FR") if profiles else None,
                    "tenure_months": int(rng.integers(1, 60)) if profiles and i % 4 else None,
                    "label": int(monthly) if profiles else int(recency > 150),
                    PARTITION_COLUMN: quarter,
                }
            )
    schema = spark_schema(TrainingSet)
    fields = [schema[name] for name in [*FEATURE_COLUMNS, "label", PARTITION_COLUMN]]
    return spark.createDataFrame(pd.DataFrame(rows), T.StructType(fields))


def run_ml(config, first: str, last: str, selection=None, instance=None, **kwargs):
    """Gold and ML (or `selection` of them) of `first` … `last` in one run over the silver in the
    lake, the ML checks with them."""
    from batch_platform.resources import build_resources

    fill_customer_history(config, first, last)
    return materialize_range(
        [*bronze_assets, *silver_assets, *GOLD, *ML, *ML_CHECKS],
        build_resources(config),
        first,
        last,
        selection=selection or [asset.key for asset in [*GOLD, *ML]],
        instance=instance,
        **kwargs,
    )


def ml_config(root: Path):
    return make_config(
        root,
        batch={"lookback_quarters": L},
        mlflow={"registered_model_name": MODEL_NAME},
    )


@pytest.fixture(scope="session")
def ml_lake(spark, tmp_path_factory):
    import dagster as dg

    root = tmp_path_factory.mktemp("ml")
    write_silver(spark, str(root / "lake"), planted_silver(), SILVER_QUARTERS)
    instance = dg.DagsterInstance.ephemeral()
    result = run_ml(ml_config(root), RUN[0], RUN[-1], instance=instance)
    return root, instance, result


def write_project_config(project: Path, lookback: int) -> Path:
    """The shipped `config/config.yaml` in `project/config/`, its relative paths (`../data/…`) as
    shipped, with the suite's Spark settings and `lookback` quarters."""
    raw = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    raw["batch"]["lookback_quarters"] = lookback
    raw["spark"] = dict(TEST_SPARK)
    path = project / "config" / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="session")
def demo_project(ml_lake, tmp_path_factory) -> Path:
    """`config/config.yaml` as shipped beside `data/`, a link to the ML lake's root (its `lake/`,
    `mlflow.db` and `mlartifacts/` are where the shipped config puts the demo's)."""
    root, _, _ = ml_lake
    project = tmp_path_factory.mktemp("demo-project")
    write_project_config(project, L)
    (project / "data").symlink_to(root, target_is_directory=True)
    return project
