"""SPEC.md's "ML" in one straightforward MLlib + MLflow script: the cost of the platform's ML steps.

    BATCH_PLATFORM_CONFIG=bench.yaml python -m benchmarks.plain_ml --from 2024-Q1 --to 2025-Q4 \
        --output /tmp/plain-ml [--report r.json]

An independent implementation, like `benchmarks.plain_pyspark` (whose feature code and timer it
reuses): it imports nothing from `batch_platform` and restates what `ml/churn_model` and
`ml/churn_scores` do, the way a data scientist would write it as one script. It reads the same
config file (lake root, lookback, `ml.promotion_tolerance`, `ml.train_quarters`, the `spark`
section) with PyYAML and, from a lake that holds `gold/training_set` (Delta, read with Spark's
Delta reader and the jars in `.jars/delta`), for each quarter Q of `--from` … `--to`, in order:

- **Train.** The `split = train` rows of Q-k+1 … Q (k = `ml.train_quarters`, default 1) and the
  `split = eval` rows of Q, each laid out as the platform lays them out (hash-partitioned by
  customer_id in ceil(rows / 250,000) partitions, sorted by customer_id then quarter): MLlib's
  seeded fits depend on the rows' partitions and order, and this is what makes them equal.
  Candidates `CANDIDATES` (logistic regression, random forest, gradient-boosted trees, seed 42),
  each grid point fit on the train rows outside the validation fold and ranked by AUC-PR on the
  fold (a quarter of the train customers: SHA-256 of "validation fold/" + customer_id, first 13 hex
  digits as a number in [0, 1), < 0.25; a tie goes to the first listed), then refit on every train
  row. Pipeline: nulls of partner_score, monthly_charges, tenure_months → 0 plus a missing
  indicator; null categories → "none", `StringIndexer` (alphabetical, unseen kept) + `OneHotEncoder`;
  sign(x)·ln(1 + |x|) of the skewed counts and amounts.
- **Evaluate** on Q's eval rows, in customer order: AUC-PR (average precision), AUC-ROC, log loss,
  Brier score, lift in the top decile, churn rate; 95 % percentile intervals of the AUCs from 1,000
  stratified resamples (numpy, seed 42), and the recency baseline (scikit-learn logistic
  regression on recency_days alone, no penalty).
- **Log** a parent MLflow run per quarter (baseline metrics) with a child run per candidate
  (parameters, chosen grid point, metrics, the fitted pipeline), in a local store
  (`sqlite:///<output>/mlflow.db`, artifacts beside it).
- **Register and gate**, in quarter order: the best candidate (higher eval AUC-PR) is registered;
  it becomes the champion of Q when its AUC-PR ≥ the baseline's and ≥ the champion of Q-1
  re-scored on Q's eval rows minus the tolerance; else the champion of Q-1 stays. Aliases
  `champion-<Q>` and `champion`. Fewer than 50 train / 20 eval rows, fewer than 5 of a class in
  train, or one class in eval: nothing trained, the champion of Q-1 stays.
- **Score**: the features at C' = start of Q+1 from silver Q-L+1 … Q and `gold/customer_history` Q
  (`benchmarks.plain_pyspark.features` and `with_profiles`: what `gold/customer_features` Q+1
  holds), scored by the champion of Q, written as Parquet to `<output>/ml/churn_scores`.

What it does not do, and the platform does: the model card (table and Markdown), calibration and
precision-recall plots, the training set's Delta version as the runs' input, Pandera validation,
metadata, the asset checks (promotion gate, out-of-time), and candidates fit side by side in
threads. Its report lists each quarter's candidates' AUC-PR, the best, the gate and the champion,
which `benchmarks.run` compares with the platform's model card.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from benchmarks.plain_pyspark import Timer, features, qidx, qlabel, with_profiles

ROOT = Path(__file__).resolve().parent.parent
DELTA_JARS = ("io.delta_delta-spark_4.1_2.13-4.3.1.jar", "io.delta_delta-storage-4.3.1.jar")
SEED = 42
RESAMPLES = 1000
VALIDATION_FRACTION = 0.25
ROWS_PER_PARTITION = 250_000
MIN_TRAIN, MIN_EVAL, MIN_CLASS = 50, 20, 5
MODEL_NAME = "plain_ml_churn"

CANDIDATES = [
    (
        "logistic_regression",
        "LogisticRegression",
        {"maxIter": 100, "elasticNetParam": 0.0},
        [{"regParam": 0.001}, {"regParam": 0.01}, {"regParam": 0.1}],
    ),
    (
        "random_forest",
        "RandomForestClassifier",
        {"numTrees": 100, "seed": SEED},
        [
            {"maxDepth": 6, "minInstancesPerNode": 1, "featureSubsetStrategy": "onethird"},
            {"maxDepth": 6, "minInstancesPerNode": 10, "featureSubsetStrategy": "0.6"},
            {"maxDepth": 4, "minInstancesPerNode": 20, "featureSubsetStrategy": "0.6"},
        ],
    ),
    (
        "gradient_boosted_trees",
        "GBTClassifier",
        {"stepSize": 0.1, "subsamplingRate": 0.8, "seed": SEED},
        [
            {"maxDepth": 2, "maxIter": 20},
            {"maxDepth": 2, "maxIter": 40},
            {"maxDepth": 3, "maxIter": 20},
            {"maxDepth": 3, "maxIter": 40},
        ],
    ),
]
SKEWED = ["txn_count", "active_days", "txn_count_90d", "log_event_count", "total_amount", "avg_amount", "amount_90d"]
NULLABLE = ["partner_score", "monthly_charges", "tenure_months"]
CATEGORIES = ["partner_segment", "contract", "payment_method", "country"]
PLAIN = ["recency_days", "tenure_days", "distinct_channels"]
INPUTS = (
    PLAIN
    + [f"{c}_log" for c in SKEWED]
    + [f"{c}_{s}" for c in NULLABLE for s in ("filled", "missing")]
    + [f"{c}_vector" for c in CATEGORIES]
)
PREPARE = (
    "SELECT *, "
    + ", ".join(
        [f"SIGN({c}) * LN(1D + ABS({c})) AS {c}_log" for c in SKEWED]
        + [f"CAST({c} IS NULL AS DOUBLE) AS {c}_missing" for c in NULLABLE]
        + [f"COALESCE(CAST({c} AS DOUBLE), 0D) AS {c}_filled" for c in NULLABLE]
        + [f"COALESCE({c}, 'none') AS {c}_category" for c in CATEGORIES]
    )
    + " FROM __THIS__"
)


# ---------------------------------------------------------------------------------- Spark
def session(spark_settings: dict) -> SparkSession:
    jars = [ROOT / ".jars" / "delta" / name for name in DELTA_JARS]
    builder = (
        SparkSession.builder.master(str(spark_settings.get("master", "local[*]")))
        .appName("plain_ml")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
        .config("spark.sql.shuffle.partitions", str(spark_settings.get("shuffle_partitions", 8)))
        .config("spark.ui.enabled", str(spark_settings.get("ui_enabled", True)).lower())
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.jars", ",".join(str(jar) for jar in jars))
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
    )
    for key, value in (spark_settings.get("conf") or {}).items():
        builder = builder.config(key, str(value).lower() if isinstance(value, bool) else str(value))
    return builder.getOrCreate()


def delta(spark: SparkSession, lake: Path, table: str, quarters: list[str]) -> DataFrame:
    return spark.read.format("delta").load(str(lake / table)).filter(F.col("quarter").isin(quarters))


# ------------------------------------------------------------------------------------ model
def pipeline(estimator: str, params: dict):
    import pyspark.ml.classification as classification
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import OneHotEncoder, SQLTransformer, StringIndexer, VectorAssembler

    return Pipeline(
        stages=[
            SQLTransformer(statement=PREPARE),
            StringIndexer(
                inputCols=[f"{c}_category" for c in CATEGORIES],
                outputCols=[f"{c}_index" for c in CATEGORIES],
                handleInvalid="keep",
                stringOrderType="alphabetAsc",
            ),
            OneHotEncoder(inputCols=[f"{c}_index" for c in CATEGORIES], outputCols=[f"{c}_vector" for c in CATEGORIES]),
            VectorAssembler(inputCols=INPUTS, outputCol="features", handleInvalid="error"),
            getattr(classification, estimator)(**params),
        ]
    )


def probability(model, frame: DataFrame) -> DataFrame:
    from pyspark.ml.functions import vector_to_array

    return model.transform(frame).withColumn("churn_probability", vector_to_array("probability")[1])


def eval_probabilities(model, eval_: DataFrame):
    rows = probability(model, eval_).select("customer_id", "churn_probability").toPandas()
    return rows.sort_values("customer_id", kind="stable")["churn_probability"].to_numpy()


def bucket(text) -> F.Column:
    return F.conv(F.substring(F.sha2(text, 256), 1, 13), 16, 10).cast("long").cast("double") / float(16**13)


def laid_out(rows: DataFrame, count: int) -> DataFrame:
    """The platform's layout of a split: the seeded fits depend on partitions and row order."""
    partitions = max(1, math.ceil(count / ROWS_PER_PARTITION))
    return rows.repartition(partitions, "customer_id").sortWithinPartitions("customer_id", "quarter").persist()


# ---------------------------------------------------------------------------------- metrics
def evaluate(y, p) -> dict:
    import numpy as np
    from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

    y, p = np.asarray(y, dtype=int), np.clip(np.asarray(p, dtype=float), 0.0, 1.0)
    rate = float(y.mean())
    top = np.argsort(-p, kind="stable")[: math.ceil(len(p) / 10)]
    return {
        "auc_pr": float(average_precision_score(y, p)),
        "auc_roc": float(roc_auc_score(y, p)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "lift_top_decile": float(y[top].mean() / rate) if rate else 0.0,
        "churn_rate": rate,
    }


def resamples(y):
    """1,000 stratified resamples (seed 42) as per-row counts, drawn in blocks of ≤ 4M cells, churned first."""
    import numpy as np

    rng = np.random.default_rng(SEED)
    classes = [np.flatnonzero(y == value) for value in (1, 0)]
    block = max(1, 4_000_000 // max(1, len(y)))
    blocks = []
    for start in range(0, RESAMPLES, block):
        size = min(block, RESAMPLES - start)
        counts = np.zeros((size, len(y)))
        for rows in classes:
            if len(rows):
                counts[:, rows] = rng.multinomial(len(rows), np.full(len(rows), 1 / len(rows)), size=size)
        blocks.append(counts)
    return np.concatenate(blocks)


def replicate_aucs(y, p, weights) -> dict:
    import numpy as np
    from sklearn.metrics import average_precision_score, roc_auc_score

    pr = [average_precision_score(y, p, sample_weight=w) for w in weights]
    roc = [roc_auc_score(y, p, sample_weight=w) for w in weights]
    return {"auc_pr": np.array(pr), "auc_roc": np.array(roc)}


def interval(values) -> tuple[float, float]:
    import numpy as np

    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def measure(y, p, weights) -> tuple[dict, dict]:
    reps = replicate_aucs(y, p, weights)
    found = evaluate(y, p)
    for name, values in reps.items():
        found[f"{name}_ci_low"], found[f"{name}_ci_high"] = interval(values)
    return found, reps


def recency_baseline(train_recency, train_labels, recency):
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    fitted = LogisticRegression(C=np.inf, max_iter=1000).fit(
        np.asarray(train_recency, float).reshape(-1, 1), train_labels
    )
    return fitted.predict_proba(np.asarray(recency, float).reshape(-1, 1))[:, 1]


# -------------------------------------------------------------------------------------- run
def train_quarter(training: DataFrame, quarter: str, pooled: list[str], experiment: str) -> dict:
    """Fit, measure and log the candidates of one quarter; what the gate needs."""
    import mlflow
    import mlflow.spark
    import pyspark
    from sklearn.metrics import average_precision_score

    rows = training.filter(F.col("quarter").isin(pooled))
    counts = {
        r["split"]: (r["rows"], r["churned"])
        for r in rows.filter((F.col("split") == "train") | (F.col("quarter") == quarter))
        .groupBy("split")
        .agg(F.count(F.lit(1)).alias("rows"), F.sum("label").alias("churned"))
        .collect()
    }
    (n_train, c_train), (n_eval, c_eval) = counts.get("train", (0, 0)), counts.get("eval", (0, 0))
    out: dict = {"quarter": quarter, "train_rows": n_train, "eval_rows": n_eval}
    if n_train < MIN_TRAIN or n_eval < MIN_EVAL or min(c_train, n_train - c_train) < MIN_CLASS or c_eval in (0, n_eval):
        out["reason"] = f"untrainable: train {n_train} ({c_train} churned), eval {n_eval} ({c_eval} churned)"
        return out
    train = laid_out(rows.filter(F.col("split") == "train"), n_train)
    eval_ = laid_out(rows.filter((F.col("split") == "eval") & (F.col("quarter") == quarter)), n_eval)
    truth = eval_.select("customer_id", "label", "recency_days").toPandas().sort_values("customer_id", kind="stable")
    history = train.select("recency_days", "label").toPandas()
    y = truth["label"].to_numpy()
    weights = resamples(y)
    baseline = recency_baseline(history["recency_days"], history["label"], truth["recency_days"])
    base_metrics, base_reps = measure(y, baseline, weights)
    in_fold = bucket(F.concat(F.lit("validation fold/"), F.col("customer_id"))) < F.lit(VALIDATION_FRACTION)
    fit, fold = train.filter(~in_fold).persist(), train.filter(in_fold).persist()
    ranks = all(
        0 < (r["churned"] or 0) < r["rows"]
        for r in [f.agg(F.count(F.lit(1)).alias("rows"), F.sum("label").alias("churned")).first() for f in (fit, fold)]
    )
    out |= {"baseline": base_metrics, "candidates": {}, "y": y, "weights": weights, "eval": eval_}
    out["probabilities"] = {"recency_baseline": baseline}
    out["replicates"] = {"recency_baseline": base_reps}
    with mlflow.start_run(experiment_id=experiment, run_name=f"churn {quarter}", tags={"quarter": quarter}) as parent:
        mlflow.log_metrics({f"baseline_{k}": v for k, v in base_metrics.items()})
        for name, estimator, fixed, grid in CANDIDATES:
            began = time.perf_counter()
            points = [{**fixed, **point} for point in grid]
            scores = []
            if len(points) > 1 and ranks:
                for params in points:
                    fold_rows = probability(pipeline(estimator, params).fit(fit), fold)
                    found = fold_rows.select("label", "churn_probability").toPandas()
                    scores.append(float(average_precision_score(found["label"], found["churn_probability"])))
            chosen = points[scores.index(max(scores))] if scores else points[0]
            model = pipeline(estimator, chosen).fit(train)
            seconds = time.perf_counter() - began
            p = eval_probabilities(model, eval_)
            metrics, reps = measure(y, p, weights)
            with mlflow.start_run(
                experiment_id=experiment,
                run_name=f"{name} {quarter}",
                nested=True,
                tags={"quarter": quarter},
            ) as run:
                classifier = model.stages[-1]
                mlflow.log_params({p.name: v for p, v in classifier.extractParamMap().items()})
                mlflow.log_params(
                    {
                        "train_rows": n_train,
                        "eval_rows": n_eval,
                        "train_quarters": ",".join(pooled),
                        "chosen_params": ", ".join(f"{k}={chosen[k]}" for pt in grid for k in pt),
                        "grid_validation_auc_pr": ",".join(f"{s:.6f}" for s in scores) or "-",
                        "bootstrap_resamples": RESAMPLES,
                        "bootstrap_seed": SEED,
                    }
                )
                mlflow.log_metrics({**metrics, "fit_seconds": seconds})
                info = mlflow.spark.log_model(model, "model", pip_requirements=[f"pyspark=={pyspark.__version__}"])
            out["candidates"][name] = {
                "metrics": metrics,
                "chosen": {k: chosen[k] for pt in grid for k in pt},
                "validation_auc_pr": scores,
                "model": model,
                "uri": info.model_uri,
                "run_id": run.info.run_id,
            }
            out["probabilities"][name] = p
            out["replicates"][name] = reps
        out["run_id"] = parent.info.run_id
    fit.unpersist()
    fold.unpersist()
    train.unpersist()
    # a tie goes to the candidate listed first
    out["best"] = max(out["candidates"], key=lambda n: out["candidates"][n]["metrics"]["auc_pr"])
    return out


def gate(outcome: dict, previous: dict | None, tolerance: float, client) -> None:
    """Register the best candidate of a trained quarter and decide its champion."""
    import mlflow

    best = outcome["candidates"][outcome["best"]]
    version = int(
        mlflow.register_model(
            best["uri"], MODEL_NAME, tags={"quarter": outcome["quarter"], "candidate": outcome["best"]}
        ).version
    )
    outcome["best_version"] = version
    best_auc, base_auc = best["metrics"]["auc_pr"], outcome["baseline"]["auc_pr"]
    previous_auc = None
    if previous is not None:
        p = eval_probabilities(previous["model"], outcome["eval"])
        metrics, reps = measure(outcome["y"], p, outcome["weights"])
        previous_auc = metrics["auc_pr"]
        outcome["previous_champion"] = {"version": previous["version"], **metrics}
        outcome["probabilities"]["previous_champion"] = p
        outcome["replicates"]["previous_champion"] = reps
    promoted = best_auc >= base_auc and (previous_auc is None or best_auc >= previous_auc - tolerance)
    outcome["gate"] = {
        "promoted": promoted,
        "best_auc_pr": best_auc,
        "baseline_auc_pr": base_auc,
        "previous_champion_auc_pr": previous_auc,
    }
    if promoted:
        outcome["champion"] = {"version": version, "quarter": outcome["quarter"], "model": best["model"]}
        name = outcome["best"]
    else:
        outcome["champion"] = previous
        name = "previous_champion"
    if outcome["champion"] is not None:
        mine, base = outcome["replicates"][name], outcome["replicates"]["recency_baseline"]
        at = best_auc if promoted else previous_auc
        diff = {"auc_pr": at - base_auc}
        diff["auc_pr_ci_low"], diff["auc_pr_ci_high"] = interval(mine["auc_pr"] - base["auc_pr"])
        outcome["champion_minus_baseline"] = diff
        for key, value in diff.items():
            client.log_metric(outcome["run_id"], f"champion_minus_baseline_{key}", value)
    for key, value in outcome["gate"].items():
        if value is not None:
            client.log_metric(outcome["run_id"], f"gate_{key}", float(value))


def run(first: str, last: str, config: dict, output: Path) -> dict:
    import mlflow

    lake = Path(config["storage"]["lake_root"])
    batch, ml = config.get("batch") or {}, config.get("ml") or {}
    lookback = int(batch.get("lookback_quarters", 4))
    tolerance = float(ml.get("promotion_tolerance", 0.01))
    pool = int(ml.get("train_quarters", 1))
    lo, hi = qidx(first), qidx(last)
    quarters = [qlabel(i) for i in range(lo, hi + 1)]
    output.mkdir(parents=True, exist_ok=True)
    timer = Timer()
    began = time.time()
    with timer("spark_session"):
        spark = session(config.get("spark") or {})
    with timer("mlflow_store"):
        uri = f"sqlite:///{output / 'mlflow.db'}"
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        experiment = mlflow.create_experiment("plain_ml", artifact_location=(output / "mlartifacts").as_uri())
        client = mlflow.MlflowClient()
    with timer("read_training_set"):
        every = [qlabel(i) for i in range(lo - pool + 1, hi + 1)]
        training = delta(spark, lake, "gold/training_set", every).persist()
        training.count()
    outcomes = []
    with timer("train"):
        for i, quarter in enumerate(quarters):
            pooled = [qlabel(j) for j in range(lo + i - pool + 1, lo + i + 1)]
            outcomes.append(train_quarter(training, quarter, pooled, experiment))
    training.unpersist()
    with timer("register_and_gate"):
        previous = None
        for outcome in outcomes:
            if "reason" not in outcome:
                gate(outcome, previous, tolerance, client)
                previous = outcome["champion"]
            else:
                outcome["champion"] = previous
            if previous is not None:
                client.set_registered_model_alias(MODEL_NAME, f"champion-{outcome['quarter']}", previous["version"])
        if previous is not None:
            client.set_registered_model_alias(MODEL_NAME, "champion", previous["version"])
    with timer("score"):
        silver = [qlabel(i) for i in range(lo - lookback + 1, hi + 1)]
        events, logs, scores = (
            delta(spark, lake, f"silver/{t}", silver)
            for t in ("operational_events", "interaction_logs", "partner_scores")
        )
        history = delta(spark, lake, "gold/customer_history", quarters)
        # features of target Q+1 (cutoff C' = start of Q+1, silver Q-L+1 … Q) with history Q
        feats = with_profiles(features(events, logs, scores, lo + 1, hi + 1, lookback), history)
        back = F.concat((F.col("_t") / 4).cast("int").cast("string"), F.lit("-Q"), (F.col("_t") % 4 + 1).cast("string"))
        following = F.substring("quarter", 1, 4).cast("int") * 4 + F.substring("quarter", 7, 1).cast("int") - 2
        feats = feats.withColumn("_t", following).withColumn("quarter", back).drop("_t").persist()
        scored = []
        for outcome in outcomes:
            champion = outcome["champion"]
            if champion is None:
                continue
            rows = feats.filter(F.col("quarter") == outcome["quarter"])
            scored.append(
                probability(champion["model"], rows).select(
                    "quarter",
                    "customer_id",
                    F.col("feature_cutoff").alias("score_cutoff"),
                    "churn_probability",
                    F.lit(champion["version"]).cast("int").alias("model_version"),
                    F.lit(champion["quarter"] == outcome["quarter"]).alias("promoted"),
                )
            )
        if scored:
            frame = scored[0]
            for other in scored[1:]:
                frame = frame.unionByName(other)
            frame.write.mode("overwrite").partitionBy("quarter").parquet(str(output / "ml" / "churn_scores"))
        feats.unpersist()
    ended = time.time()
    with timer("spark_stop"):
        spark.stop()
    return {
        "quarters": quarters,
        "started": began,
        "ended": ended,
        "phases": timer.phases,
        "models": [summary(outcome) for outcome in outcomes],
    }


def summary(outcome: dict) -> dict:
    """What the report keeps of a quarter: every figure, no models or arrays."""
    if "reason" in outcome:
        champion = outcome["champion"]
        return {
            "quarter": outcome["quarter"],
            "trained": False,
            "reason": outcome["reason"],
            "champion_version": None if champion is None else champion["version"],
        }
    champion = outcome["champion"]
    return {
        "quarter": outcome["quarter"],
        "trained": True,
        "train_rows": outcome["train_rows"],
        "eval_rows": outcome["eval_rows"],
        "candidates": {
            name: {"chosen": c["chosen"], "validation_auc_pr": c["validation_auc_pr"], **c["metrics"]}
            for name, c in outcome["candidates"].items()
        },
        "recency_baseline": outcome["baseline"],
        "previous_champion": outcome.get("previous_champion"),
        "best": outcome["best"],
        "best_version": outcome["best_version"],
        "gate": outcome["gate"],
        "champion_version": None if champion is None else champion["version"],
        "champion_minus_baseline": outcome.get("champion_minus_baseline"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="first", required=True)
    parser.add_argument("--to", dest="last")
    parser.add_argument("--config", default=os.environ.get("BATCH_PLATFORM_CONFIG", "config/config.yaml"))
    parser.add_argument("--output", help="the MLflow store and the scores (default: a new temporary folder)")
    parser.add_argument("--report", help="write the phase timings and the models' figures here (JSON)")
    args = parser.parse_args(argv)
    config = yaml.safe_load(Path(args.config).read_text()) or {}
    output = Path(args.output or tempfile.mkdtemp(prefix="plain-ml-"))
    result = run(args.first, args.last or args.first, config, output)
    if args.report:
        Path(args.report).write_text(json.dumps(result, indent=1, default=str))
    for model in result["models"]:
        if model["trained"]:
            figures = ", ".join(f"{n} {c['auc_pr']:.4f}" for n, c in model["candidates"].items())
            print(
                f"{model['quarter']}: {figures}, baseline {model['recency_baseline']['auc_pr']:.4f}; best {model['best']} "
                f"v{model['best_version']}, {'promoted' if model['gate']['promoted'] else 'not promoted'}; "
                f"champion v{model['champion_version']}"
            )
        else:
            print(f"{model['quarter']}: {model['reason']}; champion v{model['champion_version']}")
    print(f"plain ML: {result['quarters'][0]}..{result['quarters'][-1]} in {result['ended'] - result['started']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
