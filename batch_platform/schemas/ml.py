"""Pandera models of the ML tables (SPEC.md, "ML: the quarterly churn model and its scores").

`ml/churn_model` Q is the model card of the quarter: one row per candidate evaluated on the eval
split of `gold/training_set` Q (the two classifiers and the recency-only baseline), the champion
marked and carrying the registered model version `ml/churn_scores` loads. A quarter that could not
be trained has no rows (its materialisation says why).

`ml/churn_scores` Q holds the predictions made at the end of Q for Q+1: `score_cutoff` is the
start of Q+1 (C'), a row rule, so a score computed at another cutoff cannot be published.
"""

from __future__ import annotations

import dagster as dg
import pandera.pyspark as pa
import pyspark.sql.types as T
from pyspark.sql import functions as F

from batch_platform.features import EVENTS, FEATURES_LINEAGE
from batch_platform.schemas.base import LakeTable, Lineage, Table, quarter_end_col, row_rule
from batch_platform.schemas.gold import TRAINING_KEY

MODEL_KEY = dg.AssetKey(["ml", "churn_model"])
SCORES_KEY = dg.AssetKey(["ml", "churn_scores"])
CANDIDATES = ("logistic_regression", "random_forest", "recency_baseline")


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
        isin=list(CANDIDATES),
        description="logistic_regression and random_forest (Spark MLlib), or recency_baseline: a logistic "
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
    **{column: _EVAL for column in ("auc_pr", "auc_roc", "log_loss", "brier", "lift_top_decile", "churn_rate")},
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
