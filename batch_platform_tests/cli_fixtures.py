"""The `dagster` command line's range run of test_jobs.py, started in the background.

`dagster asset materialize --select '*' --partition-range …` runs in a process of its own (its
own JVM, config file, DAGSTER_HOME and lake), so nothing in the session shares its state. It is
started when the first test after the S3 group begins (`conftest._cli_backfill_in_background`),
runs beside the in-process tests that come next, and `test_jobs.backfill` waits for it. Under
pytest-xdist, or when a test_jobs test comes first, it starts on first use.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from batch_platform.partitions import quarter_range, to_key
from batch_platform.procs import stop_process_group
from batch_platform_tests.conftest import TEST_SPARK, make_config

DAGSTER = str(Path(sys.executable).parent / "dagster")
BACKFILL = quarter_range("2024-Q1", "2024-Q3")
CI_QUARTER = "2024-Q4"


@pytest.fixture(scope="session")
def cli_env(tmp_path_factory):
    from batch_platform.sample_data import generate_landing

    root = tmp_path_factory.mktemp("cli")
    config = {
        "storage": {"landing_root": str(root / "landing"), "lake_root": str(root / "lake")},
        "batch": {"first_quarter": "2024-Q1"},
        "spark": dict(TEST_SPARK),
    }
    config_file = root / "config.yaml"
    config_file.write_text(yaml.safe_dump(config))
    home = root / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    generate_landing(root / "landing", first_quarter="2024-Q1", last_quarter=CI_QUARTER, customers=60, seed=29)
    env = {**os.environ, "BATCH_PLATFORM_CONFIG": str(config_file), "DAGSTER_HOME": str(home), "TZ": "UTC"}
    return {"root": root, "env": env, "home": home, "config": make_config(root), "lake": str(root / "lake")}


class CliRun:
    """A `dagster` command started now and waited for later; its output goes to files (a pipe
    nobody reads would fill and stall it)."""

    def __init__(self, env: dict, *args: str):
        self.args = args
        self.log = Path(env["root"]) / f"dagster-{len(list(Path(env['root']).glob('dagster-*.log')))}.log"
        self.started = time.perf_counter()
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [DAGSTER, *args],
                env=env["env"],
                cwd=env["root"],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait(self, timeout: float = 1800) -> str:
        """The command's output, once it has ended; fails with its tail if it did not succeed."""
        returncode = self.process.wait(timeout=timeout)
        output = self.log.read_text(errors="replace")
        print(
            f"dagster {' '.join(self.args)}: {time.perf_counter() - self.started:.1f}s since start, exit {returncode}"
        )
        assert returncode == 0, output[-12000:]
        return output

    def stop(self) -> None:
        if self.process.poll() is None:
            stop_process_group(self.process, term_grace=10)


@pytest.fixture(scope="session")
def cli_backfill(cli_env):
    """The range run of BACKFILL over every asset, started (not waited for)."""
    run = CliRun(
        cli_env,
        "asset",
        "materialize",
        "-m",
        "batch_platform.definitions",
        "--select",
        "*",
        "--partition-range",
        f"{to_key(BACKFILL[0])}...{to_key(BACKFILL[-1])}",
    )
    yield run
    run.stop()
