"""`batch-platform ml-report`: per quarter, the champion and its eval AUC-PR, and the out-of-time
AUC-PR of the scores against the next quarter's labels, computed from the lake as the check does.
`batch_platform.cli` checks its quarters (`args.config`, `args.quarters`) and imports this module,
with the ML code it needs, only to run it.
"""

from __future__ import annotations

import argparse

from batch_platform.consume import load_model_card, load_out_of_time_rows
from batch_platform.layout import PartitionNotMaterialised
from batch_platform.ml.candidates import CARD_ROWS
from batch_platform.ml.out_of_time import out_of_time_result
from batch_platform.mlflow_store import build_mlflow_store

NAME = max(len(name) for name in CARD_ROWS)
"""Width of the champion column: the longest name a model card row can have."""


def cmd_ml_report(args: argparse.Namespace) -> int:
    """Per quarter: the champion (`previous_champion` when the best candidate of the quarter was not
    promoted), its version, its eval AUC-PR and the baseline's (`ml/churn_model` in
    the lake), then the out-of-time AUC-PR of the scores and of the recency baseline against the
    labels of the next quarter, computed from the lake by `out_of_time_result`, the function of the
    `out_of_time_performance` check, on the rows the check reads (`load_out_of_time_rows`): the same
    figures with or without a Dagster instance, and `pending` until those labels exist."""
    config, quarters = args.config, args.quarters
    print(f"{'':<{NAME + 19}}  {'eval AUC-PR':^18}  {'out-of-time AUC-PR':^18}")
    print(
        f"{'quarter':<8}  {'champion':<{NAME}}  {'version':>7}  {'model':>8}  {'baseline':>8}  {'model':>8}  "
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
            print(f"{quarter:<8}  {'(not materialised)':<{NAME}}  {'-':>7}  {'-':>8}  {'-':>8}  {realised}  {status}")
            continue
        baseline = card.loc[card["candidate"] == "recency_baseline", "auc_pr"]
        eval_baseline = _figure(baseline.iloc[0] if len(baseline) else None)
        champion = card[card["champion"]]
        if champion.empty:
            why = "(not trained)" if card.empty else "(no champion)"
            print(f"{quarter:<8}  {why:<{NAME}}  {'-':>7}  {'-':>8}  {eval_baseline:>8}  {realised}  {status}")
            continue
        row = champion.iloc[0]
        print(
            f"{quarter:<8}  {row['candidate']:<{NAME}}  {row['model_version']:>7}  {_figure(row['auc_pr']):>8}  "
            f"{eval_baseline:>8}  {realised}  {status}"
        )
    print("\nout of time: the scores of Q against gold/churn_labels Q+1, pending until those labels are in the lake;")
    print("status WARN: the model's AUC-PR is below the recency baseline, or the scored and labelled customers differ")
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
