"""Reading lake tables back, for notebooks and scripts: `load_training_set("2025-Q4")`,
`load_scores("2025-Q4")`, `load_model_card("2025-Q4")`, and the rows of the out-of-time evaluation
(`load_out_of_time_rows`, which `batch-platform ml-report` scores as the check does).

Every lake table is a Delta table (SPEC.md, "Lake"), read here with the `deltalake` package
(`batch_platform.delta`) and pandas — no Spark session, no Dagster run — at its latest version, or
at `version=N`, or `as_of="2026-01-15T00:00:00Z"` (time travel: what the table held then, for as
long as `storage.delta.retention_days` keeps it). `quarter` is the table's partition column. A
quarter materialised with no rows reads as an empty frame with the table's columns; a quarter never
materialised raises `PartitionNotMaterialised` (`batch_platform.layout`).

`import batch_platform` stays light (no Spark, Dagster or pandas): it imports this module, and with
it pandas and the table declarations, when one of these helpers is first used (`batch_platform.__init__`).
"""

from __future__ import annotations

import os
from datetime import datetime

import pandas as pd

from batch_platform import delta, jobs
from batch_platform.config import ConfigError, PlatformConfig, load_config
from batch_platform.layout import PARTITION_COLUMN, LakeLayout, PartitionNotMaterialised
from batch_platform.partitions import shift, to_key, to_label
from batch_platform.schemas import gold, ml
from batch_platform.schemas.base import Table
from batch_platform.session import build_session, spark_conf

__all__ = [
    "PartitionNotMaterialised",
    "load_model_card",
    "load_out_of_time_rows",
    "load_scores",
    "load_training_set",
    "spark_session",
]


def load_training_set(
    quarter: str,
    *,
    version: int | None = None,
    as_of: datetime | str | None = None,
    config: PlatformConfig | None = None,
    lake_root: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """The `gold/training_set` partition of `quarter` as a pandas DataFrame.

    `quarter` is `2025-Q4` or its Dagster key `2025-10-01`. The lake is `lake_root` when given
    (no config file is read), else the lake of `config`, else of the config file
    (`BATCH_PLATFORM_CONFIG` or `config/config.yaml`); with none of them it fails saying what to
    set. The table is read at its latest version, or at `version` (a Delta version: `batch-platform
    history gold/training_set` lists them, and a model's MLflow run records the one it learned
    from), or `as_of` (a UTC time, `"2026-01-15T00:00:00Z"` or a datetime: the version that was the
    latest then).

    Raises `PartitionNotMaterialised` (a `FileNotFoundError`) when the quarter was never
    materialised (at that version), and `batch_platform.delta.VersionNotAvailable` naming the
    version and `storage.delta.retention_days` when that history is no longer kept. A quarter
    materialised empty is an empty frame with the table's columns. Timestamps come back as UTC-aware
    `datetime64[us, UTC]`; `quarter` is the last column.
    """
    return _load(gold.TRAINING_SET, quarter, config, lake_root, version, as_of)


def load_scores(
    quarter: str,
    *,
    version: int | None = None,
    as_of: datetime | str | None = None,
    config: PlatformConfig | None = None,
    lake_root: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """The `ml/churn_scores` partition of `quarter`: the churn probabilities the champion of that
    quarter gave, at its end, for the quarter after it (`score_cutoff` = start of the next quarter).

    Same arguments (time travel included), errors and types as `load_training_set`. An empty frame
    means the quarter had no champion (its `ml/churn_model` materialisation says why).
    """
    return _load(ml.CHURN_SCORES, quarter, config, lake_root, version, as_of)


def load_model_card(
    quarter: str,
    *,
    version: int | None = None,
    as_of: datetime | str | None = None,
    config: PlatformConfig | None = None,
    lake_root: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """The `ml/churn_model` partition of `quarter`: one row per candidate, the baseline and (when Q-1
    has a champion) `previous_champion`, with eval metrics and 95 % intervals; the best candidate's
    row and the previous champion's hold their registered version
    (`models:/<registered_model_name>/<version>`), the champion of the quarter is marked `champion`.
    `model_version` is a nullable integer (pandas `Int64`): `<NA>` on the other rows. Same
    arguments (time travel included) and errors as `load_training_set`."""
    frame = _load(ml.CHURN_MODEL, quarter, config, lake_root, version, as_of)
    frame["model_version"] = frame["model_version"].astype("Int64")
    return frame


def load_out_of_time_rows(
    quarter: str,
    *,
    as_of: datetime | str | None = None,
    config: PlatformConfig | None = None,
    lake_root: str | os.PathLike | None = None,
) -> tuple[pd.DataFrame, bool]:
    """What the out-of-time check of `ml/churn_scores` `quarter` (Q) evaluates, read with pandas, and
    whether `gold/churn_labels` Q+1 exists: `out_of_time_result(quarter, rows, labels_exist)`
    (`batch_platform.ml.out_of_time`) then gives the check's figures without a Spark session.

    The rows are the full outer join on customer_id of the scores of Q (`churn_probability`) with
    the labels of Q+1 (`label`) and the `recency_days` of `gold/customer_features` Q+1 (the
    baseline's ranking), as the check joins them; a scores partition never materialised counts as
    no scores, and labels of Q+1 count as existing when their partition holds rows (the check knows
    the labelled quarters from the rows it read). Same arguments as `load_training_set`, with `as_of`
    alone for time travel: each of the three tables has versions of its own, and `as_of` reads each
    as it was at that time.
    """
    if config is None and lake_root is None:
        config = _config()
    following = shift(quarter, 1)
    try:
        scores = _load(ml.CHURN_SCORES, quarter, config, lake_root, None, as_of)
        scores = scores[["customer_id", "churn_probability"]]
    except PartitionNotMaterialised:
        scores = pd.DataFrame({"customer_id": pd.Series(dtype=object), "churn_probability": pd.Series(dtype=float)})
    try:
        labels = _load(gold.CHURN_LABELS, following, config, lake_root, None, as_of)
        recency = _load(gold.CUSTOMER_FEATURES, following, config, lake_root, None, as_of)
    except PartitionNotMaterialised:
        return scores.assign(label=pd.Series(dtype=float), recency_days=pd.Series(dtype=float)), False
    truth = labels[["customer_id", "label"]].merge(recency[["customer_id", "recency_days"]], on="customer_id")
    return scores.merge(truth, on="customer_id", how="outer"), not labels.empty


def _load(table: Table, quarter: str, config, lake_root, version, as_of) -> pd.DataFrame:
    label = to_label(quarter)
    if config is None and lake_root is None:
        config = _config()  # its lake root, its `storage.s3` and its retention
    layout = LakeLayout(config.lake_root if lake_root is None else os.fspath(lake_root))
    s3 = config.storage.s3 if config is not None else None
    retention = config.storage.delta.retention_days if config is not None else delta.DEFAULT_RETENTION_DAYS
    uri = layout.table_uri(table.key)
    try:
        try:
            opened = delta.open_table(uri, s3, version=version, as_of=as_of, retention_days=retention)
        except delta.TableMissing as exc:
            layout.require(table.key, [label], None, absent=str(exc))  # raises
            raise
        rows = delta.read_quarter(opened, label)
        if rows.num_rows == 0:  # empty, or never materialised: the log says which
            version_read = None if opened.latest else opened.version
            layout.require(table.key, [label], delta.materialised_quarters(opened), version=version_read)
    except PartitionNotMaterialised as exc:
        raise PartitionNotMaterialised(f"{exc}. {_hint(table, label)}", exc.table, exc.quarters) from None
    frame = rows.to_pandas()
    return frame[[column for column in frame.columns if column != PARTITION_COLUMN] + [PARTITION_COLUMN]]


def _hint(table: Table, quarter: str) -> str:
    """How to materialise `quarter` of `table`: its job (`training_set_job` for the training set,
    `quarterly_job` for the tables it does not build)."""
    job = jobs.TRAINING_SET_JOB if table.key == gold.TRAINING_SET.key else jobs.QUARTERLY_JOB
    return (
        f"Materialise it first, e.g. `dagster job execute -m batch_platform.definitions -j {job} "
        f'--tags \'{{"dagster/partition": "{to_key(quarter)}"}}\'`'
    )


def spark_session(*, config: PlatformConfig | None = None):
    """A SparkSession with the platform's own settings (`session.spark_conf`: Delta's jars from `make
    setup` and its SQL extension, UTC, the S3A jars for an `s3a://` lake), for reading the lake or a
    registered model from a notebook; the one already running in this process if any."""
    return build_session(spark_conf(config if config is not None else _config()))


def _config() -> PlatformConfig:
    try:
        return load_config()
    except ConfigError as exc:
        raise ConfigError(
            f"load_training_set needs to know where the lake is: pass lake_root=... (a folder or s3a:// URI) or "
            f"config=..., or point BATCH_PLATFORM_CONFIG at a config file. ({exc})"
        ) from None
