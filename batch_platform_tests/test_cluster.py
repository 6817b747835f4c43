"""The platform on a Spark standalone cluster: a master and one worker started from the installed
pyspark on 127.0.0.1, the landing zone and lake on the S3 test server (`cluster_fixtures.py`). The
run is the `dagster` command line in a subprocess (its own driver JVM, with
`spark.master: spark://127.0.0.1:<port>`), so the suite's shared local session is untouched; its
gold tables must equal the local run's.

No project Python runs on the executors (the platform has no Python UDFs: every transformation is a
Spark SQL expression), so nothing needs shipping with `spark.submit.pyFiles`; the S3A jars reach
the executors through `spark.jars`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from batch_platform_tests.cluster_fixtures import master_state
from batch_platform_tests.s3_pipeline import (
    gold_frames,
)

pytestmark = [pytest.mark.cluster, pytest.mark.s3]


def test_cluster_run_on_s3_equals_the_local_run(cluster_run, spark_cluster, local_reference, s3_server):
    done = cluster_run["done"]
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    on_cluster = gold_frames(cluster_run["config"])
    for (table, quarter), expected in local_reference.items():
        pd.testing.assert_frame_equal(on_cluster[(table, quarter)], expected, obj=f"gold/{table} {quarter}")
    # The work ran on the standalone cluster: the master recorded the run's application.
    apps = master_state(spark_cluster["webui"])
    names = [app["name"] for app in apps["completedapps"] + apps["activeapps"]]
    assert "batch_platform" in names
    # No secret in the run's output, its logs or the Dagster instance's storage.
    secret = s3_server.secret_access_key
    assert secret not in done.stdout and secret not in done.stderr
    files = [p for p in Path(cluster_run["home"]).rglob("*") if p.is_file()]
    assert files and not [p for p in files if secret.encode() in p.read_bytes()]
