"""History kept on purpose (SPEC.md, "Lake"; `storage.delta.retention_days`): `lake_vacuum_job`
VACUUMs every lake table with the configured retention and gives each table that retention as its
`delta.logRetentionDuration` and `delta.deletedFileRetentionDuration`; nothing else deletes history.
A version VACUUM has removed is refused by name, with the retention, by every reader."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from batch_platform import delta, delta_log
from batch_platform.consume import load_training_set
from batch_platform.definitions import build_definitions
from batch_platform.jobs import VACUUM_JOB, retention_properties, vacuum_table
from batch_platform_tests.delta_fixtures import SCORES, TRAINING, commit_rows, customers, frame_of, model_rows
from batch_platform_tests.platform import make_config

Q = "2024-Q2"


def properties(spark, uri: str) -> dict[str, str]:
    from delta.tables import DeltaTable

    found = DeltaTable.forPath(spark, uri).detail().first()["properties"]
    return {key: found.get(key) for key in retention_properties(1)}


@pytest.fixture
def two_versions(spark, tmp_path):
    """`gold/training_set` with version 0 (Q: 30 customers) and version 1 (Q replaced: 32 others), its
    table properties as a table created before the setting was 30 days; `ml/churn_scores` with one
    version. The other lake tables were never materialised."""
    config = make_config(tmp_path, storage={"delta": {"retention_days": 30}})
    lake = config.lake_root
    old = model_rows(TRAINING, Q, customers(30), 1)
    commit_rows(spark, lake, TRAINING, {Q: old}, "run-a")
    commit_rows(spark, lake, TRAINING, {Q: model_rows(TRAINING, Q, customers(32, 100), 2)}, "run-b")
    commit_rows(spark, lake, SCORES, {Q: model_rows(SCORES, Q, customers(20), 3)}, "run-a")
    return config, old


def test_the_vacuum_job_gives_every_table_the_retention_and_keeps_every_version_younger_than_it(spark, two_versions):
    config, old = two_versions
    training, scores = (f"{config.lake_root}/{table}" for table in (TRAINING, SCORES))
    before = properties(spark, training)
    assert before == dict.fromkeys(before, "interval 400 days")  # the session's default when it was created

    defs = build_definitions(config)
    job = defs.resolve_job_def(VACUUM_JOB)
    ops = {node.name: node.definition.pool for node in job.nodes}
    # One op per lake table, holding the pool of the step that writes it (a quarantine: its silver table's).
    assert ops["vacuum_gold__training_set"] == "gold/training_set"
    assert ops["vacuum_silver__operational_events_quarantine"] == "silver/operational_events"
    assert len(ops) == len(
        {
            key
            for asset in defs.resolve_asset_graph().assets_defs
            if asset.is_executable and asset.op.pool
            for key in asset.keys
        }
    )

    result = job.execute_in_process(instance=dg.DagsterInstance.ephemeral())
    assert result.success
    for uri in (training, scores):
        assert properties(spark, uri) == {
            "delta.logRetentionDuration": "interval 30 days",
            "delta.deletedFileRetentionDuration": "interval 30 days",
        }
    observed = {
        event.event_specific_data.asset_observation.asset_key.to_user_string(): {
            k: v.value for k, v in event.event_specific_data.asset_observation.metadata.items()
        }
        for event in result.all_events
        if event.event_type_value == "ASSET_OBSERVATION"
    }
    assert sorted(observed) == sorted([SCORES, TRAINING])  # the tables never materialised are skipped
    assert observed[TRAINING]["vacuum/deleted_files"] == 0 and observed[TRAINING]["vacuum/retention_days"] == 30
    # Version 0's files were replaced seconds ago, within the 30 days: still readable, row for row.
    kept = load_training_set(Q, version=0, config=config)
    pd.testing.assert_frame_equal(
        kept.sort_values("customer_id", ignore_index=True), frame_of(old, Q), check_dtype=False
    )

    # A second run changes no property (no metadata commit a concurrent writer could trip on).
    versions = delta.open_table(training).version
    assert job.execute_in_process(instance=dg.DagsterInstance.ephemeral()).success
    operations = [c.operation for c in delta_log.history(delta.open_table(training))]
    assert delta.open_table(training).version == versions + 2 and operations[:2] == ["VACUUM END", "VACUUM START"]


def test_a_vacuumed_version_is_refused_naming_the_version_and_the_retention(spark, two_versions):
    config, _ = two_versions
    training = f"{config.lake_root}/{TRAINING}"
    # A tiny retention, in this test only: Delta refuses one below the table's own unless told not to.
    spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
    try:
        done = vacuum_table(spark, training, 30, retention_hours=0)
    finally:
        spark.conf.unset("spark.databricks.delta.retentionDurationCheck.enabled")
    assert done is not None and done.deleted_files >= 1

    with pytest.raises(delta.VersionNotAvailable) as gone:
        load_training_set(Q, version=0, config=config)
    message = str(gone.value)
    assert "version 0 of " in message and training in message and "retention_days = 30 days" in message
    assert "Traceback" not in message and "\n" not in message
    with pytest.raises(delta.VersionNotAvailable, match="version 0 .*retention_days = 30 days"):
        delta.read_quarter(delta.open_table(training, version=0, retention_days=30), Q)
    assert len(load_training_set(Q, version=1, config=config)) == 32  # the current version is whole
    assert len(load_training_set(Q, config=config)) == 32
