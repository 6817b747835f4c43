"""The config sections the assets and checks read when they run (SPEC.md, "Configuration").

Each is a resource as it is (`batch_platform.resources`): `batch` (the quarters, the lookback L,
the prediction window W, the eval share), `checks` (the silver quarantine-rate thresholds),
`monitoring` (the drift threshold), `customers` (the golden record's system priority), `ml` (the
promotion gate). `batch_platform.config` loads the file and holds the other sections, which shape
the graph or build clients.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from batch_platform.partitions import QuarterError, to_label


class Section(BaseModel):
    """A config section: unknown keys refused, values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class BatchConfig(Section):
    first_quarter: str = "2024-Q1"
    lookback_quarters: int = Field(4, ge=1, le=40)
    prediction_window_days: int = Field(90, ge=1, le=366)
    eval_fraction: float = Field(0.2, gt=0.0, lt=1.0)

    @field_validator("first_quarter", mode="before")
    @classmethod
    def _quarter(cls, value: Any) -> str:
        try:
            return to_label(str(value))
        except QuarterError as exc:
            raise ValueError(str(exc)) from None


class ChecksConfig(Section):
    """Thresholds of the silver quarantine-rate check (share of bronze rows quarantined)."""

    quarantine_rate_warn: float = Field(0.10, ge=0.0, le=1.0)
    quarantine_rate_fail: float = Field(0.50, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _ordered(self) -> ChecksConfig:
        if self.quarantine_rate_warn > self.quarantine_rate_fail:
            raise ValueError(
                f"quarantine_rate_warn ({self.quarantine_rate_warn}) must not exceed "
                f"quarantine_rate_fail ({self.quarantine_rate_fail})"
            )
        return self


class MonitoringConfig(Section):
    """The drift checks' threshold (SPEC.md, "Monitoring"; why 0.2: `batch_platform.monitoring`)."""

    psi_warn: float = Field(0.2, gt=0.0)


class CustomersConfig(Section):
    """`customers` (SPEC.md, "Gold"): which system's profile row wins when two carry the same
    `updated_at` in `gold/customer_history` — the first of `system_priority` (default store, then
    online); a system not named ranks after those named."""

    system_priority: tuple[str, ...] = Field(("store", "online"), min_length=1)

    @field_validator("system_priority")
    @classmethod
    def _distinct(cls, systems: tuple[str, ...]) -> tuple[str, ...]:
        names = tuple(str(system).strip().lower() for system in systems)
        if any(not name for name in names) or len(set(names)) != len(names):
            raise ValueError("name each source system once, e.g. [store, online]")
        return names


TRAIN_QUARTERS = 1


class MlConfig(Section):
    """`ml` (SPEC.md, "ML"): the promotion gate's tolerance, and how many quarters' train rows a model
    learns from. `promotion_tolerance`: the best candidate of Q becomes the champion of Q when its eval
    AUC-PR is at least the baseline's and at least the champion of Q-1's (re-scored on Q's eval
    rows) minus this; a fresh model within it of the old one replaces it (docs/ml.md, "The promotion gate")."""

    promotion_tolerance: float = Field(0.01, ge=0.0, le=1.0)
    train_quarters: int = Field(TRAIN_QUARTERS, ge=1, le=8)
    """k: the model of Q learns from the pooled train rows of `gold/training_set` Q-k+1 … Q (every label
    among them is known at the end of Q). The graph is built with it (`ml/churn_model` Q reads those
    partitions); why the default: docs/ml.md, "How good the candidates are"."""
