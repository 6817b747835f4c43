"""The quarterly churn model: training, evaluation, the MLflow registry and scoring (SPEC.md, "ML").

The assets in `batch_platform/assets/ml.py` hold the transformations; this module holds what they
call. Choices the contract leaves open:

- **Pipeline.** One Spark MLlib `Pipeline` per candidate, so the fitted object logged to MLflow
  turns a `gold/customer_features`-shaped frame into a probability with nothing else to apply:
  a `SQLTransformer` makes the nulls explicit (`partner_score` null → 0 plus the indicator
  `partner_score_missing`; with the indicator in the model the filled value only shifts the
  indicator's weight; `partner_segment` null → `none`), `StringIndexer(handleInvalid="keep")` +
  `OneHotEncoder` encode the segment (a segment never seen in training gets the spare slot),
  `VectorAssembler(handleInvalid="error")` fails on any other null, then the classifier.
- **Candidates.** Logistic regression (L2, regParam 0.01) and a random forest (100 trees, depth 6,
  seed 42): same rows, same result, whatever files the training set was read from (`_split`). The
  champion has the higher AUC-PR on eval; a tie goes to the logistic regression (listed first).
- **Baseline.** The recency-only model: a logistic regression on `recency_days` alone, fit on the
  same train split. Its probabilities give the log loss and Brier score; its AUCs are those of
  ranking by `recency_days` (the fit is monotone), which is how the out-of-time check scores it.
  It is not a candidate and is never logged as a model, so it is fit by scikit-learn on the
  collected train column: one feature, a quarter's customers, milliseconds on the driver.
- **Cost.** A quarter's split is small next to the lake (a fifth of one quarter's customers for
  eval), and MLlib runs a Spark job per optimizer iteration or tree level, so each split is cached
  in as few partitions as its size needs (`ROWS_PER_PARTITION`), hash-partitioned by customer and
  sorted within each partition, which also makes the fits reproducible; the two candidates are fit and
  evaluated concurrently, each from its own thread, and `QUARTERS_AT_ONCE` quarters train side by
  side (Spark runs their jobs together, filling the cores that one job's few tasks leave idle).
  The champions are registered afterwards, in quarter order, so versions ascend with the quarter.
- **Metrics** (scikit-learn, on the eval rows collected to the driver — a fifth of one quarter's
  customers): AUC-PR is the average precision; lift in the top decile is the churn rate among the
  ceil(10%) highest probabilities (ties broken by customer order) over the eval churn rate.
- **Pinned to its data.** The training set arrives read at one Delta version of `gold/training_set`
  (the IO manager's read); `training_input` finds that version — the newest one whose files of the
  quarters read are exactly the files the frame reads — and every MLflow run of a quarter (the
  quarter's and each candidate's) logs it with `mlflow.log_input` as a Spark dataset whose source
  is the Delta table's path and version (context `training`, tags `quarter`, `delta_version`); the
  registered version carries it as tags too. `load_training_set_of_model(5)` reads back the exact
  rows model version 5 learned from, for as long as `storage.delta.retention_days` keeps that version.
- **Untrainable.** Fewer than `MIN_TRAIN_ROWS` train or `MIN_EVAL_ROWS` eval rows, or fewer than
  `MIN_CLASS_ROWS` of either class in train, or one class only in eval: nothing is logged or
  registered, the materialisation says which, and the quarter's scores are empty.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import reduce
from typing import TYPE_CHECKING

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from batch_platform.features import NUMERIC_FEATURES, compute_customer_features
from batch_platform.mlflow_store import MlflowStore, build_mlflow_store
from batch_platform.partitions import shift, to_label
from batch_platform.schemas.base import PARTITION_COLUMN

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas as pd
    from pyspark.ml import Pipeline, PipelineModel

    from batch_platform.config import PlatformConfig

TRAINING_TABLE = "gold/training_set"
SEED = 42
ROWS_PER_PARTITION = 250_000
QUARTERS_AT_ONCE = 2
MIN_TRAIN_ROWS = 50
MIN_EVAL_ROWS = 20
MIN_CLASS_ROWS = 5
METRICS = ("auc_pr", "auc_roc", "log_loss", "brier", "lift_top_decile", "churn_rate")
CLASSIFIERS = ("logistic_regression", "random_forest")
BASELINE = "recency_baseline"
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


def champion_alias(quarter: str) -> str:
    """The registry alias of a quarter's champion: `champion-2025-Q4`."""
    return f"champion-{to_label(quarter)}"


# ----------------------------------------------------------------------------------- pipelines
def candidates() -> dict[str, object]:
    from pyspark.ml.classification import LogisticRegression, RandomForestClassifier

    return {
        "logistic_regression": LogisticRegression(maxIter=100, regParam=0.01, elasticNetParam=0.0),
        "random_forest": RandomForestClassifier(numTrees=100, maxDepth=6, seed=SEED),
    }


def pipeline(classifier) -> Pipeline:
    """Null handling, segment encoding and feature vector, then `classifier` (module docstring)."""
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import OneHotEncoder, SQLTransformer, StringIndexer, VectorAssembler

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


def recency_baseline(train_recency: np.ndarray, train_labels: np.ndarray, recency: np.ndarray) -> np.ndarray:
    """Churn probabilities at `recency` of a logistic regression fit on recency_days alone (no penalty)."""
    from sklearn.linear_model import LogisticRegression as Baseline

    fitted = Baseline(C=np.inf, max_iter=1000).fit(np.asarray(train_recency, float).reshape(-1, 1), train_labels)
    return fitted.predict_proba(np.asarray(recency, float).reshape(-1, 1))[:, 1]


def churn_probability(model: PipelineModel, frame: DataFrame) -> DataFrame:
    """`frame` with `churn_probability`: the fitted pipeline's probability of label 1."""
    from pyspark.ml.functions import vector_to_array

    return model.transform(frame).withColumn("churn_probability", vector_to_array(F.col("probability"))[1])


def classifier_params(classifier) -> dict[str, object]:
    return {param.name: value for param, value in classifier.extractParamMap().items()}


# ---------------------------------------------------------------------------------------- metrics
def evaluate(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """AUC-PR, AUC-ROC, log loss, Brier, top-decile lift and churn rate of probabilities vs 0/1 labels."""
    from sklearn.metrics import (
        average_precision_score,
        brier_score_loss,
        log_loss,
        roc_auc_score,
    )

    y = np.asarray(labels, dtype=int)
    p = np.clip(np.asarray(probabilities, dtype=float), 0.0, 1.0)
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


def ranking_metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """AUC-PR and AUC-ROC of any score that ranks churners first (a probability, or recency_days)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    y = np.asarray(labels, dtype=int)
    s = np.asarray(scores, dtype=float)
    return {
        "auc_pr": float(average_precision_score(y, s)),
        "auc_roc": float(roc_auc_score(y, s)),
    }


def _probabilities(model: PipelineModel, frame: DataFrame) -> np.ndarray:
    """The fitted pipeline's churn probabilities of `frame`'s rows, in customer order."""
    rows = churn_probability(model, frame).select("customer_id", "churn_probability").toPandas()
    return rows.sort_values("customer_id", kind="stable")["churn_probability"].to_numpy()


def _split(rows: DataFrame, side: str, count: int) -> DataFrame:
    """One quarter's `side` rows, cached in as few partitions as their count needs (module docstring),
    laid out by the rows alone: hash-partitioned by `customer_id` and sorted by it within each partition.

    MLlib's random forest draws each tree's bootstrap sample partition by partition, row by row, from
    seeds derived from `SEED` and the partition's index (and, beyond 10,000 rows, samples its split
    candidates the same way), and the optimizer's sums follow the row order too; so the seed gives
    the same model only for the same rows in the same partitions in the same order. Read back from
    Parquet, that order is the files' (their number, sizes and splits), which a rewrite of the same
    rows changes.
    """
    partitions = max(1, math.ceil(count / ROWS_PER_PARTITION))
    side_rows = rows.filter(F.col("split") == side)
    return side_rows.repartition(partitions, "customer_id").sortWithinPartitions("customer_id").persist()


def plots(labels: np.ndarray, probabilities: np.ndarray, baseline: np.ndarray, title: str):
    """The PR curve (with the baseline's) and the calibration plot, as matplotlib figures."""
    from matplotlib.figure import Figure
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import precision_recall_curve

    pr = Figure(figsize=(5, 4))
    ax = pr.subplots()
    for name, scores in (("model", probabilities), (BASELINE, baseline)):
        precision, recall, _ = precision_recall_curve(labels, scores)
        ax.plot(recall, precision, label=name)
    ax.set(xlabel="recall", ylabel="precision", title=f"PR curve, eval — {title}")
    ax.legend()
    calibration = Figure(figsize=(5, 4))
    ax = calibration.subplots()
    observed, predicted = calibration_curve(labels, probabilities, n_bins=10, strategy="quantile")
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", label="perfect")
    ax.plot(predicted, observed, marker="o", label="model")
    ax.set(
        xlabel="mean predicted churn probability",
        ylabel="observed churn rate",
        title=f"Calibration — {title}",
    )
    ax.legend()
    return {"plots/pr_curve.png": pr, "plots/calibration.png": calibration}


# ---------------------------------------------------------------------------------- training input
@dataclass(frozen=True)
class TrainingInput:
    """The Delta table version a training frame was read at."""

    uri: str
    """The table: a folder path or `s3a://bucket/prefix/gold/training_set`."""
    version: int
    files: tuple[str, ...]
    """The data files read, as Spark names them: what makes these rows these rows."""

    def digest(self, quarter: str) -> str:
        """A short fingerprint of the quarter's rows: its table, version and files."""
        mine = [f for f in self.files if f"/{PARTITION_COLUMN}={quarter}/" in f]
        return hashlib.sha256("\n".join([self.uri, str(self.version), quarter, *mine]).encode()).hexdigest()[:8]


def training_input(training_set: DataFrame) -> TrainingInput | None:
    """The Delta table and version `training_set` reads: the newest version of the table whose files of
    the quarters the frame reads are exactly the frame's files (the version the IO manager read, unless
    a later commit left those quarters untouched — the same rows either way). None when the frame reads
    no file, or not one Delta table's. Call it before the frame is cached: a cached frame reads no file.
    A frame whose files no version holds (a table rewritten under it) is an error, not a guess."""
    from delta.tables import DeltaTable

    files = tuple(sorted(training_set.inputFiles()))
    marker = f"/{PARTITION_COLUMN}="
    roots = {f.rsplit(marker, 1)[0] for f in files if marker in f}
    if not files or len(roots) != 1 or not all(marker in f for f in files):
        return None
    (root,) = roots
    spark = training_set.sparkSession
    if not DeltaTable.isDeltaTable(spark, root):
        return None
    quarters = sorted({f.rsplit(marker, 1)[1].split("/", 1)[0] for f in files})
    versions = [row["version"] for row in DeltaTable.forPath(spark, root).history().select("version").collect()]
    for version in sorted(versions, reverse=True):
        at = spark.read.format("delta").option("versionAsOf", version).load(root)
        if tuple(sorted(at.where(F.col(PARTITION_COLUMN).isin(quarters)).inputFiles())) == files:
            return TrainingInput(_local_path(root), int(version), files)
    raise RuntimeError(
        f"no version of the Delta table {root} holds exactly the {len(files)} file(s) of {', '.join(quarters)} the "
        "training set was read from: the model cannot be pinned to its data, so it is not trained"
    )


def _local_path(uri: str) -> str:
    """Spark's `file:/tmp/lake/...` as the path a person writes, `/tmp/lake/...`; other URIs unchanged."""
    if uri.startswith("file:"):
        return "/" + uri.removeprefix("file:").lstrip("/")
    return uri


def training_dataset(rows: DataFrame, pinned: TrainingInput, quarter: str, counts: dict[str, int]):
    """The MLflow dataset of one quarter's training rows: a Spark dataset whose source is the Delta table
    at `pinned.version` (MLflow's `delta_table` source: `source.load()` reads that version back with
    Spark), targets `label`, a digest of the table, version and files, and the row counts as its
    profile (MLflow's own would count the rows in a Spark job at every `log_input`)."""
    from mlflow.data.delta_dataset_source import DeltaDatasetSource
    from mlflow.data.spark_dataset import SparkDataset

    class PinnedDeltaSource(DeltaDatasetSource):
        """MLflow's Delta source, whose `to_dict` leaves out a version 0: here every version is written."""

        def to_dict(self) -> dict:
            return {**super().to_dict(), "delta_table_version": self.delta_table_version}

    class TrainingSetDataset(SparkDataset):
        @property
        def profile(self) -> dict:
            return {
                "num_rows": counts.get("train_rows", 0) + counts.get("eval_rows", 0),
                "train_rows": counts.get("train_rows", 0),
                "eval_rows": counts.get("eval_rows", 0),
            }

    source = PinnedDeltaSource(path=pinned.uri, delta_table_version=pinned.version)
    dataset = TrainingSetDataset(
        df=rows, source=source, targets="label", name=f"{TRAINING_TABLE} {quarter}", digest=pinned.digest(quarter)
    )
    with warnings.catch_warnings():  # its hint on integer columns is about model signatures, not datasets
        warnings.simplefilter("ignore", UserWarning)
        _ = dataset.schema  # inferred once, here, from the frame's Spark schema (a cached property)
    return dataset


def _log_training_input(dataset, quarter: str, pinned: TrainingInput) -> None:
    """Log the quarter's training set as the active run's input (`training_dataset`)."""
    import mlflow

    tags = {"quarter": quarter, "table": TRAINING_TABLE, "delta_version": str(pinned.version)}
    mlflow.log_input(dataset, context="training", tags=tags)


# -------------------------------------------------------------------------------------- training
@dataclass
class QuarterModel:
    """What training one quarter produced: the model card rows, or why there are none."""

    quarter: str
    train_rows: int
    eval_rows: int
    reason: str | None = None
    rows: list[dict] = field(default_factory=list)
    champion: str | None = None
    model_version: int | None = None
    run_id: str | None = None
    run_url: str | None = None
    """The champion's MLflow run: its metrics, plots and fitted model (the quarter's run has no plots, no model)."""
    quarter_run_url: str | None = None
    """The quarter's MLflow run: every candidate as a child run, the baseline's metrics."""
    champion_uri: str | None = None
    training_input: TrainingInput | None = None
    """The Delta table and version the quarter's rows were read from (None: not read from a Delta table)."""

    @property
    def trained(self) -> bool:
        return self.reason is None

    def metrics(self, candidate: str) -> dict[str, float]:
        return next({m: row[m] for m in METRICS} for row in self.rows if row["candidate"] == candidate)


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


def split_counts(training_set: DataFrame) -> dict[str, dict[str, int]]:
    """Per quarter: train and eval rows and churned customers, in one aggregation."""
    aggs = []
    for side in ("train", "eval"):
        on_side = F.col("split") == side
        aggs += [
            F.sum(on_side.cast("long")).alias(f"{side}_rows"),
            F.sum(F.when(on_side, F.col("label")).otherwise(0)).cast("long").alias(f"{side}_churned"),
        ]
    found = training_set.groupBy(PARTITION_COLUMN).agg(*aggs).collect()
    return {
        row[PARTITION_COLUMN]: {k: int(v or 0) for k, v in row.asDict().items() if k != PARTITION_COLUMN}
        for row in found
    }


def train_quarters(training_set: DataFrame, quarters: Sequence[str], store: MlflowStore) -> list[QuarterModel]:
    """Train, evaluate and log the churn model of each of `quarters`, then register each champion
    (an untrainable quarter loses its champion alias); in the order of `quarters`. Each quarter's runs
    log the Delta version of `gold/training_set` the frame was read at (`training_input`)."""
    pinned = training_input(training_set)
    frame = training_set.persist()
    try:
        counts = split_counts(frame)
        with ThreadPoolExecutor(QUARTERS_AT_ONCE) as pool:
            outcomes = list(pool.map(lambda q: train_quarter(frame, q, counts.get(q, {}), store, pinned), quarters))
    finally:
        frame.unpersist()
    for outcome in outcomes:
        if outcome.trained:
            _register(store, outcome)
        else:
            _drop_alias(store, outcome.quarter)
    return outcomes


def train_quarter(
    training_set: DataFrame,
    quarter: str,
    counts: dict[str, int],
    store: MlflowStore,
    pinned: TrainingInput | None = None,
) -> QuarterModel:
    """Train, evaluate and log the candidates of one quarter and pick the champion (module docstring);
    `pinned`: the Delta version `training_set` was read at, logged as every run's input."""
    result = QuarterModel(quarter, counts.get("train_rows", 0), counts.get("eval_rows", 0), training_input=pinned)
    result.reason = untrainable_reason(counts)
    if not result.trained:
        return result
    rows = training_set.filter(F.col(PARTITION_COLUMN) == quarter)
    dataset = training_dataset(rows, pinned, quarter, counts) if pinned else None
    train, eval_ = _split(rows, "train", result.train_rows), _split(rows, "eval", result.eval_rows)
    try:
        _train(train, eval_, result, store, dataset)
    finally:
        train.unpersist()
        eval_.unpersist()
    return result


@dataclass
class _Eval:
    """What every candidate of a quarter is measured against: the eval labels, in customer order, and
    the baseline's probabilities and metrics on them."""

    quarter: str
    experiment_id: str
    parent_run_id: str
    labels: np.ndarray
    baseline: np.ndarray
    baseline_metrics: dict[str, float]
    dataset: object | None = None
    """The quarter's training set as an MLflow dataset (`training_dataset`), logged by every run."""
    pinned: TrainingInput | None = None

    def log_input(self) -> None:
        if self.dataset is not None and self.pinned is not None:
            _log_training_input(self.dataset, self.quarter, self.pinned)


def _train(train: DataFrame, eval_: DataFrame, result: QuarterModel, store: MlflowStore, dataset=None) -> None:
    import mlflow

    truth = eval_.select("customer_id", "label", "recency_days").toPandas().sort_values("customer_id", kind="stable")
    history = train.select("recency_days", "label").toPandas()
    baseline = recency_baseline(history["recency_days"], history["label"], truth["recency_days"])
    labels = truth["label"].to_numpy()
    quarter = result.quarter
    experiment_id = store.activate()
    with mlflow.start_run(
        experiment_id=experiment_id, run_name=f"churn {quarter}", tags={"quarter": quarter}
    ) as parent:
        against = _Eval(
            quarter,
            experiment_id,
            parent.info.run_id,
            labels,
            baseline,
            evaluate(labels, baseline),
            dataset,
            result.training_input,
        )
        against.log_input()
        mlflow.log_metrics({f"baseline_{name}": value for name, value in against.baseline_metrics.items()})
        result.rows.append(_card_row(BASELINE, against.baseline_metrics, result, parent.info.run_id))
        with ThreadPoolExecutor(len(CLASSIFIERS)) as pool:
            futures = [pool.submit(_candidate, *item, train, eval_, against, result) for item in candidates().items()]
            done = [future.result() for future in futures]  # in candidate order
        result.rows += [row for row, _ in done]
        logged = {row["candidate"]: model_uri for row, model_uri in done}
        champion = max(
            (row for row in result.rows if row["candidate"] != BASELINE),
            key=lambda row: row["auc_pr"],
        )
        mlflow.set_tag("champion", champion["candidate"])
        result.champion, result.champion_uri = champion["candidate"], logged[champion["candidate"]]
        result.run_id = parent.info.run_id
        result.run_url = store.run_url(experiment_id, champion["mlflow_run_id"])
        result.quarter_run_url = store.run_url(experiment_id, parent.info.run_id)


def _candidate(
    name: str, classifier, train: DataFrame, eval_: DataFrame, against: _Eval, result: QuarterModel
) -> tuple[dict, str]:
    """Fit, measure and log one candidate as a child run of the quarter's run; (model card row, model URI).

    Runs in a thread of its own: MLflow's active run is per thread, hence the explicit parent.
    """
    import mlflow

    model = pipeline(classifier).fit(train)
    probabilities = _probabilities(model, eval_)
    metrics = evaluate(against.labels, probabilities)
    with mlflow.start_run(
        experiment_id=against.experiment_id,
        run_name=f"{name} {against.quarter}",
        parent_run_id=against.parent_run_id,
        tags={"quarter": against.quarter},
    ) as run:
        against.log_input()
        mlflow.log_params({**classifier_params(classifier), "features": ",".join(MODEL_INPUTS)})
        mlflow.log_params({"train_rows": result.train_rows, "eval_rows": result.eval_rows})
        mlflow.log_metrics({**metrics, **{f"baseline_{k}": v for k, v in against.baseline_metrics.items()}})
        for path, figure in plots(against.labels, probabilities, against.baseline, f"{name} {against.quarter}").items():
            mlflow.log_figure(figure, path)
        return _card_row(name, metrics, result, run.info.run_id), _log_model(model)


def _card_row(candidate: str, metrics: dict[str, float], result: QuarterModel, run_id: str) -> dict:
    return {
        PARTITION_COLUMN: result.quarter,
        "candidate": candidate,
        "champion": False,
        **metrics,
        "train_rows": result.train_rows,
        "eval_rows": result.eval_rows,
        "mlflow_run_id": run_id,
        "registered_model_name": None,
        "model_version": None,
    }


def _log_model(model: PipelineModel) -> str:
    """Log the fitted pipeline to the active run; its model URI. The requirements are given, since
    inferring them starts a subprocess that imports the whole environment (seconds per model)."""
    import mlflow.spark
    import pyspark

    info = mlflow.spark.log_model(model, "model", pip_requirements=[f"pyspark=={pyspark.__version__}"])
    return info.model_uri


def _register(store: MlflowStore, result: QuarterModel) -> None:
    """Register the champion of a trained quarter as a new version, point the quarter's alias at it,
    and record the version on its model card row and its MLflow run."""
    import mlflow

    champion = next(row for row in result.rows if row["candidate"] == result.champion)
    tags = {
        "quarter": result.quarter,
        "candidate": result.champion,
        "eval_auc_pr": f"{champion['auc_pr']:.6f}",
    }
    if result.training_input is not None:
        tags |= {"training_set": result.training_input.uri, "training_set_version": str(result.training_input.version)}
    store.activate()
    version = int(mlflow.register_model(result.champion_uri, store.registered_model_name, tags=tags).version)
    client = mlflow.MlflowClient()
    client.set_registered_model_alias(store.registered_model_name, champion_alias(result.quarter), version)
    client.set_tag(result.run_id, "model_version", str(version))
    champion.update(champion=True, registered_model_name=store.registered_model_name, model_version=version)
    result.model_version = version


def _drop_alias(store: MlflowStore, quarter: str) -> None:
    """An untrainable re-run of a quarter leaves MLflow no champion of it (its scores are empty)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    if store.is_empty_local_store():
        return
    store.activate()
    try:
        mlflow.MlflowClient().delete_registered_model_alias(store.registered_model_name, champion_alias(quarter))
    except MlflowException:
        pass  # no registered model, or no alias for that quarter: nothing to drop


# ------------------------------------------------------------------------------- a model's data
def load_training_set_of_model(
    model: int | str, *, split: str | None = "train", config: PlatformConfig | None = None
) -> pd.DataFrame:
    """The exact rows a model learned from, as `consume.load_training_set` returns them: `model` is a
    version of the registered model (`5`), or a model URI (`models:/batch_platform_churn/5`,
    `models:/batch_platform_churn@champion-2025-Q4`, `runs:/<run id>/model`). Its MLflow run's input
    names the Delta table and version of `gold/training_set` and the quarter; that version of the
    quarter is read back, its `split = train` rows (the rows the model was fit on; `split="eval"` for
    those it was measured on, None for both). The MLflow store and S3 settings are those of `config`
    (default: the config file). `batch_platform.delta.VersionNotAvailable` names the version and
    `storage.delta.retention_days` once VACUUM has removed it."""
    import mlflow

    from batch_platform.config import load_config
    from batch_platform.consume import load_training_set

    config = config or load_config()
    store = build_mlflow_store(config)
    store.activate()
    client = mlflow.MlflowClient()
    run = client.get_run(_run_of(client, store.registered_model_name, model))
    uri, version, quarter = _training_input_of(run)
    lake_root = uri.removesuffix(f"/{TRAINING_TABLE}")
    rows = load_training_set(quarter, version=version, config=config, lake_root=lake_root)
    if split is not None:
        rows = rows[rows["split"] == split].reset_index(drop=True)
    return rows


def _run_of(client, registered_model_name: str, model: int | str) -> str:
    """The id of the MLflow run that logged `model` (`load_training_set_of_model`)."""
    if isinstance(model, int) or str(model).isdigit():
        return client.get_model_version(registered_model_name, str(model)).run_id
    uri = str(model)
    if uri.startswith("runs:/"):
        return uri.removeprefix("runs:/").split("/", 1)[0]
    if uri.startswith("models:/"):
        name, _, rest = uri.removeprefix("models:/").partition("/")
        if "@" in name:
            name, alias = name.split("@", 1)
            return client.get_model_version_by_alias(name, alias).run_id
        if rest.isdigit():
            return client.get_model_version(name, rest).run_id
    import mlflow

    return mlflow.models.get_model_info(uri).run_id


def _training_input_of(run) -> tuple[str, int, str]:
    """(table URI, Delta version, quarter) of the run's training input (`_log_training_input`)."""
    import json

    for entry in run.inputs.dataset_inputs:
        tags = {tag.key: tag.value for tag in entry.tags}
        if entry.dataset.source_type == "delta_table" and tags.get("table") == TRAINING_TABLE:
            source = json.loads(entry.dataset.source)
            return source["path"], int(tags["delta_version"]), tags["quarter"]
    raise LookupError(
        f"MLflow run {run.info.run_id} logged no {TRAINING_TABLE} input: it was trained before models were pinned "
        "to the Delta version of their training set"
    )


# --------------------------------------------------------------------------------------- scoring
def scoring_features(
    events: DataFrame,
    logs: DataFrame,
    scores: DataFrame,
    quarters: Sequence[str],
    lookback: int,
) -> DataFrame:
    """The features scored for each Q of `quarters`: `compute_customer_features` for target quarter
    Q+1 (cutoff C' = start of Q+1, silver Q-L+1 … Q), re-labelled with `quarter` = Q. The same
    function builds `gold/customer_features`, so these equal its Q+1 partition wherever it exists."""
    targets = {shift(q, 1): to_label(q) for q in quarters}
    features = compute_customer_features(events, logs, scores, list(targets), lookback)
    relabel = F.create_map(*[F.lit(value) for pair in targets.items() for value in pair])
    return features.withColumn(PARTITION_COLUMN, relabel[F.col(PARTITION_COLUMN)])


def load_champions(store: MlflowStore, versions: dict[str, int]) -> dict[str, PipelineModel]:
    """The registered model `versions[quarter]` of each quarter, read back from MLflow;
    `QUARTERS_AT_ONCE` side by side, since reading a model is mostly Spark jobs too small to fill
    the cores."""
    import mlflow.spark

    store.activate()
    uris = {quarter: f"models:/{store.registered_model_name}/{version}" for quarter, version in versions.items()}
    with ThreadPoolExecutor(QUARTERS_AT_ONCE) as pool:
        return dict(zip(uris, pool.map(mlflow.spark.load_model, uris.values()), strict=True))


def score_quarters(features: DataFrame, store: MlflowStore, versions: dict[str, int]) -> DataFrame | None:
    """`ml/churn_scores` rows of each quarter of `versions` (quarter → its champion's version),
    from that quarter's scoring features; None when no quarter has a champion.

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
            models = load_champions(store, versions)
            computed.result()
        scored = [
            score(features.filter(F.col(PARTITION_COLUMN) == quarter), model, versions[quarter])
            for quarter, model in models.items()
        ]
        return reduce(DataFrame.unionByName, scored).localCheckpoint() if scored else None
    finally:
        features.unpersist()


def score(features: DataFrame, model: PipelineModel, version: int) -> DataFrame:
    """`ml/churn_scores` rows for the customers of `features` (one quarter's scoring features)."""
    return churn_probability(model, features).select(
        PARTITION_COLUMN,
        "customer_id",
        F.col("feature_cutoff").alias("score_cutoff"),
        "churn_probability",
        F.lit(version).cast("int").alias("model_version"),
    )
