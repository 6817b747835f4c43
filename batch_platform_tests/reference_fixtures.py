"""The reference run: the platform's command line over a generated landing zone, on local folders,
once per session.

`dagster asset materialize -m batch_platform.definitions --select '*' --partition-range A...B`:
every asset of `REFERENCE_QUARTERS` (2024-Q1…Q3) in one run, in a subprocess with its own JVM,
config file (`BATCH_PLATFORM_CONFIG`) and `DAGSTER_HOME`, over a landing zone of 2024-Q1…Q4 (60
customers; 2024-Q4 is the quarter test_jobs' `job execute` adds on top of the history). Several
cases read this one run instead of running the same pipeline again (issue 16: each Spark-heavy
end-to-end case once):

- test_jobs: the command line's range run itself (its instance and lake);
- the S3 and cluster tests: the landing zone they upload, and the gold tables the run on S3 must
  equal (`s3_pipeline.local_reference`);
- the delivery tests (HTTP API, PostgreSQL publishing): a copy of its lake.

What the run left is read-only: a test that writes copies it first (`copy_reference`).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from batch_platform.partitions import quarter_range, to_key
from batch_platform_tests.platform import TEST_SPARK, dagster_env, make_config

DAGSTER = str(Path(sys.executable).parent / "dagster")
REFERENCE_QUARTERS = quarter_range("2024-Q1", "2024-Q3")
CI_QUARTER = "2024-Q4"
"""In the landing zone, not in the reference run: what `dagster job execute` builds in test_jobs."""
GOLD_TABLES = ("customer_features", "churn_labels", "training_set")


def cli_workspace(root: Path, lake: Path, landing: Path) -> dict:
    """A config file and a DAGSTER_HOME under `root` for command-line runs on `lake`."""
    config = {
        "storage": {"landing_root": str(landing), "lake_root": str(lake)},
        "batch": {"first_quarter": REFERENCE_QUARTERS[0]},
        "spark": dict(TEST_SPARK),
    }
    env = {**dagster_env(root, config), "TZ": "UTC"}
    return {
        "root": root,
        "env": env,
        "home": Path(env["DAGSTER_HOME"]),
        "lake": str(lake),
        "config": make_config(root, storage={"landing_root": str(landing), "lake_root": str(lake)}),
    }


def run_cli(workspace: dict, *args: str) -> subprocess.CompletedProcess:
    started = time.perf_counter()
    done = subprocess.run(
        [DAGSTER, *args], env=workspace["env"], cwd=workspace["root"], capture_output=True, text=True, timeout=1800
    )
    print(f"dagster {' '.join(args)}: {time.perf_counter() - started:.1f}s, exit {done.returncode}")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-8000:]
    return done


def copy_reference(reference: dict, root: Path) -> dict:
    """The reference lake and instance copied under `root`, with a config file of their own."""
    shutil.copytree(reference["lake"], root / "lake")
    shutil.copytree(reference["home"], root / "dagster_home")
    return cli_workspace(root, root / "lake", reference["landing"])


@pytest.fixture(scope="session")
def reference_landing(tmp_path_factory) -> Path:
    """The landing zone of the reference run: 2024-Q1…2024-Q4, 60 customers."""
    from batch_platform.sample_data import generate_landing

    landing = tmp_path_factory.mktemp("reference-landing") / "landing"
    generate_landing(landing, first_quarter=REFERENCE_QUARTERS[0], last_quarter=CI_QUARTER, customers=60, seed=29)
    return landing


@pytest.fixture(scope="session")
def reference_run(reference_landing, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("reference")
    landing = reference_landing
    workspace = cli_workspace(root, root / "lake", landing)
    run_cli(
        workspace,
        "asset",
        "materialize",
        "-m",
        "batch_platform.definitions",
        "--select",
        "*",
        "--partition-range",
        f"{to_key(REFERENCE_QUARTERS[0])}...{to_key(REFERENCE_QUARTERS[-1])}",
    )
    with dg.DagsterInstance.from_config(str(workspace["home"])) as instance:
        runs = instance.get_runs()
        materialized = {key: instance.get_materialized_partitions(key) for key in instance.get_asset_keys()}
        stats = {run.run_id: instance.get_run_stats(run.run_id) for run in runs}
    return {
        **workspace,
        "landing": landing,
        "runs": runs,
        "materialized": materialized,
        "run_stats": stats,
    }
