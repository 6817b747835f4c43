"""The promotion gate (SPEC.md, "ML"): when the best candidate of Q becomes the champion of Q.

The best candidate of Q (the higher eval AUC-PR; registered as a version whatever the gate says)
becomes the champion of Q when, on Q's eval rows, its AUC-PR is

1. at least the recency-only baseline's (no tolerance: a model that does not beat "ranked by days
   since the last event" is not worth serving), and
2. at least that of the champion of Q-1 re-scored on the same rows, minus `ml.promotion_tolerance`
   (default 0.01): within the tolerance the fresher model wins, since it learned from the newest
   quarter; the first trained quarter (no champion of Q-1) has only rule 1.

Otherwise the champion of Q-1 stays the champion of Q. Light on purpose (no MLlib, no MLflow): the
model card's metadata and the gate's asset check read it when the definitions load.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Gate:
    """One quarter's verdict and the figures it was decided on (eval AUC-PR, all on Q's eval rows)."""

    quarter: str
    best_auc_pr: float
    baseline_auc_pr: float
    tolerance: float
    previous_auc_pr: float | None = None
    """The champion of Q-1 re-scored on Q's eval rows; None when Q-1 has no champion."""
    previous_version: int | None = None
    previous_quarter: str | None = None
    """The quarter the champion of Q-1 was registered in (Q-1, or earlier when it stayed)."""

    @property
    def beats_baseline(self) -> bool:
        return self.best_auc_pr >= self.baseline_auc_pr

    @property
    def previous_threshold(self) -> float | None:
        return None if self.previous_auc_pr is None else self.previous_auc_pr - self.tolerance

    @property
    def beats_previous(self) -> bool:
        return self.previous_threshold is None or self.best_auc_pr >= self.previous_threshold

    @property
    def promoted(self) -> bool:
        return self.beats_baseline and self.beats_previous

    def describe(self) -> str:
        """Which rule passed or failed, with both figures of each."""
        sign = "≥" if self.beats_baseline else "<"
        rules = [f"AUC-PR {self.best_auc_pr:.4f} {sign} baseline {self.baseline_auc_pr:.4f}"]
        if self.previous_auc_pr is None:
            rules.append("no champion before it (the baseline rule only)")
        else:
            sign = "≥" if self.beats_previous else "<"
            rules.append(
                f"AUC-PR {self.best_auc_pr:.4f} {sign} version {self.previous_version} (registered in "
                f"{self.previous_quarter}) re-scored {self.previous_auc_pr:.4f} − tolerance {self.tolerance:g} "
                f"= {self.previous_threshold:.4f}"
            )
        if self.promoted:
            verdict = "promoted"
        elif self.previous_version is None:
            verdict = "not promoted, and no champion before it: no champion"
        else:
            verdict = f"not promoted: version {self.previous_version} stays the champion"
        return f"{self.quarter}: {verdict}; {'; '.join(rules)}"

    def figures(self) -> dict[str, float | bool | int]:
        """The verdict and its figures as numbers (the materialisation's `gate/…` metadata)."""
        found: dict[str, float | bool | int] = {
            "promoted": self.promoted,
            "beats_baseline": self.beats_baseline,
            "best_auc_pr": self.best_auc_pr,
            "baseline_auc_pr": self.baseline_auc_pr,
            "tolerance": self.tolerance,
        }
        if self.previous_auc_pr is not None:
            found |= {
                "beats_previous_champion": self.beats_previous,
                "previous_champion_auc_pr": self.previous_auc_pr,
                "previous_champion_threshold": self.previous_threshold,
                "previous_champion_version": self.previous_version,
            }
        return found


def gate_result(quarter: str, metadata: Mapping[str, object] | None) -> dict:
    """passed / description / metadata of the `promotion_gate` check of Q, from the plain values of the
    latest `ml/churn_model` Q materialisation's metadata (the `gate/…` figures the training recorded)."""
    if metadata is None:
        return {"passed": True, "description": f"{quarter}: ml/churn_model has no materialisation", "metadata": {}}
    if not metadata.get("trained"):
        return {
            "passed": True,
            "description": f"{quarter}: {metadata.get('reason', 'not trained')}",
            "metadata": {"quarter": quarter, "evaluated": False},
        }
    figures = {name: value for name, value in metadata.items() if name.startswith("gate/")}
    return {
        "passed": bool(metadata["gate/promoted"]),
        "description": str(metadata["gate"]),
        "metadata": {"quarter": quarter, "evaluated": True, **figures},
    }
