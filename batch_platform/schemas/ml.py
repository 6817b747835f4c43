"""Pandera models of the ML tables (SPEC.md, "ML: the quarterly churn model and its scores").

`ml/churn_model` Q is the model card of the quarter: one row per model evaluated on the eval
split of `gold/training_set` Q (the classifiers, the recency-only baseline, and the champion of Q-1
re-scored on those rows when there is one), with 95 % bootstrap intervals of the AUCs; the best
classifier carries the version it was registered as, and the champion of Q (the best classifier if
it passed the promotion gate, else the champion of Q-1) is marked. A quarter that could not be
trained has no rows (its materialisation says why).

`ml/churn_scores` Q holds the predictions made at the end of Q for Q+1 by the champion of Q:
`score_cutoff` is the start of Q+1 (C'), a row rule, so a score computed at another cutoff cannot
be published; `model_version` and `promoted` say which version scored and whether it was promoted in Q.

What a materialisation of either records beyond the IO manager's counts and previews is the
training's or the scoring's story (`model_metadata`, `scores_metadata`), built here beside them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import dagster as dg
import pandera.pyspark as pa
import pyspark.sql.types as T
from pyspark.sql import functions as F

from batch_platform.features import EVENTS, FEATURES_LINEAGE
from batch_platform.ml.candidates import (
    BASELINE,
    CANDIDATES,
    CARD_ROWS,
    INTERVALS,
    METRICS,
    PREVIOUS,
    describe_params,
)
from batch_platform.mlflow_store import MlflowStore
from batch_platform.partitions import quarter_end
from batch_platform.schemas.base import LakeTable, Lineage, Table, quarter_end_col, row_rule
from batch_platform.schemas.gold import TRAINING_KEY

if TYPE_CHECKING:  # pragma: no cover - typing only: the training imports MLlib and MLflow
    from batch_platform.ml.training import QuarterModel

MODEL_KEY = dg.AssetKey(["ml", "churn_model"])
SCORES_KEY = dg.AssetKey(["ml", "churn_scores"])


def _score_cutoff_is_next_quarter_start():
    return F.col("score_cutoff") == quarter_end_col()


def _champion_has_a_version():
    return ~F.col("champion") | F.col("model_version").isNotNull()


def _baseline_has_no_version():
    return (F.col("candidate") != BASELINE) | (F.col("model_version").isNull() & ~F.col("champion"))


def _unit(description: str) -> pa.Field:
    return pa.Field(nullable=False, ge=0.0, le=1.0, description=description)


class ChurnModel(LakeTable):
    """`ml/churn_model`: per quarter, every model's eval metrics; the registered versions; the champion."""

    candidate: T.StringType() = pa.Field(
        nullable=False,
        isin=list(CARD_ROWS),
        description=f"{' and '.join(c.name for c in CANDIDATES)} (Spark MLlib); {BASELINE}: a logistic "
        f"regression on recency_days alone, the bar the candidates must clear; {PREVIOUS}: the champion of "
        "Q-1 re-scored on Q's eval rows (promotion gate, SPEC.md 'ML').",
    )
    champion: T.BooleanType() = pa.Field(
        nullable=False,
        description=f"The champion of Q: the classifier with the higher AUC-PR on eval when it passed the "
        f"promotion gate, else {PREVIOUS}; never the baseline. No row is marked when there is no champion "
        "(the best classifier lost to the baseline and Q-1 has no champion).",
    )
    auc_pr: T.DoubleType() = _unit("Area under the precision-recall curve on eval (average precision).")
    auc_pr_ci_low: T.DoubleType() = _unit("Lower bound of the 95 % bootstrap interval of auc_pr.")
    auc_pr_ci_high: T.DoubleType() = _unit("Upper bound of the 95 % bootstrap interval of auc_pr.")
    auc_roc: T.DoubleType() = _unit("Area under the ROC curve on eval.")
    auc_roc_ci_low: T.DoubleType() = _unit("Lower bound of the 95 % bootstrap interval of auc_roc.")
    auc_roc_ci_high: T.DoubleType() = _unit("Upper bound of the 95 % bootstrap interval of auc_roc.")
    log_loss: T.DoubleType() = pa.Field(nullable=False, ge=0.0, description="Mean log loss on eval.")
    brier: T.DoubleType() = _unit("Brier score on eval: mean squared error of the churn probability.")
    lift_top_decile: T.DoubleType() = pa.Field(
        nullable=False,
        ge=0.0,
        description="Churn rate among the 10% of eval customers with the highest probability, over the eval churn "
        "rate.",
    )
    churn_rate: T.DoubleType() = _unit("Share of eval customers with label 1.")
    train_rows: T.LongType() = pa.Field(nullable=False, ge=1, description="Rows of the train split it was fit on.")
    eval_rows: T.LongType() = pa.Field(nullable=False, ge=1, description="Rows of the eval split it was measured on.")
    mlflow_run_id: T.StringType() = pa.Field(
        nullable=False,
        description="The MLflow run holding its parameters, metrics, plots and fitted pipeline.",
    )
    registered_model_name: T.StringType() = pa.Field(
        nullable=True,
        description="The registered model the version is in; null where model_version is.",
    )
    model_version: T.IntegerType() = pa.Field(
        nullable=True,
        ge=1,
        description=f"The registered version: of the best classifier (registered in Q whatever the gate says) and "
        f"of {PREVIOUS}; null for the other classifier and the baseline.",
    )

    _champion_version = row_rule("ml_champion_has_a_version", _champion_has_a_version)
    _baseline = row_rule("ml_baseline_is_never_registered", _baseline_has_no_version)

    class Config:
        strict = True
        unique = ["quarter", "candidate"]


class ChurnScores(LakeTable):
    """`ml/churn_scores`: one row per customer with an operational event in silver Q-L+1 … Q."""

    customer_id: T.StringType() = pa.Field(nullable=False, description="Customer identifier.")
    score_cutoff: T.TimestampType() = pa.Field(
        nullable=False,
        description="C' = the start of the quarter after Q (UTC): the features use events before it only, "
        "exactly as gold/customer_features Q+1 will.",
    )
    churn_probability: T.DoubleType() = _unit(
        "Probability that the customer has no operational event in [C', C' + W), from the champion of Q."
    )
    model_version: T.IntegerType() = pa.Field(
        nullable=False,
        ge=1,
        description="Version of the registered churn model (the champion of Q) that scored it.",
    )
    promoted: T.BooleanType() = pa.Field(
        nullable=False,
        description="Whether that version was promoted in Q (registered in Q and passed the gate); false when the "
        "champion of an earlier quarter stayed.",
    )

    _cutoff = row_rule("ml_score_cutoff_is_next_quarter_start", _score_cutoff_is_next_quarter_start)

    class Config:
        strict = True
        unique = ["quarter", "customer_id"]


_EVAL = [(TRAINING_KEY, "label"), (TRAINING_KEY, "split")]
MODEL_LINEAGE: Lineage = {
    "candidate": [],
    "champion": _EVAL,
    **{column: _EVAL for column in (*METRICS, *INTERVALS)},
    "train_rows": [(TRAINING_KEY, "split")],
    "eval_rows": [(TRAINING_KEY, "split")],
    "mlflow_run_id": [],
    "registered_model_name": [],
    "model_version": [],
}
"""The metrics come from the eval split's labels; run id, model name and version from MLflow."""

SCORES_LINEAGE: Lineage = {
    "customer_id": [(EVENTS, "customer_id")],
    "score_cutoff": [],
    "churn_probability": sorted({dep for deps in FEATURES_LINEAGE.values() for dep in deps}, key=str)
    + [(MODEL_KEY, "model_version")],
    "model_version": [(MODEL_KEY, "model_version")],
    "promoted": [(MODEL_KEY, "champion")],
}
"""The probability is the champion applied to the scoring features (the silver columns the features read)."""

CHURN_MODEL = Table(MODEL_KEY, ChurnModel, MODEL_LINEAGE)
CHURN_SCORES = Table(SCORES_KEY, ChurnScores, SCORES_LINEAGE)
ML_TABLES = (CHURN_MODEL, CHURN_SCORES)


# -------------------------------------------------------------------------------------- metadata
def model_metadata(outcomes: Sequence[QuarterModel], store: MlflowStore) -> dict[str, dict[str, dg.MetadataValue]]:
    """Per quarter of `ml/churn_model`, the story of its training: numbers as numbers, so the UI plots
    them across quarters; `mlflow_run` links the best candidate's run (its plots and model),
    `mlflow_quarter_run` the quarter's (the gate's verdict); `gate/…` the promotion gate's figures,
    which the `promotion_gate` check reports."""
    return {outcome.quarter: _model_metadata(outcome, store) for outcome in outcomes}


def _float(value: float) -> dg.MetadataValue:
    return dg.MetadataValue.float(round(float(value), 6))


def _model_metadata(outcome: QuarterModel, store: MlflowStore) -> dict[str, dg.MetadataValue]:
    metadata = {
        "trained": dg.MetadataValue.bool(outcome.trained),
        "train_rows": dg.MetadataValue.int(outcome.train_rows),
        "eval_rows": dg.MetadataValue.int(outcome.eval_rows),
    }
    if outcome.champion is not None:
        metadata |= {
            "model_version": dg.MetadataValue.int(outcome.champion.version),
            "champion_registered_in": dg.MetadataValue.text(outcome.champion.quarter),
        }
    metadata["promoted"] = dg.MetadataValue.bool(outcome.promoted)
    if not outcome.trained:
        kept = f"version {outcome.model_version} stays the champion" if outcome.champion else "no champion"
        return {
            **metadata,
            "reason": dg.MetadataValue.text(f"not trained, nothing registered ({kept}): {outcome.reason}"),
        }
    metadata |= {
        "best_candidate": dg.MetadataValue.text(outcome.best),
        "best_model_version": dg.MetadataValue.int(outcome.best_version),
        "gate": dg.MetadataValue.text(outcome.gate.describe()),
        **{
            f"gate/{name}": dg.MetadataValue.bool(value) if isinstance(value, bool) else _float(value)
            for name, value in outcome.gate.figures().items()
        },
        "mlflow_run": dg.MetadataValue.url(outcome.run_url),
        "mlflow_quarter_run": dg.MetadataValue.url(outcome.quarter_run_url),
        "mlflow_ui": dg.MetadataValue.text(store.ui_hint()),
    }
    shown = [("eval", outcome.best), ("baseline", BASELINE)]
    if outcome.gate.previous_version is not None:
        shown.append((PREVIOUS, PREVIOUS))
    for prefix, candidate in shown:
        metrics = outcome.metrics(candidate)
        metadata |= {f"{prefix}/{name}": _float(value) for name, value in metrics.items()}
    metadata |= {f"champion_minus_baseline/{name}": _float(value) for name, value in outcome.difference.items()}
    metadata |= {f"fit_seconds/{name}": _float(seconds) for name, seconds in outcome.fit_seconds.items()}
    metadata |= {
        f"params/{name}": dg.MetadataValue.text(describe_params(chosen)) for name, chosen in outcome.chosen.items()
    }
    metadata["train_quarters"] = dg.MetadataValue.text(", ".join(outcome.pooled))
    return metadata


def scores_metadata(
    quarters: Sequence[str], champions: Mapping[str, tuple[int, bool]]
) -> dict[str, dict[str, dg.MetadataValue]]:
    """Per quarter of `ml/churn_scores`: its cutoff, and the champion version that scored it and whether
    it was promoted in that quarter, or why none did."""
    metadata = {}
    for quarter in quarters:
        entries = {"score_cutoff": dg.MetadataValue.text(quarter_end(quarter).isoformat())}
        if quarter in champions:
            version, promoted = champions[quarter]
            entries["model_version"] = dg.MetadataValue.int(version)
            entries["promoted"] = dg.MetadataValue.bool(promoted)
        else:
            entries["reason"] = dg.MetadataValue.text(f"no scores: {quarter} has no champion")
        metadata[quarter] = entries
    return metadata
