"""The metrics of the model card and the recency baseline they are compared against (scikit-learn).

Computed on the eval rows collected to the driver (a fifth of one quarter's customers): AUC-PR is
the average precision; lift in the top decile is the churn rate among the ceil(10%) highest
probabilities (ties broken by customer order) over the eval churn rate. The baseline is fit by
scikit-learn on the collected train column: one feature, a quarter's customers, milliseconds on
the driver. Its probabilities give the log loss and Brier score; its AUCs are those of ranking by
`recency_days` (the fit is monotone), which is how the out-of-time check scores it.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from batch_platform.ml import bootstrap


def evaluate(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """AUC-PR, AUC-ROC, log loss, Brier, top-decile lift and churn rate of probabilities vs 0/1 labels
    (`batch_platform.ml.candidates.METRICS`)."""
    y = np.asarray(labels, dtype=int)
    p = np.clip(np.asarray(probabilities, dtype=float), 0.0, 1.0)
    rate = float(y.mean())
    top = np.argsort(-p, kind="stable")[: math.ceil(len(p) / 10)]
    return {
        "auc_pr": float(average_precision_score(y, p)),
        "auc_roc": float(roc_auc_score(y, p)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "lift_top_decile": float(y[top].mean() / rate) if rate else 0.0,
        "churn_rate": rate,
    }


def measure(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """`evaluate`, with the 95 % bootstrap intervals of the AUCs (`batch_platform.ml.bootstrap`): a
    model card row's figures."""
    return evaluate(labels, probabilities) | bootstrap.intervals(labels, probabilities)


def ranking_metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """AUC-PR and AUC-ROC of any score that ranks churners first (a probability, or recency_days)."""
    y = np.asarray(labels, dtype=int)
    s = np.asarray(scores, dtype=float)
    return {
        "auc_pr": float(average_precision_score(y, s)),
        "auc_roc": float(roc_auc_score(y, s)),
    }


def recency_baseline(train_recency: np.ndarray, train_labels: np.ndarray, recency: np.ndarray) -> np.ndarray:
    """Churn probabilities at `recency` of a logistic regression fit on recency_days alone (no penalty)."""
    fitted = LogisticRegression(C=np.inf, max_iter=1000).fit(
        np.asarray(train_recency, float).reshape(-1, 1), train_labels
    )
    return fitted.predict_proba(np.asarray(recency, float).reshape(-1, 1))[:, 1]
