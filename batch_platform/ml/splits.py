"""A quarter's train and eval rows (SPEC.md, "ML"): which quarters the model of Q learns from, whether
they are enough to train, and each split laid out for MLlib. `batch_platform.ml.training` trains on
them; `benchmarks/ml_quality.py` reads the same rows without MLflow.

- **Pooled training.** With `ml.train_quarters` k > 1 the model of Q learns from the train rows of
  `gold/training_set` Q-k+1 … Q together (`pooled_quarters`; the quarters before the first are
  skipped): every label among them is known at the end of Q, so the pool is point-in-time correct,
  and the eval rows stay Q's own. A customer is on the same side of the train/eval split in every
  quarter, so no eval customer is ever trained on. A customer of several pooled quarters is several
  rows, one per cutoff: the same customer seen at different moments.
- **Untrainable.** Fewer than `MIN_TRAIN_ROWS` train or `MIN_EVAL_ROWS` eval rows, or fewer than
  `MIN_CLASS_ROWS` of either class in train, or one class only in eval (`untrainable_reason`).
- **Cost and reproducibility.** A quarter's split is small next to the lake (a fifth of one quarter's
  customers for eval), and MLlib runs a Spark job per optimizer iteration or tree level, so each split
  is cached in as few partitions as its size needs (`ROWS_PER_PARTITION`), hash-partitioned by
  customer and sorted within each partition, which also makes the fits reproducible (`cached_split`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from batch_platform.partitions import shift
from batch_platform.schemas.base import PARTITION_COLUMN

ROWS_PER_PARTITION = 250_000
MIN_TRAIN_ROWS = 50
MIN_EVAL_ROWS = 20
MIN_CLASS_ROWS = 5


def untrainable_reason(counts: dict[str, int]) -> str | None:
    """Why a quarter with these train/eval row and churner counts cannot be trained, or None."""
    train, eval_ = counts.get("train_rows", 0), counts.get("eval_rows", 0)
    train_churned, eval_churned = (
        counts.get("train_churned", 0),
        counts.get("eval_churned", 0),
    )
    if train < MIN_TRAIN_ROWS:
        return f"{train} train rows, fewer than the {MIN_TRAIN_ROWS} needed"
    if eval_ < MIN_EVAL_ROWS:
        return f"{eval_} eval rows, fewer than the {MIN_EVAL_ROWS} needed"
    smaller = min(train_churned, train - train_churned)
    if smaller < MIN_CLASS_ROWS:
        return (
            f"the train split has {train_churned} churned and {train - train_churned} retained customers: "
            f"a class with fewer than {MIN_CLASS_ROWS} rows (one class only if 0)"
        )
    if eval_churned in (0, eval_):
        return f"the eval split has one class only ({eval_churned} churned of {eval_})"
    return None


def pooled_quarters(quarter: str, pool: int, found: Mapping[str, dict] | None = None) -> tuple[str, ...]:
    """Q-k+1 … Q, oldest first: the training sets whose train rows the model of Q learns from; with
    `found` (`split_counts`), only those that have rows, and Q."""
    every = (shift(quarter, offset) for offset in range(1 - pool, 1))
    return tuple(q for q in every if found is None or q in found or q == quarter)


def pooled_counts(counts: Mapping[str, dict], quarter: str, pooled: Sequence[str]) -> dict:
    """The counts of `quarter` (`split_counts`) with the train rows and churners of every `pooled` quarter."""
    return {
        **counts.get(quarter, {}),
        "train_rows": sum(counts.get(q, {}).get("train_rows", 0) for q in pooled),
        "train_churned": sum(counts.get(q, {}).get("train_churned", 0) for q in pooled),
    }


def split_counts(training_set: DataFrame) -> dict[str, dict[str, int]]:
    """Per quarter: train and eval rows and churned customers, and the label window (`label_window_start`,
    `label_window_end`: the model card's), in one aggregation."""
    aggs = [
        F.min("label_window_start").alias("label_window_start"),
        F.max("label_window_end").alias("label_window_end"),
    ]
    for side in ("train", "eval"):
        on_side = F.col("split") == side
        aggs += [
            F.sum(on_side.cast("long")).alias(f"{side}_rows"),
            F.sum(F.when(on_side, F.col("label")).otherwise(0)).cast("long").alias(f"{side}_churned"),
        ]
    found = training_set.groupBy(PARTITION_COLUMN).agg(*aggs).collect()
    return {
        row[PARTITION_COLUMN]: {
            k: v if k.startswith("label_window") else int(v or 0)
            for k, v in row.asDict().items()
            if k != PARTITION_COLUMN
        }
        for row in found
    }


def cached_split(rows: DataFrame, side: str, count: int) -> DataFrame:
    """One quarter's `side` rows, cached in as few partitions as their count needs (module docstring),
    laid out by the rows alone: hash-partitioned by `customer_id` and sorted by it (then by quarter, for
    pooled rows) within each partition.

    MLlib's random forest draws each tree's bootstrap sample partition by partition, row by row, from
    seeds derived from its seed and the partition's index (and, beyond 10,000 rows, samples its split
    candidates the same way), and the optimizer's sums follow the row order too; so the seed gives
    the same model only for the same rows in the same partitions in the same order. Read back from
    Parquet, that order is the files' (their number, sizes and splits), which a rewrite of the same
    rows changes.
    """
    partitions = max(1, math.ceil(count / ROWS_PER_PARTITION))
    side_rows = rows.filter(F.col("split") == side)
    laid_out = side_rows.repartition(partitions, "customer_id")
    return laid_out.sortWithinPartitions("customer_id", PARTITION_COLUMN).persist()
