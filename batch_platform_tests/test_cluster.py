"""The platform on a Spark standalone cluster (`cluster_fixtures`): a master and one worker started
from the installed pyspark on 127.0.0.1, the run of every asset through the `dagster` command line
with `spark.master: spark://…`, landing zone and lake on the S3 test server. Its gold tables must
equal the same landing zone's run on local folders; what its lake on S3 holds, and that no secret
reached its instance or logs, test_s3 checks on the same run.
"""

from __future__ import annotations

import pandas as pd
import pytest

from batch_platform_tests.cluster_fixtures import master_state
from batch_platform_tests.s3_pipeline import gold_frames

pytestmark = [pytest.mark.cluster, pytest.mark.s3]


def test_cluster_run_on_s3_equals_the_local_run(cluster_run, spark_cluster, local_reference):
    done = cluster_run["done"]
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    on_cluster = gold_frames(cluster_run["config"])
    for (table, quarter), expected in local_reference.items():
        pd.testing.assert_frame_equal(on_cluster[(table, quarter)], expected, obj=f"gold/{table} {quarter}")
    assert len(on_cluster[("training_set", "2024-Q3")]) > 0
    # The work ran on the standalone cluster: the master recorded the run's application.
    apps = master_state(spark_cluster["webui"])
    names = [app["name"] for app in apps["completedapps"] + apps["activeapps"]]
    assert "batch_platform" in names
