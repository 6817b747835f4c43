"""The platform behind a real `dagster-webserver` and `dagster-daemon`, driven through the UI's GraphQL.

What `make ui` users do — "Launch backfill" for a range of quarters, "Materialize" one quarter —
sent exactly as the UI sends it, executed by the daemon and by run worker processes of their own
(DefaultRunLauncher: one process and one SparkSession per run), then read back through GraphQL
and compared with the Parquet in the lake. The processes and the two launches are session
fixtures (`webserver_fixtures.py`): the backfill writes bronze and silver of 2024-Q1…2024-Q2,
then one run writes the gold tables of 2024-Q2 from them.
"""

from __future__ import annotations

import os

import pandas as pd
import pytest

from batch_platform.partitions import to_key
from batch_platform_tests.webserver_fixtures import (
    ALL_ASSET_KEYS,
    BACKFILL_ASSET_KEYS,
    CHECK_EXECUTIONS_QUERY,
    GOLD_ASSET_KEYS,
    QUARTERS,
    metadata_values,
)

pytestmark = pytest.mark.webserver

Q1, Q2 = QUARTERS
Q1_KEY, Q2_KEY = to_key(Q1), to_key(Q2)  # 2024-01-01, 2024-04-01
SILVER = {"operational": "operational_events", "logs": "interaction_logs", "external": "partner_scores"}


def _figures(ui, asset_key: list[str], partition_key: str, run_id: str) -> dict:
    """The metadata of the one materialization `run_id` recorded for the asset partition."""
    events = ui.materializations(asset_key, partition_key, run_id)
    assert len(events) == 1, f"{'/'.join(asset_key)} {partition_key}: {len(events)} materializations by run {run_id}"
    return metadata_values(events[0])


def _local(path: str) -> str:
    return path.removeprefix("file:").rstrip("/")


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

    # every table has a Parquet partition per quarter; each has its own materialization from that run,
    # whose row count and path are those of the Parquet written
    for asset_key in BACKFILL_ASSET_KEYS:
        for quarter in QUARTERS:
            folder = lake / asset_key[0] / asset_key[1] / f"quarter={quarter}"
            assert list(folder.glob("*.parquet")), f"no Parquet in {folder}"
            figures = _figures(ui, asset_key, to_key(quarter), run_id)
            assert _local(figures["path"]) == str(folder)
            assert figures["dagster/row_count"] == len(pd.read_parquet(folder)), (asset_key, quarter)
            assert figures["quarter"] == quarter

    for quarter in QUARTERS:
        key = to_key(quarter)
        # bronze: every landing row of the quarter, from the files it lists
        bronze = _figures(ui, ["bronze", "operational"], key, run_id)
        assert _local(bronze["path"]) == str(lake / "bronze" / "operational" / f"quarter={quarter}")
        assert bronze["dagster/row_count"] == ui.manifest["rows_by_source_quarter"]["operational"][quarter] > 0
        assert bronze["files_read"] == len(bronze["landing_files"]) > 0

        # silver: the reconciliation figures, on both outputs, are the lake's, and they add up
        for source, table in SILVER.items():
            bronze_rows = len(pd.read_parquet(lake / "bronze" / source / f"quarter={quarter}"))
            silver_rows = len(pd.read_parquet(lake / "silver" / table / f"quarter={quarter}"))
            quarantined = pd.read_parquet(lake / "silver" / f"{table}_quarantine" / f"quarter={quarter}")
            for output in (table, f"{table}_quarantine"):
                figures = _figures(ui, ["silver", output], key, run_id)
                where = (output, quarter)
                assert (figures["bronze_rows"], figures["silver_rows"], figures["quarantined_rows"]) == (
                    bronze_rows,
                    silver_rows,
                    len(quarantined),
                ), where
                assert figures["bronze_rows"] == (
                    figures["silver_rows"] + figures["quarantined_rows"] + figures["duplicates_removed"]
                ), where
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
        folder = lake / asset_key[0] / asset_key[1] / f"quarter={Q2}"
        tables[asset_key[1]] = frame = pd.read_parquet(folder)
        figures = _figures(ui, asset_key, Q2_KEY, run_id)
        assert _local(figures["path"]) == str(folder), asset_key
        assert figures["dagster/row_count"] == len(frame) > 0, asset_key
        assert figures["quarter"] == Q2, asset_key
        assert figures["customers"] == len(frame), asset_key
        # one partition, the one asked for: the run recorded nothing for 2024-Q1
        assert ui.materializations(asset_key, Q1_KEY, run_id) == [], asset_key

    # point in time: the features of 2024-Q2 read silver 2024-Q1 (written by the backfill) and only it
    features = _figures(ui, ["gold", "customer_features"], Q2_KEY, run_id)
    assert features["lookback_quarters_read"] == [Q1]
    assert features["silver_events_read"] == len(
        pd.read_parquet(lake / "silver" / "operational_events" / f"quarter={Q1}")
    )
    labels = _figures(ui, ["gold", "churn_labels"], Q2_KEY, run_id)
    assert labels["churned"] == int(tables["churn_labels"]["label"].sum())
    training = _figures(ui, ["gold", "training_set"], Q2_KEY, run_id)
    split = tables["training_set"]["split"].value_counts()
    assert (training["train_rows"], training["eval_rows"]) == (split.get("train", 0), split.get("eval", 0))


def test_backfilling_every_asset_over_a_range_materialises_every_quarter(ui_backfill_everything):
    """Select all assets in the graph, "Materialize", a range of quarters, "Launch backfill": the
    backfill completes with every targeted quarter of every table materialised, gold included
    (whose features read the quarters before their own), and every check evaluated per quarter."""
    ui, backfill = ui_backfill_everything.ui, ui_backfill_everything.result
    assert backfill["status"] in {"COMPLETED", "COMPLETED_SUCCESS"}
    assert backfill["isAssetBackfill"] is False  # a job backfill: exactly the quarters picked
    assert sorted(backfill["partitionNames"]) == [Q1_KEY, Q2_KEY]
    assert len(backfill["runs"]) == 1 and backfill["runs"][0]["status"] == "SUCCESS"  # one run for the range
    run = backfill["runs"][0]
    assert run["jobName"] == "ALL_ASSETS_JOB"
    assert (_tags(run)["dagster/asset_partition_range_start"], _tags(run)["dagster/asset_partition_range_end"]) == (
        Q1_KEY,
        Q2_KEY,
    )
    run_ids = {run["runId"]}
    written = {}
    for asset_key in ALL_ASSET_KEYS:
        for quarter in QUARTERS:
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
            assert execution["runId"] in run_ids and execution["partition"] in {Q1_KEY, Q2_KEY}, (
                node["assetKey"],
                check,
            )
            assert execution["evaluation"]["partition"] == execution["partition"]
            if check["name"] != "quarantine_rate":  # 40 customers quarantine more than the WARN share
                assert execution["status"] == "SUCCEEDED", (node["assetKey"], check)
