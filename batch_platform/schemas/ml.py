"""Pandera models of the ML tables (SPEC.md, "ML: the quarterly churn model and its scores").

`ml/churn_model` Q is the model card of the quarter: one row per candidate evaluated on the eval
split of `gold/training_set` Q (the two classifiers and the recency-only baseline), the champion
marked and carrying the registered model version `ml/churn_scores` loads. A quarter that could not
be trained has no rows (its materialisation says why).

`ml/churn_scores` Q holds the predictions made at the end of Q for Q+1: `score_cutoff` is the
start of Q+1 (C'), a row rule, so a score computed at another cutoff cannot be published.

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
from batch_platform.ml.candidates import BASELINE, CANDIDATES, CARD_ROWS, METRICS
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


def _version_only_for_champion():
    return F.col("champion") | F.col("model_version").isNull()


def _unit(description: str) -> pa.Field:
    return pa.Field(nullable=False, ge=0.0, le=1.0, description=description)


class ChurnModel(LakeTable):
    """`ml/churn_model`: per quarter, every candidate's eval metrics; the champion's registered version."""

    candidate: T.StringType() = pa.Field(
        nullable=False,
        isin=list(CARD_ROWS),
        description=f"{' and '.join(c.name for c in CANDIDATES)} (Spark MLlib), or {BASELINE}: a logistic "
        "regression on recency_days alone, the bar the candidates must clear.",
    )
    champion: T.BooleanType() = pa.Field(
        nullable=False,
        description="The classifier with the higher AUC-PR on eval; never the baseline.",
    )
    auc_pr: T.DoubleType() = _unit("Area under the precision-recall curve on eval (average precision).")
    auc_roc: T.DoubleType() = _unit("Area under the ROC curve on eval.")
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
        description="The registered model the champion was added to; null for the others.",
    )
    model_version: T.IntegerType() = pa.Field(
        nullable=True,
        ge=1,
        description="The champion's version in that registered model; null for the others.",
    )

    _version = row_rule("ml_model_version_only_for_champion", _version_only_for_champion)

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

    _cutoff = row_rule("ml_score_cutoff_is_next_quarter_start", _score_cutoff_is_next_quarter_start)

    class Config:
        strict = True
        unique = ["quarter", "customer_id"]


_EVAL = [(TRAINING_KEY, "label"), (TRAINING_KEY, "split")]
MODEL_LINEAGE: Lineage = {
    "candidate": [],
    "champion": _EVAL,
    **{column: _EVAL for column in METRICS},
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
}
"""The probability is the champion applied to the scoring features (the silver columns the features read)."""

CHURN_MODEL = Table(MODEL_KEY, ChurnModel, MODEL_LINEAGE)
CHURN_SCORES = Table(SCORES_KEY, ChurnScores, SCORES_LINEAGE)
ML_TABLES = (CHURN_MODEL, CHURN_SCORES)


# -------------------------------------------------------------------------------------- metadata
def model_metadata(outcomes: Sequence[QuarterModel], store: MlflowStore) -> dict[str, dict[str, dg.MetadataValue]]:
    """Per quarter of `ml/churn_model`, the story of its training: numbers as numbers, so the UI plots
    them across quarters; `mlflow_run` links the champion's run (its plots and model),
    `mlflow_quarter_run` the quarter's."""
    return {outcome.quarter: _model_metadata(outcome, store) for outcome in outcomes}


def _model_metadata(outcome: QuarterModel, store: MlflowStore) -> dict[str, dg.MetadataValue]:
    metadata = {
        "trained": dg.MetadataValue.bool(outcome.trained),
        "train_rows": dg.MetadataValue.int(outcome.train_rows),
        "eval_rows": dg.MetadataValue.int(outcome.eval_rows),
    }
    if not outcome.trained:
        return {
            **metadata,
            "reason": dg.MetadataValue.text(f"not trained, nothing registered: {outcome.reason}"),
        }
    metadata |= {
        "champion": dg.MetadataValue.text(outcome.champion),
        "model_version": dg.MetadataValue.int(outcome.model_version),
        "mlflow_run": dg.MetadataValue.url(outcome.run_url),
        "mlflow_quarter_run": dg.MetadataValue.url(outcome.quarter_run_url),
        "mlflow_ui": dg.MetadataValue.text(store.ui_hint()),
    }
    for prefix, candidate in (("eval", outcome.champion), ("baseline", BASELINE)):
        metrics = outcome.metrics(candidate)
        metadata |= {f"{prefix}/{name}": dg.MetadataValue.float(round(metrics[name], 6)) for name in METRICS}
    return metadata


def scores_metadata(quarters: Sequence[str], champions: Mapping[str, int]) -> dict[str, dict[str, dg.MetadataValue]]:
    """Per quarter of `ml/churn_scores`: its cutoff, and the champion version that scored it or why none did."""
    metadata = {}
    for quarter in quarters:
        entries = {"score_cutoff": dg.MetadataValue.text(quarter_end(quarter).isoformat())}
        if quarter in champions:
            entries["model_version"] = dg.MetadataValue.int(champions[quarter])
        else:
            entries["reason"] = dg.MetadataValue.text(f"no scores: ml/churn_model {quarter} has no champion")
        metadata[quarter] = entries
    return metadata
