"""The plots logged with every candidate's MLflow run: its PR curve beside the baseline's, and its calibration."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from sklearn.calibration import calibration_curve
from sklearn.metrics import precision_recall_curve

from batch_platform.ml.candidates import BASELINE


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
    observed, predicted = calibration_curve(labels, probabilities, n_bins=10, strategy="quantile")
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", label="perfect")
    ax.plot(predicted, observed, marker="o", label="model")
    ax.set(
        xlabel="mean predicted churn probability",
        ylabel="observed churn rate",
        title=f"Calibration — {title}",
    )
    ax.legend()
    return {"plots/pr_curve.png": pr, "plots/calibration.png": calibration}
