"""The out-of-time evaluation of `ml/churn_scores` Q against `gold/churn_labels` Q+1 (SPEC.md, "ML").

What the check `out_of_time_performance` computes, and `batch-platform ml-report` again from the
lake with pandas (`batch_platform.consume.load_out_of_time_rows`): the same function, the same figures.
"""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from batch_platform.ml.metrics import ranking_metrics
from batch_platform.partitions import shift
from batch_platform.schemas.base import PARTITION_COLUMN


def out_of_time_rows(
    churn_scores: DataFrame, labels: DataFrame, features: DataFrame, following: Mapping[str, str]
) -> pd.DataFrame:
    """The scores of each Q beside the labels of Q+1 and the `recency_days` of `gold/customer_features`
    Q+1 (the baseline's ranking), full outer joined on customer; `following`: Q+1 → Q, the quarters
    of `labels` and `features` re-labelled as the quarter they judge."""
    back = F.create_map(*[F.lit(value) for pair in following.items() for value in pair])
    recency = features.select(PARTITION_COLUMN, "customer_id", "recency_days")
    truth = labels.join(recency, [PARTITION_COLUMN, "customer_id"]).withColumn(
        PARTITION_COLUMN, back[F.col(PARTITION_COLUMN)]
    )
    joined = churn_scores.select(PARTITION_COLUMN, "customer_id", "churn_probability").join(
        truth.select(PARTITION_COLUMN, "customer_id", "label", "recency_days"),
        [PARTITION_COLUMN, "customer_id"],
        "full_outer",
    )
    return joined.toPandas()


def out_of_time_result(quarter: str, rows, labels_exist: bool) -> dict:
    """passed / severity / description / metadata of one quarter's out-of-time evaluation."""
    following = shift(quarter, 1)
    if not labels_exist:
        return _not_evaluated(quarter, f"pending: gold/churn_labels {following} is not in the lake yet")
    scored = rows["churn_probability"].notna()
    labelled = rows["label"].notna()
    if not scored.any():
        return _not_evaluated(quarter, f"no scores: {quarter} had no champion")
    both = rows[scored & labelled]
    metadata = {
        "quarter": quarter,
        "labels_quarter": following,
        "evaluated": True,
        "customers": len(both),
        "scored_not_labelled": int((scored & ~labelled).sum()),
        "labelled_not_scored": int((labelled & ~scored).sum()),
        "realised_churn_rate": float(both["label"].mean()),
    }
    problems = []
    if both["label"].nunique() < 2:
        return {
            "passed": True,
            "description": f"{following} labels hold one class only: no AUC",
            "metadata": metadata,
        }
    model = ranking_metrics(both["label"].to_numpy(), both["churn_probability"].to_numpy())
    baseline = ranking_metrics(both["label"].to_numpy(), both["recency_days"].to_numpy())
    metadata |= {f"out_of_time/{k}": v for k, v in model.items()} | {f"baseline/{k}": v for k, v in baseline.items()}
    if model["auc_pr"] < baseline["auc_pr"]:
        problems.append(f"AUC-PR {model['auc_pr']:.4f} is below the recency baseline's {baseline['auc_pr']:.4f}")
    if metadata["scored_not_labelled"] or metadata["labelled_not_scored"]:
        problems.append(
            f"{metadata['scored_not_labelled']} scored customers have no {following} label and "
            f"{metadata['labelled_not_scored']} labelled customers were not scored"
        )
    return {
        "passed": not problems,
        "severity": dg.AssetCheckSeverity.WARN,
        "description": "; ".join(problems) or f"AUC-PR {model['auc_pr']:.4f} vs baseline {baseline['auc_pr']:.4f}",
        "metadata": metadata,
    }


def _not_evaluated(quarter: str, description: str) -> dict:
    """A passing result that measured nothing: the labels are pending, or there are no scores."""
    return {
        "passed": True,
        "description": description,
        "metadata": {"quarter": quarter, "labels_quarter": shift(quarter, 1), "evaluated": False},
    }
