"""batch_platform: quarterly, point-in-time-correct ML training sets as Dagster assets on PySpark.

`import batch_platform` stays light (no Spark, no Dagster): the helpers below import what they
need when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["load_training_set"]

if TYPE_CHECKING:  # pragma: no cover - typing only
    from batch_platform.consume import load_training_set


def __getattr__(name: str) -> Any:
    if name == "load_training_set":
        from batch_platform.consume import load_training_set

        return load_training_set
    raise AttributeError(f"module 'batch_platform' has no attribute {name!r}")
