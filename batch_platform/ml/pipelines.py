"""The Spark MLlib pipeline every candidate is fit as, and what a fitted one computes.

One `Pipeline` per candidate, so the fitted object logged to MLflow turns a
`gold/customer_features`-shaped frame into a probability with nothing else to apply: a
`SQLTransformer` makes the nulls explicit (`partner_score` null → 0 plus the indicator
`partner_score_missing`; with the indicator in the model the filled value only shifts the
indicator's weight; `partner_segment` null → `none`), `StringIndexer(handleInvalid="keep")` +
`OneHotEncoder` encode the segment (a segment never seen in training gets the spare slot),
`VectorAssembler(handleInvalid="error")` fails on any other null, then the classifier.
"""

from __future__ import annotations

import numpy as np
import pyspark.ml.classification
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.feature import OneHotEncoder, SQLTransformer, StringIndexer, VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from batch_platform.features import NUMERIC_FEATURES
from batch_platform.ml.candidates import Candidate

MODEL_INPUTS = [name for name in NUMERIC_FEATURES if name != "partner_score"] + [
    "partner_score_filled",
    "partner_score_missing",
    "partner_segment_vector",
]
_PREPARE = (
    "SELECT *, CAST(partner_score IS NULL AS DOUBLE) AS partner_score_missing, "
    "COALESCE(partner_score, 0D) AS partner_score_filled, "
    "COALESCE(partner_segment, 'none') AS partner_segment_filled FROM __THIS__"
)


def estimator(candidate: Candidate):
    """The candidate's MLlib classifier, with its declared parameters."""
    return getattr(pyspark.ml.classification, candidate.estimator)(**candidate.params)


def pipeline(classifier) -> Pipeline:
    """Null handling, segment encoding and feature vector, then `classifier` (module docstring)."""
    return Pipeline(
        stages=[
            SQLTransformer(statement=_PREPARE),
            StringIndexer(
                inputCol="partner_segment_filled",
                outputCol="partner_segment_index",
                handleInvalid="keep",
                stringOrderType="alphabetAsc",
            ),
            OneHotEncoder(
                inputCols=["partner_segment_index"],
                outputCols=["partner_segment_vector"],
            ),
            VectorAssembler(inputCols=MODEL_INPUTS, outputCol="features", handleInvalid="error"),
            classifier,
        ]
    )


def classifier_params(classifier) -> dict[str, object]:
    """Every parameter of the classifier, its defaults included: what MLflow logs."""
    return {param.name: value for param, value in classifier.extractParamMap().items()}


def churn_probability(model: PipelineModel, frame: DataFrame) -> DataFrame:
    """`frame` with `churn_probability`: the fitted pipeline's probability of label 1."""
    return model.transform(frame).withColumn("churn_probability", vector_to_array(F.col("probability"))[1])


def probabilities_by_customer(model: PipelineModel, frame: DataFrame) -> np.ndarray:
    """The fitted pipeline's churn probabilities of `frame`'s rows, in customer order (as the eval
    labels are collected): how a candidate, and the champion of Q-1 re-scored, are measured."""
    rows = churn_probability(model, frame).select("customer_id", "churn_probability").toPandas()
    return rows.sort_values("customer_id", kind="stable")["churn_probability"].to_numpy()
