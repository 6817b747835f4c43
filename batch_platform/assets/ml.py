"""ML: the quarterly churn model and its scores (SPEC.md, "ML: the quarterly churn model and its scores").

- `ml/churn_model` Q trains on the train split of `gold/training_set` Q (pooled with Q-k+1 … Q-1
  when `ml.train_quarters` k > 1: the graph maps Q to those partitions), evaluates on Q's eval
  split, logs every candidate to MLflow, registers the best and decides the champion of Q by the
  promotion gate (`batch_platform.ml.training`, `batch_platform.ml.gate`). The lake table is the
  quarter's model card: one row per candidate, the baseline and the champion of Q-1 re-scored, the
  champion marked; an untrainable quarter has no rows and says why in its metadata.
- The check `promotion_gate` on `ml/churn_model` Q reports the gate's verdict recorded by that
  quarter's materialisation: WARN when the best candidate was not promoted, naming the rule that
  failed and both figures.
- `ml/churn_scores` Q scores, with the champion of Q (the registry's `champion-<Q>`), the
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

from batch_platform.assets.gold import SILVER_EVENTS, SILVER_LOGS, SILVER_SCORES
from batch_platform.checks import latest_materializations, warn_evaluations
from batch_platform.config_sections import BatchConfig, MlConfig
from batch_platform.metadata import record_quarters
from batch_platform.ml.candidates import CANDIDATES
from batch_platform.ml.gate import gate_result
from batch_platform.mlflow_store import MlflowStore
from batch_platform.partitions import shift, to_label
from batch_platform.schemas.base import PARTITION_COLUMN, lake_pool
from batch_platform.schemas.customer_history import HISTORY_KEY
from batch_platform.schemas.gold import FEATURES_KEY, LABELS_KEY, TRAINING_KEY
from batch_platform.schemas.ml import (
    CHURN_MODEL,
    CHURN_SCORES,
    MODEL_KEY,
    SCORES_KEY,
    model_metadata,
    scores_metadata,
)

CODE_VERSION = "1"
OUT_OF_TIME = "out_of_time_performance"
PROMOTION_GATE = "promotion_gate"
_NAMES = [candidate.name.replace("_", " ") for candidate in CANDIDATES]
_CANDIDATE_NAMES = ", ".join(_NAMES[:-1]) + f" and {_NAMES[-1]}" if len(_NAMES) > 1 else _NAMES[0]


def _common(partitions_def: dg.PartitionsDefinition) -> dict:
    return dict(
        group_name="ml",
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={"spark", "mlflow", "delta", "pandera"},
        code_version=CODE_VERSION,
    )


def _quarters(context) -> list[str]:
    """The run's quarters, `YYYY-QN`, in the order of its partition keys."""
    return [to_label(key) for key in context.partition_keys]


def build_ml_assets(
    partitions_def: dg.PartitionsDefinition, batch: BatchConfig, ml: MlConfig | None = None
) -> list[dg.AssetsDefinition]:
    """`ml/churn_model` and `ml/churn_scores`; the lookback L of the config: the scores read silver Q-L+1 … Q
    (the quarters of it that are partitions: none before `batch.first_quarter`; each of those must
    have been materialised, as the IO manager requires); `ml.train_quarters` k: the model of Q reads
    `gold/training_set` Q-k+1 … Q the same way."""
    lookback = batch.lookback_quarters
    pool = (ml or MlConfig()).train_quarters
    pooled = dg.TimeWindowPartitionMapping(
        start_offset=-(pool - 1), end_offset=0, allow_nonexistent_upstream_partitions=True
    )
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
        ins={"training_set": dg.AssetIn(key=TRAINING_KEY, partition_mapping=pooled)},
        description=(
            f"The churn model of Q: {_CANDIDATE_NAMES} (Spark MLlib), hyperparameters chosen on a validation fold "
            f"of the train rows, fit on the train split of gold/training_set "
            f"{'Q' if pool == 1 else f'Q-{pool - 1} … Q pooled (ml.train_quarters)'}, measured on Q's eval split (95 % bootstrap intervals) beside a recency-only "
            "baseline, logged to MLflow; the best (higher AUC-PR) registered as a new model version tagged with Q, "
            "and the champion of Q if it passes the promotion gate (at least the baseline's AUC-PR, and at least "
            "the champion of Q-1's re-scored minus ml.promotion_tolerance), else the champion of Q-1 stays. The "
            "table is the model card: one row per candidate, the baseline and the previous champion. SPEC.md, 'ML'."
        ),
        metadata=CHURN_MODEL.definition_metadata(),
        **_common(partitions_def),
    )
    def churn_model(
        context: dg.AssetExecutionContext,
        ml: dg.ResourceParam[MlConfig],
        mlflow_store: MlflowStore,
        training_set: DataFrame,
    ) -> DataFrame:
        if ml.train_quarters != pool:
            raise dg.Failure(f"ml.train_quarters is {ml.train_quarters}, the graph was built with {pool}")
        # MLlib, MLflow and scikit-learn take seconds to import: a run pays for them, loading the definitions not
        from batch_platform.ml import training

        outcomes = training.train_quarters(
            training_set, _quarters(context), mlflow_store, ml.promotion_tolerance, lookback, pool
        )
        record_quarters(context, model_metadata(outcomes, mlflow_store))
        return training.model_card(outcomes, training_set.sparkSession)

    @dg.asset(
        key=SCORES_KEY,
        pool=lake_pool(SCORES_KEY),
        deps=[MODEL_KEY],  # the champion of Q is read from the registry, which ml/churn_model Q decided
        ins={
            "operational_events": recent_in(SILVER_EVENTS),
            "interaction_logs": recent_in(SILVER_LOGS),
            "partner_scores": recent_in(SILVER_SCORES),
            "customer_history": dg.AssetIn(key=HISTORY_KEY),
        },
        description=(
            f"Churn probability of every customer with an operational event in silver Q-{lookback - 1} … Q, made at "
            "the end of Q for the quarter after it (cutoff C' = start of Q+1) by the champion of Q. Features from the "
            "function behind gold/customer_features, for target quarter Q+1 (profile features from "
            "gold/customer_history Q); the version and whether it was promoted in Q on every row. Empty when Q "
            "has no champion. "
            "SPEC.md, 'ML'."
        ),
        metadata={**CHURN_SCORES.definition_metadata(), "lookback_quarters": lookback},
        **_common(partitions_def),
    )
    def churn_scores(
        context: dg.AssetExecutionContext,
        batch: dg.ResourceParam[BatchConfig],
        mlflow_store: MlflowStore,
        operational_events: DataFrame,
        interaction_logs: DataFrame,
        partner_scores: DataFrame,
        customer_history: DataFrame,
    ) -> DataFrame:
        if batch.lookback_quarters != lookback:
            raise dg.Failure(
                f"batch.lookback_quarters is {batch.lookback_quarters}, the graph was built with {lookback}"
            )
        # MLlib and MLflow take seconds to import: a run pays for them, loading the definitions not
        from batch_platform.ml import registry, scoring

        quarters = _quarters(context)
        champions = registry.quarter_champions(mlflow_store, quarters)
        features = scoring.scoring_features(
            operational_events, interaction_logs, partner_scores, quarters, lookback, history=customer_history
        )
        record_quarters(context, scores_metadata(quarters, champions))
        return scoring.score_quarters(features, mlflow_store, champions)

    return [churn_model, churn_scores]


# ---------------------------------------------------------------------------------------- check
def build_ml_checks(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetChecksDefinition]:
    """The out-of-time check of `ml/churn_scores` and the promotion gate's of `ml/churn_model`, on the
    platform's partitions.

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
        # scikit-learn takes a second to import: a check run pays for it, loading the definitions not
        from batch_platform.ml.out_of_time import out_of_time_result, out_of_time_rows

        quarters = _quarters(context)
        following = {shift(quarter, 1): quarter for quarter in quarters}
        # Dagster 1.13 applies no partition mapping to an asset check's inputs (they map to the same
        # quarter), so the check names its dependencies and reads Q+1 itself: the labels of Q+1 that
        # are in the lake (the others are pending, not empty), and the features they were made from.
        lake = context.resources.io_manager
        labelled = [q for q in lake.materialised_quarters(LABELS_KEY) if q in following]
        labels, features = (lake.read_quarters(key, labelled) for key in (LABELS_KEY, FEATURES_KEY))
        found = out_of_time_rows(churn_scores, labels, features, following)
        results = {
            key: out_of_time_result(quarter, found[found[PARTITION_COLUMN] == quarter], shift(quarter, 1) in labelled)
            for key, quarter in zip(context.partition_keys, quarters, strict=True)
        }
        yield from warn_evaluations(context, SCORES_KEY, OUT_OF_TIME, results)

    @dg.asset_check(
        asset=MODEL_KEY,
        name=PROMOTION_GATE,
        partitions_def=partitions_def,
        description=(
            "The promotion gate (SPEC.md, 'ML') of Q, as ml/churn_model Q decided it: WARN when the best candidate "
            "was not promoted (its eval AUC-PR below the recency baseline's, or below the champion of Q-1's "
            "re-scored on Q's eval rows minus ml.promotion_tolerance), naming the rule and both figures."
        ),
    )
    def promotion_gate(context: dg.AssetCheckExecutionContext) -> Iterator[dg.AssetCheckEvaluation | dg.Output]:
        records = latest_materializations(context.instance, MODEL_KEY, context.partition_keys)
        results = {}
        for key, quarter in zip(context.partition_keys, _quarters(context), strict=True):
            record = records.get(key)
            found = None if record is None else {k: v.value for k, v in record.asset_materialization.metadata.items()}
            results[key] = gate_result(quarter, found)
        yield from warn_evaluations(context, MODEL_KEY, PROMOTION_GATE, results, records)

    return [out_of_time_performance, promotion_gate]
