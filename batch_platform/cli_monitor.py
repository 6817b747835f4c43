"""`batch-platform monitor`: per quarter, the latest result of every monitoring check, as the Dagster
instance recorded it. `batch_platform.cli` checks its quarters (`args.quarters`) and imports this
module, with Dagster and the check declarations, only to run it.
"""

import argparse

import dagster as dg

from batch_platform.monitoring import MONITORING_CHECKS
from batch_platform.partitions import to_key


def cmd_monitor(args: argparse.Namespace) -> int:
    """Per quarter, the latest result of every monitoring check (SPEC.md, "Monitoring"): bronze
    `arrival_and_schema` of each source, `feature_drift`, `score_drift` — as the Dagster instance
    of `$DAGSTER_HOME` recorded them, the UI's figures; `-` for a quarter never checked. Exit code 0
    either way: a WARN is for a person to read, not a failure."""
    latest = {}
    with dg.DagsterInstance.get() as instance:
        for key in MONITORING_CHECKS:
            for record in instance.event_log_storage.get_asset_check_execution_history(key, limit=100_000):
                evaluation = record.event.asset_check_evaluation if record.event else None
                if evaluation is not None and (key, record.partition) not in latest:
                    latest[(key, record.partition)] = evaluation
    print(f"{'quarter':<8}  {'table':<24}  {'check':<18}  {'result':<6}  detail")
    warned = 0
    for quarter in args.quarters:
        for key in MONITORING_CHECKS:
            found = latest.get((key, to_key(quarter)))
            result = "-" if found is None else "ok" if found.passed else "WARN"
            warned += result == "WARN"
            detail = "" if found is None or found.passed else (found.description or "").removeprefix(f"{quarter}: ")
            print(f"{quarter:<8}  {key.asset_key.to_user_string():<24}  {key.name:<18}  {result:<6}  {detail}")
    print(f"\n{warned} warning(s); each check's reports and figures: the asset's Checks tab in the UI (make ui)")
    return 0
