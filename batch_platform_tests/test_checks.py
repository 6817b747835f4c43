"""The silver asset checks (batch_platform/checks.py) in real Dagster runs on a real lake.

One small landing zone is materialised once (bronze, silver and checks of 2024-Q1, all in one
Dagster instance). Later runs re-evaluate checks against it, with other thresholds or against a
copy of the lake that was tampered with, together with stand-in assets downstream of each silver
table, to show what passes, what fails, and that a failed blocking check stops the downstream step.

The landing zone, per source (bronze = silver + quarantined + duplicates):
- operational: 9 rows = 6 + 2 (blank id, `12,50`) + 1 (`10.00`@Z vs `10`@no offset) → rate 2/9;
- logs:        6 rows = 4 + 1 (`not a date`) + 1 (`login` vs ` Login`) → rate 1/6;
- external:    5 rows = 3 + 1 (`9999`) + 1 (a lower score the same day) → rate 1/5.
"""

import shutil
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest

from batch_platform.assets.silver import SILVER_TABLES
from batch_platform.checks import CHECK_NAMES
from batch_platform.resources import build_resources
from batch_platform.schemas.bronze import BRONZE_TABLES
from batch_platform_tests.lake_fixtures import tamper_quarter
from batch_platform_tests.platform import bronze_assets, make_config, quarterly, silver_assets, silver_checks

QUARTER, KEY = "2024-Q1", "2024-01-01"
PASSING = {"quarantine_rate_warn": 0.3, "quarantine_rate_fail": 0.6}
RATES = {"operational_events": 2 / 9, "interaction_logs": 1 / 6, "partner_scores": 1 / 5}
FIGURES = {  # bronze, silver, quarantined, duplicates removed
    "operational_events": (9, 6, 2, 1),
    "interaction_logs": (6, 4, 1, 1),
    "partner_scores": (5, 3, 1, 1),
}

LANDING = {
    "operational": (
        "2024-02-10",
        "customer_id,event_time,amount,currency,channel\n"
        "C1,2024-02-01T10:00:00Z,10.00,EUR,web\n"
        "C1,2024-02-01 10:00:00,10,eur,web\n"
        "C2,2024-02-02,5.5,usd,app\n"
        "C3,2024-03-31T23:30:00-00:00,1e2,gbp,store\n"
        "C4,2024-01-15 12:00:00.5,-3.20,eur,web\n"
        "C5,2023-12-30T10:00:00+01:00,7,eur,app\n"
        "C6,2024-02-03T00:00:00+02:00,8,eur,web\n"
        "  ,2024-02-01,1,eur,web\n"
        'C7,2024-02-01,"12,50",eur,web\n',
    ),
    "logs": (
        "2024-03-05",
        "customer_id,log_event_type,log_timestamp\n"
        "C1,login,2024-02-01T10:00:00Z\n"
        "C1, Login,2024-02-01 10:00:00\n"
        "C2,page_view,2024-02-05\n"
        "C3,support_ticket,2024-03-01T00:00:00+05:00\n"
        "C4,login,2024-03-02\n"
        "C5,login,not a date\n",
    ),
    "external": (
        "2024-01-20",
        "customer_id,partner_score,partner_segment\n"
        "C1,500,gold\n"
        "C1,450,silver\n"
        "C2,700,gold\n"
        "C3,300,bronze\n"
        "C4,9999,gold\n",
    ),
}


def _downstream(table: str) -> dg.AssetsDefinition:
    """A stand-in for gold: a partitioned asset downstream of one silver table."""

    @dg.asset(key=["test", f"after_{table}"], deps=[SILVER_TABLES[table].silver_key], partitions_def=quarterly)
    def after_silver() -> None:
        return None

    return after_silver


DOWNSTREAM = {table: _downstream(table) for table in SILVER_TABLES}
ALL = [*bronze_assets, *silver_assets, *silver_checks, *DOWNSTREAM.values()]


def _check_key(table: str, name: str) -> dg.AssetCheckKey:
    return dg.AssetCheckKey(SILVER_TABLES[table].silver_key, name)


@pytest.fixture(scope="module")
def checked_lake(spark, tmp_path_factory):
    """The landing zone above, materialised once: (root, instance, result of the first run)."""
    root = tmp_path_factory.mktemp("checks")
    for source, (day, text) in LANDING.items():
        folder = root / "landing" / source / day
        folder.mkdir(parents=True)
        (folder / f"{source}.csv").write_text(text)
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [*bronze_assets, *silver_assets, *silver_checks],
        resources=build_resources(make_config(root, checks=PASSING)),
        partition_key=KEY,
        instance=instance,
    )
    return root, instance, result


def _rerun(lake_root: Path, instance, checks: dict, selection, raise_on_error=False):
    """Re-run checks (and stand-ins) against an existing lake, without re-materialising silver."""
    config = make_config(lake_root, checks=checks)
    return dg.materialize(
        ALL,
        selection=selection,
        resources=build_resources(config),
        partition_key=KEY,
        instance=instance,
        raise_on_error=raise_on_error,
    )


def _evaluations(result) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {(e.asset_key.path[-1], e.check_name): e for e in result.get_asset_check_evaluations()}


def _materialised(result) -> set[str]:
    return {e.materialization.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def test_every_check_passes_per_partition_on_a_clean_run(checked_lake):
    _, _, result = checked_lake
    evaluations = _evaluations(result)
    assert sorted(evaluations) == sorted(
        [
            *(
                (table, name)
                for table in SILVER_TABLES
                for name in ("reconciliation", "no_null_keys", "no_duplicate_keys", "quarantine_rate")
            ),
            *((source, "arrival_and_schema") for source in BRONZE_TABLES),
        ]
    )
    assert [key for key, e in evaluations.items() if not e.passed] == []
    assert {e.partition for e in evaluations.values()} == {KEY}
    for table, (bronze, silver, quarantined, duplicates) in FIGURES.items():
        figures = evaluations[(table, "reconciliation")].metadata
        assert {
            name: figures[name].value
            for name in ("bronze_rows", "silver_rows", "quarantined_rows", "duplicates_removed")
        } == {
            "bronze_rows": bronze,
            "silver_rows": silver,
            "quarantined_rows": quarantined,
            "duplicates_removed": duplicates,
        }
        assert evaluations[(table, "quarantine_rate")].metadata["quarantine_rate"].value == pytest.approx(RATES[table])


def test_checks_are_partitioned_and_blocking_one_step_per_table(checked_lake):
    assert len(silver_checks) == len(SILVER_TABLES)
    for check in silver_checks:
        specs = list(check.check_specs)
        assert sorted(spec.name for spec in specs) == sorted(CHECK_NAMES)
        for spec in specs:
            assert spec.partitions_def == quarterly, spec.key
            assert spec.blocking, spec.key
    _, _, result = checked_lake
    check_steps = {
        e.step_key
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.STEP_START and e.step_key.endswith("_checks")
    }
    assert check_steps == {f"silver__{table}_checks" for table in SILVER_TABLES}


@pytest.mark.parametrize(
    "thresholds, expected",
    [
        # warn, fail -> per table: None (passed), WARN or ERROR; the landing zone has no customer profiles
        ((0.3, 0.6), {"operational_events": None, "interaction_logs": None, "partner_scores": None}),
        ((0.1, 0.5), {"operational_events": "WARN", "interaction_logs": "WARN", "partner_scores": "WARN"}),
        # 1/5 is not above 0.2: the thresholds are strict
        ((0.2, 0.5), {"operational_events": "WARN", "interaction_logs": None, "partner_scores": None}),
        ((0.1, 0.2), {"operational_events": "ERROR", "interaction_logs": "WARN", "partner_scores": "WARN"}),
    ],
)
def test_quarantine_rate_thresholds_come_from_the_config_and_only_error_blocks(
    checked_lake, thresholds, expected, caplog
):
    root, instance, _ = checked_lake
    warn, fail = thresholds
    selection = dg.AssetSelection.checks(
        *[_check_key(t, "quarantine_rate") for t in SILVER_TABLES]
    ) | dg.AssetSelection.assets(*[d.key for d in DOWNSTREAM.values()])
    result = _rerun(root, instance, {"quarantine_rate_warn": warn, "quarantine_rate_fail": fail}, selection)
    evaluations = _evaluations(result)
    outcome = {
        table: None
        if evaluations[(table, "quarantine_rate")].passed
        else evaluations[(table, "quarantine_rate")].severity.value
        for table in SILVER_TABLES
    }
    assert outcome == {**expected, "customer_profiles": None}
    for table in SILVER_TABLES:
        metadata = evaluations[(table, "quarantine_rate")].metadata
        assert (metadata["warn_threshold"].value, metadata["fail_threshold"].value) == (warn, fail)
    blocked = {f"test/after_{t}" for t, severity in expected.items() if severity == "ERROR"}
    assert _materialised(result) == {f"test/after_{t}" for t in SILVER_TABLES} - blocked
    assert result.success == (not blocked)
    # Each check's output is given, so Dagster does not report a blocking check without a result.
    assert [r.message for r in caplog.records if "emitted no result" in r.message] == []


def _copy_lake(root: Path, tmp_path: Path) -> Path:
    shutil.copytree(root / "lake", tmp_path / "lake")
    return tmp_path / "lake"


def _checks_and_downstream(table: str):
    return dg.AssetSelection.checks_for_assets(SILVER_TABLES[table].silver_key) | dg.AssetSelection.assets(
        DOWNSTREAM[table].key
    )


@pytest.mark.parametrize("tampered", ["operational_events", "operational_events_quarantine"])
def test_reconciliation_fails_when_a_row_goes_missing_and_blocks_downstream(checked_lake, tmp_path, tampered):
    root, instance, _ = checked_lake
    lake_copy = _copy_lake(root, tmp_path)
    tamper_quarter(lake_copy, f"silver/{tampered}", QUARTER, lambda rows: rows.slice(1))

    result = _rerun(tmp_path, instance, PASSING, _checks_and_downstream("operational_events"))

    evaluations = _evaluations(result)
    reconciliation = evaluations[("operational_events", "reconciliation")]
    assert not reconciliation.passed and reconciliation.severity == dg.AssetCheckSeverity.ERROR
    if tampered == "operational_events":
        assert "silver_rows reported 6, the lake holds 5" in reconciliation.description
    else:
        assert "quarantined_rows reported 2, the lake holds 1" in reconciliation.description
        assert "rejects/customer_id_missing reported 1, the quarantine holds 0" in reconciliation.description
    assert "bronze 9 != silver" in reconciliation.description
    assert evaluations[("operational_events", "no_null_keys")].passed
    assert evaluations[("operational_events", "no_duplicate_keys")].passed
    assert "test/after_operational_events" not in _materialised(result)
    assert not result.success
    started = {e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_START}
    assert "test__after_operational_events" not in started
    messages = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert any(
        "Dependencies for step test__after_operational_events failed: ['silver__operational_events_checks']" in message
        for message in messages
    )


def test_key_checks_find_null_and_duplicate_keys(checked_lake, tmp_path):
    root, instance, _ = checked_lake
    lake_copy = _copy_lake(root, tmp_path)

    def break_keys(table: pa.Table) -> pa.Table:
        duplicate = table.slice(0, 1)
        column = table.schema.get_field_index("customer_id")
        null_key = table.slice(1, 1).set_column(column, "customer_id", pa.array([None], pa.string()))
        return pa.concat_tables([table, duplicate, null_key])

    tamper_quarter(lake_copy, "silver/operational_events", QUARTER, break_keys)

    result = _rerun(tmp_path, instance, PASSING, _checks_and_downstream("operational_events"))

    evaluations = _evaluations(result)
    nulls, duplicates = (
        evaluations[("operational_events", "no_null_keys")],
        evaluations[("operational_events", "no_duplicate_keys")],
    )
    assert not nulls.passed and nulls.metadata["rows_with_null_key"].value == 1
    assert not duplicates.passed and duplicates.metadata["duplicate_rows"].value == 1
    assert not evaluations[("operational_events", "reconciliation")].passed
    assert "test/after_operational_events" not in _materialised(result)
