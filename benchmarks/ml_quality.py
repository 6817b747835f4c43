"""How good the churn candidates are: eval and out-of-time AUC-PR per quarter, beside the recency baseline.

Reads `gold/training_set` of a lake that is already built (`make demo`, or the benchmark's CDNOW
lake) and, for each quarter Q and each k of `--pool`, does what `ml/churn_model` Q does with
`ml.train_quarters` = k, with the platform's own code (`batch_platform.ml.splits` and `.tuning`: the pooled
rows, the validation fold, the grid, the pipeline), but without MLflow: the candidates are fit on the pooled train rows of
Q-k+1 … Q and measured on Q's eval rows (eval AUC-PR) and on every customer of Q+1 against its
labels (out-of-time AUC-PR: what the check `out_of_time_performance` records for `ml/churn_scores` Q,
since `gold/training_set` Q+1 holds exactly the features and labels of Q+1). The baseline is the
recency-only model: fit on the same train rows for eval, ranking by `recency_days` out of time.

    .venv/bin/python -m benchmarks.ml_quality --config config/config.yaml --pool 1 2 3

prints one Markdown table per k (the rows of benchmarks/FINDINGS.md, "ML quality"), then the mean
over the quarters that have an out-of-time figure.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from pyspark.sql import functions as F

from batch_platform.config import load_config
from batch_platform.consume import spark_session
from batch_platform.ml.candidates import CANDIDATES, describe_params
from batch_platform.ml.metrics import ranking_metrics, recency_baseline
from batch_platform.ml.pipelines import churn_probability
from batch_platform.ml.splits import pooled_counts, pooled_quarters, split_counts, untrainable_reason
from batch_platform.ml.tuning import ValidationFolds, fit_candidate
from batch_platform.partitions import shift
from batch_platform.schemas.base import PARTITION_COLUMN


def _auc_pr(frame, column: str = "churn_probability") -> float:
    rows = frame.select("label", column).toPandas()
    return ranking_metrics(rows["label"].to_numpy(), rows[column].to_numpy())["auc_pr"]


def measure_quarter(training, found: dict, quarter: str, pool: int) -> dict | None:
    """Eval and out-of-time AUC-PR of every candidate and of the baseline for `quarter`; None when it
    cannot be trained."""
    pooled = pooled_quarters(quarter, pool, found)
    counts = pooled_counts(found, quarter, pooled)
    if untrainable_reason(counts) is not None:
        return None
    rows = training.filter(F.col(PARTITION_COLUMN).isin(list(pooled)))
    train = rows.filter(F.col("split") == "train").repartition(1).sortWithinPartitions("customer_id", PARTITION_COLUMN)
    train = train.persist()
    eval_ = rows.filter((F.col(PARTITION_COLUMN) == quarter) & (F.col("split") == "eval")).persist()
    later = training.filter(F.col(PARTITION_COLUMN) == shift(quarter, 1)).persist()
    has_later = later.count() > 0
    folds = ValidationFolds.of(train)
    history = train.select("recency_days", "label").toPandas()
    truth = eval_.select("recency_days", "label").toPandas()
    found_row = {
        "quarter": quarter,
        "train_rows": counts["train_rows"],
        "eval_rows": counts["eval_rows"],
        "baseline": ranking_metrics(
            truth["label"].to_numpy(),
            recency_baseline(history["recency_days"], history["label"], truth["recency_days"]),
        )["auc_pr"],
        "baseline_oot": _auc_pr(later.withColumn("recency", F.col("recency_days").cast("double")), "recency")
        if has_later
        else None,
    }

    def one(candidate):
        began = time.perf_counter()
        model, params, _ = fit_candidate(candidate, train, folds)
        seconds = time.perf_counter() - began
        return candidate.name, {
            "eval": _auc_pr(churn_probability(model, eval_)),
            "oot": _auc_pr(churn_probability(model, later)) if has_later else None,
            "params": describe_params({k: params[k] for point in candidate.grid for k in point}),
            "seconds": seconds,
        }

    try:
        with ThreadPoolExecutor(len(CANDIDATES)) as pool_:
            found_row |= dict(pool_.map(one, CANDIDATES))
    finally:
        folds.release()
        for frame in (train, eval_, later):
            frame.unpersist()
    return found_row


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def print_table(results: list[dict], pool: int) -> None:
    names = [c.name for c in CANDIDATES]
    print(f"\n### ml.train_quarters = {pool}\n")
    print("| quarter | train rows | eval rows | " + " | ".join(names) + " | baseline | chosen |")
    print("| --- | ---: | ---: | " + " | ".join("---" for _ in names) + " | --- | --- |")
    for row in results:
        cells = [f"{_fmt(row[n]['eval'])} / {_fmt(row[n]['oot'])}" for n in names]
        chosen = "; ".join(f"{n}: {row[n]['params']}" for n in names)
        baseline = f"{_fmt(row['baseline'])} / {_fmt(row['baseline_oot'])}"
        print(
            f"| {row['quarter']} | {row['train_rows']} | {row['eval_rows']} | {' | '.join(cells)} | {baseline} | {chosen} |"
        )
    with_oot = [row for row in results if row["baseline_oot"] is not None]
    means = [
        f"{np.mean([r[n]['eval'] for r in results]):.4f} / {np.mean([r[n]['oot'] for r in with_oot]):.4f}"
        for n in names
    ]
    base = f"{np.mean([r['baseline'] for r in results]):.4f} / {np.mean([r['baseline_oot'] for r in with_oot]):.4f}"
    print(f"| mean (eval / out-of-time) | | | {' | '.join(means)} | {base} | |")
    seconds = {n: sum(r[n]["seconds"] for r in results) for n in names}
    print(
        "\nfit seconds (grid + refit, summed over quarters): " + ", ".join(f"{n} {s:.0f}" for n, s in seconds.items())
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="the platform's config file (default: $BATCH_PLATFORM_CONFIG)")
    parser.add_argument("--pool", type=int, nargs="+", default=[1], help="values of ml.train_quarters to measure")
    args = parser.parse_args(argv)
    config = load_config(args.config) if args.config else load_config()
    spark = spark_session(config=config)
    training = spark.read.format("delta").load(f"{config.lake_root}/gold/training_set").persist()
    found = split_counts(training)
    quarters = sorted(found)
    print("cells: eval AUC-PR / out-of-time AUC-PR (the scores of Q against the labels of Q+1)")
    for pool in args.pool:
        results = [r for q in quarters if (r := measure_quarter(training, found, q, pool)) is not None]
        print_table(results, pool)


if __name__ == "__main__":
    main()
