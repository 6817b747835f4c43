"""The reference run's landing zone uploaded to the S3 test server, and that run's gold tables on
local folders as what the run on S3 must equal. Both fixtures are session-scoped: each end-to-end
case runs once (`reference_fixtures`).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from batch_platform.config import PlatformConfig
from batch_platform_tests.platform import TEST_SPARK, make_config, materialize_range
from batch_platform_tests.reference_fixtures import GOLD_TABLES
from batch_platform_tests.reference_fixtures import REFERENCE_QUARTERS as QUARTERS

KEY_ENV, SECRET_ENV = "BP_TEST_S3_ACCESS_KEY_ID", "BP_TEST_S3_SECRET_ACCESS_KEY"
LANDING_BUCKET, LAKE_BUCKET = "landing", "lake"


def s3_section(s3_server, key_env: str = KEY_ENV, secret_env: str = SECRET_ENV) -> dict:
    return {
        "endpoint_url": s3_server.endpoint_url,
        "region": s3_server.region,
        "path_style_access": True,
        "access_key_id": f"${{{key_env}}}",
        "secret_access_key": f"${{{secret_env}}}",
    }


def s3_config(tmp_path: Path, s3_server, landing_root: str, lake_root: str, **s3) -> PlatformConfig:
    return make_config(
        tmp_path,
        storage={
            "landing_root": landing_root,
            "lake_root": lake_root,
            "s3": s3_section(s3_server, **s3),
        },
    )


def s3_raw_config(s3_server, landing_root: str, lake_root: str) -> dict:
    """The config file's contents of `s3_config`, for a process of its own."""
    storage = {"landing_root": landing_root, "lake_root": lake_root, "s3": s3_section(s3_server)}
    return {"storage": storage, "spark": dict(TEST_SPARK)}


def upload(s3_server, local: Path, bucket: str, prefix: str) -> int:
    s3_server.bucket(bucket)
    client = s3_server.client()
    files = [path for path in sorted(local.rglob("*")) if path.is_file() and not path.name.startswith("_")]
    for path in files:
        client.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(local).as_posix()}")
    return len(files)


def materialize_all(config: PlatformConfig, quarters=QUARTERS, selection=None, **kwargs):
    """Every asset (or `selection`) for `quarters`, in one in-process run (a single-run backfill)."""
    from batch_platform.definitions import build_definitions
    from batch_platform.resources import build_resources

    return materialize_range(
        list(build_definitions(config).assets),
        build_resources(config),
        quarters[0],
        quarters[-1],
        selection=selection,
        **kwargs,
    )


def read_table(config: PlatformConfig, table: str, quarter: str, version: int | None = None) -> pd.DataFrame:
    """One quarter of a lake table as pandas, through its Delta log (delta-rs with `storage.s3`), at
    its latest version or `version`."""
    from batch_platform_tests.lake_fixtures import lake_quarter

    frame = lake_quarter(config.lake_root, table, quarter, version=version, s3=config.storage.s3)
    key = "customer_id" if "customer_id" in frame.columns else list(frame.columns)
    return frame.sort_values(key).reset_index(drop=True)


def gold_frames(config: PlatformConfig) -> dict[tuple[str, str], pd.DataFrame]:
    return {(t, q): read_table(config, f"gold/{t}", q) for t in GOLD_TABLES for q in QUARTERS}


@pytest.fixture(scope="session")
def s3_landing(s3_server, reference_landing):
    """The reference run's landing zone (`reference_fixtures`) uploaded to `s3a://landing/landing`;
    the test credentials in the environment variables the S3 configs refer to."""
    os.environ[KEY_ENV], os.environ[SECRET_ENV] = (
        s3_server.access_key_id,
        s3_server.secret_access_key,
    )
    local = reference_landing
    files = upload(s3_server, local, LANDING_BUCKET, "landing")
    s3_server.bucket(LAKE_BUCKET)
    return {"local": local, "root": f"s3a://{LANDING_BUCKET}/landing", "files": files}


@pytest.fixture(scope="session")
def local_reference(reference_run):
    """The gold frames per (table, quarter) of the same landing zone run on local folders: the
    reference run's lake, which no test writes to."""
    return gold_frames(reference_run["config"])
