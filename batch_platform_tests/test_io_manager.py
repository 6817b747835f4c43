import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq
import pytest

from batch_platform.partitions import to_key
from batch_platform.procs import stop_process_group
from batch_platform.schemas.base import Table
from batch_platform.tables import register as register_table
from batch_platform_tests.lake_fixtures import WIDGETS_KEY, Widgets, widget_reader, widgets_asset

TABLE = Path("test") / "widgets"


pytestmark = pytest.mark.usefixtures("widgets_table")


def _materialize(assets, resources, first, last=None, **kwargs):
    tags = {
        "dagster/asset_partition_range_start": to_key(first),
        "dagster/asset_partition_range_end": to_key(last or first),
    }
    return dg.materialize(assets, resources=resources, tags=tags, **kwargs)


def _partition(config, quarter) -> Path:
    return Path(config.lake_root) / TABLE / f"quarter={quarter}"


def _read(config, quarter) -> pd.DataFrame:
    return pd.read_parquet(_partition(config, quarter)).sort_values("widget_id").reset_index(drop=True)


def test_round_trip_writes_hive_folders_readable_by_pandas_and_pyarrow(resources, platform_config):
    result = _materialize([widgets_asset(rows_per_quarter=7)], resources, "2024-Q1", "2024-Q2")
    assert result.success
    for quarter in ("2024-Q1", "2024-Q2"):
        frame = _read(platform_config, quarter)
        assert len(frame) == 7
        assert list(frame.columns) == ["widget_id", "value", "seen_at"]
        assert frame["widget_id"].str.startswith(quarter).all()
        assert str(frame["seen_at"].dtype).startswith("datetime64")
        files = list(_partition(platform_config, quarter).glob("*.parquet"))
        assert len(files) == 1, files
        assert pq.read_schema(files[0]).field("seen_at").type.unit == "us"
    assert sorted(p.name for p in (Path(platform_config.lake_root) / TABLE).iterdir()) == [
        "quarter=2024-Q1",
        "quarter=2024-Q2",
    ]


def test_materialisation_metadata_per_partition(resources, platform_config):
    result = _materialize([widgets_asset(rows_per_quarter=12)], resources, "2024-Q1", "2024-Q3")
    events = {
        e.materialization.partition: e.materialization.metadata for e in result.get_asset_materialization_events()
    }
    assert sorted(events) == ["2024-01-01", "2024-04-01", "2024-07-01"]
    for key, metadata in events.items():
        quarter = {"2024-01-01": "2024-Q1", "2024-04-01": "2024-Q2", "2024-07-01": "2024-Q3"}[key]
        assert metadata["dagster/row_count"].value == 12
        assert metadata["path"].value == str(_partition(platform_config, quarter))
        assert metadata["quarter"].value == quarter
        preview = metadata["preview"].value
        assert len(preview.records) == 10
        assert all(record.data["widget_id"].startswith(quarter) for record in preview.records)
        columns = {c.name: c for c in metadata["dagster/column_schema"].schema.columns}
        assert columns["value"].type == "double" and columns["value"].description == "A non-negative value."
        assert columns["widget_id"].constraints.nullable is False


def test_every_materialisation_records_the_column_lineage_and_a_readable_table_of_it(resources):
    """The UI hides `dagster/column_lineage` (a Dagster+ feature), so each quarter also carries the
    lineage as a table, `column_lineage`, which the UI shows with the rest of the metadata."""
    upstream = dg.AssetKey(["test", "source"])
    table = Table(
        WIDGETS_KEY,
        Widgets,
        lineage={"widget_id": [(upstream, "id")], "value": [(upstream, "amount"), (upstream, "rate")], "seen_at": []},
    )
    register_table(table)  # `widgets_table` unregisters it after the test
    result = _materialize([widgets_asset(rows_per_quarter=3)], resources, "2024-Q1", "2024-Q2")
    events = [e.materialization for e in result.get_asset_materialization_events()]
    assert sorted(m.partition for m in events) == ["2024-01-01", "2024-04-01"]
    for materialization in events:
        metadata = materialization.metadata
        assert metadata["dagster/column_lineage"].value == table.column_lineage()
        shown = {record.data["column"]: record.data["upstream"] for record in metadata["column_lineage"].value.records}
        assert shown == {
            "widget_id": "test/source.id",
            "value": "test/source.amount, test/source.rate",
            "seen_at": "(no upstream column)",
        }


def test_validation_failure_names_every_check_with_row_counts_and_writes_nothing(resources, platform_config):
    assert _materialize([widgets_asset(rows_per_quarter=4, version=1.0)], resources, "2024-Q1").success
    before = _read(platform_config, "2024-Q1")

    result = _materialize(
        [widgets_asset(rows_per_quarter=6, version=2.0, bad_values=3)], resources, "2024-Q1", raise_on_error=False
    )

    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.user_failure_data
    assert "test/widgets: Pandera validation failed" in failure.description
    assert "column 'value', check greater_than_or_equal_to(0): 3 of 6 rows fail" in failure.description
    assert "3 of 6 rows fail" in failure.description
    assert "nothing was written" in failure.description
    pd.testing.assert_frame_equal(_read(platform_config, "2024-Q1"), before)
    assert not (Path(platform_config.lake_root) / TABLE / "_staging").exists()


def test_a_check_failing_in_one_quarter_publishes_no_quarter_of_the_range(resources, platform_config):
    """A value check failing in one quarter and a repeated key in another both fail the step with
    their counts; every quarter of the range stays as it was, and no staging is left behind."""
    from dagster_pyspark import PySparkResource

    from batch_platform_tests.lake_fixtures import widget_rows
    from batch_platform_tests.platform import quarterly

    assert _materialize([widgets_asset(rows_per_quarter=4, version=1.0)], resources, "2024-Q1", "2024-Q2").success
    before = {q: _read(platform_config, q) for q in ("2024-Q1", "2024-Q2")}

    @dg.asset(key=["test", "widgets"], partitions_def=quarterly, backfill_policy=dg.BackfillPolicy.single_run())
    def widgets(pyspark: PySparkResource):
        spark = pyspark.spark_session
        q1 = widget_rows(spark, "2024-Q1", 6, bad_values=2)
        q2 = widget_rows(spark, "2024-Q2", 6)
        return q1.unionByName(q2).unionByName(q2.limit(1))

    result = _materialize([widgets], resources, "2024-Q1", "2024-Q2", raise_on_error=False)

    assert not result.success
    description = result.get_step_failure_events()[0].step_failure_data.user_failure_data.description
    assert "column 'value', check greater_than_or_equal_to(0): 2 of 13 rows fail" in description
    assert "table, check unique (quarter, widget_id): 1 of 13 rows fail" in description
    for quarter, frame in before.items():
        pd.testing.assert_frame_equal(_read(platform_config, quarter), frame)
    assert not (Path(platform_config.lake_root) / TABLE / "_staging").exists()


def test_row_rules_nulls_and_uniqueness_are_counted_with_their_failing_rows(spark):
    from pyspark.sql import functions as F

    from batch_platform.schemas.base import failure_report, validate_frame
    from batch_platform_tests.lake_fixtures import Widgets, widget_rows

    frame = widget_rows(spark, "2024-Q1", 5)
    frame = (
        frame.unionByName(frame.limit(2))
        .withColumn(
            "seen_at",
            F.when(F.col("widget_id") == "2024-Q1-4", F.lit("2024-04-01 00:00:00").cast("timestamp")).otherwise(
                F.col("seen_at")
            ),
        )
        .withColumn("widget_id", F.when(F.col("value") == 3.0, F.lit(None)).otherwise(F.col("widget_id")))
        .cache()
    )
    violations, total = validate_frame(frame, Widgets)
    found = {(v.column, v.check): v.failing_rows for v in violations}
    assert total == 7
    assert found == {
        ("", "widgets_seen_before_quarter_end"): 1,
        ("widget_id", "not_nullable"): 1,
        ("", "unique (quarter, widget_id)"): 2,
    }
    report = failure_report("test/widgets", violations, total)
    assert "table, check widgets_seen_before_quarter_end: 1 of 7 rows fail" in report
    assert "column 'widget_id', check not_nullable: 1 of 7 rows fail" in report


def test_row_checks_are_counted_per_quarter_in_the_pass_that_counts_the_rows(spark):
    from pyspark.sql import functions as F

    from batch_platform.schemas.base import QUARTER_PATTERN, count_and_check, failure_report
    from batch_platform_tests.lake_fixtures import Widgets, widget_rows

    q1 = widget_rows(spark, "2024-Q1", 4, bad_values=1)
    q2 = widget_rows(spark, "2024-Q2", 5, bad_values=3)
    odd = widget_rows(spark, "2024-Q2", 2).withColumn("quarter", F.lit("2024-Q7"))
    frame = q1.unionByName(q2).unionByName(odd).unionByName(q1.limit(1).withColumn("quarter", F.lit(None))).cache()

    rows, violations = count_and_check(frame, Widgets)

    assert rows == {"2024-Q1": 4, "2024-Q2": 5, "2024-Q7": 2, None: 1}
    found = {(v.column, v.check): (v.failing_rows, v.by_quarter) for v in violations}
    assert found[("value", "greater_than_or_equal_to(0)")] == (5, (("2024-Q1", 1), ("2024-Q2", 3), (None, 1)))
    # Checks on the partition column alone are judged once per quarter, for all its rows.
    assert found[("quarter", "not_nullable")] == (1, ((None, 1),))
    assert found[("quarter", f"str_matches('{QUARTER_PATTERN}')")] == (2, (("2024-Q7", 2),))
    report = failure_report("test/widgets", violations, sum(rows.values()))
    assert (
        "column 'value', check greater_than_or_equal_to(0): 5 of 12 rows fail (2024-Q1: 1, 2024-Q2: 3, None: 1)"
        in report
    )


def test_structural_errors_are_reported_by_pandera(spark):
    from pyspark.sql import functions as F

    from batch_platform.schemas.base import validate_frame
    from batch_platform_tests.lake_fixtures import Widgets, widget_rows

    frame = widget_rows(spark, "2024-Q1", 3).withColumn("value", F.col("value").cast("int"))
    frame = frame.withColumn("surplus", F.col("widget_id"))
    violations, _ = validate_frame(frame, Widgets)
    checks = {v.check for v in violations}
    assert "dtype('DoubleType()')" in checks and "column_in_schema" in checks
    assert all(v.failing_rows is None and v.detail for v in violations)


def test_rerun_replaces_exactly_that_quarter(resources, platform_config):
    assert _materialize([widgets_asset(rows_per_quarter=5, version=1.0)], resources, "2024-Q1", "2024-Q2").success
    q2_files = sorted(p.name for p in _partition(platform_config, "2024-Q2").iterdir())
    q2_before = _read(platform_config, "2024-Q2")

    assert _materialize([widgets_asset(rows_per_quarter=3, version=10.0)], resources, "2024-Q1").success
    assert _materialize([widgets_asset(rows_per_quarter=3, version=10.0)], resources, "2024-Q1").success

    q1 = _read(platform_config, "2024-Q1")
    assert len(q1) == 3 and q1["value"].tolist() == [0.0, 10.0, 20.0]
    assert sorted(p.name for p in _partition(platform_config, "2024-Q2").iterdir()) == q2_files
    pd.testing.assert_frame_equal(_read(platform_config, "2024-Q2"), q2_before)


def test_an_empty_quarter_is_a_schema_only_parquet_file(resources, platform_config, spark):
    assert _materialize([widgets_asset(rows_per_quarter=0)], resources, "2024-Q3").success
    files = list(_partition(platform_config, "2024-Q3").glob("*.parquet"))
    assert len(files) == 1
    schema = pq.read_schema(files[0])
    assert schema.names == ["widget_id", "value", "seen_at"]
    assert pq.read_table(files[0]).num_rows == 0
    assert spark.read.parquet(str(_partition(platform_config, "2024-Q3"))).count() == 0


def test_loading_a_range_and_missing_quarters(resources, platform_config):
    from batch_platform.io_manager import LakeIOManager  # noqa: F401 - the io_manager under test is in `resources`

    all_resources = {**resources, "mem_io_manager": dg.InMemoryIOManager()}
    assert _materialize([widgets_asset(rows_per_quarter=4)], resources, "2024-Q2").success
    widgets = widgets_asset()

    strict = dg.materialize(
        [widgets, widget_reader()],
        selection=["test/reader"],
        resources=all_resources,
        partition_key=to_key("2024-Q4"),
        raise_on_error=False,
    )
    assert not strict.success
    message = strict.get_step_failure_events()[0].step_failure_data.user_failure_data.description
    assert "test/widgets: quarter(s) 2024-Q3 have never been materialised" in message

    lenient = dg.materialize(
        [widgets, widget_reader(allow_missing=True)],
        selection=["test/reader"],
        resources=all_resources,
        partition_key=to_key("2024-Q4"),
    )
    assert lenient.output_for_node("test__reader") == {"2024-Q2": 4}

    assert _materialize([widgets_asset(rows_per_quarter=6)], resources, "2024-Q3").success
    both = dg.materialize(
        [widgets, widget_reader()], selection=["test/reader"], resources=all_resources, partition_key=to_key("2024-Q4")
    )
    assert both.output_for_node("test__reader") == {"2024-Q2": 4, "2024-Q3": 6}


CRASHING_CHILD = textwrap.dedent(
    """
    import sys
    import dagster as dg
    from batch_platform.config import parse_config
    from batch_platform.resources import build_resources
    from batch_platform_tests.lake_fixtures import register, widgets_asset

    register()
    config = parse_config({"storage": {"lake_root": sys.argv[1]},
                           "spark": {"master": "local[2]", "ui_enabled": False, "shuffle_partitions": 2}})
    dg.materialize([widgets_asset(rows_per_quarter=int(sys.argv[2]), version=7.0)],
                   resources=build_resources(config), partition_key="2024-01-01")
    """
)


def test_a_crash_mid_write_leaves_the_previous_partition_intact(spark, resources, platform_config):
    assert _materialize([widgets_asset(rows_per_quarter=50)], resources, "2024-Q1").success
    before = _read(platform_config, "2024-Q1")
    staging = Path(platform_config.lake_root) / TABLE / "_staging"

    child = subprocess.Popen(
        [sys.executable, "-c", CRASHING_CHILD, platform_config.lake_root, "500000"],
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not staging.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert staging.exists(), "the child never started writing"
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()

    pd.testing.assert_frame_equal(_read(platform_config, "2024-Q1"), before)
    assert spark.read.parquet(str(Path(platform_config.lake_root) / TABLE)).count() == 50

    assert _materialize([widgets_asset(rows_per_quarter=8)], resources, "2024-Q1").success
    assert len(_read(platform_config, "2024-Q1")) == 8
    assert not staging.exists()


def test_counted_checks_agree_with_pandera_on_every_row(spark):
    """The one-pass counting selects failing rows by Pandera's own expressions: on the same rows,
    Pandera's validation passes exactly the rows the counting calls passing and fails each row it
    counts as failing — `str_matches` anchored, bounds exclusive where declared, NULLs passing."""
    import pandera.pyspark as pa
    import pyspark.sql.types as T
    from pyspark.sql import functions as F

    from batch_platform.schemas.base import row_checks

    class Probe(pa.DataFrameModel):
        code: T.StringType() = pa.Field(nullable=True, str_matches=r"\d{2}-[A-Z]", str_length={"max_value": 5})
        size: T.DoubleType() = pa.Field(nullable=True, in_range={"min_value": 0, "max_value": 10, "include_min": False})
        kind: T.StringType() = pa.Field(nullable=True, isin=["a", "b"], notin=["b"])
        count: T.LongType() = pa.Field(nullable=True, ge=1, lt=100)

    rows = [
        ("12-A", 5.0, "a", 1),
        ("x12-A", 0.0, "b", 0),
        ("12-AXYZ", 10.0, "c", 100),
        (None, None, None, None),
        ("99-Z", 10.5, "a", 99),
        ("1-A", 0.001, "", -5),
    ]
    frame = spark.createDataFrame(rows, "code string, size double, kind string, count long").cache()
    schema = Probe.to_schema()
    checked = 0
    for check in row_checks(Probe):
        if check.check == "not_nullable":
            continue
        (column_check,) = [c for c in schema.columns[check.column].checks if (c.error or c.name) == check.check]
        alone = pa.DataFrameSchema(
            {check.column: pa.Column(schema.columns[check.column].dtype, checks=[column_check], nullable=True)}
        )
        failing = frame.filter(check.fails).collect()
        passing = frame.filter(~check.fails)
        assert passing.count() + len(failing) == len(rows), check.check
        assert not alone.validate(passing.select(check.column)).pandera.errors, check.check
        for row in failing:
            single = spark.createDataFrame([row], frame.schema).select(check.column)
            assert alone.validate(single).pandera.errors, (check.check, row)
        checked += 1
    assert checked == 7
    assert frame.filter(F.col("code").rlike(r"\d{2}-[A-Z]") & ~F.col("code").rlike(r"^\d{2}-[A-Z]")).count() == 1


CRASHING_SWAP_CHILD = textwrap.dedent(
    """
    import os, signal, sys
    import dagster as dg
    from batch_platform import storage
    from batch_platform.config import parse_config
    from batch_platform.resources import build_resources
    from batch_platform_tests.lake_fixtures import register, widgets_asset

    real_rename = storage.HadoopFS.rename

    def rename_then_crash(fs, source, target):
        real_rename(fs, source, target)
        if "/_old/" in target:  # the live partition has just been moved out; its successor is not in yet
            os.killpg(os.getpgrp(), signal.SIGKILL)

    storage.HadoopFS.rename = rename_then_crash
    register()
    config = parse_config({"storage": {"lake_root": sys.argv[1]},
                           "spark": {"master": "local[2]", "ui_enabled": False, "shuffle_partitions": 2}})
    dg.materialize([widgets_asset(rows_per_quarter=3, version=7.0)],
                   resources=build_resources(config), partition_key="2024-01-01")
    """
)


def test_a_crash_between_the_two_renames_of_a_swap_is_restored_by_the_next_write(spark, resources, platform_config):
    """The swap moves the live partition out, then the staged one in. A process killed between the
    two leaves no partition for that quarter, its previous files under `_staging/<run>/_old/`; the
    next write of the table, whatever quarter it writes, puts them back before anything else."""
    assert _materialize([widgets_asset(rows_per_quarter=5)], resources, "2024-Q1").success
    before = _read(platform_config, "2024-Q1")
    staging = Path(platform_config.lake_root) / TABLE / "_staging"

    child = subprocess.Popen(
        [sys.executable, "-c", CRASHING_SWAP_CHILD, platform_config.lake_root],
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        _, err = child.communicate(timeout=300)
    finally:
        stop_process_group(child, term_grace=5, kill_grace=5)
    assert child.returncode == -signal.SIGKILL, err[-3000:]

    assert not _partition(platform_config, "2024-Q1").exists()
    (run,) = staging.iterdir()
    assert sorted(p.name for p in (run / "_old").iterdir()) == ["quarter=2024-Q1"]
    assert (run / "quarter=2024-Q1").is_dir()  # the staged successor, never published

    assert _materialize([widgets_asset(rows_per_quarter=4)], resources, "2024-Q2").success

    pd.testing.assert_frame_equal(_read(platform_config, "2024-Q1"), before)
    assert len(_read(platform_config, "2024-Q2")) == 4
    assert not staging.exists()


def test_cached_and_checkpointed_frames_are_not_cached_again(spark):
    """The IO manager persists an output for its passes unless it already is cached data, columns
    of it, or checkpointed rows (`ml/churn_scores`); a filter over a cache is persisted (small)."""
    from pyspark.sql import functions as F

    from batch_platform.io_manager import _served_from_cache

    def frame(rows: int):
        return spark.range(rows).withColumn("quarter", F.lit("2024-Q1"))

    cached = frame(50).persist()
    checkpointed = frame(40).localCheckpoint()
    try:
        assert _served_from_cache(cached) and _served_from_cache(cached.select("id"))
        assert _served_from_cache(checkpointed) and _served_from_cache(checkpointed.drop("quarter"))
        assert not _served_from_cache(frame(60))
        assert not _served_from_cache(cached.filter(F.col("id") > 3))
        assert not _served_from_cache(spark.createDataFrame(spark.sparkContext.parallelize([(1,)]), "id int"))
    finally:
        cached.unpersist()
