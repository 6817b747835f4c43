"""The ML tests' lake, once per session (`ml_lake`), and a project folder laid out as `make demo`
leaves it around the same lake, for the recipes of the README and docs/ (`demo_project`).

`ml_lake`: planted silver 2024-Q1 … 2025-Q1 (`test_ml.planted_silver`), then gold and ML of
2024-Q3 … 2025-Q1 in one run, with lookback L = 2, the default registered model name and a local
MLflow store under its root. What it leaves is read-only: a test that writes copies it first.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from batch_platform_tests.conftest import TEST_SPARK

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def ml_lake(spark, tmp_path_factory):
    import dagster as dg

    from batch_platform_tests.test_gold import write_silver
    from batch_platform_tests.test_ml import RUN, SILVER_QUARTERS, ml_config, planted_silver, run_ml

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
    from batch_platform_tests.test_ml import L

    root, _, _ = ml_lake
    project = tmp_path_factory.mktemp("demo-project")
    write_project_config(project, L)
    (project / "data").symlink_to(root, target_is_directory=True)
    return project
