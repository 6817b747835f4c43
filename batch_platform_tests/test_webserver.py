"""The platform behind a real `dagster-webserver` and `dagster-daemon`, driven through the UI's GraphQL.

What `make ui` users do — "Launch backfill" for a range of quarters, "Materialize" one quarter —
sent exactly as the UI sends it, executed by the daemon and by run worker processes of their own
(DefaultRunLauncher: one process and one SparkSession per run), then read back through GraphQL
and compared with the Parquet in the lake. The processes and the three launches are session
fixtures (`webserver_fixtures.py`): the backfill writes bronze and silver of 2024-Q1…2024-Q2,
then one run writes the gold tables of 2024-Q2 from them, and last a backfill of every asset
(ML included) over 2024-Q1…2024-Q3.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from batch_platform.partitions import to_key
from batch_platform_tests.lake_fixtures import lake_quarter
from batch_platform_tests.webserver_fixtures import (
    BACKFILL_ASSET_KEYS,
    CHECK_EXECUTIONS_QUERY,
    CHECK_PARTITION_DETAIL_QUERY,
    CHECK_PARTITION_HEALTH_QUERY,
    EVERYTHING_QUARTERS,
    GOLD_ASSET_KEYS,
    GRAPH_ASSET_KEYS,
    HISTORY_ASSET_KEY,
    OUT_OF_TIME_PENDING,
    OUT_OF_TIME_WARN,
    QUARTERS,
    metadata_values,
)

pytestmark = pytest.mark.webserver

Q1, Q2 = QUARTERS
Q1_KEY, Q2_KEY = to_key(Q1), to_key(Q2)  # 2024-01-01, 2024-04-01
EVERYTHING_KEYS = [to_key(q) for q in EVERYTHING_QUARTERS]
SCORES = ["ml", "churn_scores"]
OUT_OF_TIME = "out_of_time_performance"
SILVER = {"operational": "operational_events", "logs": "interaction_logs", "external": "partner_scores"}


def _figures(ui, asset_key: list[str], partition_key: str, run_id: str) -> dict:
    """The metadata of the one materialization `run_id` recorded for the asset partition."""
    events = ui.materializations(asset_key, partition_key, run_id)
    assert len(events) == 1, f"{'/'.join(asset_key)} {partition_key}: {len(events)} materializations by run {run_id}"
    return metadata_values(events[0])


def _local(path: str) -> str:
    return path.removeprefix("file:").rstrip("/")


def _written(lake: Path, asset_key: list[str], quarter: str, version: int) -> pd.DataFrame:
    """The rows of `quarter` in the Delta version a materialisation committed (`delta_version`)."""
    return lake_quarter(lake, "/".join(asset_key), quarter, version=version)


def _tags(run: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["tags"]}


def test_ui_backfill_of_two_quarters_is_one_run_and_graphql_reports_what_it_wrote(ui_backfill):
    ui, backfill_id = ui_backfill.ui, ui_backfill.launch_id
    lake = ui.lake.resolve()
    backfill = ui.wait_for_backfill(backfill_id)
    assert backfill["isAssetBackfill"] is True
    assert backfill["numPartitions"] == len(QUARTERS)
    assert sorted(k["path"] for k in backfill["assetSelection"]) == sorted(BACKFILL_ASSET_KEYS)
    statuses = {
        tuple(s["assetKey"]["path"]): (
            s["numPartitionsTargeted"],
            s["numPartitionsMaterialized"],
            s["numPartitionsFailed"],
        )
        for s in backfill["assetBackfillData"]["assetBackfillStatuses"]
    }
    assert statuses == {tuple(k): (2, 2, 0) for k in BACKFILL_ASSET_KEYS}  # exactly the two quarters, both done
    policies = ui.graphql(
        "query($keys: [AssetKeyInput!]) { assetNodes(assetKeys: $keys) { backfillPolicy { policyType } } }",
        {"keys": [{"path": k} for k in BACKFILL_ASSET_KEYS]},
    )["assetNodes"]
    assert [p["backfillPolicy"]["policyType"] for p in policies] == ["SINGLE_RUN"] * len(BACKFILL_ASSET_KEYS)

    # single-run backfill policy on every asset: the daemon made exactly ONE run for the range
    assert len(backfill["runs"]) == 1, [r["runId"] for r in backfill["runs"]]
    run = backfill["runs"][0]
    run_id = run["runId"]
    assert run["status"] == "SUCCESS"
    tags = _tags(run)
    assert tags["dagster/backfill"] == backfill_id
    assert (tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"]) == (Q1_KEY, Q2_KEY)
    assert sorted(k["path"] for k in run["assetSelection"]) == sorted(BACKFILL_ASSET_KEYS)
    # …and the runs list filtered by the backfill tag (what the backfill page shows) agrees
    tagged = ui.graphql(
        "query($tags: [ExecutionTag!]) { runsOrError(filter: {tags: $tags}) { ... on Runs { results { runId } } } }",
        {"tags": [{"key": "dagster/backfill", "value": backfill_id}]},
    )["runsOrError"]["results"]
    assert [r["runId"] for r in tagged] == [run_id]

    # every table is a Delta table with the two quarters; each quarter has its own materialization from
    # that run, whose path is the table's and whose row count is that of the Delta version it committed
    # (read at that version: the other UI fixtures commit later versions of the same quarters)
    versions = {}
    for asset_key in BACKFILL_ASSET_KEYS:
        for quarter in QUARTERS:
            figures = _figures(ui, asset_key, to_key(quarter), run_id)
            assert _local(figures["path"]) == str(lake / asset_key[0] / asset_key[1])
            versions[(*asset_key, quarter)] = version = figures["delta_version"]
            written = _written(lake, asset_key, quarter, version)
            assert figures["dagster/row_count"] == len(written), (asset_key, quarter)
            assert figures["quarter"] == quarter
        assert versions[(*asset_key, QUARTERS[0])] == versions[(*asset_key, QUARTERS[1])]  # one commit

    for quarter in QUARTERS:
        key = to_key(quarter)
        # bronze: every landing row of the quarter, from the files it lists
        bronze = _figures(ui, ["bronze", "operational"], key, run_id)
        assert _local(bronze["path"]) == str(lake / "bronze" / "operational")
        assert bronze["dagster/row_count"] == ui.manifest["rows_by_source_quarter"]["operational"][quarter] > 0
        assert bronze["files_read"] == len(bronze["landing_files"]) > 0

        # silver: the reconciliation figures are the lake's, and they add up; the quarantine, written
        # first, carries its own share of them (bronze, quarantined, rejects, rate)
        for source, table in SILVER.items():
            bronze_rows = len(_written(lake, ["bronze", source], quarter, versions[("bronze", source, quarter)]))
            silver_rows = len(_written(lake, ["silver", table], quarter, versions[("silver", table, quarter)]))
            quarantine = f"{table}_quarantine"
            quarantined = _written(lake, ["silver", quarantine], quarter, versions[("silver", quarantine, quarter)])
            for output in (table, f"{table}_quarantine"):
                figures = _figures(ui, ["silver", output], key, run_id)
                where = (output, quarter)
                assert (figures["bronze_rows"], figures["quarantined_rows"]) == (bronze_rows, len(quarantined)), where
                if output == table:
                    assert figures["silver_rows"] == silver_rows, where
                    assert figures["bronze_rows"] == (
                        figures["silver_rows"] + figures["quarantined_rows"] + figures["duplicates_removed"]
                    ), where
                else:
                    assert "silver_rows" not in figures and "duplicates_removed" not in figures, where
                assert figures["quarantine_rate"] == pytest.approx(len(quarantined) / bronze_rows), where
                rejects = {k.removeprefix("rejects/"): v for k, v in figures.items() if k.startswith("rejects/")}
                assert (
                    rejects
                    and rejects
                    == quarantined["_reject_reason"].value_counts().reindex(list(rejects), fill_value=0).to_dict()
                ), where
        events = _figures(ui, ["silver", "operational_events"], key, run_id)
        assert events["quarantined_rows"] > 0 and events["duplicates_removed"] > 0  # the sample data is dirty

    # the silver checks ran in the same run, one evaluation per quarter; reconciliation passed. Read by run,
    # not "latest": the other UI fixtures launch later runs over the same partitions, in any test order.
    checks = ui.graphql(
        """query($keys: [AssetKeyInput!]) { assetNodes(assetKeys: $keys) { assetKey { path }
             assetChecksOrError { ... on AssetChecks { checks { name } } } } }""",
        {"keys": [{"path": ["silver", table]} for table in SILVER.values()]},
    )["assetNodes"]
    names = [(node["assetKey"]["path"], c["name"]) for node in checks for c in node["assetChecksOrError"]["checks"]]
    assert len(names) >= 3 * 4 and {name for _, name in names} >= {"reconciliation", "quarantine_rate"}
    for asset_key, name in names:
        executions = ui.graphql(
            """query($key: AssetKeyInput!, $name: String!) { assetCheckExecutions(assetKey: $key, checkName: $name,
                 limit: 100) { runId status partition evaluation { success partition } } }""",
            {"key": {"path": asset_key}, "name": name},
        )["assetCheckExecutions"]
        of_run = [e for e in executions if e["runId"] == run_id]
        assert sorted(e["evaluation"]["partition"] for e in of_run) == [to_key(q) for q in QUARTERS], (name, of_run)
        if name == "reconciliation":
            assert all(e["status"] == "SUCCEEDED" and e["evaluation"]["success"] is True for e in of_run), of_run


def test_materialize_button_on_the_history_node_writes_exactly_that_quarter(ui_history):
    """One quarter of the customer history, from the silver profiles of that quarter only (the first)."""
    ui, run_id, run = ui_history.ui, ui_history.launch_id, ui_history.result
    assert run["status"] == "SUCCESS", ui.run_log(run_id)
    assert _tags(run)["dagster/partition"] == Q1_KEY
    assert sorted(k["path"] for k in run["assetSelection"]) == [HISTORY_ASSET_KEY]
    figures = _figures(ui, HISTORY_ASSET_KEY, Q1_KEY, run_id)
    frame = _written(ui.lake.resolve(), HISTORY_ASSET_KEY, Q1, figures["delta_version"])
    assert figures["versions"] == len(frame) > 0
    assert figures["input_partitions"] == {"customer_profiles": [Q1]}
    assert ui.materializations(HISTORY_ASSET_KEY, Q2_KEY, run_id) == []


def test_materialize_button_run_of_one_quarter_writes_gold_that_graphql_reports(ui_materialized):
    ui, run_id, run = ui_materialized.ui, ui_materialized.launch_id, ui_materialized.result
    lake = ui.lake.resolve()
    assert _tags(run)["dagster/partition"] == Q2_KEY
    assert run["jobName"] == "ALL_ASSETS_JOB"  # the global graph's "Materialize": the first job holding them all
    assert sorted(k["path"] for k in run["assetSelection"]) == sorted(GOLD_ASSET_KEYS)
    # DefaultRunLauncher: the run had a process of its own, neither the webserver's nor the daemon's
    run_pid = ui.run_process_id(run_id)
    assert run_pid not in {p.pid for p in ui.processes.values()} | {os.getpid()}

    tables = {}
    for asset_key in GOLD_ASSET_KEYS:
        figures = _figures(ui, asset_key, Q2_KEY, run_id)
        tables[asset_key[1]] = frame = _written(lake, asset_key, Q2, figures["delta_version"])
        assert _local(figures["path"]) == str(lake / asset_key[0] / asset_key[1]), asset_key
        assert figures["dagster/row_count"] == len(frame) > 0, asset_key
        assert figures["quarter"] == Q2, asset_key
        # the history has a row per version of a customer, the other gold tables one per customer
        assert figures["versions" if asset_key == HISTORY_ASSET_KEY else "customers"] == len(frame), asset_key
        # one partition, the one asked for: the run recorded nothing for 2024-Q1
        assert ui.materializations(asset_key, Q1_KEY, run_id) == [], asset_key

    # point in time: the features of 2024-Q2 read silver 2024-Q1 (written by the backfill) and only it
    features = _figures(ui, ["gold", "customer_features"], Q2_KEY, run_id)
    assert features["lookback_quarters_read"] == [Q1]
    assert features["silver_events_read"] == len(lake_quarter(lake, "silver/operational_events", Q1))
    labels = _figures(ui, ["gold", "churn_labels"], Q2_KEY, run_id)
    assert labels["churned"] == int(tables["churn_labels"]["label"].sum())
    training = _figures(ui, ["gold", "training_set"], Q2_KEY, run_id)
    split = tables["training_set"]["split"].value_counts()
    assert (training["train_rows"], training["eval_rows"]) == (split.get("train", 0), split.get("eval", 0))


def test_backfilling_every_asset_over_a_range_materialises_every_quarter(ui_backfill_everything):
    """Select all assets in the graph, "Materialize", a range of quarters, "Launch backfill": the
    backfill completes with every targeted quarter of every table materialised, gold and ML included
    (whose features read the quarters before their own), and every check evaluated per quarter."""
    ui, backfill = ui_backfill_everything.ui, ui_backfill_everything.result
    assert backfill["status"] in {"COMPLETED", "COMPLETED_SUCCESS"}
    assert backfill["isAssetBackfill"] is False  # a job backfill: exactly the quarters picked
    assert sorted(backfill["partitionNames"]) == EVERYTHING_KEYS
    assert len(backfill["runs"]) == 1 and backfill["runs"][0]["status"] == "SUCCESS"  # one run for the range
    run = backfill["runs"][0]
    assert run["jobName"] == "ALL_ASSETS_JOB"
    assert (_tags(run)["dagster/asset_partition_range_start"], _tags(run)["dagster/asset_partition_range_end"]) == (
        EVERYTHING_KEYS[0],
        EVERYTHING_KEYS[-1],
    )
    run_ids = {run["runId"]}
    written = {}
    for asset_key in GRAPH_ASSET_KEYS:
        for quarter in EVERYTHING_QUARTERS:
            events = [e for e in ui.materializations(asset_key, to_key(quarter)) if e["runId"] in run_ids]
            assert len(events) == 1, (asset_key, quarter, len(events))
            written[(*asset_key, quarter)] = metadata_values(events[0])
    assert written["gold", "customer_features", Q2]["lookback_quarters_read"] == [Q1]
    assert written["gold", "customer_features", Q1]["lookback_quarters_read"] == []
    nodes = ui.graphql(CHECK_EXECUTIONS_QUERY, {"assetKeys": [{"path": ["silver", t]} for t in SILVER.values()]})[
        "assetNodes"
    ]
    for node in nodes:
        for check in node["assetChecksOrError"]["checks"]:
            execution = check["executionForLatestMaterialization"]
            assert execution["runId"] in run_ids and execution["partition"] in EVERYTHING_KEYS, (
                node["assetKey"],
                check,
            )
            assert execution["evaluation"]["partition"] == execution["partition"]
            if check["name"] != "quarantine_rate":  # a small landing zone quarantines more than the WARN share
                assert execution["status"] == "SUCCEEDED", (node["assetKey"], check)


def test_the_out_of_time_check_is_recorded_per_quarter_against_that_quarters_scores(ui_backfill_everything):
    """What the check's Partitions tab reads: each quarter of the range evaluated, the WARN quarter
    failed with WARN severity, each evaluation tied to the latest materialisation of its quarter of
    `ml/churn_scores` (without that tie Dagster counts the quarter as never checked: "Missing")."""
    ui, run_id = ui_backfill_everything.ui, ui_backfill_everything.result["runs"][0]["runId"]
    check = ui.graphql(CHECK_PARTITION_HEALTH_QUERY, {"assetKey": {"path": SCORES}, "checkName": OUT_OF_TIME})[
        "assetNodeOrError"
    ]["assetCheckOrError"]
    keys = check["partitionKeysByDimension"][0]["partitionKeys"]
    assert check["partitionStatuses"]["__typename"] == "AssetCheckTimePartitionStatuses", check
    status = {}
    for span in check["partitionStatuses"]["ranges"]:
        for key in keys[keys.index(span["startKey"]) : keys.index(span["endKey"]) + 1]:
            status[key] = span["status"]
    warn, pending = to_key(OUT_OF_TIME_WARN), to_key(OUT_OF_TIME_PENDING)
    assert status == {key: "FAILED" if key == warn else "SUCCEEDED" for key in EVERYTHING_KEYS}, status

    with dg.DagsterInstance.from_config(ui.env["DAGSTER_HOME"]) as instance:
        latest = {
            key: instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey(SCORES), asset_partitions=[key]), limit=1
            ).records[0]
            for key in EVERYTHING_KEYS
        }
    for key in EVERYTHING_KEYS:
        executions = ui.graphql(
            CHECK_PARTITION_DETAIL_QUERY, {"assetKey": {"path": SCORES}, "checkName": OUT_OF_TIME, "partitionKey": key}
        )["assetCheckExecutions"]
        execution = executions[0]  # the latest, as the partition's detail pane shows it
        evaluation = execution["evaluation"]
        assert execution["runId"] == run_id and evaluation["partition"] == key, execution
        assert evaluation["severity"] == "WARN", execution  # the check never blocks, whatever its result
        target = evaluation["targetMaterialization"]
        assert target and int(target["storageId"]) == latest[key].storage_id, (key, target, latest[key].storage_id)
        assert target["runId"] == latest[key].event_log_entry.run_id == run_id
        if key == warn:
            assert execution["status"] == "FAILED" and evaluation["success"] is False, execution
            assert "below the recency baseline" in evaluation["description"], evaluation
        else:
            assert execution["status"] == "SUCCEEDED" and evaluation["success"] is True, execution
    pending_description = ui.graphql(
        CHECK_PARTITION_DETAIL_QUERY, {"assetKey": {"path": SCORES}, "checkName": OUT_OF_TIME, "partitionKey": pending}
    )["assetCheckExecutions"][0]["evaluation"]["description"]
    assert pending_description.startswith("pending:"), pending_description
