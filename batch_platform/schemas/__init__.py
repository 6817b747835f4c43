"""One Pandera model per lake table, looked up by table name (`<layer>/<table>`)."""

from __future__ import annotations

import pandera.pyspark as pa

from batch_platform.schemas import bronze
from batch_platform.schemas import gold
from batch_platform.schemas import ml
from batch_platform.schemas import silver

TABLE_SCHEMAS: dict[str, type[pa.DataFrameModel]] = {
    "bronze/operational": bronze.BronzeOperational,
    "bronze/logs": bronze.BronzeLogs,
    "bronze/external": bronze.BronzeExternal,
    **{f"silver/{table}": model for table, model in silver.SILVER_MODELS.items()},
    **{f"silver/{table}_quarantine": model for table, model in silver.QUARANTINE_MODELS.items()},
}


TABLE_SCHEMAS.update(
    {
        "gold/customer_features": gold.CustomerFeatures,
        "gold/churn_labels": gold.ChurnLabels,
        "gold/training_set": gold.TrainingSet,
        "ml/churn_model": ml.ChurnModel,
        "ml/churn_scores": ml.ChurnScores,
    }
)


def schema_for(table: str) -> type[pa.DataFrameModel]:
    try:
        return TABLE_SCHEMAS[table]
    except KeyError:
        raise KeyError(f"no Pandera model is registered for table {table!r} in batch_platform.schemas") from None
