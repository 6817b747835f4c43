"""Batch inference on new data: a registered churn model scores the customers of raw landing files
at a cutoff C (`score_landing`, `batch-platform score`; docs/inference.md).

Between the files and the model runs nothing but the pipeline's own code, so the scores equal
`ml/churn_scores` Q (C = the start of Q+1) for the same files, config and model version (bronze and
silver on landing files: `batch_platform.landing_silver`):

- bronze: `LandingZone.read`, `with_ingest_columns` and `verify_rows`, as `bronze/<source>` reads a
  quarter's arrivals: a file that cannot be read fails with the same message;
- silver: `flag`, `silver_rows`, `quarantine_rows` and `reconcile` of `batch_platform.assets.silver`,
  each row parsed and kept or quarantined for the same first broken rule; a quarter whose quarantine
  rate is above `checks.quarantine_rate_fail` stops the scoring, as the silver check
  `quarantine_rate` stops gold (`batch_platform.checks.quarantine_rate`);
- gold: `compute_customer_history` for Q, then `ml.scoring.scoring_features`, i.e.
  `compute_customer_features` for target quarter Q+1, the function behind `gold/customer_features`;
- ml: `ml.scoring.score`, what `ml/churn_scores` runs, with the version the URI names now.

Which files: a file's arrival folder date decides its quarter, as in bronze. The operational, logs
and external files that arrived in the lookback, Q-L+1 … Q (from `batch.first_quarter` on, as the
partitions do), and every customers file from `batch.first_quarter` to Q: `gold/customer_history` Q
is built from the whole history. Files that arrived at or after C are not read.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime

import mlflow
import mlflow.spark
import pandas as pd
from mlflow.exceptions import MlflowException
from pyspark.sql import DataFrame

from batch_platform.assets.customer_history import compute_customer_history
from batch_platform.config import PlatformConfig, load_config, shown_uri
from batch_platform.landing_silver import EXAMPLES, Quarantine, Rejected, landing_silver
from batch_platform.ml.scoring import score, scoring_features
from batch_platform.mlflow_store import build_mlflow_store
from batch_platform.partitions import parse_quarter, quarter_end, quarter_start, shift, to_label
from batch_platform.schemas.base import PARTITION_COLUMN
from batch_platform.schemas.silver import (
    INTERACTION_LOGS,
    OPERATIONAL_EVENTS,
    PARTNER_SCORES,
)
from batch_platform.schemas.silver_profiles import CUSTOMER_PROFILES
from batch_platform.score_request import (
    ModelRef,
    ScoringError,
    landing_root,
    output_path,
    parse_model_uri,
    scored_quarter,
)
from batch_platform.session import build_session, spark_conf

__all__ = [
    "OUTPUT_COLUMNS",
    "RegisteredModel",
    "ScoringError",
    "ScoringRun",
    "arrival_windows",
    "describe",
    "landing_features",
    "resolve_model",
    "run_scoring",
    "score_landing",
]

OUTPUT_COLUMNS = ("customer_id", "score_cutoff", "churn_probability", "model_version")


@dataclass(frozen=True)
class RegisteredModel:
    """The version a model URI names, resolved once: every score records it."""

    uri: str
    name: str
    version: int

    @property
    def version_uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


@dataclass
class ScoringRun:
    """What `run_scoring` did: the scores (pandas, `OUTPUT_COLUMNS`), the quarter scored and its
    cutoff, the model version, the arrival windows read, what silver quarantined and the warnings of
    the silver quarantine check."""

    scores: pd.DataFrame
    quarter: str
    cutoff: datetime
    model: RegisteredModel | None
    windows: dict[str, tuple[date, date]]
    quarantine: Quarantine = field(default_factory=Quarantine)
    output: str | None = None

    @property
    def rejected(self) -> list[Rejected]:
        return self.quarantine.rejected

    @property
    def warnings(self) -> list[str]:
        return self.quarantine.warnings


def score_landing(
    model: str,
    landing: str | os.PathLike,
    as_of: str | date | datetime,
    *,
    output: str | os.PathLike | None = None,
    overwrite: bool = False,
    config: PlatformConfig | None = None,
) -> pd.DataFrame:
    """The churn probability of every customer with an operational event in the lookback before the
    cutoff `as_of`, from the landing files under `landing` (laid out as the landing zone), by the
    registered `model` (`models:/<name>@<alias>` or `models:/<name>/<version>`): a pandas frame
    with `OUTPUT_COLUMNS`, sorted by customer_id, `score_cutoff` UTC-aware. With `output`, also
    written there as Parquet (a folder, as Spark writes it; refused when it exists, unless
    `overwrite`).

    `as_of` is the cutoff C, the first day of a quarter (`"2026-01-01"`, `"2026-Q1"`, a date);
    the scores equal `ml/churn_scores` of the quarter ending at C. `config` (default: the config
    file, `$BATCH_PLATFORM_CONFIG` else `config/config.yaml`) gives the lookback, the first quarter,
    the silver check thresholds, the system priority, the MLflow store and the Spark settings; the
    session is the platform's own (`session.build_session`), or the one already running.

    Raises `ScoringError` (an invalid `as_of` as its subclass `AsOfError`) for a request that
    cannot be carried out, and the pipeline's own `UnreadableFileError` for a landing file bronze
    could not read either.
    """
    return run_scoring(model, landing, as_of, output=output, overwrite=overwrite, config=config).scores


def run_scoring(
    model: str,
    landing: str | os.PathLike,
    as_of: str | date | datetime,
    *,
    output: str | os.PathLike | None = None,
    overwrite: bool = False,
    config: PlatformConfig | None = None,
) -> ScoringRun:
    """`score_landing`, with what it read, rejected and warned about (`ScoringRun`), for the command line."""
    config = config if config is not None else load_config()
    quarter = scored_quarter(as_of, config.batch.first_quarter)
    ref = parse_model_uri(model)
    root = landing_root(landing)
    target = None if output is None else output_path(output, overwrite)
    registered = resolve_model(ref, config)
    run = ScoringRun(pd.DataFrame(), quarter, quarter_end(quarter), registered, arrival_windows(quarter, config))
    with _features(root, run, config) as features:
        scored = _score(features, registered, config.mlflow_tracking_uri)
        if target is not None:
            scored.coalesce(1).write.mode("overwrite" if overwrite else "errorifexists").parquet(target)
            run.output = target
        run.scores = _as_pandas(scored)
    return run


def landing_features(
    landing: str | os.PathLike, as_of: str | date | datetime, *, config: PlatformConfig | None = None
) -> pd.DataFrame:
    """The features `score_landing` gives the model at the cutoff `as_of`: the rows
    `gold/customer_features` of the quarter starting at `as_of` holds for the same files (its
    columns but `quarter`, sorted by customer_id; timestamps naive UTC, as Spark hands them to pandas).
    Same arguments and errors as `score_landing`, without a model."""
    config = config if config is not None else load_config()
    quarter = scored_quarter(as_of, config.batch.first_quarter)
    run = ScoringRun(pd.DataFrame(), quarter, quarter_end(quarter), None, arrival_windows(quarter, config))
    with _features(landing_root(landing), run, config) as features:
        return features.drop(PARTITION_COLUMN).orderBy("customer_id").toPandas()


@contextmanager
def _features(root: str, run: ScoringRun, config: PlatformConfig) -> Iterator[DataFrame]:
    """The scoring features of `run.quarter` from the landing files under `root` (bronze, silver, the
    customer history of Q, then `scoring_features`), what silver quarantined recorded on `run`; the
    frames cached on the way are released on exit."""
    spark = build_session(spark_conf(config))
    cached: list[DataFrame] = []
    try:
        silver = {
            table.name: landing_silver(spark, root, table, run.windows[table.source], config, run.quarantine, cached)
            for table in (OPERATIONAL_EVENTS, INTERACTION_LOGS, PARTNER_SCORES, CUSTOMER_PROFILES)
        }
        history = compute_customer_history(
            silver[CUSTOMER_PROFILES.name], [run.quarter], config.customers.system_priority
        )
        yield scoring_features(
            silver[OPERATIONAL_EVENTS.name],
            silver[INTERACTION_LOGS.name],
            silver[PARTNER_SCORES.name],
            [run.quarter],
            config.batch.lookback_quarters,
            history=history,
        )
    finally:
        for frame in cached:
            frame.unpersist()


def arrival_windows(quarter: str, config: PlatformConfig) -> dict[str, tuple[date, date]]:
    """Per landing source, the arrival dates `[start, end)` read to score at the end of `quarter`:
    the lookback Q-L+1 … Q for operational, logs and external, every quarter from
    `batch.first_quarter` to Q for customers, never before `batch.first_quarter` (the partitions'
    first)."""
    first = to_label(config.batch.first_quarter)
    lookback = shift(quarter, -(config.batch.lookback_quarters - 1))
    if parse_quarter(lookback) < parse_quarter(first):
        lookback = first
    end = quarter_end(quarter).date()
    recent = (quarter_start(lookback).date(), end)
    return {
        OPERATIONAL_EVENTS.source: recent,
        INTERACTION_LOGS.source: recent,
        PARTNER_SCORES.source: recent,
        CUSTOMER_PROFILES.source: (quarter_start(first).date(), end),
    }


def resolve_model(ref: ModelRef, config: PlatformConfig) -> RegisteredModel:
    """The version `ref` names in the config's MLflow store, looked up once; `ScoringError` naming the
    URI, the store and what it does hold when there is no such model, version or alias."""
    store = build_mlflow_store(config)
    where = f"the MLflow store {shown_uri(store.tracking_uri)}"
    if store.is_empty_local_store():
        raise ScoringError(f"model {ref.uri} not found: {where} holds no registered model yet (no database file)")
    client = mlflow.MlflowClient(tracking_uri=store.tracking_uri, registry_uri=store.tracking_uri)
    try:
        if ref.alias is not None:
            version = client.get_model_version_by_alias(ref.name, ref.alias).version
        else:
            version = client.get_model_version(ref.name, str(ref.version)).version
    except MlflowException as exc:
        reason = (exc.message or str(exc)).splitlines()[0]
        raise ScoringError(f"model {ref.uri} not found in {where}: {reason}. {_registered(client, ref.name)}") from None
    return RegisteredModel(ref.uri, ref.name, int(version))


def _registered(client, name: str) -> str:
    """What the store holds under `name`, for a message: its versions and aliases, or the models it has."""
    try:
        model = client.get_registered_model(name)
    except MlflowException:
        names = sorted(found.name for found in client.search_registered_models())
        return f"Registered models: {', '.join(names)}." if names else "It holds no registered model."
    versions = sorted(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))
    aliases = ", ".join(f"@{alias} → {version}" for alias, version in sorted(model.aliases.items()))
    return f"{name} has versions {', '.join(map(str, versions)) or 'none'}; aliases {aliases or 'none'}."


def _score(features: DataFrame, registered: RegisteredModel, tracking_uri: str) -> DataFrame:
    """The scores of the features' customers, as `ml/churn_scores` computes them, checkpointed (written
    and collected from one computation)."""
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    model = mlflow.spark.load_model(registered.version_uri)
    scored = score(features, model, registered.version, promoted=False)
    return scored.select(*OUTPUT_COLUMNS).orderBy("customer_id").localCheckpoint()


def _as_pandas(scored: DataFrame) -> pd.DataFrame:
    frame = scored.toPandas()
    cutoff = pd.to_datetime(frame["score_cutoff"])
    frame["score_cutoff"] = cutoff.dt.tz_localize("UTC") if cutoff.dt.tz is None else cutoff.dt.tz_convert("UTC")
    return frame.astype({"score_cutoff": "datetime64[us, UTC]", "model_version": "int32"}).reset_index(drop=True)


def describe(run: ScoringRun, limit: int = EXAMPLES) -> Sequence[str]:
    """The lines `batch-platform score` prints about a run."""
    recent = run.windows[OPERATIONAL_EVENTS.source]
    history = run.windows[CUSTOMER_PROFILES.source]
    lines = [
        f"scored {len(run.scores):,} customers at cutoff {run.cutoff.date()} (the scores ml/churn_scores "
        f"{run.quarter} holds) with {run.model.version_uri} ({run.model.uri})",
        f"read: operational, logs and external files that arrived {recent[0]} … {recent[1]} (exclusive), "
        f"customers files {history[0]} … {history[1]} (exclusive)",
    ]
    for rejected in run.rejected:
        reasons = ", ".join(f"{reason} {count:,}" for reason, count in sorted(rejected.rejects.items()))
        lines.append(f"quarantined, not scored: {rejected.table} {rejected.rows:,} row(s) ({reasons}); first:")
        lines += [f"  - {example}" for example in rejected.examples[:limit]]
    lines += [f"WARN {warning}" for warning in run.warnings]
    if run.output is not None:
        lines.append(f"wrote {run.output} (Parquet: {', '.join(OUTPUT_COLUMNS)})")
    return lines
