"""A small real lake for the delivery tests (publishing, HTTP API), once per session.

It is a copy of the reference run's lake (`reference_fixtures`: a generated landing zone of 60
customers through every asset, 2024-Q1…2024-Q3, in one command-line run with the real IO manager),
so no second run builds the same tables; the tests read, publish and serve the copy, and may
change it. 2024-Q1 has no lookback, so its gold partitions are materialised and empty.
"""

from __future__ import annotations

import shutil

import pytest

from batch_platform_tests.platform import make_config
from batch_platform_tests.reference_fixtures import REFERENCE_QUARTERS

DELIVERY_QUARTERS = tuple(REFERENCE_QUARTERS)


@pytest.fixture(scope="session")
def delivery_lake(reference_run, tmp_path_factory):
    root = tmp_path_factory.mktemp("delivery")
    shutil.copytree(reference_run["lake"], root / "lake")
    return make_config(root, storage={"landing_root": str(reference_run["landing"]), "lake_root": str(root / "lake")})
