"""The churn model's candidates and what every one is measured by, declared once.

The training fits each of `CANDIDATES` (`batch_platform.ml.pipelines.estimator` builds it), the
model card's schema accepts their names and the baseline's (`batch_platform.schemas.ml`), and the
materialisation records `METRICS` of the champion and of the baseline (`batch_platform.metadata`).
A new candidate is one more entry here (docs/ml.md, "Adding a candidate").

Light on purpose (no MLlib, no MLflow): the table declarations import it when the definitions load.

- **Candidates.** Logistic regression, a random forest and gradient-boosted trees (seed `SEED`):
  same rows, same result, whatever files the training set was read from
  (`batch_platform.ml.training`). The best has the higher AUC-PR on eval; a tie goes to the
  candidate listed first.
- **Grid.** Each candidate's `grid` is a few combinations of the parameters that matter most on a
  quarter's few thousand customers (at most `MAX_GRID` each: every combination is one more fit per
  quarter). `batch_platform.ml.training` fits each on the train rows outside the validation fold,
  keeps the one with the higher AUC-PR on the fold (a tie: the first listed), and refits it on every
  train row; the eval rows are never seen before the final measurement. The fold is
  `VALIDATION_FRACTION` of the train customers, chosen by a hash of customer_id alone (as the
  train/eval split is), so a customer's rows of every pooled quarter fall on one side.
  Logistic regression: the L2 penalty, from barely there to strong. Random forest: MLlib's default
  draws a third of the inputs per split, which on these features often leaves out the one strong
  feature (recency), and grows leaves down to one row; the grid offers a larger share of inputs and
  shallower trees with at least `minInstancesPerNode` rows per leaf. Gradient-boosted trees: shallow
  trees (depth 2 or 3), 20 or 40 rounds at step 0.1 with row subsampling.
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
MAX_GRID = 4
VALIDATION_FRACTION = 0.25
"""The share of the train customers whose rows choose each candidate's hyperparameters."""


@dataclass(frozen=True)
class Candidate:
    """One classifier the quarter's champion is chosen from."""

    name: str
    """Its name on the model card (`candidate`) and in MLflow."""
    estimator: str
    """The Spark MLlib classifier: a class of `pyspark.ml.classification`."""
    params: Mapping[str, object]
    """The classifier's fixed parameters (the others keep MLlib's defaults); all are logged to MLflow."""
    grid: tuple[Mapping[str, object], ...] = ({},)
    """The combinations tried on the validation fold, each added to `params`; the chosen one is logged
    to MLflow (`chosen_params`) and recorded in the metadata (`params/<candidate>`)."""

    def __post_init__(self) -> None:
        if not 1 <= len(self.grid) <= MAX_GRID:
            raise ValueError(f"{self.name}: a grid of 1 to {MAX_GRID} combinations, not {len(self.grid)}")

    def combinations(self) -> list[dict[str, object]]:
        """`params` with each combination of `grid`, in the grid's order."""
        return [{**self.params, **point} for point in self.grid]


CANDIDATES = (
    Candidate(
        "logistic_regression",
        "LogisticRegression",
        {"maxIter": 100, "elasticNetParam": 0.0},
        ({"regParam": 0.001}, {"regParam": 0.01}, {"regParam": 0.1}),
    ),
    Candidate(
        "random_forest",
        "RandomForestClassifier",
        {"numTrees": 100, "seed": SEED},
        (
            {"maxDepth": 6, "minInstancesPerNode": 1, "featureSubsetStrategy": "onethird"},
            {"maxDepth": 6, "minInstancesPerNode": 10, "featureSubsetStrategy": "0.6"},
            {"maxDepth": 4, "minInstancesPerNode": 20, "featureSubsetStrategy": "0.6"},
        ),
    ),
    Candidate(
        "gradient_boosted_trees",
        "GBTClassifier",
        {"stepSize": 0.1, "subsamplingRate": 0.8, "seed": SEED},
        (
            {"maxDepth": 2, "maxIter": 20},
            {"maxDepth": 2, "maxIter": 40},
            {"maxDepth": 3, "maxIter": 20},
            {"maxDepth": 3, "maxIter": 40},
        ),
    ),
)
"""In the order the model card lists them (and a tie for champion is broken)."""


def describe_params(params: Mapping[str, object]) -> str:
    """`maxDepth=3, maxIter=40`: a grid combination as the metadata, MLflow and the model card show it."""
    return ", ".join(f"{key}={value}" for key, value in params.items()) or "-"


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
