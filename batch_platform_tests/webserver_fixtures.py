"""A live `dagster-webserver` + `dagster-daemon run` on loopback, shared by the webserver and browser tests.

One pair of processes per test session (`dagster_ui`), with a Dagster home, a config file, a
landing zone (2024-Q1…2024-Q3, 200 customers) and a lake of its own under pytest's temp dir. Runs
are launched the way the UI launches them (the GraphQL documents below are the UI's own, from
dagster-webserver 1.13's bundle), so the webserver, the daemon (queued-run coordinator and
backfill daemon), the code servers and the run workers (DefaultRunLauncher: every run is its own
process with its own SparkSession) are all real.

Once per session, a thread of its own (`UILaunches`) starts them and launches the backfill the
UI's "Launch backfill" makes for bronze → silver over 2024-Q1…2024-Q2 (`ui_backfill`), the run
"Materialize" on `gold/customer_history` → 2024-Q1 makes (`ui_history`), then the
run "Materialize all" (gold group) → 2024-Q2 → "Launch 1 run" makes (`ui_materialized`), and last
what "select all → Materialize → 2024-Q1…2024-Q3 → Launch backfill" on the asset graph makes
(`ui_backfill_everything`), the ML assets and their out-of-time check included. conftest.py starts
it with the session and runs these tests last, so the waits for the backfill daemon overlap the
other tests. The tests assert on what the launches wrote; the browser test and the docs'
screenshots look at the resulting instance.

The landing zone is small yet shows each kind of out-of-time result: 2024-Q1 has no history,
so no model and no scores; 2024-Q2 trains (200 customers give it a few more eval rows than
`batch_platform.ml.splits.MIN_EVAL_ROWS`) and, with seed 2, its champion's scores rank below the
recency baseline against the labels of 2024-Q3 (AUC-PR 0.51 against 0.57): a WARN; 2024-Q3 trains
too and is pending (no 2024-Q4 labels). Seed 5 gave that WARN with the two candidates of before;
with three candidates and grids its 2024-Q2 scores beat the baseline (0.739 against 0.732).

Every wait is bounded; the finalizer terminates both process groups (code servers, run workers
and their JVMs included) even when a test fails.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import pytest
import requests

from batch_platform.partitions import to_key
from batch_platform.sample_data import generate_landing
from batch_platform.schemas.bronze import BRONZE_TABLES
from batch_platform.schemas.customer_history import HISTORY_KEY
from batch_platform.schemas.silver import SILVER_TABLES
from batch_platform_tests.platform import TEST_SPARK, dagster_env
from batch_platform_tests.procs import free_port, stop_process_groups

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LOCATION = "batch_platform"  # workspace.yaml's location_name
REPOSITORY = "__repository__"  # the repository a `Definitions` object becomes
QUARTERS = ("2024-Q1", "2024-Q2")  # the first backfill's; gold of the last is the Materialize run's
EVERYTHING_QUARTERS = (*QUARTERS, "2024-Q3")  # the last launch's: every asset, ML included
CUSTOMERS, SEED = 200, 2
OUT_OF_TIME_WARN, OUT_OF_TIME_PENDING = "2024-Q2", "2024-Q3"  # what the ML of that landing zone gives
BRONZE_ASSET_KEYS = [list(table.key.path) for table in BRONZE_TABLES.values()]
SILVER_ASSET_KEYS = [list(key.path) for t in SILVER_TABLES.values() for key in (t.silver_key, t.quarantine_key)]
HISTORY_ASSET_KEY = list(HISTORY_KEY.path)
GOLD_ASSET_KEYS = [HISTORY_ASSET_KEY, ["gold", "customer_features"], ["gold", "churn_labels"], ["gold", "training_set"]]
ALL_ASSET_KEYS = [*BRONZE_ASSET_KEYS, *SILVER_ASSET_KEYS, *GOLD_ASSET_KEYS]
# bronze and silver (each silver multi-asset with both outputs). Not the customer history: its
# partition Q reads every silver profile partition up to Q, so an asset backfill would extend it
# from the first quarter to the last partition (docs/ui.md); it is launched on its own instead.
BACKFILL_ASSET_KEYS = [*BRONZE_ASSET_KEYS, *SILVER_ASSET_KEYS]
ML_ASSET_KEYS = [["ml", "churn_model"], ["ml", "churn_scores"]]
GRAPH_ASSET_KEYS = [*ALL_ASSET_KEYS, *ML_ASSET_KEYS]  # every node of the lineage graph

STARTUP_TIMEOUT = 240  # webserver up and code location loaded (a loaded 2-core machine is slow)
RUN_TIMEOUT = 360
BACKFILL_TIMEOUT = 900
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}

# ------------------------------------------------------------------ the UI's GraphQL documents
# LaunchAssetExecutionButton.tsx: LaunchAssetLoaderQuery (fragment trimmed to the fields used).
LAUNCH_ASSET_LOADER_QUERY = """
query LaunchAssetLoaderQuery($assetKeys: [AssetKeyInput!]!) {
  assetNodes(assetKeys: $assetKeys) {
    assetKey { path }
    jobNames
    isMaterializable
    partitionDefinition { type name }
    backfillPolicy { policyType maxPartitionsPerRun description }
    assetChecksOrError { ... on AssetChecks { checks { name canExecuteIndividually jobNames } } }
    repository { name location { name } }
  }
  assetNodeAdditionalRequiredKeys(assetKeys: $assetKeys) { path }
}
"""

# LaunchAssetChoosePartitionsDialog.tsx, single partition: the tags and config of the partition.
CONFIG_PARTITION_FOR_ASSET_JOB_QUERY = """
query ConfigPartitionForAssetJobQuery($repositoryName: String!, $repositoryLocationName: String!,
    $jobName: String!, $partitionName: String!, $assetKeys: [AssetKeyInput!]!) {
  pipelineOrError(params: {pipelineName: $jobName, repositoryName: $repositoryName,
                           repositoryLocationName: $repositoryLocationName}) {
    __typename
    ... on Pipeline {
      partition(partitionName: $partitionName, selectedAssetKeys: $assetKeys) {
        name
        runConfigOrError { __typename ... on PartitionRunConfig { yaml } ... on PythonError { message } }
        tagsOrError { __typename ... on PartitionTags { results { key value } } ... on PythonError { message } }
      }
    }
    ... on PythonError { message }
  }
}
"""

LAUNCH_PIPELINE_EXECUTION_MUTATION = """
mutation LaunchPipelineExecution($executionParams: ExecutionParams!) {
  launchPipelineExecution(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { id runId pipelineName } }
    ... on PipelineNotFoundError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PythonError { message stack }
  }
}
"""

LAUNCH_PARTITION_BACKFILL_MUTATION = """
mutation LaunchPartitionBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PartitionSetNotFoundError { message }
    ... on PartitionKeysNotFoundError { message }
    ... on UnauthorizedError { message }
    ... on PipelineNotFoundError { message }
    ... on RunConflict { message }
    ... on ConflictingExecutionParamsError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PythonError { message stack }
  }
}
"""

WORKSPACE_QUERY = """
query { workspaceOrError { __typename ... on Workspace { locationEntries {
  name loadStatus
  locationOrLoadError { __typename ... on PythonError { message stack } }
} } ... on PythonError { message } } }
"""

RUN_STATUS_QUERY = """
query RunStatus($runId: ID!) { runOrError(runId: $runId) { __typename
  ... on Run { runId status jobName tags { key value } assetSelection { path } }
  ... on RunNotFoundError { message } ... on PythonError { message } } }
"""

RUN_LOGS_QUERY = """
query RunLogs($runId: ID!) { logsForRun(runId: $runId) { __typename
  ... on EventConnection { events { __typename
    ... on MessageEvent { message level stepKey }
    ... on ErrorEvent { error { message stack cause { message stack } } } } }
  ... on PythonError { message } } }
"""

BACKFILL_QUERY = """
query Backfill($backfillId: String!) { partitionBackfillOrError(backfillId: $backfillId) { __typename
  ... on PartitionBackfill {
    id status numPartitions partitionNames isAssetBackfill assetSelection { path }
    error { message stack }
    assetBackfillData { assetBackfillStatuses { __typename ... on AssetPartitionsStatusCounts {
      assetKey { path } numPartitionsTargeted numPartitionsMaterialized numPartitionsFailed } } }
    runs { runId status jobName tags { key value } assetSelection { path } }
  }
  ... on PythonError { message } ... on BackfillNotFoundError { message } } }
"""

BACKFILL_RUNS_QUERY = """
query BackfillRuns($tags: [ExecutionTag!]) { runsOrError(filter: {tags: $tags}) { __typename
  ... on Runs { results { runId status tags { key value } } } ... on PythonError { message } } }
"""

MATERIALIZATIONS_QUERY = """
query Materializations($assetKey: AssetKeyInput!, $partitions: [String!]) {
  assetOrError(assetKey: $assetKey) { __typename
    ... on Asset { assetMaterializations(partitions: $partitions) {
      runId partition timestamp
      metadataEntries { __typename label
        ... on IntMetadataEntry { intValue intRepr }
        ... on FloatMetadataEntry { floatValue }
        ... on PathMetadataEntry { path }
        ... on TextMetadataEntry { text }
        ... on JsonMetadataEntry { jsonString }
      } } }
    ... on AssetNotFoundError { message } } }
"""

# useAssetCheckPartitionData.tsx: what the check's Partitions tab reads (time partitions only).
CHECK_PARTITION_HEALTH_QUERY = """
query AssetCheckPartitionHealthQuery($assetKey: AssetKeyInput!, $checkName: String!) {
  assetNodeOrError(assetKey: $assetKey) { ... on AssetNode {
    assetCheckOrError(checkName: $checkName) { __typename ... on AssetCheck {
      name
      partitionKeysByDimension { name type partitionKeys }
      partitionStatuses { __typename
        ... on AssetCheckTimePartitionStatuses { ranges { startKey endKey status } } } } } } } }
"""

# useAssetCheckPartitionDetail.tsx: one partition's executions, newest first, as its detail pane shows them.
CHECK_PARTITION_DETAIL_QUERY = """
query AssetCheckPartitionDetailQuery($assetKey: AssetKeyInput!, $checkName: String!, $partitionKey: String!) {
  assetCheckExecutions(assetKey: $assetKey, checkName: $checkName, partition: $partitionKey, limit: 1000) {
    runId status
    evaluation { severity success description partition targetMaterialization { storageId runId timestamp } } } }
"""

CHECK_EXECUTIONS_QUERY = """
query Checks($assetKeys: [AssetKeyInput!]) { assetNodes(assetKeys: $assetKeys) {
  assetKey { path }
  assetChecksOrError { __typename ... on AssetChecks { checks { name
    executionForLatestMaterialization { runId status partition evaluation { success partition } } } } } } }
"""


def metadata_values(materialization: dict) -> dict[str, object]:
    """label -> the entry's value, for the entry types the platform writes."""
    values: dict[str, object] = {}
    for entry in materialization["metadataEntries"]:
        kind = entry["__typename"]
        if kind == "IntMetadataEntry":
            values[entry["label"]] = int(entry["intRepr"])
        elif kind == "FloatMetadataEntry":
            values[entry["label"]] = entry["floatValue"]
        elif kind == "PathMetadataEntry":
            values[entry["label"]] = entry["path"]
        elif kind == "TextMetadataEntry":
            values[entry["label"]] = entry["text"]
        elif kind == "JsonMetadataEntry":
            values[entry["label"]] = json.loads(entry["jsonString"])
        else:
            values[entry["label"]] = kind
    return values


@dataclass
class DagsterUI:
    """The running webserver + daemon, and what they were started with."""

    url: str
    tmp: Path
    env: dict[str, str]
    manifest: dict
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)

    @property
    def lake(self) -> Path:
        return self.tmp / "lake"

    # ------------------------------------------------------------------------------- plumbing
    def log_tails(self, chars: int = 4000) -> str:
        parts = []
        for name, path in self.logs.items():
            text = path.read_text(errors="replace") if path.exists() else ""
            parts.append(f"--- {name} log ({path}), last {chars} chars:\n{text[-chars:]}")
        return "\n".join(parts)

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                pytest.fail(f"{name} exited with code {process.returncode}\n{self.log_tails()}")

    def graphql(self, query: str, variables: dict | None = None, timeout: float = 60) -> dict:
        response = requests.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=timeout
        )
        assert response.status_code == 200, f"GraphQL HTTP {response.status_code}: {response.text[:2000]}"
        body = response.json()
        assert not body.get("errors"), f"GraphQL errors: {json.dumps(body['errors'], indent=1)[:4000]}"
        return body["data"]

    def wait_until(self, what: str, probe, timeout: float, interval: float = 2.0):
        """Call `probe()` until it returns something truthy; fail naming `what` after `timeout` s."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            self.check_alive()
            last = probe()
            if last:
                return last
            time.sleep(interval)
        pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}; last seen: {last!r}\n{self.log_tails()}")

    # --------------------------------------------------------------------------- the UI paths
    def launch_run_like_materialize_button(self, asset_keys: list[list[str]], partition_key: str) -> str:
        """What "Materialize" → pick one partition → "Launch 1 run" sends; returns the run id."""
        keys = [{"path": path} for path in asset_keys]
        loaded = self.graphql(LAUNCH_ASSET_LOADER_QUERY, {"assetKeys": keys})
        nodes = loaded["assetNodes"]
        assert len(nodes) == len(keys), nodes
        # The UI refuses (or silently widens) a selection that splits a multi-asset; ours must not.
        assert loaded["assetNodeAdditionalRequiredKeys"] == [], loaded["assetNodeAdditionalRequiredKeys"]
        # getCommonJob(): the first job every selected asset belongs to.
        common = [job for job in nodes[0]["jobNames"] if all(job in n["jobNames"] for n in nodes)]
        assert common, f"no job holds all of {asset_keys}: {[n['jobNames'] for n in nodes]}"
        job = common[0]
        partition = self.graphql(
            CONFIG_PARTITION_FOR_ASSET_JOB_QUERY,
            {
                "repositoryName": REPOSITORY,
                "repositoryLocationName": LOCATION,
                "jobName": job,
                "partitionName": partition_key,
                "assetKeys": keys,
            },
        )["pipelineOrError"]
        assert partition["__typename"] == "Pipeline", partition
        tags = partition["partition"]["tagsOrError"]["results"]
        run_config = partition["partition"]["runConfigOrError"]["yaml"]
        # getAssetCheckHandleInputs(): every check of the selected assets that is in the job.
        checks = [
            {"assetKey": {"path": n["assetKey"]["path"]}, "name": c["name"]}
            for n in nodes
            for c in n["assetChecksOrError"].get("checks", [])
            if not c["jobNames"] or job in c["jobNames"]
        ]
        execution_params = {
            "mode": "default",
            "executionMetadata": {"tags": [{"key": t["key"], "value": t["value"]} for t in tags]},
            "runConfigData": run_config,
            "selector": {
                "repositoryLocationName": LOCATION,
                "repositoryName": REPOSITORY,
                "pipelineName": job,
                "assetSelection": keys,
                "assetCheckSelection": checks,
            },
        }
        launched = self.graphql(LAUNCH_PIPELINE_EXECUTION_MUTATION, {"executionParams": execution_params})
        result = launched["launchPipelineExecution"]
        assert result["__typename"] == "LaunchRunSuccess", result
        return result["run"]["runId"]

    def launch_backfill_from_graph_like_ui(self, asset_keys: list[list[str]], partition_keys: list[str]) -> str:
        """What "Materialize" on a selection of the asset graph → a range → "Launch backfill" sends.

        LaunchAssetExecutionButton.tsx: the target is getCommonJob(), the first job (by name) holding
        every selected asset; LaunchAssetChoosePartitionsDialog.tsx: a job that is not the implicit
        `__ASSET_JOB` makes a *job* backfill of exactly the picked partitions, the implicit one a
        pure asset backfill (`launch_backfill_like_ui`)."""
        keys = [{"path": path} for path in asset_keys]
        nodes = self.graphql(LAUNCH_ASSET_LOADER_QUERY, {"assetKeys": keys})["assetNodes"]
        common = [job for job in nodes[0]["jobNames"] if all(job in n["jobNames"] for n in nodes)]
        assert common, f"no job holds all of {asset_keys}"
        job = common[0]
        if job.startswith("__ASSET_JOB"):
            return self.launch_backfill_like_ui(asset_keys, partition_keys)
        params = {
            "tags": [],
            "assetSelection": keys,
            "partitionNames": partition_keys,
            "fromFailure": False,
            "selector": {
                "partitionSetName": f"{job}_partition_set",
                "repositorySelector": {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY},
            },
        }
        launched = self.graphql(LAUNCH_PARTITION_BACKFILL_MUTATION, {"backfillParams": params})
        result = launched["launchPartitionBackfill"]
        assert result["__typename"] == "LaunchBackfillSuccess", result
        return result["backfillId"]

    def launch_backfill_like_ui(self, asset_keys: list[list[str]], partition_keys: list[str]) -> str:
        """What "Materialize" → a range of partitions → "Launch backfill" sends for the asset job."""
        params = {
            "tags": [],
            "assetSelection": [{"path": path} for path in asset_keys],
            "partitionNames": partition_keys,
            "fromFailure": False,
        }
        launched = self.graphql(LAUNCH_PARTITION_BACKFILL_MUTATION, {"backfillParams": params})
        result = launched["launchPartitionBackfill"]
        assert result["__typename"] == "LaunchBackfillSuccess", result
        return result["backfillId"]

    # ------------------------------------------------------------------------------- reading
    def run(self, run_id: str) -> dict:
        result = self.graphql(RUN_STATUS_QUERY, {"runId": run_id})["runOrError"]
        assert result["__typename"] == "Run", result
        return result

    def run_log(self, run_id: str, limit: int = 60) -> str:
        logs = self.graphql(RUN_LOGS_QUERY, {"runId": run_id})["logsForRun"]
        if logs["__typename"] != "EventConnection":
            return repr(logs)
        lines = []
        for event in logs["events"]:
            line = f"{event['__typename']} [{event.get('stepKey')}] {event.get('message', '')}"
            error = event.get("error")
            while error:
                line += "\n    " + error["message"] + "".join(error.get("stack") or [])[-1500:]
                error = error.get("cause")
            lines.append(line)
        return "\n".join(lines[-limit:])

    def run_process_id(self, run_id: str) -> int:
        """The pid of the process the run launcher started for the run (its engine event says so)."""
        log = self.run_log(run_id, limit=10_000)
        found = re.search(r"Started process for run \(pid: (\d+)\)", log)
        assert found, f"no 'Started process for run' event in run {run_id}:\n{log[-3000:]}"
        return int(found.group(1))

    def wait_for_run(self, run_id: str, timeout: float = RUN_TIMEOUT) -> dict:
        run = self.wait_until(
            f"run {run_id} to finish",
            lambda: (r := self.run(run_id))["status"] in FINISHED and r,
            timeout,
        )
        assert run["status"] == "SUCCESS", (
            f"run {run_id} ended {run['status']}; its event log:\n{self.run_log(run_id)}\n{self.log_tails()}"
        )
        return run

    def backfill(self, backfill_id: str) -> dict:
        result = self.graphql(BACKFILL_QUERY, {"backfillId": backfill_id})["partitionBackfillOrError"]
        assert result["__typename"] == "PartitionBackfill", result
        return result

    def wait_for_backfill_runs(self, backfill_id: str, timeout: float = BACKFILL_TIMEOUT) -> list[dict]:
        """The backfill's runs, once it has some and all have finished (each must succeed).

        The backfill daemon marks the backfill itself complete on its next iteration (every
        30 s); `wait_for_backfill` waits for that.
        """

        def probe():
            runs = self.backfill(backfill_id)["runs"]
            return runs if runs and all(r["status"] in FINISHED for r in runs) else None

        runs = self.wait_until(f"the runs of backfill {backfill_id} to finish", probe, timeout, interval=3.0)
        failed = [r["runId"] for r in runs if r["status"] != "SUCCESS"]
        assert not failed, "".join(f"\nrun {r} event log:\n{self.run_log(r)}" for r in failed) + self.log_tails()
        return runs

    def wait_for_backfill(self, backfill_id: str, timeout: float = BACKFILL_TIMEOUT) -> dict:
        done = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}

        def probe():
            backfill = self.backfill(backfill_id)
            if backfill["status"] in done and all(r["status"] in FINISHED for r in backfill["runs"]):
                return backfill
            return None

        backfill = self.wait_until(f"backfill {backfill_id} to finish", probe, timeout, interval=3.0)
        failed = [r["runId"] for r in backfill["runs"] if r["status"] != "SUCCESS"]
        assert backfill["status"] in {"COMPLETED", "COMPLETED_SUCCESS"} and not failed, (
            f"backfill {backfill_id} ended {backfill['status']} (error: {backfill['error']}); "
            + "".join(f"\nrun {r} event log:\n{self.run_log(r)}" for r in failed)
            + f"\n{self.log_tails()}"
        )
        return backfill

    def materializations(self, asset_key: list[str], partition_key: str, run_id: str | None = None) -> list[dict]:
        result = self.graphql(MATERIALIZATIONS_QUERY, {"assetKey": {"path": asset_key}, "partitions": [partition_key]})
        asset = result["assetOrError"]
        assert asset["__typename"] == "Asset", asset
        events = asset["assetMaterializations"]
        return [e for e in events if run_id is None or e["runId"] == run_id]


# ------------------------------------------------------------------------------------ processes
def _start(name: str, args: list[str], ui_tmp: Path, env: dict[str, str]) -> tuple[subprocess.Popen, Path]:
    log = ui_tmp / f"{name}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: code servers, run workers and JVMs with it
        )
    return process, log


def start_ui(ui: DagsterUI) -> None:
    """Start the webserver and the daemon of `ui` and wait until its code location has loaded."""
    for name, args in {
        "webserver": [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", ui.url.rsplit(":", 1)[1],
                      "-w", "workspace.yaml"],
        "daemon": [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"],
    }.items():  # fmt: skip
        ui.processes[name], ui.logs[name] = _start(name, args, ui.tmp, ui.env)

    def answering():
        try:
            return requests.get(f"{ui.url}/server_info", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    ui.wait_until("the webserver to answer /server_info", answering, STARTUP_TIMEOUT)

    def location_loaded():
        workspace = ui.graphql(WORKSPACE_QUERY)["workspaceOrError"]
        entries = {e["name"]: e for e in workspace.get("locationEntries", [])}
        entry = entries.get(LOCATION)
        if entry is None or entry["loadStatus"] != "LOADED":
            return None
        loaded = entry["locationOrLoadError"]
        if loaded["__typename"] == "PythonError":
            pytest.fail(f"code location {LOCATION} failed to load: {loaded['message']}\n{''.join(loaded['stack'])}")
        return entry

    ui.wait_until(f"code location {LOCATION!r} to load", location_loaded, STARTUP_TIMEOUT)


def prepare_ui(tmp: Path) -> DagsterUI:
    """A temp home, config, landing zone and lake for the UI; nothing started yet."""
    manifest = generate_landing(
        tmp / "landing",
        first_quarter=EVERYTHING_QUARTERS[0],
        last_quarter=EVERYTHING_QUARTERS[-1],
        customers=CUSTOMERS,
        seed=SEED,
    )
    # temp config (landing, lake, local[2] Spark) and DAGSTER_HOME with telemetry off
    env = dagster_env(
        tmp, {"storage": {"landing_root": str(tmp / "landing"), "lake_root": str(tmp / "lake")}, "spark": TEST_SPARK}
    )
    # Dagster's defaults, as `make ui` runs: QueuedRunCoordinator (the daemon dequeues and launches)
    # and DefaultRunLauncher (every run its own process); only the dequeue tick is shortened.
    Path(env["DAGSTER_HOME"], "dagster.yaml").write_text(
        "telemetry:\n  enabled: false\n"
        "run_coordinator:\n"
        "  module: dagster._core.run_coordinator.queued_run_coordinator\n"
        "  class: QueuedRunCoordinator\n"
        "  config:\n    dequeue_interval_seconds: 1\n"
    )
    # Create the instance's SQLite storages once, here: a webserver, a daemon and their code servers
    # starting together on an empty home race to create them ("alembic_version has more than one head").
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        instance.get_runs(limit=1)  # run storage, schedule storage, and (below) the event log index
        instance.fetch_materializations(dg.AssetKey(["bronze", "operational"]), limit=1)
    return DagsterUI(url=f"http://127.0.0.1:{free_port()}", tmp=tmp, env=env, manifest=manifest)


@dataclass
class Launched:
    ui: DagsterUI
    launch_id: str  # run id or backfill id
    result: dict  # the run or the backfill, as GraphQL reports it once finished


class UILaunches:
    """The UI and its three launches, driven one after the other by a thread of their own.

    Dagster's backfill daemon acts every 30 s (a fixed interval), so most of this chain is waiting;
    started at the beginning of the session (conftest.py), it waits while the other tests run.
    Each stage is a future: a fixture reading it waits for it, and gets its error if it failed.
    """

    STAGES = ("ui", "backfill", "history", "materialized", "everything")

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.ui: DagsterUI | None = None
        self.stages = {name: Future() for name in self.STAGES}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._drive, name="dagster-ui-launches", daemon=True)
        self.thread.start()

    def result(self, stage: str):
        return self.stages[stage].result()

    def _next(self) -> None:
        if self.stopping.is_set():
            raise RuntimeError("the test session ended before the Dagster UI's launches did")

    def _drive(self) -> None:
        try:
            ui = self.ui = prepare_ui(self.tmp)
            self._next()
            start_ui(ui)
            self.stages["ui"].set_result(ui)
            keys = [to_key(q) for q in QUARTERS]
            # bronze → silver over both quarters, as "Launch backfill" sends it: the backfill daemon
            # runs it as one run (single-run backfill policy); the backfill's own status is completed
            # by the daemon's next iteration (the backfill test waits for it).
            self._next()
            backfill_id = ui.launch_backfill_like_ui(BACKFILL_ASSET_KEYS, keys)
            self.stages["backfill"].set_result(
                Launched(ui, backfill_id, {"runs": ui.wait_for_backfill_runs(backfill_id)})
            )
            # The customer history of the first quarter, as "Materialize" on its node → quarter →
            # "Launch 1 run": the features of the last quarter read it, as they read its silver.
            self._next()
            history = ui.launch_run_like_materialize_button([HISTORY_ASSET_KEY], keys[0])
            self.stages["history"].set_result(Launched(ui, history, ui.wait_for_run(history)))
            # Then gold of the last quarter, as "Materialize all" (gold group) → quarter → "Launch 1
            # run": after the backfill, so it finds silver (its labels) and the quarter before (lookback).
            self._next()
            run_id = ui.launch_run_like_materialize_button(GOLD_ASSET_KEYS, keys[-1])
            self.stages["materialized"].set_result(Launched(ui, run_id, ui.wait_for_run(run_id)))
            # Last, the path a new user takes: every asset of the graph selected, "Materialize",
            # a range, "Launch backfill" (it rewrites the earlier quarters from the same landing
            # zone, so what the earlier launches wrote does not change, and adds one more).
            self._next()
            everything = ui.launch_backfill_from_graph_like_ui(
                GRAPH_ASSET_KEYS, [to_key(q) for q in EVERYTHING_QUARTERS]
            )
            self.stages["everything"].set_result(Launched(ui, everything, ui.wait_for_backfill(everything)))
        except BaseException as error:  # pytest.fail raises an OutcomeException
            for stage in self.stages.values():
                if not stage.done():
                    stage.set_exception(error)

    def close(self) -> None:
        """Stop both process groups (code servers, run workers and their JVMs with them); a wait
        still running then fails and the thread launches nothing more. Stopped again once the
        thread has ended, for a session that ends while the thread is still starting them."""
        self.stopping.set()
        self._stop_processes()
        self.thread.join(timeout=STARTUP_TIMEOUT)
        self._stop_processes()

    def _stop_processes(self) -> None:
        stop_process_groups(list(self.ui.processes.values()) if self.ui is not None else [])


@pytest.fixture(scope="session")
def ui_launches(tmp_path_factory):
    launches = UILaunches(tmp_path_factory.mktemp("dagster_ui"))
    try:
        yield launches
    finally:
        launches.close()


@pytest.fixture(scope="session")
def dagster_ui(ui_launches) -> DagsterUI:
    """dagster-webserver + dagster-daemon on 127.0.0.1:<free port>, with a temp home, config and lake."""
    return ui_launches.result("ui")


@pytest.fixture(scope="session")
def ui_backfill(ui_launches) -> Launched:
    """bronze → silver of every source, 2024-Q1…2024-Q2, as the UI's "Launch backfill" sends it;
    `result` holds the backfill's runs once they have finished."""
    return ui_launches.result("backfill")


@pytest.fixture(scope="session")
def ui_history(ui_launches) -> Launched:
    """`gold/customer_history` of 2024-Q1 in one run, as "Materialize" on its node → 2024-Q1 →
    "Launch 1 run"; after the backfill (it reads silver profiles 2024-Q1)."""
    return ui_launches.result("history")


@pytest.fixture(scope="session")
def ui_materialized(ui_launches) -> Launched:
    """The gold tables of 2024-Q2 in one run, as "Materialize all" (gold group) → 2024-Q2 → "Launch
    1 run". The browser test and the docs' screenshots look at this instance."""
    return ui_launches.result("materialized")


@pytest.fixture(scope="session")
def ui_backfill_everything(ui_launches) -> Launched:
    """Every asset of the lineage graph, 2024-Q1…2024-Q3, as "select all → Materialize → Launch
    backfill" on the asset graph; after the other two launches."""
    return ui_launches.result("everything")
