"""Pandera models of the ML tables (SPEC.md, "ML: the quarterly churn model and its scores").

`ml/churn_model` Q is the model card of the quarter: one row per candidate evaluated on the eval
split of `gold/training_set` Q (the two classifiers and the recency-only baseline), the champion
marked and carrying the registered model version `ml/churn_scores` loads. A quarter that could not
be trained has no rows (its materialisation says why).

`ml/churn_scores` Q holds the predictions made at the end of Q for Q+1: `score_cutoff` is the
start of Q+1 (C'), a row rule, so a score computed at another cutoff cannot be published.
"""

from __future__ import annotations

import pandera.pyspark as pa
import pyspark.sql.types as T
from pyspark.sql import functions as F

from batch_platform.schemas.base import LakeTable, quarter_end_col, row_rule

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
