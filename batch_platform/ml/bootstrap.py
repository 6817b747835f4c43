"""95 % bootstrap intervals of the eval AUC-PR and AUC-ROC (SPEC.md, "ML"), and of a difference of two.

- **What.** `RESAMPLES` (1,000) stratified resamples of the eval rows, drawn from `SEED` (the candidates' seed): each
  resample draws the churned rows with replacement from the churned, and the retained from the
  retained, so every resample holds both classes and the eval churn rate (AUC-PR's floor) stays the
  observed one. The interval is the 2.5th and 97.5th percentile of the metric over the resamples
  (percentile bootstrap). The resamples depend on the labels and the seed only, so every model of a
  quarter (each candidate, the baseline, the previous champion) is measured on the same resamples:
  the interval of a difference (champion − baseline) is paired, resample by resample.
- **Where.** On the driver, with numpy: the eval rows' labels and probabilities are already there
  (`batch_platform.ml.metrics` measures them there), a quarter's eval split is a few hundred to a
  few tens of thousands of rows, and the rows are sorted once by score; each resample is then a
  vector of counts, and the metrics of a block of resamples are two cumulative sums over a matrix
  (milliseconds for a thousand resamples of a few hundred rows). In Spark it would be a thousand
  jobs, or a cross join of the rows with the resamples, for the same figures.
- **How exactly.** With unit counts the figures are scikit-learn's `average_precision_score` and
  `roc_auc_score` (step-wise precision over the distinct thresholds; the trapezoid under the ROC),
  and a resample's figures are theirs with the counts as `sample_weight`.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from batch_platform.ml.candidates import INTERVAL_METRICS, SEED

RESAMPLES = 1000
LEVEL = 0.95
_CELLS_PER_BLOCK = 4_000_000
"""Resamples are drawn in blocks of at most this many (resample, row) counts (32 MB of floats); the block
size fixes the order of the draws, so it is part of the figures (`benchmarks/plain_ml.py` restates it)."""
_CELLS_PER_PASS = 1_000_000
"""A block is measured this many cells at a time: the metrics' dozen temporaries of a block's size
took about 275 MB per call at 4M cells, several calls at once in the candidates' threads (issue 25,
point 6: peak memory); at 1M, about 85 MB and no slower. The figures do not depend on it."""


def resample_counts(labels: np.ndarray, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Blocks of per-row counts of the stratified resamples (module docstring), in one seeded order."""
    y = np.asarray(labels, dtype=int)
    rng = np.random.default_rng(seed)
    classes = [np.flatnonzero(y == value) for value in (1, 0)]
    block = max(1, _CELLS_PER_BLOCK // max(1, len(y)))
    for start in range(0, resamples, block):
        size = min(block, resamples - start)
        counts = np.zeros((size, len(y)))
        for rows in classes:
            if len(rows):
                counts[:, rows] = rng.multinomial(len(rows), np.full(len(rows), 1 / len(rows)), size=size)
        yield counts


def _weighted_aucs(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUC-PR and AUC-ROC of `scores` for each row of `weights` (resamples × rows of counts)."""
    order = np.argsort(-np.asarray(scores, dtype=float), kind="mergesort")
    s, y = np.asarray(scores, dtype=float)[order], np.asarray(labels, dtype=float)[order]
    ends = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # the last row of each distinct score
    w = weights[:, order]
    tps = np.cumsum(w * y, axis=1)[:, ends]
    fps = np.cumsum(w * (1 - y), axis=1)[:, ends]
    positives, negatives = tps[:, -1:], fps[:, -1:]
    predicted = tps + fps
    precision = np.divide(tps, predicted, out=np.zeros_like(tps), where=predicted > 0)
    recall = tps / positives
    auc_pr = np.sum(np.diff(recall, axis=1, prepend=0.0) * precision, axis=1)
    tpr = np.concatenate([np.zeros_like(positives), recall], axis=1)
    fpr = np.concatenate([np.zeros_like(negatives), fps / negatives], axis=1)
    auc_roc = np.sum(np.diff(fpr, axis=1) * (tpr[:, 1:] + tpr[:, :-1]) / 2, axis=1)
    return auc_pr, auc_roc


def replicates(
    labels: np.ndarray, scores: np.ndarray, resamples: int = RESAMPLES, seed: int = SEED
) -> dict[str, np.ndarray]:
    """AUC-PR and AUC-ROC of `scores` on each resample (`INTERVAL_METRICS` → one value per resample)."""
    found = [
        _weighted_aucs(labels, scores, part)
        for block in resample_counts(labels, resamples, seed)
        for part in np.array_split(block, -(-block.size // _CELLS_PER_PASS))
    ]
    return {name: np.concatenate([pair[i] for pair in found]) for i, name in enumerate(INTERVAL_METRICS)}


def point(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """AUC-PR and AUC-ROC on the eval rows themselves (every count 1): scikit-learn's figures."""
    auc_pr, auc_roc = _weighted_aucs(labels, scores, np.ones((1, len(labels))))
    return {"auc_pr": float(auc_pr[0]), "auc_roc": float(auc_roc[0])}


def _percentiles(values: np.ndarray) -> tuple[float, float]:
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def intervals(labels: np.ndarray, scores: np.ndarray, resamples: int = RESAMPLES, seed: int = SEED) -> dict[str, float]:
    """`auc_pr_ci_low`, `auc_pr_ci_high`, `auc_roc_ci_low`, `auc_roc_ci_high`: the 95 % intervals."""
    found = {}
    for name, values in replicates(labels, scores, resamples, seed).items():
        found[f"{name}_ci_low"], found[f"{name}_ci_high"] = _percentiles(values)
    return found


def difference(
    labels: np.ndarray, scores: np.ndarray, reference: np.ndarray, resamples: int = RESAMPLES, seed: int = SEED
) -> dict[str, float]:
    """The AUC-PR and AUC-ROC of `scores` minus those of `reference` on the same rows, with the paired
    95 % interval: `auc_pr`, `auc_pr_ci_low`, `auc_pr_ci_high`, the same for `auc_roc` (differences all)."""
    mine, theirs = replicates(labels, scores, resamples, seed), replicates(labels, reference, resamples, seed)
    at, ref = point(labels, scores), point(labels, reference)
    found = {}
    for name in INTERVAL_METRICS:
        found[name] = at[name] - ref[name]
        found[f"{name}_ci_low"], found[f"{name}_ci_high"] = _percentiles(mine[name] - theirs[name])
    return found
