"""Scoring: the churn probability of every customer at the end of a quarter, by that quarter's champion.

`scoring_features` computes the features at C' = start of Q+1 with the function behind
`gold/customer_features` (no train/serve skew); `score_quarters` is what `ml/churn_scores` runs,
with the champion of each quarter the registry's `champion-<quarter>` alias names
(`batch_platform.ml.registry.quarter_champions`): the best candidate of Q when it was promoted, else
the champion of Q-1, also for a quarter that could not be trained.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import reduce

from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from batch_platform.features import compute_customer_features
from batch_platform.ml.pipelines import churn_probability
from batch_platform.ml.registry import load_champions
from batch_platform.mlflow_store import MlflowStore
from batch_platform.partitions import shift, to_label
from batch_platform.schemas.base import PARTITION_COLUMN, spark_schema
from batch_platform.schemas.ml import ChurnScores


def scoring_features(
    events: DataFrame,
    logs: DataFrame,
    scores: DataFrame,
    quarters: Sequence[str],
    lookback: int,
    history: DataFrame | None = None,
) -> DataFrame:
    """The features scored for each Q of `quarters`: `compute_customer_features` for target quarter
    Q+1 (cutoff C' = start of Q+1, silver Q-L+1 … Q, `gold/customer_history` Q), re-labelled with
    `quarter` = Q. The same function builds `gold/customer_features`, so these equal its Q+1
    partition wherever it exists."""
    targets = {shift(q, 1): to_label(q) for q in quarters}
    features = compute_customer_features(events, logs, scores, list(targets), lookback, history=history)
    relabel = F.create_map(*[F.lit(value) for pair in targets.items() for value in pair])
    return features.withColumn(PARTITION_COLUMN, relabel[F.col(PARTITION_COLUMN)])


def score_quarters(features: DataFrame, store: MlflowStore, champions: dict[str, tuple[int, bool]]) -> DataFrame:
    """`ml/churn_scores` rows of each quarter of `champions` (quarter → its champion's version, and
    whether it was promoted in that quarter), from that quarter's scoring features; no rows when no
    quarter has a champion.

    The features are computed while the champions load from MLflow (mostly small Spark jobs and
    file copies that leave the cores idle). The scores come back checkpointed: the plan of the
    unscored frame holds every fitted pipeline, and Spark plans a query over it in seconds (a
    100-tree forest per quarter), while the IO manager's passes plan several. (A local checkpoint
    lives in the executors' block stores: an executor lost before the write fails the step, and a
    re-run repeats it.)
    """
    features = features.persist()
    try:
        with ThreadPoolExecutor(1) as pool:
            computed = pool.submit(features.count)
            models = load_champions(store, {quarter: version for quarter, (version, _) in champions.items()})
            computed.result()
        scored = [
            score(features.filter(F.col(PARTITION_COLUMN) == quarter), model, *champions[quarter])
            for quarter, model in models.items()
        ]
        if not scored:
            return features.sparkSession.createDataFrame([], spark_schema(ChurnScores))
        return reduce(DataFrame.unionByName, scored).localCheckpoint()
    finally:
        features.unpersist()


def score(features: DataFrame, model: PipelineModel, version: int, promoted: bool) -> DataFrame:
    """`ml/churn_scores` rows for the customers of `features` (one quarter's scoring features)."""
    return churn_probability(model, features).select(
        PARTITION_COLUMN,
        "customer_id",
        F.col("feature_cutoff").alias("score_cutoff"),
        "churn_probability",
        F.lit(version).cast("int").alias("model_version"),
        F.lit(promoted).alias("promoted"),
    )
