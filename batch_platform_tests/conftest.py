"""Fixtures shared by every test: one SparkSession for the whole session, temp lakes per test.

The session is created here first, with the test config's settings; the `pyspark` resource's
`getOrCreate()` then finds and reuses it, so no Dagster run in the suite starts another JVM.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TZ", "UTC")

from batch_platform.config import PlatformConfig, parse_config  # noqa: E402

TEST_SPARK = {"master": "local[2]", "shuffle_partitions": 2, "ui_enabled": False}


def make_config(tmp_path: Path, **sections) -> PlatformConfig:
    raw = {
        "storage": {"landing_root": str(tmp_path / "landing"), "lake_root": str(tmp_path / "lake")},
        "spark": dict(TEST_SPARK),
    }
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return parse_config(raw, "test")


@pytest.fixture(scope="session")
def spark():
    from pyspark.sql import SparkSession

    conf = make_config(Path("/nonexistent")).spark_conf()
    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture
def platform_config(tmp_path) -> PlatformConfig:
    return make_config(tmp_path)


@pytest.fixture
def resources(spark, platform_config):
    from batch_platform.resources import build_resources

    return build_resources(platform_config)


# A live dagster-webserver + dagster-daemon, shared by test_webserver.py and test_browser.py.
from batch_platform_tests.webserver_fixtures import (  # noqa: E402, F401
    dagster_ui,
    ui_backfill,
    ui_backfill_everything,
    ui_materialized,
)
