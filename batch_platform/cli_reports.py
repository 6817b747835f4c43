"""The `batch-platform` commands that read the lake and report on it — `report`, `history`,
`ml-report` — apart from those that run, generate or serve (`batch_platform.cli`). Each reads the
config file once and imports the table declarations, Arrow or the ML code only when it runs, for the
command line's start-up time (`batch_platform.cli`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from batch_platform import delta, delta_log
from batch_platform.cli_args import UsageError, partition_range
from batch_platform.config import load_config
from batch_platform.consume import PartitionNotMaterialised, load_model_card, load_out_of_time_rows
from batch_platform.partitions import parse_quarter, shift


def cmd_report(args: argparse.Namespace) -> int:
    """Rows per table per quarter, counted from each Delta table's log (the file statistics of its
    latest version: no data read); `-` for a quarter never materialised, 0 for one materialised
    empty. Then the training sets that exist and how to read one."""
    config = load_config()
    quarters = partition_range(args, config)

    from batch_platform.lake_files import Lake  # start-up time: Arrow and the table declarations
    from batch_platform.schemas.gold import TRAINING_SET  # start-up time (module docstring)
    from batch_platform.tables import TABLES  # start-up time (module docstring)

    training_set = TRAINING_SET.name
    lake = Lake.from_config(config)
    tables = [table.name for table in TABLES.values()]
    width = max([len(t) for t in tables] + [10])
    print(f"lake: {lake.root.rstrip('/')}")
    print(f"{'table':<{width}}  " + "  ".join(f"{q:>8}" for q in quarters) + "  version")
    counts, versions = {}, {}
    for table in tables:
        opened = lake.open(table)
        counts[table] = _quarter_rows(opened, quarters)
        versions[table] = opened.version if opened is not None else None
        cells = "  ".join(f"{'-' if n is None else f'{n:,}':>8}" for n in counts[table])
        print(f"{table:<{width}}  {cells}  {'-' if versions[table] is None else versions[table]:>7}")
    built = [(q, n) for q, n in zip(quarters, counts[training_set], strict=True) if n is not None]
    if not built:
        print(
            f"\nno training set of {quarters[0]}...{quarters[-1]} is in the lake: "
            f"batch-platform materialize --from {quarters[0]} --to {quarters[-1]}"
        )
        return 0
    print(f"\ntraining sets (Delta table {lake.table_uri(training_set)}, version {versions[training_set]}):")
    for quarter, rows in built:
        print(f"  {quarter}  {rows:,} rows")
    example = f'import batch_platform; print(batch_platform.load_training_set("{built[-1][0]}"))'
    print(f"\nread one:  python -c '{example}'")
    print(f"its commits:  batch-platform history {training_set}")
    return 0


def _quarter_rows(opened, quarters: Sequence[str]) -> list[int | None]:
    """The rows of each of `quarters` in a Delta table (`delta.LakeTable`), None for a quarter never
    materialised; the table's history is read only when a quarter has no rows (empty or never)."""
    if opened is None:
        return [None] * len(quarters)
    rows = delta.rows_per_quarter(opened)
    materialised = None
    counts: list[int | None] = []
    for quarter in quarters:
        if quarter not in rows and materialised is None:
            materialised = set(delta.materialised_quarters(opened))
        counts.append(rows.get(quarter, 0 if materialised and quarter in materialised else None))
    return counts


def cmd_history(args: argparse.Namespace) -> int:
    """A lake table's commits, newest first: version, time (UTC), operation, run id, the quarters it
    replaced and its rows (SPEC.md, "Lake": time travel). Read from the Delta log with delta-rs."""
    from batch_platform.lake_files import Lake  # start-up time: Arrow and the table declarations
    from batch_platform.schemas.gold import TRAINING_SET  # start-up time (module docstring)
    from batch_platform.tables import TABLES  # start-up time (module docstring)

    tables = [table.name for table in TABLES.values()]
    if args.table not in tables:
        raise UsageError(f"{args.table!r} is not a lake table; the tables are: {', '.join(tables)}")

    config = load_config()
    lake = Lake.from_config(config)
    opened = lake.open(args.table)
    if opened is None:
        print(
            f"batch-platform history: {args.table} is not in the lake yet (no Delta table at "
            f"{lake.table_uri(args.table)}): materialise it first, e.g. batch-platform materialize --from "
            f"{config.batch.first_quarter}",
            file=sys.stderr,
        )
        return 1
    commits = delta_log.history(opened, args.limit)
    print(
        f"{args.table}: Delta table {lake.table_uri(args.table)}, version {opened.version}; history kept "
        f"storage.delta.retention_days = {lake.retention_days} days"
    )
    print(
        f"{'version':>7}  {'time (UTC)':<19}  {'operation':<12}  {'run id':<36}  {'quarters replaced':<24}  {'rows':>10}"
    )
    for commit in commits:
        rows = "-" if commit.rows is None else f"{commit.rows:,}"
        print(
            f"{commit.version:>7}  {commit.time.strftime('%Y-%m-%d %H:%M:%S')}  {commit.operation:<12}  "
            f"{commit.run_id or '-':<36}  {_quarter_list(commit.quarters) or '-':<24}  {rows:>10}"
        )
    example = f'load_training_set("<quarter>", version={opened.version})'
    if args.table == TRAINING_SET.name:
        print(f'\nread a version:  batch_platform.{example}, or as_of="<UTC time>"')
    return 0


def _quarter_list(quarters: Sequence[str]) -> str:
    """`2024-Q1…2024-Q4, 2025-Q2`: runs of three or more consecutive quarters shortened."""
    runs: list[list[str]] = []
    for quarter in sorted(set(quarters), key=parse_quarter):
        if runs and shift(runs[-1][-1], 1) == quarter:
            runs[-1].append(quarter)
        else:
            runs.append([quarter])
    return ", ".join(f"{run[0]}…{run[-1]}" if len(run) > 2 else ", ".join(run) for run in runs)


def cmd_ml_report(args: argparse.Namespace) -> int:
    """Per quarter: the champion (`previous_champion` when the best candidate of the quarter was not
    promoted), its version, its eval AUC-PR and the baseline's (`ml/churn_model` in the lake), then the out-of-time AUC-PR of the scores and of the recency baseline against the
    labels of the next quarter, computed from the lake by `out_of_time_result`, the function of the
    `out_of_time_performance` check, on the rows the check reads (`load_out_of_time_rows`): the same
    figures with or without a Dagster instance, and `pending` until those labels exist."""
    config = load_config()
    quarters = partition_range(args, config)

    from batch_platform.ml.out_of_time import out_of_time_result  # start-up time: Spark and the ML code
    from batch_platform.mlflow_store import build_mlflow_store  # start-up time (module docstring)

    print(f"{'':<39}  {'eval AUC-PR':^18}  {'out-of-time AUC-PR':^18}")
    print(
        f"{'quarter':<8}  {'champion':<20}  {'version':>7}  {'model':>8}  {'baseline':>8}  {'model':>8}  "
        f"{'baseline':>8}  status"
    )
    warnings = []
    for quarter in quarters:
        try:
            card = load_model_card(quarter, config=config)
        except PartitionNotMaterialised:
            card = None
        rows, labels_exist = load_out_of_time_rows(quarter, config=config)
        result = out_of_time_result(quarter, rows, labels_exist)
        status = _out_of_time_status(result, labels_exist)
        if status == "WARN":
            warnings.append(f"  {quarter}: {result['description']}")
        metadata = result["metadata"]
        realised = f"{_figure(metadata.get('out_of_time/auc_pr')):>8}  {_figure(metadata.get('baseline/auc_pr')):>8}"
        if card is None:
            print(f"{quarter:<8}  {'(not materialised)':<20}  {'-':>7}  {'-':>8}  {'-':>8}  {realised}  {status}")
            continue
        baseline = card.loc[card["candidate"] == "recency_baseline", "auc_pr"]
        eval_baseline = _figure(baseline.iloc[0] if len(baseline) else None)
        champion = card[card["champion"]]
        if champion.empty:
            why = "(not trained)" if card.empty else "(no champion)"
            print(f"{quarter:<8}  {why:<20}  {'-':>7}  {'-':>8}  {eval_baseline:>8}  {realised}  {status}")
            continue
        row = champion.iloc[0]
        print(
            f"{quarter:<8}  {row['candidate']:<20}  {row['model_version']:>7}  {_figure(row['auc_pr']):>8}  "
            f"{eval_baseline:>8}  {realised}  {status}"
        )
    print("\nout of time: the scores of Q against gold/churn_labels Q+1, pending until those labels are in the lake;")
    print("WARN: the model's AUC-PR is below the recency baseline's, or the scored and labelled customers differ")
    for line in warnings:
        print(line)
    store = build_mlflow_store(config)
    print(f"\nregistered model '{store.registered_model_name}'; {store.ui_hint()}")
    return 0


def _out_of_time_status(result: dict, labels_exist: bool) -> str:
    metadata = result["metadata"]
    if not labels_exist:
        return "pending"
    if not metadata.get("evaluated"):
        return "no scores"
    if not result["passed"]:
        return "WARN"
    return "ok" if "out_of_time/auc_pr" in metadata else "one class"


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
