"""batch_platform: quarterly, point-in-time-correct ML training sets as Dagster assets on PySpark.

`import batch_platform` stays light (no Spark, no Dagster): the helpers below import what they
need when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["load_training_set", "load_scores", "load_model_card", "load_customer_history", "spark_session"]

if TYPE_CHECKING:  # pragma: no cover - typing only
    from batch_platform.consume import (
        load_customer_history,
        load_model_card,
        load_scores,
        load_training_set,
        spark_session,
    )


def __getattr__(name: str) -> Any:
    if name in __all__:
        from batch_platform import consume  # start-up time: `import batch_platform` stays light

        return getattr(consume, name)
    raise AttributeError(f"module 'batch_platform' has no attribute {name!r}")
