"""`landing_sensor`, evaluated without a daemon (`dg.build_sensor_context`): one run request per
quarter whose files arrived, never twice for a file, nothing for a quarter still open; on a local
folder and on the S3 test server (dagster-aws's `S3Resource` with `storage.s3`)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from batch_platform.definitions import build_definitions
from batch_platform.landing import FORMATS, LandingZone
from batch_platform.partitions import label_of, shift, to_key
from batch_platform.s3 import s3_resource
from batch_platform.schemas.bronze import BRONZE_TABLES
from batch_platform.sensors import build_landing_sensor
from batch_platform_tests.platform import DEFAULTS, quarterly
from batch_platform_tests.s3_pipeline import s3_section

defs = build_definitions(DEFAULTS)
landing_sensor = build_landing_sensor(quarterly)
s3_landing_sensor = build_landing_sensor(quarterly, on_s3=True)
OPEN_QUARTER = shift(label_of(date.fromisoformat(quarterly.get_last_partition_key())), 1)


def evaluate(resources: dict, cursor: str | None):
    sensor = s3_landing_sensor if "s3" in resources else landing_sensor
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources, definitions=defs)
        result = sensor.evaluate_tick(context)
    return result


def requested(result) -> dict[str, int]:
    return {r.partition_key: int(r.tags["batch_platform/landing_files"]) for r in result.run_requests or []}


def _check_sensor(resources: dict, put) -> None:
    put("operational/2024-01-05/a.csv")
    put("operational/2024-02-01/b.csv")
    put("logs/2024-04-02/c.json")
    put("logs/2024-04-02/_SUCCESS")  # hidden: never ingested
    put("external/2023-12-30/old.csv")  # before the first quarter
    put(f"external/{to_key(OPEN_QUARTER)}/early.csv")  # the quarter is still open
    first = evaluate(resources, None)
    assert requested(first) == {"2024-01-01": 2, "2024-04-01": 1}
    assert "operational/2024-01-05/a.csv" in json.loads(first.cursor)
    assert f"external/{to_key(OPEN_QUARTER)}/early.csv" not in json.loads(first.cursor)

    again = evaluate(resources, first.cursor)
    assert requested(again) == {} and "1 waiting" in again.skip_message

    put("operational/2024-05-20/d.csv")
    put("external/2024-06-30/e.parquet")
    third = evaluate(resources, again.cursor)
    assert requested(third) == {"2024-04-01": 2}
    assert third.run_requests[0].run_key != first.run_requests[1].run_key
    assert requested(evaluate(resources, third.cursor)) == {}


def test_sensor_is_off_by_default_and_part_of_the_definitions():
    sensor = defs.resolve_sensor_def("landing_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
    assert sensor.job_name == "training_set_job"
    # a local landing zone: no s3 resource, and dagster-aws is not needed to list it
    assert sensor.required_resource_keys == {"landing"} and "s3" not in defs.resources
    assert s3_landing_sensor.required_resource_keys == {"landing", "s3"}


def test_the_s3_resource_is_built_only_for_a_platform_on_s3():
    """dagster-aws's `S3Resource` (and its import) only when `storage.s3` is set or a root is `s3a://`."""
    from dagster_aws.s3 import S3Resource

    from batch_platform.config import parse_config
    from batch_platform.resources import build_resources

    on_s3 = parse_config({"storage": {"s3": {"endpoint_url": "http://127.0.0.1:9", "path_style_access": True}}})
    assert isinstance(build_resources(on_s3)["s3"], S3Resource)
    assert "s3" not in build_resources(DEFAULTS)


def _local_put(root: Path):
    def put(relative: str) -> None:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("customer_id\n1\n")

    return put


def _declared_files() -> list[str]:
    """One file per declared bronze source and file extension it may arrive in, read from the declarations."""
    return [
        f"{table.folder}/2024-02-10/{n}{extension}"
        for table in BRONZE_TABLES.values()
        for n, extension in enumerate(ext for ext, fmt in FORMATS.items() if fmt in table.formats)
    ]


def test_sensor_watches_every_declared_bronze_source_and_nothing_else(tmp_path: Path):
    put = _local_put(tmp_path)
    expected = _declared_files()
    assert {path.split("/")[0] for path in expected} == {t.folder for t in BRONZE_TABLES.values()}
    for path in [*expected, "not_a_source/2024-02-10/a.csv", "2024-02-10/a.csv"]:
        put(path)
    result = evaluate({"landing": LandingZone(root=str(tmp_path))}, None)
    assert requested(result) == {"2024-01-01": len(expected)}
    assert json.loads(result.cursor) == sorted(expected)


def test_a_source_declared_in_bronze_is_watched_in_its_declared_formats_only(tmp_path: Path, monkeypatch):
    """A new landing source needs its bronze declaration only, and the sensor follows its formats."""
    customers = replace(
        BRONZE_TABLES["logs"], key=dg.AssetKey(["bronze", "customers"]), source="customers", formats=("csv",)
    )
    monkeypatch.setitem(BRONZE_TABLES, "customers", customers)
    put = _local_put(tmp_path)
    for path in ("customers/2024-02-10/a.csv", "customers/2024-02-10/b.json", "customers/2024-02-10/c.parquet"):
        put(path)
    result = evaluate({"landing": LandingZone(root=str(tmp_path))}, None)
    assert requested(result) == {"2024-01-01": 1}
    assert json.loads(result.cursor) == ["customers/2024-02-10/a.csv"]


def test_sensor_on_a_landing_folder(tmp_path: Path):
    root = tmp_path / "landing"
    _check_sensor({"landing": LandingZone(root=str(root))}, _local_put(root))


@pytest.mark.s3
def test_sensor_on_an_s3_landing_zone(s3_server, s3_landing):
    from batch_platform.config import S3Config

    bucket = s3_server.bucket("sensor-landing").removeprefix("s3a://")
    client = s3_server.client()

    def put(relative: str) -> None:
        client.put_object(Bucket=bucket, Key=f"incoming/{relative}", Body=b"customer_id\n1\n")

    s3 = s3_resource(S3Config(**s3_section(s3_server)))
    _check_sensor({"landing": LandingZone(root=f"s3a://{bucket}/incoming"), "s3": s3}, put)
