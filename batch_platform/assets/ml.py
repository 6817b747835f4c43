"""ML: the quarterly churn model and its scores (SPEC.md, "ML: the quarterly churn model and its scores").

- `ml/churn_model` Q trains on the train split of `gold/training_set` Q, evaluates on its eval
  split, logs every candidate to MLflow and registers the champion (`batch_platform.ml`). The lake
  table is the quarter's model card: one row per candidate and the baseline, the champion carrying
  its registered model version; an untrainable quarter has no rows and says why in its metadata.
- `ml/churn_scores` Q scores, with the champion of Q (the version `ml/churn_model` Q recorded), the
  customers with an event in silver Q-L+1 … Q, at cutoff C' = start of Q+1: the predictions made at
  the end of Q for Q+1. Its features come from `compute_customer_features` for target quarter Q+1,
  the function behind `gold/customer_features` (no train/serve skew).
- The check `out_of_time_performance` on `ml/churn_scores` Q compares the scores with
  `gold/churn_labels` Q+1 once it exists: realised AUC-PR and AUC-ROC beside the recency-only
  baseline's (ranking by `recency_days` of `gold/customer_features` Q+1, the scoring features);
  WARN when the model's AUC-PR is below the baseline's. One result per quarter, each recorded
  against its own partition and that quarter's materialisation, also in a multi-quarter run.

Like gold, every asset runs a whole range of quarters in one run; training loops over them.
"""

from collections.abc import Iterator

import dagster as dg
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from batch_platform.assets.gold import SILVER_EVENTS, SILVER_LOGS, SILVER_SCORES
from batch_platform.checks import check_outputs, latest_materializations, target_materialization
from batch_platform.config import BatchConfig
from batch_platform.ml import (
    BASELINE,
    METRICS,
    MlflowStore,
    QuarterModel,
    ranking_metrics,
    score_quarters,
    scoring_features,
    train_quarters,
)
from batch_platform.partitions import quarter_end, shift, to_label
from batch_platform.schemas.base import PARTITION_COLUMN, lake_pool, spark_schema
from batch_platform.schemas.gold import FEATURES_KEY, LABELS_KEY, TRAINING_KEY
from batch_platform.schemas.ml import CHURN_MODEL, CHURN_SCORES, MODEL_KEY, SCORES_KEY, ChurnModel, ChurnScores

CODE_VERSION = "1"
OUT_OF_TIME = "out_of_time_performance"


def _common(partitions_def: dg.PartitionsDefinition) -> dict:
    return dict(
        group_name="ml",
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={"spark", "mlflow", "parquet", "pandera"},
        code_version=CODE_VERSION,
    )


def _quarters(context) -> list[tuple[str, str]]:
    return [(key, to_label(key)) for key in context.partition_keys]


def model_metadata(outcome: QuarterModel, store: MlflowStore) -> dict[str, dg.MetadataValue]:
    """The story of one quarter's training: numbers as numbers, so the UI plots them across quarters;
    `mlflow_run` links the champion's run (its plots and model), `mlflow_quarter_run` the quarter's."""
    metadata = {
        "trained": dg.MetadataValue.bool(outcome.trained),
        "train_rows": dg.MetadataValue.int(outcome.train_rows),
        "eval_rows": dg.MetadataValue.int(outcome.eval_rows),
    }
    if not outcome.trained:
        return {
            **metadata,
            "reason": dg.MetadataValue.text(f"not trained, nothing registered: {outcome.reason}"),
        }
    metadata |= {
        "champion": dg.MetadataValue.text(outcome.champion),
        "model_version": dg.MetadataValue.int(outcome.model_version),
        "mlflow_run": dg.MetadataValue.url(outcome.run_url),
        "mlflow_quarter_run": dg.MetadataValue.url(outcome.quarter_run_url),
        "mlflow_ui": dg.MetadataValue.text(store.ui_hint()),
    }
    for prefix, candidate in (("eval", outcome.champion), ("baseline", BASELINE)):
        metrics = outcome.metrics(candidate)
        metadata |= {f"{prefix}/{name}": dg.MetadataValue.float(round(metrics[name], 6)) for name in METRICS}
    return metadata


def build_ml_assets(partitions_def: dg.PartitionsDefinition, batch: BatchConfig) -> list[dg.AssetsDefinition]:
    """`ml/churn_model` and `ml/churn_scores`; the lookback L of the config: the scores read silver Q-L+1 … Q
    (the quarters of it that are partitions: none before `batch.first_quarter`; each of those must
    have been materialised, as the IO manager requires)."""
    lookback = batch.lookback_quarters
    recent = dg.TimeWindowPartitionMapping(
        start_offset=-(lookback - 1),
        end_offset=0,
        allow_nonexistent_upstream_partitions=True,
    )

    def recent_in(key: dg.AssetKey) -> dg.AssetIn:
        return dg.AssetIn(key=key, partition_mapping=recent)

    @dg.asset(
        key=MODEL_KEY,
        pool=lake_pool(MODEL_KEY),
        ins={"training_set": dg.AssetIn(key=TRAINING_KEY)},
        description=(
            "The churn model of Q: logistic regression and random forest (Spark MLlib) fit on the train split of "
            "gold/training_set Q, measured on its eval split beside a recency-only baseline, logged to MLflow; the "
            "champion (higher AUC-PR) registered as a new model version tagged with Q. The table is the model card: "
            "one row per candidate. SPEC.md, 'ML'."
        ),
        metadata=CHURN_MODEL.definition_metadata(),
        **_common(partitions_def),
    )
    def churn_model(
        context: dg.AssetExecutionContext,
        mlflow_store: MlflowStore,
        training_set: DataFrame,
    ) -> DataFrame:
        quarters = _quarters(context)
        outcomes = train_quarters(training_set, [label for _, label in quarters], mlflow_store)
        rows = []
        for (key, label), outcome in zip(quarters, outcomes, strict=True):
            if not outcome.trained:
                context.log.warning(f"ml/churn_model {label}: not trained, nothing registered: {outcome.reason}")
            context.add_asset_metadata(model_metadata(outcome, mlflow_store), partition_key=key)
            rows += outcome.rows
        spark = training_set.sparkSession
        return spark.createDataFrame(rows, spark_schema(ChurnModel)) if rows else _empty(spark, ChurnModel)

    @dg.asset(
        key=SCORES_KEY,
        pool=lake_pool(SCORES_KEY),
        ins={
            "churn_model": dg.AssetIn(key=MODEL_KEY),
            "operational_events": recent_in(SILVER_EVENTS),
            "interaction_logs": recent_in(SILVER_LOGS),
            "partner_scores": recent_in(SILVER_SCORES),
        },
        description=(
            f"Churn probability of every customer with an operational event in silver Q-{lookback - 1} … Q, made at "
            "the end of Q for the quarter after it (cutoff C' = start of Q+1) by the champion of Q. Features from the "
            "function behind gold/customer_features, for target quarter Q+1. Empty when Q has no champion. "
            "SPEC.md, 'ML'."
        ),
        metadata={**CHURN_SCORES.definition_metadata(), "lookback_quarters": lookback},
        **_common(partitions_def),
    )
    def churn_scores(
        context: dg.AssetExecutionContext,
        batch: dg.ResourceParam[BatchConfig],
        mlflow_store: MlflowStore,
        churn_model: DataFrame,
        operational_events: DataFrame,
        interaction_logs: DataFrame,
        partner_scores: DataFrame,
    ) -> DataFrame:
        if batch.lookback_quarters != lookback:
            raise dg.Failure(
                f"batch.lookback_quarters is {batch.lookback_quarters}, the graph was built with {lookback}"
            )
        quarters = _quarters(context)
        champions = {
            row[PARTITION_COLUMN]: int(row["model_version"])
            for row in churn_model.filter(F.col("champion")).select(PARTITION_COLUMN, "model_version").collect()
        }
        features = scoring_features(
            operational_events,
            interaction_logs,
            partner_scores,
            [label for _, label in quarters],
            lookback,
        )
        scored = score_quarters(features, mlflow_store, champions)
        for key, label in quarters:
            metadata = {"score_cutoff": dg.MetadataValue.text(quarter_end(label).isoformat())}
            if label in champions:
                metadata["model_version"] = dg.MetadataValue.int(champions[label])
            else:
                metadata["reason"] = dg.MetadataValue.text(f"no scores: ml/churn_model {label} has no champion")
            context.add_asset_metadata(metadata, partition_key=key)
        return scored if scored is not None else _empty(features.sparkSession, ChurnScores)

    return [churn_model, churn_scores]


def _empty(spark, model) -> DataFrame:
    return spark.createDataFrame([], spark_schema(model))


# ---------------------------------------------------------------------------------------- check
def build_ml_checks(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetChecksDefinition]:
    """The out-of-time check of `ml/churn_scores`, on the platform's partitions.

    Each quarter's evaluation targets that quarter's latest materialisation of the scores, so the
    UI keeps its result per partition (`batch_platform.checks.target_materialization`). Every
    evaluation has WARN severity, a passing or pending one too: the check never blocks, and the UI
    calls a partitioned check's failed quarters WARN or ERROR by the severity of its latest
    evaluation, whichever quarter that is.
    """

    @dg.asset_check(
        asset=SCORES_KEY,
        name=OUT_OF_TIME,
        partitions_def=partitions_def,
        additional_deps=[LABELS_KEY, FEATURES_KEY],
        required_resource_keys={"io_manager"},
        description=(
            "Out-of-time evaluation (SPEC.md, 'ML'): once gold/churn_labels Q+1 exists, the realised AUC-PR and AUC-ROC of "
            "ml/churn_scores Q against it, beside the recency-only baseline's (ranking by recency_days of "
            "gold/customer_features Q+1). WARN when the model's AUC-PR is below the baseline's, or when the scored and "
            "the labelled customers differ."
        ),
    )
    def out_of_time_performance(
        context: dg.AssetCheckExecutionContext, churn_scores: DataFrame
    ) -> Iterator[dg.AssetCheckEvaluation | dg.Output]:
        quarters = _quarters(context)
        following = {shift(label, 1): label for _, label in quarters}
        # Dagster 1.13 applies no partition mapping to an asset check's inputs (they map to the same
        # quarter), so the check names its dependencies and reads Q+1 itself: the labels of Q+1 that
        # are in the lake (the others are pending, not empty), and the features they were made from.
        lake = context.resources.io_manager
        labelled = [q for q in lake.materialised_quarters(LABELS_KEY) if q in following]
        labels = lake.read_quarters(LABELS_KEY, labelled)
        recency = lake.read_quarters(FEATURES_KEY, labelled).select(PARTITION_COLUMN, "customer_id", "recency_days")
        back = F.create_map(*[F.lit(value) for pair in following.items() for value in pair])
        truth = labels.join(recency, [PARTITION_COLUMN, "customer_id"]).withColumn(
            PARTITION_COLUMN, back[F.col(PARTITION_COLUMN)]
        )
        joined = churn_scores.select(PARTITION_COLUMN, "customer_id", "churn_probability").join(
            truth.select(PARTITION_COLUMN, "customer_id", "label", "recency_days"),
            [PARTITION_COLUMN, "customer_id"],
            "full_outer",
        )
        found = joined.toPandas()
        records = latest_materializations(context.instance, SCORES_KEY, context.partition_keys)
        for key, label in quarters:
            result = out_of_time_result(label, found[found[PARTITION_COLUMN] == label], shift(label, 1) in labelled)
            yield dg.AssetCheckEvaluation(
                asset_key=SCORES_KEY,
                check_name=OUT_OF_TIME,
                partition=key,
                blocking=False,
                target_materialization_data=target_materialization(records.get(key)),
                **{"severity": dg.AssetCheckSeverity.WARN, **result},
            )
        yield from check_outputs(context)

    return [out_of_time_performance]


def out_of_time_result(quarter: str, rows, labels_exist: bool) -> dict:
    """passed / severity / description / metadata of one quarter's out-of-time evaluation."""
    following = shift(quarter, 1)
    if not labels_exist:
        return {
            "passed": True,
            "description": f"pending: gold/churn_labels {following} is not in the lake yet",
            "metadata": {
                "quarter": quarter,
                "labels_quarter": following,
                "evaluated": False,
            },
        }
    scored = rows["churn_probability"].notna()
    labelled = rows["label"].notna()
    if not scored.any():
        return {
            "passed": True,
            "description": f"no scores: {quarter} had no champion",
            "metadata": {
                "quarter": quarter,
                "labels_quarter": following,
                "evaluated": False,
            },
        }
    both = rows[scored & labelled]
    metadata = {
        "quarter": quarter,
        "labels_quarter": following,
        "evaluated": True,
        "customers": len(both),
        "scored_not_labelled": int((scored & ~labelled).sum()),
        "labelled_not_scored": int((labelled & ~scored).sum()),
        "realised_churn_rate": float(both["label"].mean()),
    }
    problems = []
    if both["label"].nunique() < 2:
        return {
            "passed": True,
            "description": f"{following} labels hold one class only: no AUC",
            "metadata": metadata,
        }
    model = ranking_metrics(both["label"].to_numpy(), both["churn_probability"].to_numpy())
    baseline = ranking_metrics(both["label"].to_numpy(), both["recency_days"].to_numpy())
    metadata |= {f"out_of_time/{k}": v for k, v in model.items()} | {f"baseline/{k}": v for k, v in baseline.items()}
    if model["auc_pr"] < baseline["auc_pr"]:
        problems.append(f"AUC-PR {model['auc_pr']:.4f} is below the recency baseline's {baseline['auc_pr']:.4f}")
    if metadata["scored_not_labelled"] or metadata["labelled_not_scored"]:
        problems.append(
            f"{metadata['scored_not_labelled']} scored customers have no {following} label and "
            f"{metadata['labelled_not_scored']} labelled customers were not scored"
        )
    return {
        "passed": not problems,
        "severity": dg.AssetCheckSeverity.WARN,
        "description": "; ".join(problems) or f"AUC-PR {model['auc_pr']:.4f} vs baseline {baseline['auc_pr']:.4f}",
        "metadata": metadata,
    }
