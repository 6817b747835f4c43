"""Jobs, the quarterly schedule, and the two command lines docs/operations.md documents:

- `dagster asset materialize -m batch_platform.definitions --select '*' --partition-range A...B`
  builds every quarter of the range in ONE run, with the same gold tables as quarter-by-quarter
  runs;
- `dagster job execute -m batch_platform.definitions -j training_set_job --tags
  '{"dagster/partition": "<key>"}'` builds one quarter's chain on top of the history (CI use).

The command lines run in subprocesses (their own JVM) against a temporary config
(`BATCH_PLATFORM_CONFIG`) and a temporary `DAGSTER_HOME`, from a generated landing zone, through
the real assets. The range run is the session's reference run (`reference_fixtures`), which other
modules read too; `job execute` runs on a copy of its lake and instance.
"""

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from pyspark.sql import functions as F

from batch_platform import delta, delta_log
from batch_platform.monitoring import REPORT_FOLDER
from batch_platform.partitions import to_key
from batch_platform_tests.gold_fixtures import lake_table, materialize_gold, naive
from batch_platform_tests.lake_fixtures import lake_arrow
from batch_platform_tests.platform import make_config
from batch_platform_tests.reference_fixtures import CI_QUARTER, GOLD_TABLES, copy_reference, run_cli
from batch_platform_tests.reference_fixtures import REFERENCE_QUARTERS as BACKFILL

UTC = UTC
SILVER_TABLES = ("operational_events", "interaction_logs", "partner_scores")


# ------------------------------------------------------------------------------ definitions
@pytest.fixture(scope="module")
def defs():
    from batch_platform.definitions import build_definitions
    from batch_platform_tests.platform import DEFAULTS

    return build_definitions(DEFAULTS)


@pytest.mark.parametrize(
    ("tick", "quarter"),
    [
        (datetime(2026, 1, 1, tzinfo=UTC), "2025-Q4"),
        (datetime(2025, 4, 1, tzinfo=UTC), "2025-Q1"),
        (datetime(2024, 7, 1, tzinfo=UTC), "2024-Q2"),
    ],
)
def test_schedule_asks_for_the_quarter_that_just_ended(defs, tick, quarter):
    schedule = defs.resolve_schedule_def("quarterly_schedule")
    assert schedule.job_name == "quarterly_job"
    assert schedule.cron_schedule == "0 0 1 */3 *"
    assert schedule.execution_timezone == "UTC"
    with dg.instance_for_test() as instance:
        result = schedule.evaluate_tick(dg.build_schedule_context(instance=instance, scheduled_execution_time=tick))
    assert [request.partition_key for request in result.run_requests] == [to_key(quarter)]


def test_jobs_select_what_they_document_and_every_asset_backfills_in_one_run(defs):
    training = defs.resolve_job_def("training_set_job")
    gold = defs.resolve_job_def("gold_job")
    keys = {key.to_user_string() for key in training.asset_layer.executable_asset_keys}
    assert {
        "bronze/operational",
        "silver/operational_events",
        "silver/operational_events_quarantine",
        "gold/customer_features",
        "gold/churn_labels",
        "gold/training_set",
    } <= keys
    assert {key.to_user_string() for key in gold.asset_layer.executable_asset_keys} == {
        f"gold/{t}" for t in (*GOLD_TABLES, "customer_history")
    }
    assert training.executor_def.name == "in_process"
    assert training.partitions_def is not None and training.partitions_def.get_first_partition_key() == "2024-01-01"
    graph = defs.resolve_asset_graph()
    for key in graph.materializable_asset_keys:
        assert graph.get(key).backfill_policy == dg.BackfillPolicy.single_run(), key


# ------------------------------------------------------------------------------ command lines
@pytest.fixture(scope="module")
def backfill(reference_run):
    """The range run (`reference_fixtures`): one run of every asset over BACKFILL, and what the
    instance held right after it."""
    return reference_run


def test_cli_partition_range_is_one_run_with_the_results_of_quarter_by_quarter_runs(backfill, tmp_path):
    (run,) = backfill["runs"]
    assert run.status == dg.DagsterRunStatus.SUCCESS
    assert run.tags["dagster/asset_partition_range_start"] == to_key(BACKFILL[0])
    assert run.tags["dagster/asset_partition_range_end"] == to_key(BACKFILL[-1])
    for table in GOLD_TABLES:
        assert backfill["materialized"][dg.AssetKey(["gold", table])] == {to_key(q) for q in BACKFILL}

    # Quarter by quarter, in process, from the same silver partitions.
    lake = backfill["lake"]
    separate = make_config(tmp_path)
    for table in (*SILVER_TABLES, "customer_profiles"):
        shutil.copytree(Path(lake) / "silver" / table, Path(separate.lake_root) / "silver" / table)
    every_gold = [dg.AssetKey(["gold", table]) for table in (*GOLD_TABLES, "customer_history")]
    for quarter in BACKFILL:  # the history of each quarter, which the next one's features read, too
        assert materialize_gold(separate, quarter, selection=every_gold).success
    rows = {}
    for table in GOLD_TABLES:
        for quarter in BACKFILL:
            one_run = lake_table(lake, f"gold/{table}", quarter)
            pd.testing.assert_frame_equal(one_run, lake_table(separate.lake_root, f"gold/{table}", quarter))
            rows[(table, quarter)] = len(one_run)
    assert rows[("training_set", "2024-Q1")] == 0  # no history before the first quarter
    assert rows[("training_set", "2024-Q3")] > 0


def _files_of(lake: str, quarters: list[str]) -> dict[tuple[str, str], list[str]]:
    """The data files of each lake table's `quarters` in its latest version, from the Delta logs."""
    found = {}
    for path in sorted(Path(lake).glob("*/*/_delta_log")):
        table = delta.open_table(str(path.parent))
        for quarter in quarters:
            found[(str(path.parent.relative_to(lake)), quarter)] = [f.path for f in delta.quarter_files(table, quarter)]
    return found


def test_cli_job_execute_builds_the_quarter_named_by_the_partition_tag(spark, backfill, tmp_path):
    from batch_platform import load_training_set
    from batch_platform.assets.gold import compute_customer_features

    ci = copy_reference(backfill, tmp_path)  # the reference lake and instance stay as the run left them
    lake = ci["lake"]
    history = _files_of(lake, BACKFILL)
    assert history[("gold/training_set", BACKFILL[-1])]
    versions = {table: delta.open_table(f"{lake}/gold/{table}").version for table in GOLD_TABLES}
    run_cli(
        ci,
        "job",
        "execute",
        "-m",
        "batch_platform.definitions",
        "-j",
        "training_set_job",
        "--tags",
        json.dumps({"dagster/partition": to_key(CI_QUARTER)}),
    )

    with dg.DagsterInstance.from_config(str(ci["home"])) as instance:
        (latest, *_) = instance.get_runs(limit=1)
        assert latest.job_name == "training_set_job" and latest.status == dg.DagsterRunStatus.SUCCESS
        assert latest.tags["dagster/partition"] == to_key(CI_QUARTER)
        event = instance.get_latest_materialization_event(dg.AssetKey(["gold", "customer_features"]))
        meta = {k: v.value for k, v in event.asset_materialization.metadata.items()}
        assert event.asset_materialization.partition == to_key(CI_QUARTER)
        assert meta["input_partitions"]["operational_events"] == BACKFILL
        assert meta["lookback_quarters_empty"] == []

    assert _files_of(lake, BACKFILL) == history  # no earlier quarter was touched
    for table, version in versions.items():  # one commit per gold table, replacing the quarter alone
        (commit,) = [c for c in delta_log.history(delta.open_table(f"{lake}/gold/{table}")) if c.version > version]
        assert commit.quarters == [CI_QUARTER] and commit.version == version + 1, table
    training = load_training_set(CI_QUARTER, lake_root=lake)
    assert len(training) > 0 and set(training["split"]) <= {"train", "eval"}

    # The CLI's features equal the function applied to silver 2024-Q1..Q3 as the lake holds them.
    def silver(table):
        return spark.read.format("delta").load(f"{lake}/silver/{table}").where(F.col("quarter").isin(BACKFILL))

    history = spark.read.format("delta").load(f"{lake}/gold/customer_history")  # the features read Q-1 of it
    expected = compute_customer_features(
        *(silver(t) for t in SILVER_TABLES), [CI_QUARTER], 4, history=history
    ).toPandas()
    expected = naive(expected.drop(columns="quarter").sort_values("customer_id").reset_index(drop=True))
    pd.testing.assert_frame_equal(naive(lake_table(lake, "gold/customer_features", CI_QUARTER)), expected)


# ------------------------------------------------------------------------------ the lake it wrote
def _lake_tables(lake: Path, defs) -> list[str]:
    """Every table the definitions materialise; the run must have written each of them, and nothing
    else but the monitoring checks' report folder."""
    tables = sorted("/".join(key.path) for key in defs.resolve_asset_graph().materializable_asset_keys)
    found = sorted(str(path.relative_to(lake)) for path in lake.glob("*/*") if path.is_dir())
    assert found == sorted([*tables, REPORT_FOLDER])
    return tables


def test_duckdb_reads_every_table_the_run_wrote(backfill, defs):
    """Every bronze, silver, quarantine and gold table, all its quarters at once, read by DuckDB over
    the table's Delta version (deltalake's pyarrow dataset: the files of that version, never a
    listing): DuckDB sees the rows, the non-null values of every column and the quarters pyarrow
    sees, and UTC timestamps."""
    import duckdb
    import pyarrow as pa

    lake = Path(backfill["lake"])
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    rows = {}
    for table in _lake_tables(lake, defs):
        opened = delta.open_table(str(lake / table))
        quarters = delta.materialised_quarters(opened)
        assert set(BACKFILL) <= set(quarters), table
        schema = delta.file_schema(opened)
        relation = con.from_arrow(opened.delta.to_pyarrow_dataset())
        assert sorted(relation.columns) == sorted([*schema.names, "quarter"]), table
        for name, kind in zip(relation.columns, relation.types, strict=True):
            if name != "quarter" and pa.types.is_timestamp(schema.field(name).type):
                assert str(kind) == "TIMESTAMP WITH TIME ZONE", (table, name)
        counts = ", ".join(f'count("{name}")' for name in schema.names)
        grouped = relation.aggregate(f"quarter, count(*), {counts}", "quarter").fetchall()
        seen = {row[0]: list(row[1:]) for row in grouped}
        expected = {}
        for quarter in quarters:
            data = delta.read_quarter(opened, quarter, columns=schema.names)
            if data.num_rows:
                expected[quarter] = [data.num_rows, *(data.num_rows - column.null_count for column in data.columns)]
        assert seen == expected, table
        rows[table] = sum(n for n, *_ in expected.values())
    # 60 customers train no model (the ml tables are written, schema only, and say why): only the
    # lake tables below ml must hold rows.
    assert all(rows[t] > 0 for t in rows if not t.endswith("_quarantine") and not t.startswith("ml/")), rows
    assert {"ml/churn_model", "ml/churn_scores"} <= set(rows), rows
    assert any(rows[t] > 0 for t in rows if t.endswith("_quarantine")), rows


def test_ingested_at_is_utc_and_the_time_of_the_run(backfill, defs):
    import pyarrow as pa

    (run,) = backfill["runs"]
    stats = backfill["run_stats"][run.run_id]
    began, ended = (datetime.fromtimestamp(t, UTC) for t in (stats.start_time, stats.end_time))
    lake = Path(backfill["lake"])
    stamped = {}
    for table in _lake_tables(lake, defs):
        for quarter in BACKFILL:
            data = lake_arrow(lake, table, quarter)
            if "_ingested_at" not in data.column_names:
                continue
            assert data.schema.field("_ingested_at").type == pa.timestamp("us", tz="UTC"), table
            values = data.column("_ingested_at").to_pylist()
            assert all(began <= value <= ended for value in values), (table, quarter, began, ended, min(values))
            stamped[table] = stamped.get(table, 0) + len(values)
    assert all(stamped.get(f"bronze/{source}") for source in ("operational", "logs", "external")), stamped
