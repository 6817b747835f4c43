"""The Spark MLlib pipeline every candidate is fit as, and what a fitted one computes.

One `Pipeline` per candidate, so the fitted object logged to MLflow turns a
`gold/customer_features`-shaped frame into a probability with nothing else to apply:

- A `SQLTransformer` prepares the columns. Every nullable numeric feature (`NULLABLE`: the partner
  score and the profile's monthly charges and tenure) becomes `<name>_filled` (null → 0) plus the
  indicator `<name>_missing`; with the indicator in the model the filled value only shifts the
  indicator's weight. Every category (`CATEGORIES`: the partner segment and the profile's contract,
  payment method and country) gets null → `none`, an explicit category. The skewed counts and
  amounts (`SKEWED`: a few customers buy a hundred times more than the median one) become
  `<name>_log` = sign(x)·ln(1 + |x|) (amounts may be negative), which the logistic regression
  needs and the trees do not mind (a monotone transform leaves their splits where they were).
- `StringIndexer(handleInvalid="keep")` + `OneHotEncoder` encode each category (a value never seen
  in training gets the spare slot). A landing zone without the customers source has every profile
  feature null: each profile category is then the single category `none` and each indicator is 1,
  inputs that carry nothing and that the classifiers ignore.
- `VectorAssembler(handleInvalid="error")` fails on any other null, then the classifier.
"""

from __future__ import annotations

import numpy as np
import pyspark.ml.classification
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.feature import OneHotEncoder, SQLTransformer, StringIndexer, VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from batch_platform.features import PROFILE_FEATURES, STATISTICS_FEATURES
from batch_platform.ml.candidates import Candidate

SKEWED = ("txn_count", "active_days", "txn_count_90d", "log_event_count", "total_amount", "avg_amount", "amount_90d")
NULLABLE = ("partner_score", *(name for name in PROFILE_FEATURES if name in STATISTICS_FEATURES))
CATEGORIES = ("partner_segment", *(name for name in PROFILE_FEATURES if name not in STATISTICS_FEATURES))
PLAIN = tuple(name for name in STATISTICS_FEATURES if name not in (*SKEWED, *NULLABLE))
"""The numeric features the classifier reads as they are (recency, tenure in days, channels)."""
MODEL_INPUTS = [
    *PLAIN,
    *(f"{name}_log" for name in SKEWED),
    *(f"{name}_{suffix}" for name in NULLABLE for suffix in ("filled", "missing")),
    *(f"{name}_vector" for name in CATEGORIES),
]
"""The classifier's inputs, in the feature vector's order: every feature of `gold/customer_features`
but the identifier and the timestamps (whose information is in recency and tenure)."""
_PREPARE = (
    "SELECT *, "
    + ", ".join(
        [
            *(f"SIGN({name}) * LN(1D + ABS({name})) AS {name}_log" for name in SKEWED),
            *(f"CAST({name} IS NULL AS DOUBLE) AS {name}_missing" for name in NULLABLE),
            *(f"COALESCE(CAST({name} AS DOUBLE), 0D) AS {name}_filled" for name in NULLABLE),
            *(f"COALESCE({name}, 'none') AS {name}_category" for name in CATEGORIES),
        ]
    )
    + " FROM __THIS__"
)


def estimator(candidate: Candidate, params: dict[str, object]):
    """The candidate's MLlib classifier with `params` (one of `candidate.combinations()`)."""
    return getattr(pyspark.ml.classification, candidate.estimator)(**params)


def pipeline(classifier) -> Pipeline:
    """Null handling, transforms, category encoding and feature vector, then `classifier` (module docstring)."""
    return Pipeline(
        stages=[
            SQLTransformer(statement=_PREPARE),
            StringIndexer(
                inputCols=[f"{name}_category" for name in CATEGORIES],
                outputCols=[f"{name}_index" for name in CATEGORIES],
                handleInvalid="keep",
                stringOrderType="alphabetAsc",
            ),
            OneHotEncoder(
                inputCols=[f"{name}_index" for name in CATEGORIES],
                outputCols=[f"{name}_vector" for name in CATEGORIES],
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
