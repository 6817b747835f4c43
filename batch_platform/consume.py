"""Reading lake tables back, for notebooks and scripts: `load_training_set("2025-Q4")`,
`load_scores("2025-Q4")`, `load_model_card("2025-Q4")`, the golden customer record at a moment
(`load_customer_history("2025-06-30")`), and the rows of the out-of-time evaluation
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
from datetime import date, datetime, time

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from batch_platform import delta, jobs
from batch_platform.config import ConfigError, PlatformConfig, load_config
from batch_platform.layout import PARTITION_COLUMN, LakeLayout, PartitionNotMaterialised
from batch_platform.partitions import quarter_end, shift, to_key, to_label
from batch_platform.schemas import gold, ml
from batch_platform.schemas.base import Table
from batch_platform.schemas.customer_history import CUSTOMER_HISTORY
from batch_platform.session import build_session, spark_conf

__all__ = [
    "PartitionNotMaterialised",
    "load_customer_history",
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


def load_customer_history(
    at: datetime | date | str,
    *,
    known_in: str | None = None,
    version: int | None = None,
    as_of: datetime | str | None = None,
    config: PlatformConfig | None = None,
    lake_root: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """The golden record of every customer at the moment `at`: one row per customer, the version of
    `gold/customer_history` with `valid_from <= at` and `valid_to` null or `> at` (SPEC.md, "Gold").

    Two clocks, kept apart by name. `at` is customer time: when the record was valid (a UTC
    datetime, a date = its midnight UTC, or ISO-8601 text; a time without offset is UTC). `as_of` and
    `version` are, as for every reader here, Delta time travel: which commit of the lake table is
    read. Between them, `known_in` is the quarter whose history is read: partition Q holds every
    version known at the end of Q, so a later quarter may know more about the same moment (a profile
    update that arrived late). By default the latest materialised quarter: the most the lake knows.
    `known_in=Q` gives what was known at the end of Q; `load_customer_history(C, known_in=Q-1)`, C
    the start of Q, is exactly the record the profile features of `gold/customer_features` Q read.

    `at` may be at most the end of the quarter read: the history of Q knows nothing after it, so a
    later moment raises `ValueError` naming the table, the quarter and its end (pass an earlier `at`
    or materialise a later quarter). At exactly that end, what it returns is what was known
    strictly before it, as the features' cutoff wants. A customer with no version valid at `at`
    (its first profile row is later) is absent; a moment before every version is an empty frame.

    Same lake arguments and errors as `load_training_set` (`PartitionNotMaterialised` naming the
    table and quarter when `known_in` was never materialised, or when the table holds no quarter).
    The columns are the table's (`version`, `valid_from`, `valid_to`, `is_current` — current as the
    quarter read knows it — and the six golden attributes), then `quarter`: the quarter read.
    Sorted by customer_id.
    """
    moment = _moment(at)
    layout, opened, absent = _open(CUSTOMER_HISTORY, config, lake_root, version, as_of)
    if known_in is not None:
        label = to_label(known_in)
    else:
        materialised = delta.materialised_quarters(opened) if opened is not None else []
        if not materialised:
            where = absent or f"the Delta table {opened.uri} holds no quarter"
            raise PartitionNotMaterialised(
                f"{CUSTOMER_HISTORY.name} has no materialised quarter: {where}. {_hint(CUSTOMER_HISTORY, None)}",
                CUSTOMER_HISTORY.name,
                [],
            )
        label = materialised[-1]
    end = quarter_end(label)
    if moment > end:
        latest = "" if known_in is not None else " (the latest quarter it holds)"
        raise ValueError(
            f"{CUSTOMER_HISTORY.name} {label}{latest} knows the customer records until the end of {label}, "
            f"{end:%Y-%m-%dT%H:%M:%SZ}, only; at={moment:%Y-%m-%dT%H:%M:%SZ} is after it: pass an earlier at=, "
            "or read a later quarter (known_in=, once it is materialised)"
        )
    rows = _read(CUSTOMER_HISTORY, label, layout, opened, absent)
    at_moment = pa.scalar(moment, rows.schema.field("valid_from").type)
    valid = pc.and_(
        pc.less_equal(rows["valid_from"], at_moment),
        pc.or_kleene(pc.is_null(rows["valid_to"]), pc.greater(rows["valid_to"], at_moment)),
    )
    return _frame(rows.filter(valid)).sort_values("customer_id", ignore_index=True)


def _moment(at: datetime | date | str) -> datetime:
    """`at` as an aware UTC datetime; a date is its midnight UTC."""
    if isinstance(at, date) and not isinstance(at, datetime):
        at = datetime.combine(at, time())
    try:
        return delta.parse_time(at)
    except ValueError:
        raise ValueError(
            f"at={at!r} is not a moment: write ISO-8601, e.g. 2025-06-30 or 2025-06-30T12:00:00Z"
        ) from None


def _load(table: Table, quarter: str, config, lake_root, version, as_of) -> pd.DataFrame:
    layout, opened, absent = _open(table, config, lake_root, version, as_of)
    return _frame(_read(table, to_label(quarter), layout, opened, absent))


def _open(table: Table, config, lake_root, version, as_of) -> tuple[LakeLayout, delta.LakeTable | None, str | None]:
    """The lake's layout and `table` opened at its latest version, `version` or `as_of`; None and
    why when there is no table (then)."""
    if config is None and lake_root is None:
        config = _config()  # its lake root, its `storage.s3` and its retention
    layout = LakeLayout(config.lake_root if lake_root is None else os.fspath(lake_root))
    s3 = config.storage.s3 if config is not None else None
    retention = config.storage.delta.retention_days if config is not None else delta.DEFAULT_RETENTION_DAYS
    uri = layout.table_uri(table.key)
    try:
        return layout, delta.open_table(uri, s3, version=version, as_of=as_of, retention_days=retention), None
    except delta.TableMissing as exc:
        return layout, None, str(exc)


def _read(table: Table, label: str, layout: LakeLayout, opened: delta.LakeTable | None, absent: str | None) -> pa.Table:
    """The rows of quarter `label` of `opened`; `PartitionNotMaterialised` naming the table, the
    quarter and how to materialise it when it was not (at that version)."""
    try:
        if opened is None:
            layout.require(table.key, [label], None, absent=absent)  # raises
        rows = delta.read_quarter(opened, label)
        if rows.num_rows == 0:  # empty, or never materialised: the log says which
            version_read = None if opened.latest else opened.version
            layout.require(table.key, [label], delta.materialised_quarters(opened), version=version_read)
    except PartitionNotMaterialised as exc:
        raise PartitionNotMaterialised(f"{exc}. {_hint(table, label)}", exc.table, exc.quarters) from None
    return rows


def _frame(rows: pa.Table) -> pd.DataFrame:
    """`rows` as pandas, `quarter` last."""
    frame = rows.to_pandas()
    return frame[[column for column in frame.columns if column != PARTITION_COLUMN] + [PARTITION_COLUMN]]


def _hint(table: Table, quarter: str | None) -> str:
    """How to materialise `quarter` (else a quarter) of `table`: its job (`training_set_job` for the
    training set, `quarterly_job` for the tables it does not build)."""
    job = jobs.TRAINING_SET_JOB if table.key == gold.TRAINING_SET.key else jobs.QUARTERLY_JOB
    partition = to_key(quarter) if quarter is not None else "<YYYY-MM-01>"
    return (
        f"Materialise it first, e.g. `dagster job execute -m batch_platform.definitions -j {job} "
        f'--tags \'{{"dagster/partition": "{partition}"}}\'`'
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
