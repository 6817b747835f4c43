"""The plots logged with every candidate's MLflow run: its PR curve beside the baseline's, and its calibration
(whose points the model card also lists, `calibration_bins`)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve

from batch_platform.ml.candidates import BASELINE

CALIBRATION_BINS = 10


def calibration_bins(
    labels: np.ndarray, probabilities: np.ndarray, bins: int = CALIBRATION_BINS
) -> list[tuple[int, float, float]]:
    """The calibration plot's points, lowest probabilities first: (rows, mean predicted probability,
    observed churn rate) of each of `bins` quantile bins of the probabilities holding rows (ties can
    leave one empty), binned as scikit-learn's `calibration_curve(strategy="quantile")` bins them."""
    p, y = np.asarray(probabilities, dtype=float), np.asarray(labels, dtype=float)
    edges = np.percentile(p, np.linspace(0, 100, bins + 1))
    ids = np.searchsorted(edges[1:-1], p)
    rows = np.bincount(ids, minlength=bins)
    predicted, observed = np.bincount(ids, p, bins), np.bincount(ids, y, bins)
    return [(int(n), float(predicted[i] / n), float(observed[i] / n)) for i, n in enumerate(rows) if n]


def plots(labels: np.ndarray, probabilities: np.ndarray, baseline: np.ndarray, title: str) -> dict[str, Figure]:
    """The PR curve (with the baseline's) and the calibration plot, as matplotlib figures by artifact path."""
    pr = Figure(figsize=(5, 4))
    ax = pr.subplots()
    for name, scores in (("model", probabilities), (BASELINE, baseline)):
        precision, recall, _ = precision_recall_curve(labels, scores)
        ax.plot(recall, precision, label=name)
    ax.set(xlabel="recall", ylabel="precision", title=f"PR curve, eval — {title}")
    ax.legend()
    calibration = Figure(figsize=(5, 4))
    ax = calibration.subplots()
    _, predicted, observed = zip(*calibration_bins(labels, probabilities), strict=True)
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", label="perfect")
    ax.plot(predicted, observed, marker="o", label="model")
    ax.set(
        xlabel="mean predicted churn probability",
        ylabel="observed churn rate",
        title=f"Calibration — {title}",
    )
    ax.legend()
    return {"plots/pr_curve.png": pr, "plots/calibration.png": calibration}
