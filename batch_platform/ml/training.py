"""Training a quarter's churn model: the candidates fit and measured on its splits, logged to MLflow,
the best registered, the champion decided by the promotion gate (SPEC.md, "ML"). `train_quarters` is
what `ml/churn_model` runs.

- **Rows.** Each quarter learns from the train rows of its pooled quarters and is measured on its own
  eval rows, each split cached for MLlib; a quarter with too few rows is untrainable
  (`batch_platform.ml.splits`, which also says what pooling means).
- **Cost.** The candidates are fit and evaluated concurrently, each from its own thread, and
  `QUARTERS_AT_ONCE` quarters train side by side (Spark runs their jobs together, filling the cores
  that one job's few tasks leave idle). The best candidates are registered afterwards, in quarter
  order, so versions ascend with the quarter, and each quarter's champion is decided then
  (`batch_platform.ml.promotion`): the eval splits stay cached until the champion of Q-1 has been
  re-scored on them.
- **Hyperparameters.** Each candidate's grid is tried on a validation fold of the train rows and
  the chosen combination refit on every train row (`batch_platform.ml.tuning`).
- **Uncertainty.** Every candidate's and the baseline's eval AUC-PR and AUC-ROC carry a 95 %
  bootstrap interval (`batch_platform.ml.bootstrap`), on the model card, in MLflow and in the metadata.
- **Untrainable.** Nothing is logged or registered, the materialisation says why
  (`splits.untrainable_reason`), and the champion of Q-1 stays (scores are empty when there is none).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

import dagster as dg
import mlflow
import numpy as np
from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from batch_platform.ml import bootstrap
from batch_platform.ml.candidates import (
    BASELINE,
    CANDIDATES,
    INTERVALS,
    METRICS,
    VALIDATION_FRACTION,
    Candidate,
    describe_params,
)
from batch_platform.ml.gate import Gate
from batch_platform.ml.metrics import measure, recency_baseline
from batch_platform.ml.pipelines import (
    MODEL_INPUTS,
    classifier_params,
    estimator,
    probabilities_by_customer,
)
from batch_platform.ml.plots import plots
from batch_platform.ml.promotion import decide_champions
from batch_platform.ml.registry import QUARTERS_AT_ONCE, Champion, log_model
from batch_platform.ml.splits import cached_split, pooled_counts, pooled_quarters, split_counts, untrainable_reason
from batch_platform.ml.training_input import TrainingInput, log_training_input, training_dataset, training_input
from batch_platform.ml.tuning import ValidationFolds, fit_candidate
from batch_platform.mlflow_store import MlflowStore
from batch_platform.schemas.base import PARTITION_COLUMN, spark_schema
from batch_platform.schemas.ml import ChurnModel


@dataclass
class QuarterModel:
    """What training one quarter produced: the model card rows, or why there are none."""

    quarter: str
    train_rows: int
    eval_rows: int
    reason: str | None = None
    rows: list[dict] = field(default_factory=list)
    best: str | None = None
    """The candidate with the higher eval AUC-PR: registered as a version, the champion if it passes the gate."""
    best_uri: str | None = None
    best_model: PipelineModel | None = None
    best_version: int | None = None
    run_id: str | None = None
    """The quarter's MLflow run."""
    run_url: str | None = None
    """The best candidate's MLflow run: its metrics, plots and fitted model (the quarter's run has no plots, no model)."""
    quarter_run_url: str | None = None
    """The quarter's MLflow run: every candidate as a child run, the baseline's metrics, the gate's verdict."""
    training_input: TrainingInput | None = None
    """The Delta table and version the quarter's rows were read from (None: not read from a Delta table)."""
    train_churned: int = 0
    label_window: tuple[datetime | None, datetime | None] = (None, None)
    """[start, end) of the label window of the quarter's rows (the model card's data window)."""
    labels: np.ndarray | None = None
    """The eval labels, in customer order."""
    probabilities: dict[str, np.ndarray] = field(default_factory=dict)
    """Every candidate's and the baseline's eval probabilities, in customer order."""
    eval_frame: DataFrame | None = None
    """The cached eval split, until the champion of Q-1 has been re-scored on it."""
    gate: Gate | None = None
    champion: Champion | None = None
    """The champion of Q once decided: the best candidate if promoted, else the champion of Q-1 (or none)."""
    difference: dict[str, float] = field(default_factory=dict)
    """The champion's eval AUC-PR and AUC-ROC minus the baseline's, with paired 95 % intervals."""
    fit_seconds: dict[str, float] = field(default_factory=dict)
    """Each candidate's training time: its grid on the validation fold and the refit on every train row
    (wall clock; candidates fit side by side)."""
    pooled: tuple[str, ...] = ()
    """The quarters whose train rows the model learned from: Q-k+1 … Q (`pooled_quarters`)."""
    chosen: dict[str, dict[str, object]] = field(default_factory=dict)
    """Each candidate's grid combination chosen on the validation fold (its `grid` entry)."""

    @property
    def trained(self) -> bool:
        return self.reason is None

    @property
    def promoted(self) -> bool:
        return self.gate is not None and self.gate.promoted

    @property
    def model_version(self) -> int | None:
        """The version of the champion of Q (what `ml/churn_scores` Q scores with)."""
        return None if self.champion is None else self.champion.version

    def metrics(self, candidate: str) -> dict[str, float]:
        """The eval metrics and interval bounds of a model card row."""
        return next({m: row[m] for m in (*METRICS, *INTERVALS)} for row in self.rows if row["candidate"] == candidate)


def train_quarters(
    training_set: DataFrame,
    quarters: Sequence[str],
    store: MlflowStore,
    tolerance: float,
    lookback: int,
    pool: int = 1,
) -> list[QuarterModel]:
    """Train, evaluate and log the churn model of each of `quarters`, then, in quarter order, register
    each best candidate with its model card (`lookback`: L, the card's data window) and decide each
    champion by the promotion gate with `tolerance` (`decide_champions`; an untrainable quarter is
    logged as a warning and keeps the champion of Q-1); in the order of `quarters`. `pool`: k, each
    model learns from the train rows of Q-k+1 … Q, which `training_set` must hold. Each quarter's
    runs log the Delta version of `gold/training_set` the frame was read at (`training_input`)."""
    pinned = training_input(training_set)
    frame = training_set.persist()
    outcomes: list[QuarterModel] = []
    try:
        found = split_counts(frame)
        pooled = {quarter: pooled_quarters(quarter, pool, found) for quarter in quarters}
        counts = {quarter: pooled_counts(found, quarter, pooled[quarter]) for quarter in quarters}
        if any(untrainable_reason(counts[q]) is None for q in quarters):
            store.activate()  # a new store's experiment created once: two threads looking it up would both create it
        with ThreadPoolExecutor(QUARTERS_AT_ONCE) as threads:
            outcomes = list(
                threads.map(lambda q: train_quarter(frame, q, counts[q], store, pinned, pooled[q]), quarters)
            )
        frame.unpersist()
        for outcome in outcomes:
            if not outcome.trained:
                dg.get_dagster_logger().warning(
                    f"ml/churn_model {outcome.quarter}: not trained, nothing registered: {outcome.reason}"
                )
        decide_champions(outcomes, store, tolerance, lookback)
    finally:
        frame.unpersist()
        for outcome in outcomes:
            if outcome.eval_frame is not None:
                outcome.eval_frame.unpersist()
                outcome.eval_frame = None
    return outcomes


def model_card(outcomes: Sequence[QuarterModel], spark: SparkSession) -> DataFrame:
    """The `ml/churn_model` rows of the quarters trained: every candidate's and the baseline's."""
    return spark.createDataFrame([row for outcome in outcomes for row in outcome.rows], spark_schema(ChurnModel))


def train_quarter(
    training_set: DataFrame,
    quarter: str,
    counts: dict[str, int],
    store: MlflowStore,
    pinned: TrainingInput | None = None,
    pooled: tuple[str, ...] = (),
) -> QuarterModel:
    """Train, evaluate and log the candidates of one quarter and pick the best (module docstring);
    `counts`: its `pooled_counts`; `pinned`: the Delta version `training_set` was read at, logged as
    every run's input; `pooled`: the quarters whose train rows it learns from (default: `quarter`)."""
    result = QuarterModel(quarter, counts.get("train_rows", 0), counts.get("eval_rows", 0), training_input=pinned)
    result.pooled = pooled or (quarter,)
    result.reason = untrainable_reason(counts)
    result.train_churned = counts.get("train_churned", 0)
    result.label_window = (counts.get("label_window_start"), counts.get("label_window_end"))
    if not result.trained:
        return result
    rows = training_set.filter(F.col(PARTITION_COLUMN).isin(list(result.pooled)))
    dataset = training_dataset(rows, pinned, quarter, counts, result.pooled) if pinned else None
    own = rows.filter(F.col(PARTITION_COLUMN) == quarter)
    train, eval_ = cached_split(rows, "train", result.train_rows), cached_split(own, "eval", result.eval_rows)
    try:
        _train(train, eval_, result, store, dataset)
        result.eval_frame = eval_  # released once the champion of Q-1 has been re-scored on it
    except BaseException:
        eval_.unpersist()
        raise
    finally:
        train.unpersist()
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
    pooled: tuple[str, ...] = ()

    def log_input(self) -> None:
        if self.dataset is not None and self.pinned is not None:
            log_training_input(self.dataset, self.quarter, self.pinned, self.pooled)


def _train(train: DataFrame, eval_: DataFrame, result: QuarterModel, store: MlflowStore, dataset=None) -> None:
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
            measure(labels, baseline),
            dataset,
            result.training_input,
            result.pooled,
        )
        against.log_input()
        mlflow.log_metrics({f"baseline_{name}": value for name, value in against.baseline_metrics.items()})
        result.rows.append(card_row(BASELINE, against.baseline_metrics, result, parent.info.run_id))
        folds = ValidationFolds.of(train)
        try:
            with ThreadPoolExecutor(len(CANDIDATES)) as pool:
                futures = [
                    pool.submit(_candidate, candidate, train, folds, eval_, against, result) for candidate in CANDIDATES
                ]
                done = [future.result() for future in futures]  # in candidate order
        finally:
            folds.release()
        result.rows += [fit.row for fit in done]
        best = max(done, key=lambda fit: fit.row["auc_pr"])  # a tie goes to the candidate listed first
        mlflow.set_tag("best_candidate", best.row["candidate"])
        result.best, result.best_uri, result.best_model = best.row["candidate"], best.model_uri, best.model
        result.labels = labels
        result.probabilities = {BASELINE: baseline} | {fit.row["candidate"]: fit.probabilities for fit in done}
        result.run_id = parent.info.run_id
        result.run_url = store.run_url(experiment_id, best.row["mlflow_run_id"])
        result.quarter_run_url = store.run_url(experiment_id, parent.info.run_id)


@dataclass
class _Fit:
    """One candidate fit and measured: its model card row, logged model and eval probabilities."""

    row: dict
    model_uri: str
    model: PipelineModel
    probabilities: np.ndarray


def _candidate(
    candidate: Candidate,
    train: DataFrame,
    folds: ValidationFolds,
    eval_: DataFrame,
    against: _Eval,
    result: QuarterModel,
) -> _Fit:
    """Choose the candidate's hyperparameters on the validation fold, refit them on every train row,
    measure and log it as a child run of the quarter's run.

    Runs in a thread of its own: MLflow's active run is per thread, hence the explicit parent.
    """
    name = candidate.name
    began = time.perf_counter()
    model, params, scores = fit_candidate(candidate, train, folds)
    classifier = estimator(candidate, params)  # what MLflow logs: every parameter, MLlib's defaults included
    result.fit_seconds[name] = time.perf_counter() - began
    result.chosen[name] = {key: params[key] for point in candidate.grid for key in point}
    probabilities = probabilities_by_customer(model, eval_)
    metrics = measure(against.labels, probabilities)
    with mlflow.start_run(
        experiment_id=against.experiment_id,
        run_name=f"{name} {against.quarter}",
        parent_run_id=against.parent_run_id,
        tags={"quarter": against.quarter},
    ) as run:
        against.log_input()
        mlflow.log_params({**classifier_params(classifier), "features": ",".join(MODEL_INPUTS)})
        mlflow.log_params({"train_rows": result.train_rows, "eval_rows": result.eval_rows})
        mlflow.log_params(
            {
                "train_quarters": ",".join(result.pooled),
                "chosen_params": describe_params(result.chosen[name]),
                "grid": " | ".join(describe_params(point) for point in candidate.grid),
                "grid_validation_auc_pr": ",".join(f"{score:.6f}" for score in scores) or "-",
                "validation_fraction": VALIDATION_FRACTION,
            }
        )
        if scores:
            mlflow.log_metric("validation_auc_pr", max(scores))
        mlflow.log_params({"bootstrap_resamples": bootstrap.RESAMPLES, "bootstrap_seed": bootstrap.SEED})
        mlflow.log_metrics({**metrics, **{f"baseline_{k}": v for k, v in against.baseline_metrics.items()}})
        mlflow.log_metric("fit_seconds", result.fit_seconds[name])
        for path, figure in plots(against.labels, probabilities, against.baseline, f"{name} {against.quarter}").items():
            mlflow.log_figure(figure, path)
        return _Fit(card_row(name, metrics, result, run.info.run_id), log_model(model), model, probabilities)


def card_row(candidate: str, metrics: dict[str, float], result: QuarterModel, run_id: str) -> dict:
    """A model card row: not the champion, no version (`batch_platform.ml.promotion` sets both)."""
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
