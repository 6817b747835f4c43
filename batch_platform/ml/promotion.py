"""Deciding the champion of each quarter of a run, in quarter order (SPEC.md, "ML"; the rule itself
is `batch_platform.ml.gate`).

For each quarter Q of the run, oldest first: the best candidate of a trained Q is registered; the
champion of Q-1 (decided earlier in this run, else the one the registry's `champion-<Q-1>` alias
names) is re-scored on Q's eval rows, measured with the same metrics and bootstrap resamples,
added to Q's model card as `previous_champion` and tagged on its version (`rescored_auc_pr_<Q>`:
an out-of-time figure of it, which later model cards list); the gate decides; `champion-<Q>` is pointed at the
champion of Q (the best candidate, or the champion of Q-1, or removed when there is none). An
untrainable Q keeps the champion of Q-1. Last, `champion` is pointed at the champion of the latest
trained quarter, so re-running an older quarter never moves it.

The champion's eval AUC-PR and AUC-ROC minus the baseline's, with paired 95 % intervals, and the
gate's figures are logged to the quarter's MLflow run (`champion_minus_baseline_*`, `gate_*`, the
tag `gate`), beside the candidates' child runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import mlflow

from batch_platform.ml import bootstrap, registry
from batch_platform.ml.candidates import BASELINE, PREVIOUS
from batch_platform.ml.gate import Gate
from batch_platform.ml.metrics import measure
from batch_platform.ml.model_card import model_card
from batch_platform.ml.pipelines import probabilities_by_customer
from batch_platform.ml.registry import Champion
from batch_platform.mlflow_store import MlflowStore
from batch_platform.partitions import parse_quarter, shift

if TYPE_CHECKING:  # pragma: no cover - typing only: training imports this module
    from batch_platform.ml.training import QuarterModel


def decide_champions(outcomes: Sequence[QuarterModel], store: MlflowStore, tolerance: float, lookback: int) -> None:
    """Register each trained quarter's best candidate and decide every quarter's champion, in quarter
    order (module docstring); fills in each outcome's `best_version`, `gate`, `champion` and
    `difference`, marks the champion's model card row, and publishes each registered version's
    model card (`batch_platform.ml.model_card`; `lookback`: L, its data window)."""
    ordered = sorted(outcomes, key=lambda outcome: parse_quarter(outcome.quarter))
    if not any(outcome.trained for outcome in ordered) and store.is_empty_local_store():
        return  # nothing to register, and no alias to move: a new local store stays unwritten
    champions = registry.champions_by_alias(store)
    store.activate()
    decided: dict[str, Champion | None] = {}
    for outcome in ordered:
        before = shift(outcome.quarter, -1)
        if before in decided:
            previous = decided[before]
        else:
            previous = registry.read_champion(store, champions[before]) if before in champions else None
        if outcome.trained:
            best = registry.register(store, outcome)
            _gate(outcome, best, previous, store, tolerance)
            card = model_card(outcome, lookback, registry.earlier_versions(store, best.version))
            registry.publish_card(store, best.version, best.run_id, card)
        else:
            outcome.champion = previous
        registry.name_champion(store, outcome.quarter, outcome.model_version)
        if outcome.champion is None:
            champions.pop(outcome.quarter, None)
        else:
            champions[outcome.quarter] = outcome.champion.version
        decided[outcome.quarter] = outcome.champion
    registry.name_latest(store, champions)


def _gate(
    outcome: QuarterModel, best: Champion, previous: Champion | None, store: MlflowStore, tolerance: float
) -> None:
    rows = {row["candidate"]: row for row in outcome.rows}
    previous_auc_pr = None
    if previous is not None:
        probabilities = probabilities_by_customer(registry.load(store, previous), outcome.eval_frame)
        metrics = measure(outcome.labels, probabilities)
        outcome.probabilities[PREVIOUS] = probabilities
        rows[PREVIOUS] = {
            **rows[BASELINE],
            "candidate": PREVIOUS,
            **metrics,
            "mlflow_run_id": previous.run_id,
            "registered_model_name": store.registered_model_name,
            "model_version": previous.version,
        }
        outcome.rows.append(rows[PREVIOUS])
        previous_auc_pr = metrics["auc_pr"]
        registry.tag_rescored(store, previous.version, outcome.quarter, previous_auc_pr)
    outcome.gate = Gate(
        outcome.quarter,
        rows[outcome.best]["auc_pr"],
        rows[BASELINE]["auc_pr"],
        tolerance,
        previous_auc_pr,
        None if previous is None else previous.version,
        None if previous is None else previous.quarter,
    )
    outcome.champion = best if outcome.gate.promoted else previous
    if outcome.champion is not None:
        name = outcome.best if outcome.gate.promoted else PREVIOUS
        rows[name]["champion"] = True
        outcome.difference = bootstrap.difference(
            outcome.labels, outcome.probabilities[name], outcome.probabilities[BASELINE]
        )
    _log(outcome)


def _log(outcome: QuarterModel) -> None:
    """The gate's verdict and figures, the previous champion's re-scored metrics and the champion −
    baseline differences, on the quarter's MLflow run (ended: logged by its id)."""
    client = mlflow.MlflowClient()
    metrics = {f"gate_{name}": float(value) for name, value in outcome.gate.figures().items()}
    metrics |= {f"champion_minus_baseline_{name}": value for name, value in outcome.difference.items()}
    previous = next((row for row in outcome.rows if row["candidate"] == PREVIOUS), None)
    if previous is not None:
        metrics |= {f"previous_champion_{name}": previous[name] for name in ("auc_pr", "auc_roc")}
    for name, value in metrics.items():
        client.log_metric(outcome.run_id, name, value)
    client.set_tag(outcome.run_id, "gate", outcome.gate.describe())
    if outcome.champion is not None:
        client.set_tag(outcome.run_id, "champion_version", str(outcome.champion.version))
