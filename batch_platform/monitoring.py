"""Drift monitoring of gold and ml (SPEC.md, "Monitoring"), as partitioned asset checks.

- `feature_drift` on `gold/customer_features`: per quarter Q, every model feature's null rate, and
  its PSI (and KS for a numeric one) against two references: Q-1, and the quarter the champion in
  use when Q's features were computed was trained on — the champion of Q-1 (`champion-<Q-1>`),
  whose scores of Q-1 are made from exactly these features. Read per quarter, not from the
  latest `champion` alias, so re-checking an old quarter gives the same answer.
- `score_drift` on `ml/churn_scores`: per quarter Q, the mean, quartiles and share above 0.5 of
  churn_probability, its PSI against Q-1's scores, and, once `gold/churn_labels` Q+1 is in the
  lake, the realised churn rate beside the predicted mean.

Both WARN, naming what drifted, when a PSI reaches `monitoring.psi_warn` (0.2 by default: the
usual reading of PSI is < 0.1 stable, 0.1–0.25 worth a look, > 0.25 a shift; 0.2 warns before
the shift is large without warning on sampling noise of a few hundred rows). A quarter without
a reference says so and passes. They never block: drift is for a person to judge. Every figure
is numeric metadata of the quarter's evaluation (a missing statistic is a null, never 0), so the
UI plots each across quarters. The statistics are `batch_platform.drift`'s, computed by Spark.
"""

from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
import pyspark.sql.types as T
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from batch_platform.arrival import ARRIVAL_AND_SCHEMA
from batch_platform.checks import warn_evaluations
from batch_platform.config_sections import MonitoringConfig
from batch_platform.drift import Drift, drift_pairs, drift_statistics
from batch_platform.features import STATISTICS_FEATURES, FeatureColumns
from batch_platform.layout import PARTITION_COLUMN
from batch_platform.partitions import shift, to_label
from batch_platform.schemas.bronze import BRONZE_TABLES
from batch_platform.schemas.gold import FEATURES_KEY, LABELS_KEY
from batch_platform.schemas.ml import MODEL_KEY, SCORES_KEY
from batch_platform.storage import HadoopFS

FEATURE_DRIFT = "feature_drift"
SCORE_DRIFT = "score_drift"
QUARTILES = [0.25, 0.5, 0.75]
REPORT_FOLDER = "reports/monitoring"
"""`<lake>/reports/monitoring/<YYYY-QN>/<check>.html`: beside the tables, outside every table."""
CATEGORICAL_FEATURES = [
    name
    for name, column in FeatureColumns.to_schema().columns.items()
    if isinstance(getattr(column.dtype, "type", None), T.StringType) and name not in ("customer_id", PARTITION_COLUMN)
]
"""The text features (categories), compared bin per category."""
MONITORED = [*STATISTICS_FEATURES, *CATEGORICAL_FEATURES]
MONITORING_CHECKS = [
    *(dg.AssetCheckKey(table.key, ARRIVAL_AND_SCHEMA) for table in BRONZE_TABLES.values()),
    dg.AssetCheckKey(FEATURES_KEY, FEATURE_DRIFT),
    dg.AssetCheckKey(SCORES_KEY, SCORE_DRIFT),
]
"""Every monitoring check of the platform, layer by layer (`batch-platform monitor` reports them)."""


def _publish_report(lake, quarter: str, check: str, page: str) -> dict[str, dg.MetadataValue]:
    """Write a quarter's report page to the lake's report folder; its link, as metadata."""
    uri = lake.layout.uri(f"{REPORT_FOLDER}/{quarter}/{check}.html")
    HadoopFS(lake.pyspark.spark_session).write_bytes(uri, page.encode())
    return {"report": dg.MetadataValue.path(uri)}


def _tenth() -> Column:
    return F.least(F.floor(F.col("churn_probability") * 10), F.lit(9)).cast("int")


def score_figures(scores: DataFrame) -> tuple[dict[str, dict[str, float | None]], dict[str, list[int]]]:
    """Per quarter of `scores`: mean, quartiles and share above 0.5 of churn_probability, and its
    counts in the tenths of [0, 1] (1.0 in the last), in one aggregation."""
    p = F.col("churn_probability")
    rows = (
        scores.groupBy(PARTITION_COLUMN)
        .agg(
            F.count(p).alias("n"),
            F.avg(p).alias("mean"),
            F.percentile_approx(p, QUARTILES, 10_000).alias("q"),
            F.avg((p > 0.5).cast("double")).alias("share_above_0_5"),
            *[F.count(F.when(_tenth() == i, 1)).alias(f"t{i}") for i in range(10)],
        )
        .collect()
    )
    stats = {
        row[PARTITION_COLUMN]: {
            "scores": row["n"],
            "mean": row["mean"],
            **dict(zip(("q25", "median", "q75"), row["q"] or [None] * 3, strict=True)),
            "share_above_0_5": row["share_above_0_5"],
        }
        for row in rows
    }
    return stats, {row[PARTITION_COLUMN]: [row[f"t{i}"] for i in range(10)] for row in rows}


def realised(scores: DataFrame, labels: DataFrame, following: Mapping[str, str]) -> tuple[dict, dict]:
    """Per scored quarter Q whose labels are in `labels` (quarter Q+1 = `following[Q]`): the realised
    churn rate of Q+1, and per tenth of churn_probability (mean predicted, realised rate, customers)."""
    back = F.create_map(*[F.lit(x) for pair in following.items() for x in reversed(pair)])
    joined = scores.select(PARTITION_COLUMN, "customer_id", "churn_probability").join(
        labels.select(back[F.col(PARTITION_COLUMN)].alias(PARTITION_COLUMN), "customer_id", "label"),
        [PARTITION_COLUMN, "customer_id"],
    )
    rows = (
        joined.groupBy(PARTITION_COLUMN, _tenth().alias("bin"))
        .agg(F.avg("churn_probability").alias("p"), F.sum("label").alias("y"), F.count(F.lit(1)).alias("n"))
        .orderBy(PARTITION_COLUMN, "bin")
        .collect()
    )
    bins: dict[str, list[tuple[float, float, int]]] = {}
    for row in rows:
        bins.setdefault(row[PARTITION_COLUMN], []).append((row["p"], row["y"] / row["n"], row["n"]))
    rates = {q: sum(b[1] * b[2] for b in found) / sum(b[2] for b in found) for q, found in bins.items()}
    return rates, bins


def _value(number: float | None) -> dg.MetadataValue:
    return dg.MetadataValue.null() if number is None else dg.MetadataValue.float(float(number))


def _with_references(lake, key: dg.AssetKey, frame: DataFrame, quarters: list[str]) -> tuple[DataFrame, set]:
    """`frame` (the run's quarters of a lake table) with those of `quarters` that are materialised
    (empty ones included) read from the lake; the quarters the result holds."""
    present = set(lake.materialised_quarters(key))
    extra = [q for q in dict.fromkeys(quarters) if q in present]
    return frame.unionByName(lake.read_quarters(key, extra)), set(extra)


def _drift_metadata(prefix: str, reference: str | None, found: Mapping[str, Drift] | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {f"reference/{prefix}": reference or "none"}
    for name in MONITORED:
        result = (found or {}).get(name, Drift(None))
        metadata[f"psi/{prefix}/{name}"] = _value(result.psi)
        if name in STATISTICS_FEATURES:
            metadata[f"ks/{prefix}/{name}"] = _value(result.ks)
    return metadata


def feature_drift_result(
    quarter: str,
    rates: Mapping[str, float | None],
    references: Mapping[str, str | None],
    found: Mapping[str, Mapping[str, Drift] | None],
    psi_warn: float,
) -> dict[str, Any]:
    """One quarter's evaluation: `references` per kind (previous, champion) the reference quarter
    (None: there is none), `found` per kind its drift per feature."""
    metadata: dict[str, Any] = {"quarter": quarter, "psi_warn": psi_warn}
    metadata |= {f"null_rate/{name}": _value(rates.get(name)) for name in MONITORED}
    drifted = []
    for kind, reference in references.items():
        metadata |= _drift_metadata(kind, reference, found.get(kind))
        for name, result in (found.get(kind) or {}).items():
            if result.psi is not None and result.psi >= psi_warn:
                drifted.append(f"{name} {result.psi:.3f} against {reference} ({kind})")
    psis = [r.psi for f in found.values() for r in (f or {}).values() if r.psi is not None]
    metadata |= {"max_psi": _value(max(psis) if psis else None), "features_drifted": len(drifted)}
    if not any(references.values()):
        description = f"{quarter}: no reference quarter to compare with yet"
    elif drifted:
        description = f"{quarter}: PSI ≥ {psi_warn}: " + "; ".join(drifted)
    elif not psis:
        shown = ", ".join(r for r in references.values() if r)
        description = f"{quarter}: no PSI: {quarter} or its reference ({shown}) has no values"
    else:
        description = f"{quarter}: every PSI below {psi_warn}"
    return {"passed": not drifted, "description": description, "metadata": metadata}


def score_drift_result(
    quarter: str,
    stats: Mapping[str, float | None],
    previous: str | None,
    found: Drift | None,
    realised: float | None,
    psi_warn: float,
) -> dict[str, Any]:
    """One quarter's evaluation of the scores: their distribution, PSI against `previous`, and the
    realised churn rate of Q+1 (None while its labels are not in the lake)."""
    score_psi = None if found is None else found.psi
    metadata = {
        "quarter": quarter,
        "psi_warn": psi_warn,
        **{name: _value(value) for name, value in stats.items()},
        "reference/previous": previous or "none",
        "psi/previous": _value(score_psi),
        "realised_churn_rate": _value(realised),
        "calibration_gap": _value(None if realised is None or stats.get("mean") is None else stats["mean"] - realised),
    }
    drifted = score_psi is not None and score_psi >= psi_warn
    if previous is None:
        description = f"{quarter}: no scores of the previous quarter to compare with"
    elif score_psi is None:
        description = f"{quarter}: no scores in {quarter} or {previous}: no PSI"
    else:
        description = f"{quarter}: PSI of churn_probability against {previous} {score_psi:.3f} (warn at {psi_warn})"
    return {"passed": not drifted, "description": description, "metadata": metadata}


def build_monitoring_checks(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetChecksDefinition]:
    """`feature_drift` and `score_drift`, WARN only, one evaluation per quarter of the step."""

    @dg.asset_check(
        asset=FEATURES_KEY,
        name=FEATURE_DRIFT,
        partitions_def=partitions_def,
        additional_deps=[MODEL_KEY],
        required_resource_keys={"io_manager", "mlflow_store", "monitoring"},
        description=(
            "Feature drift (SPEC.md, 'Monitoring'): each feature's null rate, PSI and KS against Q-1 and against "
            "the quarter the champion of Q-1 was trained on. WARN naming every feature whose PSI reaches "
            "monitoring.psi_warn."
        ),
    )
    def feature_drift(
        context: dg.AssetCheckExecutionContext, customer_features: DataFrame
    ) -> Iterator[dg.AssetCheckEvaluation | dg.Output]:
        # start-up time: MLflow and matplotlib load when a check runs, not with the definitions
        from batch_platform.ml.registry import champion_quarters
        from batch_platform.monitoring_report import feature_report

        quarters = [to_label(key) for key in context.partition_keys]
        monitoring: MonitoringConfig = context.resources.monitoring
        champions = champion_quarters(context.resources.mlflow_store, quarters)
        lake = context.resources.io_manager
        wanted = [q for q in [*(shift(q, -1) for q in quarters), *champions.values()] if q not in quarters]
        frame, held = _with_references(lake, FEATURES_KEY, customer_features, wanted)
        held |= set(quarters)
        references = {
            q: {
                kind: r if r in held else None
                for kind, r in (("previous", shift(q, -1)), ("champion", champions.get(q)))
            }
            for q in quarters
        }
        pairs = [(r, q) for q in quarters for r in references[q].values() if r]
        found, rates = drift_statistics(
            frame, PARTITION_COLUMN, pairs, STATISTICS_FEATURES, CATEGORICAL_FEATURES, rated=MONITORED
        )
        results = {}
        for key, quarter in zip(context.partition_keys, quarters, strict=True):
            mine = {kind: found[(r, quarter)] if r else None for kind, r in references[quarter].items()}
            quarter_rates = rates.get(quarter, {})
            result = feature_drift_result(quarter, quarter_rates, references[quarter], mine, monitoring.psi_warn)
            page = feature_report(quarter, references[quarter], mine, quarter_rates, monitoring.psi_warn)
            result["metadata"] |= _publish_report(lake, quarter, FEATURE_DRIFT, page)
            results[key] = result
        yield from warn_evaluations(context, FEATURES_KEY, FEATURE_DRIFT, results)

    @dg.asset_check(
        asset=SCORES_KEY,
        name=SCORE_DRIFT,
        partitions_def=partitions_def,
        additional_deps=[LABELS_KEY],
        required_resource_keys={"io_manager", "monitoring"},
        description=(
            "Score drift (SPEC.md, 'Monitoring'): mean, quartiles and share above 0.5 of churn_probability, its PSI "
            "against Q-1's scores, and the realised churn rate of Q+1 beside the mean once its labels exist. WARN "
            "when the PSI reaches monitoring.psi_warn."
        ),
    )
    def score_drift(
        context: dg.AssetCheckExecutionContext, churn_scores: DataFrame
    ) -> Iterator[dg.AssetCheckEvaluation | dg.Output]:
        from batch_platform.monitoring_report import score_report  # start-up time, as feature_drift's

        quarters = [to_label(key) for key in context.partition_keys]
        monitoring: MonitoringConfig = context.resources.monitoring
        lake = context.resources.io_manager
        before = [shift(q, -1) for q in quarters if shift(q, -1) not in quarters]
        scores, held = _with_references(lake, SCORES_KEY, churn_scores, before)
        held |= set(quarters)
        following = {q: shift(q, 1) for q in quarters}
        labelled = [q for q in lake.materialised_quarters(LABELS_KEY) if q in following.values()]
        pairs = [(shift(q, -1), q) for q in quarters if shift(q, -1) in held]
        # three aggregations over the scores: read them once (a few columns of a quarter's customers)
        scores = scores.select(PARTITION_COLUMN, "customer_id", "churn_probability").persist()
        try:
            found = drift_pairs(scores, PARTITION_COLUMN, pairs, ["churn_probability"])
            stats, histograms = score_figures(scores)
            rates, bins = realised(scores, lake.read_quarters(LABELS_KEY, labelled), following)
        finally:
            scores.unpersist()
        results = {}
        for key, quarter in zip(context.partition_keys, quarters, strict=True):
            previous = shift(quarter, -1) if (shift(quarter, -1), quarter) in found else None
            drifted = found[(previous, quarter)]["churn_probability"] if previous else None
            figures = stats.get(quarter, dict.fromkeys(("scores", "mean", "q25", "median", "q75", "share_above_0_5")))
            realised_rate = rates.get(quarter) if following[quarter] in labelled else None
            result = score_drift_result(quarter, figures, previous, drifted, realised_rate, monitoring.psi_warn)
            shown = {q: histograms.get(q, [0] * 10) for q in (previous, quarter) if q}
            page = score_report(quarter, figures, shown, bins.get(quarter, []))
            result["metadata"] |= _publish_report(lake, quarter, SCORE_DRIFT, page)
            results[key] = result
        yield from warn_evaluations(context, SCORES_KEY, SCORE_DRIFT, results)

    return [feature_drift, score_drift]
