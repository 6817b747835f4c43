"""The platform on a Spark standalone cluster: a master and one worker started from the installed
pyspark (`spark-class …deploy.master.Master`, `…deploy.worker.Worker`) on 127.0.0.1, the landing
zone and lake on the S3 test server. The run is the `dagster` command line in a subprocess (its
own driver JVM, with `spark.master: spark://127.0.0.1:<port>`), so the suite's shared local session
is untouched; its gold tables must equal the local run's.

No project Python runs on the executors (the platform has no Python UDFs: every transformation is a
Spark SQL expression), so nothing needs shipping with `spark.submit.pyFiles`; the S3A jars reach
the executors through `spark.jars`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pyspark
import pytest
import yaml

from batch_platform.partitions import to_key
from batch_platform.procs import stop_process_group
from batch_platform_tests.conftest import TEST_JVM
from batch_platform_tests.s3_fixtures import free_port
from batch_platform_tests.s3_pipeline import (
    LAKE_BUCKET,
    QUARTERS,
    gold_frames,
    s3_config,
    s3_section,
)

pytestmark = [pytest.mark.cluster, pytest.mark.s3]

BIN = Path(sys.executable).parent
SPARK_HOME = Path(pyspark.__file__).parent  # the pip pyspark: bin/spark-class, no sbin scripts
LOOPBACK_ENV = {
    "SPARK_HOME": str(SPARK_HOME),
    "SPARK_LOCAL_IP": "127.0.0.1",
    "SPARK_MASTER_HOST": "127.0.0.1",
    "SPARK_MASTER_OPTS": "-Dspark.master.rest.enabled=false",  # its REST port is fixed (6066)
    "TZ": "UTC",
}


def _master_state(webui: int) -> dict:
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


@pytest.fixture(scope="module")
def spark_cluster(tmp_path_factory):
    """A standalone master and one worker (1 core, 1 GiB) on loopback, stopped by their PIDs."""
    root = tmp_path_factory.mktemp("spark-cluster")
    port, webui, worker_ui = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        **LOOPBACK_ENV,
        "SPARK_LOG_DIR": str(root),
        "SPARK_WORKER_DIR": str(root / "work"),
    }
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    started: list[subprocess.Popen] = []
    logs = [root / "master.log", root / "worker.log"]
    try:
        with logs[0].open("wb") as out:
            started.append(subprocess.Popen(
                [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                 "--port", str(port), "--webui-port", str(webui)],
                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            ))  # fmt: skip
        _wait(
            "the Spark master",
            lambda: _master_state(webui)["status"] == "ALIVE",
            started,
            logs,
        )
        with logs[1].open("wb") as out:
            started.append(subprocess.Popen(
                [spark_class, "org.apache.spark.deploy.worker.Worker", f"spark://127.0.0.1:{port}",
                 "--host", "127.0.0.1", "--webui-port", str(worker_ui), "--cores", "1", "--memory", "1g",
                 "--work-dir", str(root / "work")],
                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            ))  # fmt: skip
        _wait(
            "the Spark worker",
            lambda: len(_master_state(webui)["workers"]) == 1,
            started,
            logs,
        )
        yield {"master": f"spark://127.0.0.1:{port}", "webui": webui, "logs": logs}
    finally:
        for process in reversed(started):
            stop_process_group(process, term_grace=20)


@pytest.fixture(scope="module")
def cluster_run(spark_cluster, s3_server, s3_landing, tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster-run")
    lake = f"s3a://{LAKE_BUCKET}/cluster-lake"
    config = {
        "storage": {
            "landing_root": s3_landing["root"],
            "lake_root": lake,
            "s3": s3_section(s3_server),
        },
        "spark": {
            "master": spark_cluster["master"],
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
    config_file = root / "config.yaml"
    config_file.write_text(yaml.safe_dump(config))
    home = root / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        **os.environ,
        **LOOPBACK_ENV,
        "BATCH_PLATFORM_CONFIG": str(config_file),
        "DAGSTER_HOME": str(home),
    }
    done = subprocess.run(
        [str(BIN / "dagster"), "asset", "materialize", "-m", "batch_platform.definitions", "--select", "*",
         "--partition-range", f"{to_key(QUARTERS[0])}...{to_key(QUARTERS[-1])}"],
        check=False, env=env, cwd=root, capture_output=True, text=True, timeout=1500,
    )  # fmt: skip
    return {
        "done": done,
        "home": home,
        "config": s3_config(root, s3_server, s3_landing["root"], lake),
    }


def test_cluster_run_on_s3_equals_the_local_run(cluster_run, spark_cluster, local_reference, s3_server):
    done = cluster_run["done"]
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    on_cluster = gold_frames(cluster_run["config"])
    for (table, quarter), expected in local_reference.items():
        pd.testing.assert_frame_equal(on_cluster[(table, quarter)], expected, obj=f"gold/{table} {quarter}")
    # The work ran on the standalone cluster: the master recorded the run's application.
    apps = _master_state(spark_cluster["webui"])
    names = [app["name"] for app in apps["completedapps"] + apps["activeapps"]]
    assert "batch_platform" in names
    # No secret in the run's output, its logs or the Dagster instance's storage.
    secret = s3_server.secret_access_key
    assert secret not in done.stdout and secret not in done.stderr
    files = [p for p in Path(cluster_run["home"]).rglob("*") if p.is_file()]
    assert files and not [p for p in files if secret.encode() in p.read_bytes()]
