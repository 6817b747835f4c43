"""A small real lake for the delivery tests (publishing, HTTP API), built once per session.

A generated landing zone (2024-Q1…2024-Q3, 60 customers) goes through the real bronze → silver →
gold assets in one Dagster run with the real IO manager; the tests read, publish and serve that
lake. 2024-Q1 has no lookback, so its gold partitions are materialised and empty.
"""

from __future__ import annotations

import dagster as dg
import pytest

from batch_platform.partitions import to_key
from batch_platform_tests.conftest import make_config

DELIVERY_QUARTERS = ("2024-Q1", "2024-Q2", "2024-Q3")


@pytest.fixture(scope="session")
def delivery_lake(spark, tmp_path_factory):
    from batch_platform.resources import build_resources
    from batch_platform.sample_data import generate_landing
    from batch_platform_tests.platform import bronze_assets, gold_assets, ml_assets, silver_assets

    config = make_config(tmp_path_factory.mktemp("delivery"))
    generate_landing(config.landing_root, first_quarter=DELIVERY_QUARTERS[0], last_quarter=DELIVERY_QUARTERS[-1],
                     customers=60, seed=41)  # fmt: skip
    tags = {
        "dagster/asset_partition_range_start": to_key(DELIVERY_QUARTERS[0]),
        "dagster/asset_partition_range_end": to_key(DELIVERY_QUARTERS[-1]),
    }
    result = dg.materialize(
        [*bronze_assets, *silver_assets, *gold_assets, *ml_assets],
        resources=build_resources(config),
        tags=tags,
    )
    assert result.success
    return config
