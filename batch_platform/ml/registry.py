"""The MLflow model registry: a quarter's champion as a new version of the registered model, its alias,
and reading the champions back.

The champions are registered after the quarters of a run are trained, in quarter order, so versions
ascend with the quarter. The alias `champion-<YYYY-QN>` names each quarter's champion; an
untrainable re-run of a quarter removes it (its scores are empty).
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import mlflow
import mlflow.spark
import pyspark
from mlflow.exceptions import MlflowException
from pyspark.ml import PipelineModel

from batch_platform.mlflow_store import MlflowStore
from batch_platform.partitions import shift, to_label

if TYPE_CHECKING:  # pragma: no cover - typing only: training imports this module
    from batch_platform.ml.training import QuarterModel

QUARTERS_AT_ONCE = 2
"""Quarters trained, or champions read back, side by side: their Spark jobs are too small to fill the cores."""


def champion_alias(quarter: str) -> str:
    """The registry alias of a quarter's champion: `champion-2025-Q4`."""
    return f"champion-{to_label(quarter)}"


def log_model(model: PipelineModel) -> str:
    """Log the fitted pipeline to the active run; its model URI. The requirements are given, since
    inferring them starts a subprocess that imports the whole environment (seconds per model)."""
    info = mlflow.spark.log_model(model, "model", pip_requirements=[f"pyspark=={pyspark.__version__}"])
    return info.model_uri


def register(store: MlflowStore, result: QuarterModel) -> None:
    """Register the champion of a trained quarter as a new version, point the quarter's alias at it,
    and record the version on its model card row and its MLflow run."""
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


def drop_alias(store: MlflowStore, quarter: str) -> None:
    """An untrainable re-run of a quarter leaves MLflow no champion of it (its scores are empty)."""
    if store.is_empty_local_store():
        return
    store.activate()
    with contextlib.suppress(MlflowException):  # no registered model, or no alias for that quarter
        mlflow.MlflowClient().delete_registered_model_alias(store.registered_model_name, champion_alias(quarter))


def load_champions(store: MlflowStore, versions: dict[str, int]) -> dict[str, PipelineModel]:
    """The registered model `versions[quarter]` of each quarter, read back from MLflow;
    `QUARTERS_AT_ONCE` side by side, since reading a model is mostly Spark jobs too small to fill
    the cores."""
    store.activate()
    uris = {quarter: f"models:/{store.registered_model_name}/{version}" for quarter, version in versions.items()}
    with ThreadPoolExecutor(QUARTERS_AT_ONCE) as pool:
        return dict(zip(uris, pool.map(mlflow.spark.load_model, uris.values()), strict=True))


def champion_quarters(store: MlflowStore, quarters: list[str]) -> dict[str, str]:
    """Per quarter Q, the quarter the champion of Q-1 was trained on (the `quarter` tag of the version
    `champion-<Q-1>` names): the feature-drift check's second reference. Quarters whose previous
    quarter has no champion are left out."""
    if store.is_empty_local_store():
        return {}
    store.activate()
    client, found = mlflow.MlflowClient(), {}
    for quarter in quarters:
        try:
            version = client.get_model_version_by_alias(store.registered_model_name, champion_alias(shift(quarter, -1)))
        except MlflowException:
            continue
        if version.tags.get("quarter"):
            found[quarter] = to_label(version.tags["quarter"])
    return found
