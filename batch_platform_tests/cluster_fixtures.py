"""A Spark standalone cluster on loopback, and the platform's one run of every asset on S3, on it.

A master and one worker are started from the installed pyspark (`bin/spark-class
…deploy.master.Master`, `…deploy.worker.Worker`) on 127.0.0.1. The run is the `dagster` command
line in a subprocess (its own driver JVM, with `spark.master: spark://127.0.0.1:<port>`, landing
zone and lake on the S3 test server), so the suite's shared local session is untouched. It is the
suite's one end-to-end run on S3 (issue 16: each Spark-heavy case once): test_cluster checks what
the cluster did, test_s3 what the lake on S3 holds and that no secret reached the instance or logs.

No project Python runs on the executors (the platform has no Python UDFs: every transformation is a
Spark SQL expression), so nothing needs shipping with `spark.submit.pyFiles`; the S3A jars reach
the executors through `spark.jars`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import Future
from pathlib import Path

import pyspark
import pytest

from batch_platform.partitions import to_key
from batch_platform_tests.platform import TEST_JVM, dagster_env
from batch_platform_tests.procs import free_port, stop_process_groups
from batch_platform_tests.s3_pipeline import LAKE_BUCKET, QUARTERS, s3_config, s3_section

CLUSTER_LAKE = "cluster-lake"

BIN = Path(sys.executable).parent
SPARK_HOME = Path(pyspark.__file__).parent  # the pip pyspark: bin/spark-class, no sbin scripts
LOOPBACK_ENV = {
    "SPARK_HOME": str(SPARK_HOME),
    "SPARK_LOCAL_IP": "127.0.0.1",
    "SPARK_MASTER_HOST": "127.0.0.1",
    "SPARK_MASTER_OPTS": "-Dspark.master.rest.enabled=false",  # its REST port is fixed (6066)
    "TZ": "UTC",
}


def master_state(webui: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{webui}/json/", timeout=5) as response:
        return json.load(response)


def _wait(
    what: str,
    ready,
    processes: list[subprocess.Popen],
    logs: list[Path],
    seconds: int = 120,
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes):
            break
        try:
            if ready():
                return
        except OSError:
            pass
        time.sleep(1)
    raise RuntimeError(
        f"{what} did not come up:\n" + "\n".join(log.read_text()[-2000:] for log in logs if log.exists())
    )


def start_cluster(root: Path, started: list[subprocess.Popen]) -> dict:
    """A standalone master and one worker (1 core, 1 GiB) on loopback; their processes go into
    `started` as they start, for the caller to stop by their PIDs."""
    port, webui, worker_ui = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        **LOOPBACK_ENV,
        "SPARK_LOG_DIR": str(root),
        "SPARK_WORKER_DIR": str(root / "work"),
    }
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    logs = [root / "master.log", root / "worker.log"]
    with logs[0].open("wb") as out:
        started.append(subprocess.Popen(
            [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
             "--port", str(port), "--webui-port", str(webui)],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        ))  # fmt: skip
    _wait("the Spark master", lambda: master_state(webui)["status"] == "ALIVE", started, logs)
    with logs[1].open("wb") as out:
        started.append(subprocess.Popen(
            [spark_class, "org.apache.spark.deploy.worker.Worker", f"spark://127.0.0.1:{port}",
             "--host", "127.0.0.1", "--webui-port", str(worker_ui), "--cores", "1", "--memory", "1g",
             "--work-dir", str(root / "work")],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        ))  # fmt: skip
    _wait("the Spark worker", lambda: len(master_state(webui)["workers"]) == 1, started, logs)
    return {"master": f"spark://127.0.0.1:{port}", "webui": webui, "logs": logs}


def run_on_cluster(cluster: dict, s3_server, s3_landing: dict, root: Path, started: list[subprocess.Popen]) -> dict:
    """`dagster asset materialize --select '*'` over QUARTERS on the cluster, landing and lake on S3:
    its output (`done`), DAGSTER_HOME and a config to read the lake with."""
    lake = f"s3a://{LAKE_BUCKET}/{CLUSTER_LAKE}"
    config = {
        "storage": {
            "landing_root": s3_landing["root"],
            "lake_root": lake,
            "s3": s3_section(s3_server),
        },
        "spark": {
            "master": cluster["master"],
            "shuffle_partitions": 2,
            "ui_enabled": False,
            "conf": {
                "spark.driver.host": "127.0.0.1",
                "spark.driver.bindAddress": "127.0.0.1",
                "spark.driver.memory": "1g",
                "spark.executor.memory": "768m",
                "spark.driver.extraJavaOptions": TEST_JVM,
                "spark.executor.extraJavaOptions": TEST_JVM,
                "spark.cores.max": 1,
            },
        },
    }
    env = {**dagster_env(root, config), **LOOPBACK_ENV}
    process = subprocess.Popen(
        [str(BIN / "dagster"), "asset", "materialize", "-m", "batch_platform.definitions", "--select", "*",
         "--partition-range", f"{to_key(QUARTERS[0])}...{to_key(QUARTERS[-1])}"],
        env=env, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    started.append(process)
    stdout, stderr = process.communicate(timeout=1500)
    done = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    return {
        "done": done,
        "home": Path(env["DAGSTER_HOME"]),
        "config": s3_config(root, s3_server, s3_landing["root"], lake),
    }


class ClusterRun:
    """The cluster, then the run on it, driven by a thread of their own; each a future the fixtures
    wait for. Started with the session (conftest's `_background_launches`): the JVMs coming up and
    the run, a step at a time through one executor core, mostly wait, and that overlaps the tests
    that run before the cluster's and the S3 tests."""

    def __init__(self, s3_server, s3_landing: dict, root: Path):
        self.processes: list[subprocess.Popen] = []
        self.cluster: Future = Future()
        self.run: Future = Future()
        args = (s3_server, s3_landing, root)
        self.thread = threading.Thread(target=self._drive, args=args, name="spark-cluster-run", daemon=True)
        self.thread.start()

    def _drive(self, s3_server, s3_landing: dict, root: Path) -> None:
        try:
            (root / "cluster").mkdir()
            (root / "run").mkdir()
            cluster = start_cluster(root / "cluster", self.processes)
            self.cluster.set_result(cluster)
            self.run.set_result(run_on_cluster(cluster, s3_server, s3_landing, root / "run", self.processes))
        except BaseException as error:
            for stage in (self.cluster, self.run):
                if not stage.done():
                    stage.set_exception(error)

    def close(self) -> None:
        """Stop the run (if a session ends before it does), the worker and the master, by their
        process groups; the thread then ends with them."""
        stop_process_groups(list(self.processes), term_grace=20)
        self.thread.join(timeout=60)
        stop_process_groups(list(self.processes), term_grace=20)  # one started while the first stop ran


@pytest.fixture(scope="session")
def cluster_launch(s3_server, s3_landing, tmp_path_factory):
    launch = ClusterRun(s3_server, s3_landing, tmp_path_factory.mktemp("spark-cluster"))
    try:
        yield launch
    finally:
        launch.close()


@pytest.fixture(scope="session")
def spark_cluster(cluster_launch) -> dict:
    """The master's URL and web UI port, and the logs of master and worker."""
    return cluster_launch.cluster.result()


@pytest.fixture(scope="session")
def cluster_run(cluster_launch) -> dict:
    """The finished command line (`done`), its Dagster home and the config to read its lake."""
    return cluster_launch.run.result()
