"""The MLflow model registry: each quarter's best candidate as a new version of the registered model,
the aliases that name the champions, and reading them back.

- Every trained quarter's best candidate is registered, whatever the promotion gate decides, tagged
  with its quarter, its candidate and its eval metrics; versions ascend with the quarter within a
  run (the quarters are decided in quarter order, `batch_platform.ml.promotion`).
- `champion-<YYYY-QN>` names the champion of each quarter: the version registered in Q when it
  passed the gate, else the champion of Q-1; no alias when there is none.
- `champion` names the champion of the latest trained quarter (the latest a version is tagged
  with): re-running an older quarter moves that quarter's alias only.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import mlflow
import mlflow.spark
import pyspark
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from pyspark.ml import PipelineModel

from batch_platform.ml.candidates import BASELINE, INTERVALS
from batch_platform.mlflow_store import MlflowStore
from batch_platform.partitions import shift, to_label

if TYPE_CHECKING:  # pragma: no cover - typing only: training imports this module
    from batch_platform.ml.training import QuarterModel

QUARTERS_AT_ONCE = 2
"""Quarters trained, or champions read back, side by side: their Spark jobs are too small to fill the cores."""
LATEST = "champion"
_PREFIX = "champion-"


def champion_alias(quarter: str) -> str:
    """The registry alias of a quarter's champion: `champion-2025-Q4`."""
    return f"{_PREFIX}{to_label(quarter)}"


@dataclass
class Champion:
    """A registered version that is (or was) the champion of a quarter."""

    version: int
    run_id: str
    quarter: str
    """The quarter it was registered in (its `quarter` tag)."""
    model: PipelineModel | None = None
    """The fitted pipeline, when this process has it in memory (trained in this run)."""


def log_model(model: PipelineModel) -> str:
    """Log the fitted pipeline to the active run; its model URI. The requirements are given, since
    inferring them starts a subprocess that imports the whole environment (seconds per model)."""
    info = mlflow.spark.log_model(model, "model", pip_requirements=[f"pyspark=={pyspark.__version__}"])
    return info.model_uri


def register(store: MlflowStore, result: QuarterModel) -> Champion:
    """Register the best candidate of a trained quarter as a new version, tagged with its quarter,
    candidate and eval metrics (its intervals and the baseline's beside them), and record the version
    on its model card row and its MLflow run."""
    best = next(row for row in result.rows if row["candidate"] == result.best)
    baseline = next(row for row in result.rows if row["candidate"] == BASELINE)
    tags = {"quarter": result.quarter, "candidate": result.best}
    for name in ("auc_pr", "auc_roc", *INTERVALS):
        tags[f"eval_{name}"] = f"{best[name]:.6f}"
    tags["baseline_auc_pr"] = f"{baseline['auc_pr']:.6f}"
    if result.training_input is not None:
        tags |= {"training_set": result.training_input.uri, "training_set_version": str(result.training_input.version)}
    store.activate()
    version = int(mlflow.register_model(result.best_uri, store.registered_model_name, tags=tags).version)
    mlflow.MlflowClient().set_tag(best["mlflow_run_id"], "model_version", str(version))
    best.update(registered_model_name=store.registered_model_name, model_version=version)
    result.best_version = version
    return Champion(version, best["mlflow_run_id"], result.quarter, result.best_model)


def champions_by_alias(store: MlflowStore) -> dict[str, int]:
    """Quarter → the version its `champion-<quarter>` alias names (empty without a registered model)."""
    if store.is_empty_local_store():
        return {}
    store.activate()
    try:
        aliases = mlflow.MlflowClient().get_registered_model(store.registered_model_name).aliases
    except MlflowException:  # no registered model yet
        return {}
    return {alias.removeprefix(_PREFIX): int(v) for alias, v in aliases.items() if alias.startswith(_PREFIX)}


def registered_versions(store: MlflowStore) -> list[ModelVersion]:
    """Every version of the store's registered model."""
    return mlflow.MlflowClient().search_model_versions(f"name = '{store.registered_model_name}'")


def earlier_versions(store: MlflowStore, version: int) -> list[dict[str, str]]:
    """The tags of every version registered before `version`, oldest first, each with its `version`."""
    found = registered_versions(store)
    return [
        {**v.tags, "version": str(v.version)}
        for v in sorted(found, key=lambda v: int(v.version))
        if int(v.version) < version
    ]


RESCORED = "rescored_auc_pr_"


def tag_rescored(store: MlflowStore, version: int, quarter: str, auc_pr: float) -> None:
    """Tag a version with its AUC-PR re-scored on a later quarter's eval rows (`rescored_auc_pr_<quarter>`)."""
    mlflow.MlflowClient().set_model_version_tag(
        store.registered_model_name, str(version), f"{RESCORED}{to_label(quarter)}", f"{auc_pr:.6f}"
    )


def publish_card(store: MlflowStore, version: int, run_id: str, card: str) -> None:
    """The version's model card (Markdown) as its description, which the MLflow UI shows on the
    version's page, and as the artifact `model_card.md` of the run that logged the model."""
    client = mlflow.MlflowClient()
    client.update_model_version(store.registered_model_name, str(version), description=card)
    client.log_text(run_id, card, "model_card.md")


def read_champion(store: MlflowStore, version: int) -> Champion:
    """A registered version, read back as a `Champion` (its model is loaded when needed: `load`)."""
    found = mlflow.MlflowClient().get_model_version(store.registered_model_name, str(version))
    return Champion(version, found.run_id, found.tags.get("quarter", ""))


def load(store: MlflowStore, found: Champion) -> PipelineModel:
    """The champion's fitted pipeline: in memory when trained in this run, else read back from MLflow."""
    if found.model is None:
        found.model = mlflow.spark.load_model(f"models:/{store.registered_model_name}/{found.version}")
    return found.model


def name_champion(store: MlflowStore, quarter: str, version: int | None) -> None:
    """Point `champion-<quarter>` at `version`, or remove it (None: the quarter has no champion)."""
    client = mlflow.MlflowClient()
    if version is not None:
        client.set_registered_model_alias(store.registered_model_name, champion_alias(quarter), version)
        return
    with contextlib.suppress(MlflowException):  # no registered model, or no alias for that quarter
        client.delete_registered_model_alias(store.registered_model_name, champion_alias(quarter))


def name_latest(store: MlflowStore, champions: dict[str, int]) -> int | None:
    """Point `champion` at the champion of the latest trained quarter (SPEC.md, "ML"): the latest
    quarter a registered version is tagged with. A later untrainable quarter inherits a champion but
    does not hold `champion`, so re-running the latest trained quarter moves it, and re-running an
    older one never does. Removed when that quarter has no champion; its version."""
    client = mlflow.MlflowClient()
    found = registered_versions(store) if champions else []
    trained = {v.tags["quarter"] for v in found if "quarter" in v.tags}
    latest = champions.get(max(trained)) if trained else None  # YYYY-QN labels sort by time
    if latest is None:
        with contextlib.suppress(MlflowException):
            client.delete_registered_model_alias(store.registered_model_name, LATEST)
        return None
    client.set_registered_model_alias(store.registered_model_name, LATEST, latest)
    return latest


def load_champions(store: MlflowStore, versions: dict[str, int]) -> dict[str, PipelineModel]:
    """The registered model `versions[quarter]` of each quarter, read back from MLflow (once per version);
    `QUARTERS_AT_ONCE` side by side, since reading a model is mostly Spark jobs too small to fill
    the cores."""
    store.activate()
    distinct = sorted(set(versions.values()))  # quarters that kept a champion share its version
    uris = [f"models:/{store.registered_model_name}/{version}" for version in distinct]
    with ThreadPoolExecutor(QUARTERS_AT_ONCE) as pool:
        models = dict(zip(distinct, pool.map(mlflow.spark.load_model, uris), strict=True))
    return {quarter: models[version] for quarter, version in versions.items()}


def quarter_champions(store: MlflowStore, quarters: list[str]) -> dict[str, tuple[int, bool]]:
    """Quarter → (version of its champion, whether that version was promoted in it, i.e. registered
    in it), for the quarters of `quarters` that have a champion."""
    aliases = champions_by_alias(store)
    found = {}
    registered_in: dict[int, str] = {}
    for quarter in quarters:
        if quarter in aliases:
            version = aliases[quarter]
            if version not in registered_in:
                registered_in[version] = read_champion(store, version).quarter
            found[quarter] = (version, registered_in[version] == quarter)
    return found


def champion_quarters(store: MlflowStore, quarters: list[str]) -> dict[str, str]:
    """Per quarter Q, the quarter the champion of Q-1 was trained on (the `quarter` of the version
    `champion-<Q-1>` names): the feature-drift check's second reference. Quarters whose previous
    quarter has no champion are left out."""
    aliases = champions_by_alias(store)
    trained: dict[int, str] = {}
    found = {}
    for quarter in quarters:
        version = aliases.get(shift(quarter, -1))
        if version is None:
            continue
        if version not in trained:
            trained[version] = to_label(read_champion(store, version).quarter)
        found[quarter] = trained[version]
    return found
