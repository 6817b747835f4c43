"""Every lake table by asset key: the one place the IO manager, the checks, the CLI and the tests
look a table up (`table_for(key)`).

A table is declared once, in its layer's module under `batch_platform/schemas/` — its key, Pandera
model and column lineage (and, for silver, the rules that make it); this module only lists them.
"""

from __future__ import annotations

import dagster as dg

from batch_platform.schemas.base import Table
from batch_platform.schemas.bronze import BRONZE_TABLES
from batch_platform.schemas.gold import GOLD_TABLES
from batch_platform.schemas.ml import ML_TABLES
from batch_platform.schemas.silver import SILVER_TABLES

TABLES: dict[dg.AssetKey, Table] = {
    table.key: table
    for table in (
        *BRONZE_TABLES.values(),
        *(table for silver in SILVER_TABLES.values() for table in silver.tables()),
        *GOLD_TABLES,
        *ML_TABLES,
    )
}
"""In layer order: bronze, silver (each table, then its quarantine), gold, ml."""


def table_for(key: dg.AssetKey) -> Table:
    try:
        return TABLES[key]
    except KeyError:
        raise KeyError(
            f"no lake table is declared for asset {key.to_user_string()!r}: declare it in batch_platform/schemas "
            "and list it in batch_platform.tables.TABLES"
        ) from None


def register(table: Table) -> None:
    """Add a table declared outside the platform's layers (the tests' `test/widgets`)."""
    TABLES[table.key] = table
