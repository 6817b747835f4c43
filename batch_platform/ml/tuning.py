"""Choosing a candidate's hyperparameters: each combination of its grid (`batch_platform.ml.candidates`)
is fit on the train rows outside the validation fold and measured on the fold (AUC-PR); the chosen
combination is refit on every train row. The eval rows are never seen. The fold's rows are shared
by the candidates of a quarter (`ValidationFolds`). A fold or a rest with one class only cannot
rank: the first combination is chosen.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from batch_platform.assets.gold import split_bucket_col
from batch_platform.ml.candidates import VALIDATION_FRACTION, Candidate
from batch_platform.ml.metrics import ranking_metrics
from batch_platform.ml.pipelines import churn_probability, estimator, pipeline

FOLD_SALT = "validation fold/"
"""Prefixed to customer_id before hashing: the fold is independent of the train/eval split's hash."""


@dataclass
class ValidationFolds:
    """The train rows split for choosing hyperparameters: `fit` (outside the validation fold) and `fold`
    (`VALIDATION_FRACTION` of the train customers, by a hash of customer_id alone); `ranks`: whether
    both hold both classes, without which the fold cannot tell combinations apart."""

    fit: DataFrame
    fold: DataFrame
    ranks: bool

    @classmethod
    def of(cls, train: DataFrame) -> ValidationFolds:
        in_fold = split_bucket_col(F.concat(F.lit(FOLD_SALT), F.col("customer_id"))) < F.lit(VALIDATION_FRACTION)
        fit, fold = train.filter(~in_fold).persist(), train.filter(in_fold).persist()
        counts = {
            row["in_fold"]: (row["rows"], row["churned"])
            for row in train.groupBy(in_fold.alias("in_fold"))
            .agg(F.count(F.lit(1)).alias("rows"), F.sum("label").alias("churned"))
            .collect()
        }
        ranks = all(0 < churned < rows for rows, churned in (counts.get(True, (0, 0)), counts.get(False, (0, 0))))
        return cls(fit, fold, ranks)

    def release(self) -> None:
        self.fit.unpersist()
        self.fold.unpersist()


def choose_params(candidate: Candidate, folds: ValidationFolds) -> tuple[dict[str, object], list[float]]:
    """The combination of `candidate.combinations()` with the higher AUC-PR on the validation fold when
    fit on the rest of the train rows (a tie: the first listed), and every combination's AUC-PR; the
    first combination and no figures when there is a single one or the fold cannot rank."""
    combinations = candidate.combinations()
    if len(combinations) == 1 or not folds.ranks:
        return combinations[0], []
    scores = []
    for params in combinations:
        model = pipeline(estimator(candidate, params)).fit(folds.fit)
        rows = churn_probability(model, folds.fold).select("label", "churn_probability").toPandas()
        scores.append(ranking_metrics(rows["label"].to_numpy(), rows["churn_probability"].to_numpy())["auc_pr"])
    return combinations[scores.index(max(scores))], scores


def fit_candidate(
    candidate: Candidate, train: DataFrame, folds: ValidationFolds
) -> tuple[PipelineModel, dict[str, object], list[float]]:
    """The candidate's pipeline with the combination `choose_params` picks, fit on every train row; the
    combination and every combination's AUC-PR on the fold."""
    params, scores = choose_params(candidate, folds)
    return pipeline(estimator(candidate, params)).fit(train), params, scores
