"""Fixtures shared by every test: one SparkSession for the whole session, temp lakes per test.

The session is created here first, with the test config's settings; the `pyspark` resource's
`getOrCreate()` then finds and reuses it, so no Dagster run in the suite starts another JVM.

Under pytest-xdist (`-n 2 --dist loadgroup --no-loadscope-reorder`) each worker has its own
SparkSession, and the tests of a module — or of the modules sharing an expensive session fixture
(`SHARED`) — run on one worker, so every end-to-end case is still set up once. The heaviest groups
are queued first (`HEAVIEST_FIRST`); the cluster's and S3 tests, then the Dagster UI's, come last
(`BACKGROUND`). `make test` and `make test-fast` both run two workers (docs/development.md).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("TZ", "UTC")

from batch_platform.config import PlatformConfig  # noqa: E402
from batch_platform_tests.platform import make_config  # noqa: E402

SHARED = {
    "test_webserver": "dagster_ui",
    "test_browser": "dagster_ui",
    "test_s3": "s3_server",
    "test_s3_server": "s3_server",
    "test_cluster": "s3_server",
    "test_sensor": "s3_server",
    "test_ml": "ml_lake",
    "test_readme": "ml_lake",
    "test_monitoring": "ml_lake",
    "test_api": "delivery_lake",
    "test_publish": "delivery_lake",
}
HEAVIEST_FIRST = [
    "test_jobs",
    "test_point_in_time",
    "ml_lake",
    "test_timezone",
    "delivery_lake",
]
SERVER_MARKS = {
    "s3_server": "s3",
    "cluster_launch": "cluster",
    "ui_launches": "webserver",
    "postgres_server": "postgres",
}
"""The fixtures that start a server, and the marker every test using one (directly or through
another fixture) gets here, whatever its module declares: `make test-fast` deselects these markers
and `slow` (`-m "not cluster and not s3 and not webserver and not browser and not postgres and not
slow"`), so it starts none of them."""
SLOW_FIXTURES = {
    "reference_run",
    "ml_lake",
    "scored_lake",
    "history_runs",
    "generated_run",
    "drift_run",
    "gold_lake",
    "silver_lake",
    "checked_lake",
    "two_versions",
}
"""The fixtures that run the platform end to end, or through several layers over several quarters: the
command line's run of every asset, in a child process (`reference_fixtures`; the jobs and delivery
tests read it), the ML lake, gold and ML over three quarters of 1,500 customers (`ml_fixtures`; the
ML tests and, through `demo_project`, the docs' recipes read it, each recipe in a fresh interpreter),
the scored lake, a generated landing zone run through every layer to `ml/churn_scores`
(`test_inference`, whose scorer must equal it), and the fixtures of one module that run a generated
or planted lake through several layers, steps or quarters: a generated landing zone through bronze,
silver and gold over three quarters, twice (`test_customer_history.history_runs`), one through
bronze, silver and their checks over three quarters (`test_silver.generated_run`), gold with its
drift check over five quarters of planted silver (`test_monitoring.drift_run`), gold's steps over
planted silver (`test_gold.gold_lake`, `test_point_in_time.silver_lake`), bronze, silver and their
checks over one quarter (`test_checks.checked_lake`), and two versions of the lake to vacuum
(`test_vacuum.two_versions`). Every test using one, directly or through another fixture, is marked
`slow`: `make test-fast` stays under 3 minutes on 2 cores."""
SLOW_TESTS = {
    "test_api": {"test_file_urls_start_with_the_public_url_never_the_requests_host"},
    "test_bronze": {
        "test_bronze_matches_the_generated_landing_zone_exactly",
        "test_arrival_records_each_quarter_and_warns_when_a_source_stops_or_its_columns_change",
    },
    "test_cli": {"test_dagster_asset_materialize_writes_one_quarter"},
    "test_config": {"test_a_local_session_listens_on_loopback_only"},
    "test_concurrency": {
        "test_two_cli_runs_of_the_same_quarter_take_turns_by_pool_and_leave_the_lake_of_one_clean_run",
        "test_two_cli_runs_of_the_same_quarter_without_pools_end_with_whole_tables_and_no_raw_error",
        "test_a_run_killed_holding_a_pool_is_released_so_the_next_run_does_not_wait_forever",
        "test_a_writer_held_after_its_data_files_inside_its_commit_is_refused_when_another_commits_meanwhile",
        "test_a_second_writer_that_commits_mid_write_makes_delta_refuse_the_first_naming_the_table",
    },
    "test_customer_history": {
        "test_profile_features_never_see_profiles_at_or_after_the_cutoff",
        "test_every_candidate_trains_and_scores_with_or_without_profiles",
    },
    "test_gold": {
        "test_a_run_with_another_window_and_eval_share_writes_them_into_the_lake",
        "test_one_call_over_many_quarters_equals_one_call_per_quarter",
        "test_labels_refuse_a_quarter_whose_silver_partition_was_never_materialised",
        "test_gold_schemas_reject_rows_that_break_a_rule",
    },
    "test_io_manager": {
        "test_a_writer_killed_mid_commit_leaves_a_whole_version_readable_and_the_next_run_succeeds",
        "test_counted_checks_agree_with_pandera_on_every_row",
    },
    "test_ml": {
        "test_the_skewed_counts_and_amounts_reach_the_classifier_as_signed_log1p",
        "test_the_grid_chooses_the_combination_that_ranks_the_validation_fold_best_ties_to_the_first",
    },
    "test_point_in_time": {
        "test_late_landing_files_change_labels_in_the_window_only_end_to_end",
        "test_events_at_or_after_the_cutoff_never_change_a_feature",
    },
    "test_s3": {"test_a_writer_killed_mid_commit_on_s3_leaves_the_previous_version_whole"},
    "test_timezone": {"test_silver_and_gold_are_identical_whatever_the_process_and_jvm_time_zones"},
    "test_training_input": {"test_a_run_logs_the_version_it_read_and_its_rows_come_back_after_the_quarter_changed"},
}
"""The tests (module, function) that run the platform end to end themselves: in child processes (the
command line, a writer to kill mid-commit, a run in another time zone, a local session's sockets), or
from a landing zone to gold, twice, in this one (point in time, late files); or that take more than
about 6 s on an idle 2-core machine (bronze over the generated landing zone or quarter after quarter,
gold over several quarters or another window, gold's rules on every broken row, features and labels over
events planted around the cutoff, the customer history's point in time and every candidate trained with
and without profiles, a training run read back, a second writer mid-commit, every counted check against
Pandera, the API started twice more, two ML tests training on the ML lake's folds). They and the users
of `SLOW_FIXTURES` are marked `slow` here, and only here; `make test-fast` deselects them. A name listed
here that its module no longer defines fails the collection."""
BACKGROUND = {"s3_server": "cluster_launch", "dagster_ui": "ui_launches"}
"""Groups whose costly fixture starts with the session in a thread of its own, and which run last
(in this order) so that it has run meanwhile: the Spark cluster and the one run on S3, on it
(`cluster_fixtures.ClusterRun`); the Dagster UI and its launches (`webserver_fixtures.UILaunches`).
On xdist workers they start on first use (queued first there instead, the suite was no faster)."""


_JVM_SCRATCH = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    """Every JVM the suite starts (the shared session, the command line's children, the cluster)
    keeps its scratch folders (`spark-*`, `blockmgr-*`, `artifacts-*`) in one folder of this run,
    removed at its end: a JVM killed on purpose (a writer killed mid-commit, a run holding a pool)
    cannot remove its own. MLflow's staging folder for Spark models (`MLFLOW_DFS_TMP`, by default
    `/tmp/mlflow`, which `mlflow.spark.log_model` creates and leaves) is in it too, and so is S3A's
    upload buffer (`fs.s3a.buffer.dir`, by default `${env.LOCAL_DIRS:-${hadoop.tmp.dir}}/s3a`, so
    `/tmp/hadoop-<user>/s3a`; Spark reads `LOCAL_DIRS` only in a YARN container). Set once, in the
    process that starts the xdist workers, which inherit it."""
    if hasattr(config, "workerinput") or "SPARK_LOCAL_DIRS" in os.environ:
        return
    scratch = tempfile.mkdtemp(prefix="batch-platform-jvm-")
    config.stash[_JVM_SCRATCH] = scratch
    os.environ["SPARK_LOCAL_DIRS"] = scratch
    os.environ["SPARK_SUBMIT_OPTS"] = f"{os.environ.get('SPARK_SUBMIT_OPTS', '')} -Djava.io.tmpdir={scratch}".strip()
    os.environ.setdefault("MLFLOW_DFS_TMP", os.path.join(scratch, "mlflow"))
    os.environ.setdefault("LOCAL_DIRS", scratch)


def pytest_unconfigure(config: pytest.Config) -> None:
    scratch = config.stash.get(_JVM_SCRATCH, None)
    if scratch:
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.hookimpl(tryfirst=True)  # after pytest-randomly's shuffle, before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def group(item: pytest.Item) -> str:
        module = item.module.__name__.rsplit(".", 1)[-1]
        return SHARED.get(module, module)

    def rank(item: pytest.Item) -> int:
        name = group(item)
        if name in BACKGROUND:  # last: they run in the background meanwhile (`_background_launches`)
            return len(HEAVIEST_FIRST) + 1 + list(BACKGROUND).index(name)
        return HEAVIEST_FIRST.index(name) if name in HEAVIEST_FIRST else len(HEAVIEST_FIRST)

    for module in {item.module for item in items}:
        missing = sorted(
            name for name in SLOW_TESTS.get(module.__name__.rsplit(".", 1)[-1], ()) if not hasattr(module, name)
        )
        if missing:
            raise pytest.UsageError(f"conftest.SLOW_TESTS names tests {module.__name__} does not define: {missing}")
    for item in items:
        item.add_marker(pytest.mark.xdist_group(group(item)))
        for fixture, marker in SERVER_MARKS.items():
            if fixture in item.fixturenames and not item.get_closest_marker(marker):
                item.add_marker(getattr(pytest.mark, marker))
        module = item.module.__name__.rsplit(".", 1)[-1]
        if SLOW_FIXTURES & set(item.fixturenames) or item.originalname in SLOW_TESTS.get(module, ()):
            item.add_marker(pytest.mark.slow)
    items.sort(key=rank)  # stable: the shuffled order within each rank stays


def pytest_xdist_node_collection_finished(node, ids: list[str]) -> None:
    """Under `--dist loadgroup` a worker tells the controller each test's group by appending `@group`
    to the node ids it collected. When that fails to stick, nothing fails: every test becomes a group
    of its own, and each worker sets the module fixtures up again. pytest 9.2 did exactly that to
    pytest-xdist 3.8 (pytest-dev/pytest-xdist#1386; setup.py pins pytest below 9.2), so stop there."""
    if node.config.getvalue("dist") == "loadgroup" and ids and "@" not in ids[0]:
        pytest.exit(
            f"pytest-xdist did not record the xdist_group of {ids[0]!r}: with this pytest, --dist loadgroup "
            "would spread each module's tests over the workers (pytest-dev/pytest-xdist#1386)",
            returncode=pytest.ExitCode.USAGE_ERROR,
        )


@pytest.fixture(scope="session", autouse=True)
def spark():
    """The session every in-process run of the suite shares. Autouse, so it is always the first:
    a test that starts Spark without asking for it (through the `pyspark` resource) would otherwise
    launch the JVM without the S3A jars, which cannot be added to a running JVM."""
    from pyspark.sql import SparkSession

    from batch_platform.s3 import s3a_jars

    # The S3A jars (when fetched) are on the shared session's class path, beside Delta's, so the S3
    # tests run in it: its conf is that of a lake on S3.
    storage = {"lake_root": "s3a://lake/lake"} if s3a_jars() else {}
    from batch_platform.session import spark_conf

    conf = spark_conf(make_config(Path("/nonexistent"), storage=storage))
    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session", autouse=True)
def _background_launches(request):
    """Start, with the session, what a selected test needs of `BACKGROUND`: the Spark cluster and
    its run, the Dagster UI and its launches. Each runs in a thread of its own, and its processes —
    mostly waiting for JVMs to come up, for one executor core, for Dagster's backfill daemon —
    overlap the other tests. Under pytest-xdist they start on first use."""
    if hasattr(request.config, "workerinput"):
        return
    for fixture in BACKGROUND.values():
        if any(fixture in item.fixturenames for item in request.session.items):
            request.getfixturevalue(fixture)


@pytest.fixture
def platform_config(tmp_path) -> PlatformConfig:
    return make_config(tmp_path)


@pytest.fixture
def resources(spark, platform_config):
    from batch_platform.resources import build_resources

    return build_resources(platform_config)


# Session fixtures, each in its module: a Spark standalone cluster and the suite's one run on S3, on
# it (cluster_fixtures); the small real lake of the delivery tests; the small Delta lake of the
# readers' tests, with its versions (delta_fixtures); the small test table
# `test/widgets`, registered for one test at a time; the ML tests' lake and the docs' project
# around it (ml_fixtures); a throwaway PostgreSQL cluster; the command line's run of every asset on
# local folders that the jobs, S3, cluster and delivery tests read (reference_fixtures); a real S3
# server (SeaweedFS on loopback) and the landing zone on it; a live dagster-webserver +
# dagster-daemon, shared by test_webserver.py and test_browser.py.
from batch_platform_tests.cluster_fixtures import cluster_launch, cluster_run, spark_cluster  # noqa: E402, F401
from batch_platform_tests.delivery_fixtures import delivery_lake  # noqa: E402, F401
from batch_platform_tests.delta_fixtures import delta_lake  # noqa: E402, F401
from batch_platform_tests.lake_fixtures import widgets_table  # noqa: E402, F401
from batch_platform_tests.ml_fixtures import demo_project, ml_lake  # noqa: E402, F401
from batch_platform_tests.pg_fixtures import postgres_server  # noqa: E402, F401
from batch_platform_tests.reference_fixtures import reference_landing, reference_run  # noqa: E402, F401
from batch_platform_tests.s3_fixtures import s3_server  # noqa: E402, F401
from batch_platform_tests.s3_pipeline import local_reference, s3_landing  # noqa: E402, F401
from batch_platform_tests.webserver_fixtures import (  # noqa: E402, F401
    dagster_ui,
    ui_backfill,
    ui_backfill_everything,
    ui_history,
    ui_launches,
    ui_materialized,
)
