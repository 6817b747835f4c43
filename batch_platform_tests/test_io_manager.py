import json
from pathlib import Path

import dagster as dg
import pandas as pd
import pandera.pyspark as pa
import pyarrow
import pyarrow.parquet as pq
import pyspark.sql.types as T
import pytest
from dagster._serdes import serialize_value
from dagster_pyspark import PySparkResource
from deltalake import DeltaTable
from pyspark import StorageLevel
from pyspark.sql import functions as F

from batch_platform import delta
from batch_platform.metadata import PREVIEW_CELL_CHARS
from batch_platform.partitions import to_key
from batch_platform.schemas.base import LakeTable, Table
from batch_platform.tables import register as register_table
from batch_platform_tests.lake_fixtures import (
    WIDGETS_KEY,
    CommitHold,
    Gate,
    Widgets,
    kill_when,
    lake_quarter,
    parquet_whole,
    start_widgets_writer,
    wait_for,
    widget_reader,
    widget_rows,
    widgets_asset,
)
from batch_platform_tests.platform import TEST_SPARK, make_config, materialize_range, quarterly

TABLE = Path("test") / "widgets"


pytestmark = pytest.mark.usefixtures("widgets_table")


def _table(config) -> Path:
    return Path(config.lake_root) / TABLE


def _read(config, quarter, version=None) -> pd.DataFrame:
    frame = lake_quarter(config.lake_root, TABLE, quarter, version=version)
    return frame.sort_values("widget_id").reset_index(drop=True)


def _delta(config) -> DeltaTable:
    return DeltaTable(str(_table(config)))


def _files(config, quarter, version=None) -> list[str]:
    """The data files of `quarter` in the table's latest version (or `version`), from its log."""
    table = delta.open_table(str(_table(config)), version=version)
    return [f.path for f in delta.quarter_files(table, quarter)]


def test_round_trip_writes_one_delta_commit_partitioned_by_quarter(resources, platform_config):
    """`<lake>/test/widgets/` is a Delta table partitioned by `quarter`: `_delta_log/` beside the
    `quarter=` folders, one file per quarter, and ONE commit for the run's two quarters, whose
    `userMetadata` names the run, its quarters and rows, and every quarter materialised."""
    result = materialize_range([widgets_asset(rows_per_quarter=7)], resources, "2024-Q1", "2024-Q2")
    assert result.success
    for quarter in ("2024-Q1", "2024-Q2"):
        frame = _read(platform_config, quarter)
        assert len(frame) == 7
        assert list(frame.columns) == ["widget_id", "value", "seen_at"]
        assert frame["widget_id"].str.startswith(quarter).all()
        assert str(frame["seen_at"].dtype).startswith("datetime64")
        (file,) = _files(platform_config, quarter)
        assert pq.read_schema(_table(platform_config) / file).field("seen_at").type.unit == "us"
    assert sorted(p.name for p in _table(platform_config).iterdir()) == [
        "_delta_log",
        "quarter=2024-Q1",
        "quarter=2024-Q2",
    ]
    table = _delta(platform_config)
    assert table.version() == 0
    assert table.metadata().partition_columns == ["quarter"]
    # Each file's row count, and data-skipping statistics of the first column only (delta_spark.SESSION_CONF)
    assert table.metadata().configuration["delta.dataSkippingNumIndexedCols"] == "1"
    actions = pyarrow.table(table.get_add_actions(flatten=True)).to_pylist()
    assert sorted(a["num_records"] for a in actions) == [7, 7]
    assert {a["min.widget_id"][:7] for a in actions} == {"2024-Q1", "2024-Q2"}
    assert not any(name.startswith(("min.value", "max.seen_at", "null_count.value")) for name in actions[0])
    (commit,) = table.history()
    assert commit["operationParameters"]["predicate"] == "quarter IN ('2024-Q1', '2024-Q2')"
    assert json.loads(commit["userMetadata"]) == {
        "batch_platform": 1,
        "run_id": result.run_id,
        "quarters": ["2024-Q1", "2024-Q2"],
        "rows": {"2024-Q1": 7, "2024-Q2": 7},
        "materialised": ["2024-Q1", "2024-Q2"],
    }


def test_materialisation_metadata_per_partition(resources, platform_config):
    result = materialize_range([widgets_asset(rows_per_quarter=12)], resources, "2024-Q1", "2024-Q3")
    events = {
        e.materialization.partition: e.materialization.metadata for e in result.get_asset_materialization_events()
    }
    assert sorted(events) == ["2024-01-01", "2024-04-01", "2024-07-01"]
    for key, metadata in events.items():
        quarter = {"2024-01-01": "2024-Q1", "2024-04-01": "2024-Q2", "2024-07-01": "2024-Q3"}[key]
        assert metadata["dagster/row_count"].value == 12
        assert metadata["path"].value == str(_table(platform_config))
        assert metadata["delta_version"].value == 0
        assert metadata["quarter"].value == quarter
        preview = metadata["preview"].value
        assert len(preview.records) == 10
        assert all(record.data["widget_id"].startswith(quarter) for record in preview.records)
        columns = {c.name: c for c in metadata["dagster/column_schema"].schema.columns}
        assert columns["value"].type == "double" and columns["value"].description == "A non-negative value."
        assert columns["widget_id"].constraints.nullable is False


def test_a_megabyte_cell_reaches_the_event_log_cut_to_the_preview_limit(resources, platform_config):
    """The preview of a quarter is stored in the event log with its materialisation: a cell shows at
    most `PREVIEW_CELL_CHARS` characters, the last an ellipsis; the lake keeps the whole value."""
    long_id = "2024-Q1-" + "x" * 1_000_000

    @dg.asset(key=["test", "widgets"], partitions_def=quarterly, backfill_policy=dg.BackfillPolicy.single_run())
    def widgets(pyspark: PySparkResource):
        rows = widget_rows(pyspark.spark_session, "2024-Q1", 3)
        return rows.withColumn(
            "widget_id", F.when(F.col("widget_id") == "2024-Q1-0", long_id).otherwise(F.col("widget_id"))
        )

    with dg.instance_for_test() as instance:
        result = materialize_range([widgets], resources, "2024-Q1", instance=instance)
        stored = [serialize_value(event) for event in instance.all_logs(result.run_id)]
    assert result.success
    (materialization,) = result.get_asset_materialization_events()
    cells = [record.data["widget_id"] for record in materialization.materialization.metadata["preview"].value.records]
    assert long_id[: PREVIEW_CELL_CHARS - 1] + "…" in cells and PREVIEW_CELL_CHARS == 200
    assert max(len(cell) for cell in cells) == PREVIEW_CELL_CHARS
    assert not [event for event in stored if "x" * PREVIEW_CELL_CHARS in event]
    assert long_id in set(_read(platform_config, "2024-Q1")["widget_id"])


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
    result = materialize_range([widgets_asset(rows_per_quarter=3)], resources, "2024-Q1", "2024-Q2")
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
    assert materialize_range([widgets_asset(rows_per_quarter=4, version=1.0)], resources, "2024-Q1").success
    before = _read(platform_config, "2024-Q1")

    result = materialize_range(
        [widgets_asset(rows_per_quarter=6, version=2.0, bad_values=3)], resources, "2024-Q1", raise_on_error=False
    )

    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.user_failure_data
    assert "test/widgets: Pandera validation failed" in failure.description
    assert "column 'value', check greater_than_or_equal_to(0): 3 of 6 rows fail" in failure.description
    assert "3 of 6 rows fail" in failure.description
    assert "nothing was written" in failure.description
    pd.testing.assert_frame_equal(_read(platform_config, "2024-Q1"), before)
    assert _delta(platform_config).version() == 0


def test_a_check_failing_in_one_quarter_publishes_no_quarter_of_the_range(resources, platform_config):
    """A value check failing in one quarter and a repeated key in another both fail the step with
    their counts; every quarter of the range stays as it was: no commit is made."""
    from dagster_pyspark import PySparkResource

    from batch_platform_tests.lake_fixtures import widget_rows

    assert materialize_range([widgets_asset(rows_per_quarter=4, version=1.0)], resources, "2024-Q1", "2024-Q2").success
    before = {q: _read(platform_config, q) for q in ("2024-Q1", "2024-Q2")}

    @dg.asset(key=["test", "widgets"], partitions_def=quarterly, backfill_policy=dg.BackfillPolicy.single_run())
    def widgets(pyspark: PySparkResource):
        spark = pyspark.spark_session
        q1 = widget_rows(spark, "2024-Q1", 6, bad_values=2)
        q2 = widget_rows(spark, "2024-Q2", 6)
        return q1.unionByName(q2).unionByName(q2.limit(1))

    result = materialize_range([widgets], resources, "2024-Q1", "2024-Q2", raise_on_error=False)

    assert not result.success
    description = result.get_step_failure_events()[0].step_failure_data.user_failure_data.description
    assert "column 'value', check greater_than_or_equal_to(0): 2 of 13 rows fail" in description
    assert "table, check unique (quarter, widget_id): 1 of 13 rows fail" in description
    for quarter, frame in before.items():
        pd.testing.assert_frame_equal(_read(platform_config, quarter), frame)
    assert _delta(platform_config).version() == 0


def test_row_rules_nulls_and_uniqueness_are_counted_with_their_failing_rows(spark):
    from pyspark.sql import functions as F

    from batch_platform.schemas.validation import failure_report, validate_frame
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

    from batch_platform.schemas.base import QUARTER_PATTERN
    from batch_platform.schemas.validation import count_and_check, failure_report
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

    from batch_platform.schemas.validation import validate_frame
    from batch_platform_tests.lake_fixtures import Widgets, widget_rows

    frame = widget_rows(spark, "2024-Q1", 3).withColumn("value", F.col("value").cast("int"))
    frame = frame.withColumn("surplus", F.col("widget_id"))
    violations, _ = validate_frame(frame, Widgets)
    checks = {v.check for v in violations}
    assert "dtype('DoubleType()')" in checks and "column_in_schema" in checks
    assert all(v.failing_rows is None and v.detail for v in violations)


def test_rerun_replaces_exactly_that_quarter_in_one_commit_and_keeps_the_old_version(resources, platform_config):
    """Each run is one commit (versions go up by one); it replaces exactly its quarter (the other
    quarter's files are the same files), readers of the new version see the new rows only, and the
    previous version still returns the old rows (time travel), though its files lie in the folder."""
    first = materialize_range([widgets_asset(rows_per_quarter=5, version=1.0)], resources, "2024-Q1", "2024-Q2")
    q2_files = _files(platform_config, "2024-Q2")
    q1_before = _read(platform_config, "2024-Q1")
    q2_before = _read(platform_config, "2024-Q2")

    runs = [
        materialize_range([widgets_asset(rows_per_quarter=3, version=10.0)], resources, "2024-Q1") for _ in range(2)
    ]

    committed = [
        e.materialization.metadata["delta_version"].value
        for run in (first, *runs)
        for e in run.get_asset_materialization_events()
    ]
    assert committed == [0, 0, 1, 2]
    history = {commit["version"]: commit for commit in _delta(platform_config).history()}
    assert sorted(history) == [0, 1, 2]
    for version in (1, 2):
        assert history[version]["operationParameters"]["predicate"] == "quarter IN ('2024-Q1')"
        assert json.loads(history[version]["userMetadata"])["materialised"] == ["2024-Q1", "2024-Q2"]
    q1 = _read(platform_config, "2024-Q1")
    assert len(q1) == 3 and q1["value"].tolist() == [0.0, 10.0, 20.0]
    assert _files(platform_config, "2024-Q2") == q2_files
    pd.testing.assert_frame_equal(_read(platform_config, "2024-Q2"), q2_before)
    pd.testing.assert_frame_equal(_read(platform_config, "2024-Q1", version=0), q1_before)
    pd.testing.assert_frame_equal(_read(platform_config, "2024-Q1", version=1), q1)
    on_disk = {p.name for p in (_table(platform_config) / "quarter=2024-Q1").glob("*.parquet")}
    assert len(on_disk) == 3 and set(_files(platform_config, "2024-Q1", version=0)) < {
        f"quarter=2024-Q1/{name}" for name in on_disk
    }


def test_an_empty_quarter_is_a_materialised_partition(resources, platform_config):
    """A quarter without rows has no file in the table, yet it is materialised: its commit's metadata
    lists it, so a strict reader reads it as empty, and so do the readers outside Spark. Emptying a
    quarter that had rows removes its files in one commit."""
    all_resources = {**resources, "mem_io_manager": dg.InMemoryIOManager()}
    assert materialize_range([widgets_asset(rows_per_quarter=0)], resources, "2024-Q3").success
    table = delta.open_table(str(_table(platform_config)))
    assert table.version == 0 and _files(platform_config, "2024-Q3") == []
    assert delta.materialised_quarters(table) == ["2024-Q3"]
    assert json.loads(_delta(platform_config).history()[0]["userMetadata"])["rows"] == {"2024-Q3": 0}
    empty = _read(platform_config, "2024-Q3")
    assert empty.empty and list(empty.columns) == ["widget_id", "value", "seen_at"]
    reader = dg.materialize(
        [widgets_asset(), widget_reader(start_offset=-1)],
        selection=["test/reader"],
        resources=all_resources,
        partition_key=to_key("2024-Q4"),
    )
    assert reader.output_for_node("test__reader") == {}

    assert materialize_range([widgets_asset(rows_per_quarter=4)], resources, "2024-Q3").success
    assert len(_read(platform_config, "2024-Q3")) == 4
    assert materialize_range([widgets_asset(rows_per_quarter=0)], resources, "2024-Q3").success
    table = delta.open_table(str(_table(platform_config)))
    assert table.version == 2 and _files(platform_config, "2024-Q3") == []
    assert _read(platform_config, "2024-Q3").empty and delta.materialised_quarters(table) == ["2024-Q3"]


def test_loading_a_range_and_missing_quarters(resources, platform_config):
    """A quarter never materialised fails the reader naming the table and the quarter — also when
    the table does not exist yet — and is never read as empty; a quarter materialised empty is."""
    all_resources = {**resources, "mem_io_manager": dg.InMemoryIOManager()}
    widgets = widgets_asset()

    def read(**kwargs):
        return dg.materialize(
            [widgets, widget_reader()],
            selection=["test/reader"],
            resources=all_resources,
            partition_key=to_key("2024-Q4"),
            **kwargs,
        )

    def failure(result) -> str:
        assert not result.success
        (event,) = result.get_step_failure_events()
        assert event.step_key == "test__reader"
        return event.step_failure_data.user_failure_data.description

    no_table = failure(read(raise_on_error=False))
    assert "test/widgets: quarter(s) 2024-Q2, 2024-Q3 have never been materialised" in no_table
    assert str(_table(platform_config)) in no_table and "is not read as empty" in no_table

    assert materialize_range([widgets_asset(rows_per_quarter=4)], resources, "2024-Q2").success
    assert "test/widgets: quarter(s) 2024-Q3 have never been materialised" in failure(read(raise_on_error=False))

    assert materialize_range([widgets_asset(rows_per_quarter=0)], resources, "2024-Q3").success
    assert read().output_for_node("test__reader") == {"2024-Q2": 4}

    assert materialize_range([widgets_asset(rows_per_quarter=6)], resources, "2024-Q3").success
    assert read().output_for_node("test__reader") == {"2024-Q2": 4, "2024-Q3": 6}


def test_quarters_before_the_first_partition_are_not_read_and_the_others_must_exist(resources, platform_config):
    """The partitions start at 2024-Q1. A lookback reaching before it (the mapping allows upstream
    partitions that do not exist, as gold's does) is handed only the quarters that are partitions:
    the reader of 2024-Q1 reads nothing, without even a table; the reader of 2024-Q2 reads 2024-Q1
    alone, which must have been materialised (2023-Q4 is not named: it is not a partition)."""
    all_resources = {**resources, "mem_io_manager": dg.InMemoryIOManager()}

    def read(quarter: str, **kwargs):
        return dg.materialize(
            [widgets_asset(), widget_reader(start_offset=-2)],
            selection=["test/reader"],
            resources=all_resources,
            partition_key=to_key(quarter),
            **kwargs,
        )

    assert read("2024-Q1").output_for_node("test__reader") == {}
    assert not _table(platform_config).exists()
    refused = read("2024-Q2", raise_on_error=False)
    (failure,) = refused.get_step_failure_events()
    message = failure.step_failure_data.user_failure_data.description
    assert "test/widgets: quarter(s) 2024-Q1 have never been materialised" in message and "2023" not in message

    assert materialize_range([widgets_asset(rows_per_quarter=3)], resources, "2024-Q1").success
    assert read("2024-Q2").output_for_node("test__reader") == {"2024-Q1": 3}


class WidgetsWithColour(Widgets):
    colour: T.StringType() = pa.Field(nullable=True, description="Added to the declaration later.")


class WidgetsWithTextValues(LakeTable):
    widget_id: T.StringType() = pa.Field(nullable=False)
    value: T.StringType() = pa.Field(nullable=True, description="Retyped: text now.")
    seen_at: T.TimestampType() = pa.Field(nullable=True)
    colour: T.StringType() = pa.Field(nullable=True)

    class Config:
        strict = True


def test_a_declared_new_column_evolves_the_schema_and_a_missing_or_retyped_one_fails_before_committing(
    resources, platform_config
):
    """Adding a column to a declaration is schema evolution: the next write adds it to the Delta
    table (`mergeSchema`), and the quarters written before read null for it. A write lacking a column
    the table has, or giving one another type, fails naming the column, with nothing committed."""
    assert materialize_range([widgets_asset(rows_per_quarter=3)], resources, "2024-Q1").success

    register_table(Table(WIDGETS_KEY, WidgetsWithColour))  # `widgets_table` unregisters it after the test

    @dg.asset(key=["test", "widgets"], partitions_def=quarterly)
    def coloured(context: dg.AssetExecutionContext, pyspark: PySparkResource):
        rows = widget_rows(pyspark.spark_session, context.partition_key, 2)
        return rows.withColumn("colour", F.lit("red"))

    @dg.asset(
        key=["test", "reader"],
        partitions_def=quarterly,
        ins={"widgets": dg.AssetIn(key=["test", "widgets"], partition_mapping=_previous_two())},
        io_manager_key="mem_io_manager",
    )
    def reader(widgets):
        return widgets.toPandas().sort_values("widget_id", ignore_index=True)

    assert materialize_range([coloured], resources, "2024-Q2").success
    assert _delta(platform_config).version() == 1
    read = dg.materialize(
        [coloured, reader],
        selection=["test/reader"],
        resources={**resources, "mem_io_manager": dg.InMemoryIOManager()},
        partition_key=to_key("2024-Q3"),
    ).output_for_node("test__reader")
    assert list(read.columns) == ["widget_id", "value", "seen_at", "colour", "quarter"]  # as declared, quarter last
    assert read["colour"].tolist() == [None, None, None, "red", "red"]

    register_table(Table(WIDGETS_KEY, Widgets))
    dropped = materialize_range([widgets_asset(rows_per_quarter=2)], resources, "2024-Q3", raise_on_error=False)
    message = dropped.get_step_failure_events()[0].step_failure_data.user_failure_data.description
    assert "test/widgets: the columns written differ from the Delta table's" in message
    assert "the table has column(s) colour, which the declaration of test/widgets lacks" in message
    assert "Nothing was committed" in message

    register_table(Table(WIDGETS_KEY, WidgetsWithTextValues))

    @dg.asset(key=["test", "widgets"], partitions_def=quarterly)
    def retyped(context: dg.AssetExecutionContext, pyspark: PySparkResource):
        rows = widget_rows(pyspark.spark_session, context.partition_key, 2)
        return rows.withColumn("value", F.col("value").cast("string")).withColumn("colour", F.lit("blue"))

    changed = materialize_range([retyped], resources, "2024-Q3", raise_on_error=False)
    message = changed.get_step_failure_events()[0].step_failure_data.user_failure_data.description
    assert "column(s) changed type: value (double in the table, string written)" in message
    assert _delta(platform_config).version() == 1


def _previous_two() -> dg.TimeWindowPartitionMapping:
    return dg.TimeWindowPartitionMapping(start_offset=-2, end_offset=-1)


def test_a_folder_of_plain_parquet_partitions_is_never_turned_into_a_mixed_table(spark, resources, platform_config):
    """A lake written before the lake became Delta holds `quarter=` folders and no `_delta_log`: the
    IO manager neither writes a Delta table among them nor reads them as never materialised without
    saying why."""
    from batch_platform_tests.lake_fixtures import widget_rows

    old = _table(platform_config) / "quarter=2024-Q1"
    widget_rows(spark, "2024-Q1", 3).drop("quarter").write.parquet(str(old))

    result = materialize_range([widgets_asset(rows_per_quarter=2)], resources, "2024-Q2", raise_on_error=False)
    message = result.get_step_failure_events()[0].step_failure_data.user_failure_data.description
    assert "test/widgets: nothing was written" in message
    assert "holds Parquet partition folders but no Delta table" in message
    assert not (_table(platform_config) / "_delta_log").exists()


QUARTERS = ("2024-Q1", "2024-Q2")
BEFORE_FILES = "before its first data file"
SOME_FILES = "with one quarter's data file written and the other's not"
ALL_FILES = "with every data file written, before its log entry"
AFTER_COMMIT = "just after its log entry"


def _new_files(table: Path, kept: set[Path]) -> dict[str, list[Path]]:
    """Per quarter, the data files in its folder that were not there before the writer started."""
    return {q: sorted(set((table / f"quarter={q}").glob("*.parquet")) - kept) for q in QUARTERS}


def _seen(spark, table: Path) -> dict[str, dict[str, list]]:
    """Per reader — delta-rs through `batch_platform.delta`, and Spark with Delta — and per quarter,
    the (widget_id, value) pairs the table's latest version holds."""
    by_spark = spark.read.format("delta").load(str(table)).select("quarter", "widget_id", "value").collect()
    seen = {"delta-rs": {}, "spark": {}}
    for quarter in QUARTERS:
        frame = lake_quarter(table.parents[1], TABLE, quarter)
        seen["delta-rs"][quarter] = sorted(zip(frame["widget_id"], frame["value"], strict=True))
        seen["spark"][quarter] = sorted((r["widget_id"], r["value"]) for r in by_spark if r["quarter"] == quarter)
    return seen


def _whole(rows: int, version: float) -> dict[str, dict[str, list]]:
    """What both readers see of a version whose run wrote `rows` widgets per quarter with `version`."""
    quarter = {q: sorted((f"{q}-{i}", i * version) for i in range(rows)) for q in QUARTERS}
    return {"delta-rs": quarter, "spark": quarter}


@pytest.fixture(scope="module")
def clean_runs(spark, tmp_path_factory) -> dict[bool, dict]:
    """What the run after a killed writer must leave, as a clean run leaves it: per case (whether the
    table had a version before), what the readers see, the quarters materialised, the version made."""
    from batch_platform.resources import build_resources
    from batch_platform_tests.lake_fixtures import register, unregister

    register()
    try:
        found = {}
        for existed in (True, False):
            config = make_config(tmp_path_factory.mktemp("clean"))
            resources = build_resources(config)
            if existed:
                assert materialize_range([widgets_asset(rows_per_quarter=50)], resources, *QUARTERS).success
            assert materialize_range([widgets_asset(rows_per_quarter=8, version=2.0)], resources, *QUARTERS).success
            table = _table(config)
            opened = delta.open_table(str(table))
            found[existed] = {
                "seen": _seen(spark, table),
                "materialised": delta.materialised_quarters(opened),
                "files": {q: len(delta.quarter_files(opened, q)) for q in QUARTERS},
            }
        return found
    finally:
        unregister()


@pytest.mark.parametrize(
    ("existed", "step"),
    [(True, BEFORE_FILES), (True, SOME_FILES), (True, ALL_FILES), (True, AFTER_COMMIT), (False, SOME_FILES)],
    ids=["before-files", "some-files", "all-files-no-log-entry", "after-log-entry", "first-write-some-files"],
)
def test_a_writer_killed_mid_commit_leaves_a_whole_version_readable_and_the_next_run_succeeds(
    spark, resources, platform_config, tmp_path, clean_runs, existed, step
):
    """SIGKILL a process replacing two quarters of a table in one commit, at each step of its write:
    held inside its Spark write job before it opened a data file (`Gate`); once one quarter's data
    file is whole and the other's is not; with every data file whole, held inside its commit before
    its log entry `_delta_log/00000000000000000001.json` exists (`CommitHold`); just after that entry.
    Before the entry, both readers — delta-rs and Spark — see the previous version, whole (the killed
    writer's files lie in the folders, in no version); after it, the new version, whole. On a table's
    first write killed with files written, there is still no table to read. Every time, the next run
    succeeds and leaves the table as a clean run does: the same rows for both readers, the same
    quarters materialised, its own file per quarter and none of the killed writer's."""
    table = _table(platform_config)
    if existed:
        assert materialize_range([widgets_asset(rows_per_quarter=50)], resources, *QUARTERS).success
        assert _seen(spark, table) == _whole(50, 1.0)
    kept = set(table.glob("quarter=*/*.parquet"))
    entry = table / "_delta_log" / f"{1:020d}.json"
    raw = {"storage": {"lake_root": platform_config.lake_root}, "spark": TEST_SPARK}
    gate = Gate(tmp_path / "gate") if step in (BEFORE_FILES, ALL_FILES) else None
    # One write task, the quarters' files one after the other; for SOME_FILES a small quarter before a
    # large one, so that the kill has the large one's write to land in.
    rows = {QUARTERS[0]: 1_000, QUARTERS[1]: 400_000} if step == SOME_FILES else 1_000
    writer = start_widgets_writer(raw, rows, *QUARTERS, gate=gate)

    def one_quarter_written() -> bool:
        first, second = _new_files(table, kept).values()
        return any(map(parquet_whole, first)) and not any(map(parquet_whole, second))

    if step == BEFORE_FILES:
        kill_when(writer, gate.waiting.exists, step)
    elif step == SOME_FILES:
        kill_when(writer, one_quarter_written, step)
    elif step == ALL_FILES:
        wait_for(writer, gate.waiting.exists, "its Spark write job")
        hold = CommitHold(table, 1)
        try:
            gate.release()
            kill_when(writer, hold.holding, step)
        finally:
            hold.remove()
    else:
        kill_when(writer, entry.exists, step)

    # The kill came at the step claimed.
    written = _new_files(table, kept)
    assert entry.exists() == (step == AFTER_COMMIT)
    if step == BEFORE_FILES:
        assert written == {q: [] for q in QUARTERS}
    elif step == SOME_FILES:
        assert one_quarter_written()
    elif step == ALL_FILES:
        assert all(len(files) == 1 and parquet_whole(files[0]) for files in written.values()), written

    if not existed:
        from delta.tables import DeltaTable as SparkDeltaTable

        with pytest.raises(delta.TableMissing):
            delta.open_table(str(table))
        assert not SparkDeltaTable.isDeltaTable(spark, str(table))
    elif step == AFTER_COMMIT:
        assert delta.open_table(str(table)).version == 1
        assert _seen(spark, table) == _whole(rows, 7.0)
        assert len(lake_quarter(platform_config.lake_root, TABLE, QUARTERS[0], version=0)) == 50  # time travel
    else:
        assert delta.open_table(str(table)).version == 0
        assert _seen(spark, table) == _whole(50, 1.0)

    result = materialize_range([widgets_asset(rows_per_quarter=8, version=2.0)], resources, *QUARTERS)
    assert result.success
    expected = (2 if step == AFTER_COMMIT else 1) if existed else 0
    assert {e.materialization.metadata["delta_version"].value for e in result.get_asset_materialization_events()} == {
        expected
    }
    opened = delta.open_table(str(table))
    clean = clean_runs[existed]
    assert opened.version == expected
    assert _seen(spark, table) == clean["seen"]
    assert delta.materialised_quarters(opened) == clean["materialised"]
    assert {q: len(delta.quarter_files(opened, q)) for q in QUARTERS} == clean["files"]
    in_version = {table / f.path for q in QUARTERS for f in delta.quarter_files(opened, q)}
    assert not in_version & {path for files in written.values() for path in files}


def test_counted_checks_agree_with_pandera_on_every_row(spark):
    """The one-pass counting selects failing rows by `BUILTIN_FAILING_ROWS`: on the same rows,
    Pandera's own validation passes exactly the rows the counting calls passing and fails each row it
    counts as failing — `str_matches` anchored, bounds exclusive where declared, NULLs passing."""
    import pandera.pyspark as pa
    import pyspark.sql.types as T
    from pyspark.sql import functions as F

    from batch_platform.schemas.validation import BUILTIN_FAILING_ROWS, row_checks

    class Probe(pa.DataFrameModel):
        code: T.StringType() = pa.Field(
            nullable=True,
            str_matches=r"\d{2}-[A-Z]",
            str_length={"max_value": 5},
            str_contains=r"-[A-Z]",
            str_startswith="1",
            str_endswith="A",
        )
        size: T.DoubleType() = pa.Field(nullable=True, in_range={"min_value": 0, "max_value": 10, "include_min": False})
        kind: T.StringType() = pa.Field(nullable=True, isin=["a", "b"], notin=["b"], eq="a", ne="c")
        count: T.LongType() = pa.Field(nullable=True, ge=1, lt=100, gt=0, le=99)

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
    checked = set()
    for check in row_checks(Probe):
        if check.check == "not_nullable":
            continue
        (column_check,) = [c for c in schema.columns[check.column].checks if (c.error or c.name) == check.check]
        checked.add(column_check.name)
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
    assert checked == set(BUILTIN_FAILING_ROWS)  # every built-in counted row by row, each held against Pandera
    assert frame.filter(F.col("code").rlike(r"\d{2}-[A-Z]") & ~F.col("code").rlike(r"^\d{2}-[A-Z]")).count() == 1


def test_the_io_manager_alone_caches_what_it_writes(spark, resources, platform_config):
    """The IO manager validates and writes the frame as the asset returns it, caching nothing on top
    of it unless the table is declared `cached` (a projection of the asset's cache is computed from
    that cache at every pass: `Gate` holds a write that way); a declared `cached` output is persisted
    for the passes (its `record` sees it cached) and released once written; the asset's own cache
    is the asset's to release."""
    returned = {}

    def widgets() -> dg.AssetsDefinition:
        @dg.asset(key=WIDGETS_KEY, partitions_def=quarterly, backfill_policy=dg.BackfillPolicy.single_run())
        def asset(context: dg.AssetExecutionContext, pyspark: PySparkResource):
            base = widget_rows(pyspark.spark_session, context.partition_keys[0], 4).persist()
            returned.update(base=base, output=base.select(*base.columns[::-1]))
            return returned["output"]

        return asset

    assert materialize_range([widgets()], resources, "2024-Q1").success
    output, base = returned["output"], returned["base"]
    try:
        assert not output.is_cached and output.storageLevel == StorageLevel.NONE  # nothing cached on top
        assert base.is_cached  # the asset's own cache is the asset's to release
    finally:
        base.unpersist()

    def seen_cached(written):
        return {quarter: {"cached_while_recorded": written.frame.is_cached} for quarter in written.quarters}

    register_table(Table(WIDGETS_KEY, Widgets, cached=True, record=seen_cached))  # unregistered by `widgets_table`
    result = materialize_range([widgets()], resources, "2024-Q1")
    assert result.success
    returned["base"].unpersist()
    (materialised,) = result.get_asset_materialization_events()
    assert materialised.materialization.metadata["cached_while_recorded"].value is True
    assert not returned["output"].is_cached  # released once written
    assert len(_read(platform_config, "2024-Q1")) == 4
