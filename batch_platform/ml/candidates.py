"""The churn model's candidates and what every one is measured by, declared once.

The training fits each of `CANDIDATES` (`batch_platform.ml.pipelines.estimator` builds it), the
model card's schema accepts their names and the baseline's (`batch_platform.schemas.ml`), and the
materialisation records `METRICS` of the champion and of the baseline (`batch_platform.metadata`).
A new candidate is one more entry here (docs/ml.md, "Adding a candidate").

Light on purpose (no MLlib, no MLflow): the table declarations import it when the definitions load.

- **Candidates.** Logistic regression (L2, regParam 0.01) and a random forest (100 trees, depth 6,
  seed `SEED`): same rows, same result, whatever files the training set was read from
  (`batch_platform.ml.training`). The champion has the higher AUC-PR on eval; a tie goes to the
  candidate listed first.
- **Baseline.** `BASELINE`, the recency-only model: a logistic regression on `recency_days` alone,
  fit on the same train split (`batch_platform.ml.metrics.recency_baseline`). It is a bar to clear,
  not a candidate: never logged as a model, never the champion.
- **Previous champion.** `PREVIOUS`, the champion of Q-1 re-scored on Q's eval rows: what the best
  candidate of Q must come close to (`batch_platform.ml.gate`); it stays the champion of Q otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

SEED = 42


@dataclass(frozen=True)
class Candidate:
    """One classifier the quarter's champion is chosen from."""

    name: str
    """Its name on the model card (`candidate`) and in MLflow."""
    estimator: str
    """The Spark MLlib classifier: a class of `pyspark.ml.classification`."""
    params: Mapping[str, object]
    """The classifier's parameters (the others keep MLlib's defaults); all are logged to MLflow."""


CANDIDATES = (
    Candidate(
        "logistic_regression",
        "LogisticRegression",
        {"maxIter": 100, "regParam": 0.01, "elasticNetParam": 0.0},
    ),
    Candidate(
        "random_forest",
        "RandomForestClassifier",
        {"numTrees": 100, "maxDepth": 6, "seed": SEED},
    ),
)
"""In the order the model card lists them (and a tie for champion is broken)."""

BASELINE = "recency_baseline"
PREVIOUS = "previous_champion"
CARD_ROWS = (*(candidate.name for candidate in CANDIDATES), BASELINE, PREVIOUS)
"""The values of the model card's `candidate` column: every candidate, the baseline, and the champion
of Q-1 re-scored on Q's eval rows (when Q-1 has one)."""

METRICS = ("auc_pr", "auc_roc", "log_loss", "brier", "lift_top_decile", "churn_rate")
"""What every candidate and the baseline are measured by on eval: the model card's metric columns."""

INTERVAL_METRICS = ("auc_pr", "auc_roc")
"""The metrics with a 95 % bootstrap interval (`batch_platform.ml.bootstrap`)."""
INTERVALS = tuple(f"{name}_ci_{end}" for name in INTERVAL_METRICS for end in ("low", "high"))
"""Their bounds: the model card's interval columns, the MLflow metrics and the metadata entries."""
