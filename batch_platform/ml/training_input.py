"""A model pinned to its data: the Delta version of `gold/training_set` a model learned from.

The training set arrives read at one Delta version of `gold/training_set` (the IO manager's read);
`training_input` finds that version — the newest one whose files of the quarters read are exactly
the files the frame reads — and every MLflow run of a quarter (the quarter's and each candidate's)
logs it with `mlflow.log_input` as a Spark dataset whose source is the Delta table's path and
version (context `training`, tags `quarter`, `train_quarters` — the quarters whose train rows were
pooled, `ml.train_quarters` — and `delta_version`); the registered version carries it as tags too.
`load_training_set_of_model(5)` reads back the exact rows model version 5 learned from, for as long
as `storage.delta.retention_days` keeps that version.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass

import mlflow
import pandas as pd
from delta.tables import DeltaTable
from mlflow.data.delta_dataset_source import DeltaDatasetSource
from mlflow.data.spark_dataset import SparkDataset
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from batch_platform.config import PlatformConfig, load_config
from batch_platform.consume import load_training_set
from batch_platform.mlflow_store import build_mlflow_store
from batch_platform.schemas.base import PARTITION_COLUMN
from batch_platform.schemas.gold import TRAINING_SET

TRAINING_TABLE = TRAINING_SET.name


@dataclass(frozen=True)
class TrainingInput:
    """The Delta table version a training frame was read at."""

    uri: str
    """The table: a folder path or `s3a://bucket/prefix/gold/training_set`."""
    version: int
    files: tuple[str, ...]
    """The data files read, as Spark names them: what makes these rows these rows."""

    def digest(self, quarter: str, pooled: tuple[str, ...] = ()) -> str:
        """A short fingerprint of the quarter's rows (and those of the `pooled` quarters): its table,
        version and files."""
        quarters = sorted({quarter, *pooled})
        mine = [f for f in self.files if any(f"/{PARTITION_COLUMN}={q}/" in f for q in quarters)]
        key = [self.uri, str(self.version), *quarters, *mine]
        return hashlib.sha256("\n".join(key).encode()).hexdigest()[:8]


def training_input(training_set: DataFrame) -> TrainingInput | None:
    """The Delta table and version `training_set` reads: the newest version of the table whose files of
    the quarters the frame reads are exactly the frame's files (the version the IO manager read, unless
    a later commit left those quarters untouched — the same rows either way). None when the frame reads
    no file, or not one Delta table's. Call it before the frame is cached: a cached frame reads no file.
    A frame whose files no version holds (a table rewritten under it) is an error, not a guess."""
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


class _PinnedDeltaSource(DeltaDatasetSource):
    """MLflow's Delta source, whose `to_dict` leaves out a version 0: here every version is written."""

    def to_dict(self) -> dict:
        return {**super().to_dict(), "delta_table_version": self.delta_table_version}


class _TrainingSetDataset(SparkDataset):
    """A Spark dataset whose profile is the row counts the training already has."""

    def __init__(self, counts: dict[str, int], **kwargs):
        self._counts = counts
        super().__init__(**kwargs)

    @property
    def profile(self) -> dict:
        return {
            "num_rows": self._counts.get("train_rows", 0) + self._counts.get("eval_rows", 0),
            "train_rows": self._counts.get("train_rows", 0),
            "eval_rows": self._counts.get("eval_rows", 0),
        }


def training_dataset(
    rows: DataFrame, pinned: TrainingInput, quarter: str, counts: dict[str, int], pooled: tuple[str, ...] = ()
) -> SparkDataset:
    """The MLflow dataset of one quarter's training rows (with the train rows of the `pooled` quarters):
    a Spark dataset whose source is the Delta table at `pinned.version` (MLflow's `delta_table` source:
    `source.load()` reads that version back with Spark), targets `label`, a digest of the table,
    version and files, and the row counts as its profile (MLflow's own would count the rows in a
    Spark job at every `log_input`)."""
    source = _PinnedDeltaSource(path=pinned.uri, delta_table_version=pinned.version)
    dataset = _TrainingSetDataset(
        counts,
        df=rows,
        source=source,
        targets="label",
        name=f"{TRAINING_TABLE} {quarter}",
        digest=pinned.digest(quarter, pooled),
    )
    with warnings.catch_warnings():  # its hint on integer columns is about model signatures, not datasets
        warnings.simplefilter("ignore", UserWarning)
        _ = dataset.schema  # inferred once, here, from the frame's Spark schema (a cached property)
    return dataset


def log_training_input(
    dataset: SparkDataset, quarter: str, pinned: TrainingInput, pooled: tuple[str, ...] = ()
) -> None:
    """Log the quarter's training set as the active run's input (`training_dataset`); `pooled`: the
    quarters whose train rows the model learned from (default: `quarter` alone)."""
    tags = {
        "quarter": quarter,
        "train_quarters": ",".join(pooled or (quarter,)),
        "table": TRAINING_TABLE,
        "delta_version": str(pinned.version),
    }
    mlflow.log_input(dataset, context="training", tags=tags)


# ------------------------------------------------------------------------------- a model's data
def load_training_set_of_model(
    model: int | str, *, split: str | None = "train", config: PlatformConfig | None = None
) -> pd.DataFrame:
    """The exact rows a model learned from, as `consume.load_training_set` returns them: `model` is a
    version of the registered model (`5`), or a model URI (`models:/batch_platform_churn/5`,
    `models:/batch_platform_churn@champion-2025-Q4`, `runs:/<run id>/model`). Its MLflow run's input
    names the Delta table and version of `gold/training_set`, the quarter Q and the quarters whose train
    rows were pooled (Q alone unless `ml.train_quarters` > 1); that version is read back: the
    `split = train` rows of those quarters (the rows the model was fit on), `split="eval"` for Q's eval
    rows (those it was measured on), None for both, oldest quarter first. The MLflow store and S3 settings are those of `config`
    (default: the config file). `batch_platform.delta.VersionNotAvailable` names the version and
    `storage.delta.retention_days` once VACUUM has removed it."""
    config = config or load_config()
    store = build_mlflow_store(config)
    store.activate()
    client = mlflow.MlflowClient()
    run = client.get_run(_run_of(client, store.registered_model_name, model))
    uri, version, quarter, pooled = _training_input_of(run)
    lake_root = uri.removesuffix(f"/{TRAINING_TABLE}")
    parts = []
    for each in pooled:
        rows = load_training_set(each, version=version, config=config, lake_root=lake_root)
        wanted = {"train", "eval"} if each == quarter else {"train"}
        if split is not None:
            wanted &= {split}
        parts.append(rows[rows["split"].isin(wanted)])
    return pd.concat(parts, ignore_index=True)


def _run_of(client: mlflow.MlflowClient, registered_model_name: str, model: int | str) -> str:
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
    return mlflow.models.get_model_info(uri).run_id


def _training_input_of(run) -> tuple[str, int, str, list[str]]:
    """(table URI, Delta version, quarter, pooled quarters) of the run's training input
    (`log_training_input`; a run logged before pooling has no `train_quarters`: its quarter alone)."""
    for entry in run.inputs.dataset_inputs:
        tags = {tag.key: tag.value for tag in entry.tags}
        if entry.dataset.source_type == "delta_table" and tags.get("table") == TRAINING_TABLE:
            source = json.loads(entry.dataset.source)
            quarter = tags["quarter"]
            pooled = tags.get("train_quarters", quarter).split(",")
            return source["path"], int(tags["delta_version"]), quarter, pooled
    raise LookupError(
        f"MLflow run {run.info.run_id} logged no {TRAINING_TABLE} input: it was trained before models were pinned "
        "to the Delta version of their training set"
    )
