"""The asset graph as Dagster loads it: an accidental change to keys, groups, partitions or
dependencies fails here loudly."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import pytest

from batch_platform.definitions import build_definitions
from batch_platform.jobs import ALL_ASSETS_JOB
from batch_platform_tests.platform import DEFAULTS, quarterly

ROOT = Path(__file__).resolve().parents[1]
defs = build_definitions(DEFAULTS)

EXPECTED = {
    "bronze": {"bronze/operational", "bronze/logs", "bronze/external", "bronze/customers"},
    "silver": {
        "silver/operational_events",
        "silver/operational_events_quarantine",
        "silver/interaction_logs",
        "silver/interaction_logs_quarantine",
        "silver/partner_scores",
        "silver/partner_scores_quarantine",
        "silver/customer_profiles",
        "silver/customer_profiles_quarantine",
    },
    "gold": {"gold/customer_history", "gold/customer_features", "gold/churn_labels", "gold/training_set"},
    "ml": {"ml/churn_model", "ml/churn_scores"},
}
UPSTREAM = {
    "silver/operational_events": {"bronze/operational"},
    "silver/interaction_logs": {"bronze/logs"},
    "silver/partner_scores": {"bronze/external"},
    "silver/customer_profiles": {"bronze/customers"},
    "gold/customer_history": {"silver/customer_profiles"},
    "gold/customer_features": {
        "silver/operational_events",
        "silver/interaction_logs",
        "silver/partner_scores",
        "gold/customer_history",
    },
    "gold/churn_labels": {"silver/operational_events", "gold/customer_features"},
    "gold/training_set": {"gold/customer_features", "gold/churn_labels"},
    "ml/churn_model": {"gold/training_set"},
    "ml/churn_scores": {
        "ml/churn_model",
        "silver/operational_events",
        "silver/interaction_logs",
        "silver/partner_scores",
        "gold/customer_history",
    },
}


@pytest.fixture(scope="module")
def graph():
    return defs.resolve_asset_graph()


def _name(key: dg.AssetKey) -> str:
    return "/".join(key.path)


def test_every_table_is_an_asset_in_its_layer_group(graph):
    found = {_name(key): graph.get(key).group_name for key in graph.get_all_asset_keys()}
    assert set(found) == set().union(*EXPECTED.values())
    for group, keys in EXPECTED.items():
        assert {k for k, g in found.items() if g == group} == keys


def test_every_asset_is_quarterly_single_run_and_explains_itself(graph):
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.partitions_def == quarterly, _name(key)
        assert node.backfill_policy == dg.BackfillPolicy.single_run(), _name(key)
        assert node.description, _name(key)
        assert {"spark", "delta", "pandera"} <= set(node.kinds), _name(key)
        assert node.code_version, _name(key)
        assert "dagster/column_schema" in node.metadata, _name(key)


def test_dependencies_follow_the_contract(graph):
    for child, parents in UPSTREAM.items():
        key = dg.AssetKey(child.split("/"))
        assert parents <= {_name(p) for p in graph.get(key).parent_keys}, child


def test_features_read_the_lookback_and_labels_read_their_own_quarter(graph):
    features = graph.get(dg.AssetKey(["gold", "customer_features"]))
    events = dg.AssetKey(["silver", "operational_events"])
    job = defs.resolve_implicit_global_asset_job_def()
    assert job is not None
    mapping = graph.get_partition_mapping(features.key, events)
    # 2025-Q1: a quarter whose whole lookback exists, complete whatever today's date (after it).
    upstream = mapping.get_upstream_mapped_partitions_result_for_partitions(
        quarterly.subset_with_partition_keys(["2025-01-01"]), quarterly, quarterly
    ).partitions_subset.get_partition_keys()
    assert sorted(upstream) == ["2024-01-01", "2024-04-01", "2024-07-01", "2024-10-01"]
    labels_mapping = graph.get_partition_mapping(dg.AssetKey(["gold", "churn_labels"]), events)
    assert labels_mapping.get_upstream_mapped_partitions_result_for_partitions(
        quarterly.subset_with_partition_keys(["2025-01-01"]), quarterly, quarterly
    ).partitions_subset.get_partition_keys() == ["2025-01-01"]


def test_scores_read_silver_q_minus_l_plus_one_to_q_and_the_check_depends_on_labels(graph):
    """ml/churn_scores Q scores at C' = start of Q+1: silver Q-3 … Q with L = 4 (SPEC.md, "ML")."""
    events = dg.AssetKey(["silver", "operational_events"])
    mapping = graph.get_partition_mapping(dg.AssetKey(["ml", "churn_scores"]), events)
    upstream = mapping.get_upstream_mapped_partitions_result_for_partitions(
        quarterly.subset_with_partition_keys(["2025-07-01"]), quarterly, quarterly
    ).partitions_subset.get_partition_keys()
    assert sorted(upstream) == ["2024-10-01", "2025-01-01", "2025-04-01", "2025-07-01"]
    check_key = dg.AssetCheckKey(dg.AssetKey(["ml", "churn_scores"]), "out_of_time_performance")
    check = graph.get(check_key)
    assert check.partitions_def == quarterly
    assert {_name(key) for key in check.parent_entity_keys} >= {"gold/churn_labels", "gold/customer_features"}


def test_jobs_run_in_process():
    job = defs.resolve_job_def(ALL_ASSETS_JOB)
    assert job.executor_def.name == dg.in_process_executor.name
    assert job.partitions_def == quarterly


def test_importing_the_definitions_starts_no_spark():
    probe = textwrap.dedent(
        """
        import batch_platform.definitions
        from pyspark import SparkContext
        from pyspark.sql import SparkSession
        assert SparkContext._gateway is None and SparkContext._active_spark_context is None
        assert SparkSession.getActiveSession() is None
        print("no spark")
        """
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "no spark" in out.stdout


def test_loading_the_definitions_imports_only_what_they_need():
    """Importing the module and building a local platform's definitions imports no client a run
    alone needs (dagster-aws and its SQL storage, boto3, psycopg, MLlib, MLflow, scikit-learn): they
    load when used, which keeps the code location's load (every run process repeats it) short.
    (delta-rs is imported at the top of `batch_platform.delta`: it is light, and every reader of the
    lake outside Spark needs it.)"""
    probe = textwrap.dedent(
        """
        import sys
        from batch_platform.config import parse_config
        from batch_platform.definitions import build_definitions
        build_definitions(parse_config({}, "probe"))
        heavy = ("dagster_aws", "boto3", "botocore", "sqlalchemy", "psycopg", "pyspark.ml", "mlflow", "sklearn")
        print("imported:", sorted(name for name in heavy if name in sys.modules))
        """
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "imported: []" in out.stdout, out.stdout


def test_the_code_location_loads_cleanly_in_dagster(tmp_path):
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    out = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "DAGSTER_HOME": str(tmp_path)},
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Validation successful" in out.stdout + out.stderr
