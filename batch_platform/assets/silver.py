"""Silver: bronze rows typed, cleaned and deduplicated; the rest quarantined (SPEC.md, "Silver").

One multi-asset per source writes `silver/<table>` and `silver/<table>_quarantine` for the
bronze partition of the same quarter. The transformations are plain functions on DataFrames
(`flag`, `silver_rows`, `quarantine_rows`, `reconcile`), so tests run them on a handful of rows as
well as through Dagster.

The rules themselves — parsing, reject reasons in checking order, dedup keys and preferences —
are declared once per table in `batch_platform.schemas.silver`.

Materialisation metadata, per partition, recorded by the IO manager as the table declarations say
(`batch_platform.metadata.record_silver`, `record_quarantine`): on the silver table `bronze_rows`,
`silver_rows`, `quarantined_rows`, `duplicates_removed` (bronze = silver + quarantined + duplicates),
`rejects/<reason>` for every reason of the table (zeros included) and `quarantine_rate`; on the
quarantine, written first, `bronze_rows`, `quarantined_rows`, the `rejects/<reason>` and
`quarantine_rate`.
"""

from collections.abc import Iterator, Sequence
from functools import partial

import dagster as dg
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from batch_platform.metadata import Reconciliation, reconciliation_of
from batch_platform.partitions import to_label
from batch_platform.schemas.base import PARTITION_COLUMN
from batch_platform.schemas.bronze import METADATA_COLUMNS
from batch_platform.schemas.silver import (
    INTERACTION_LOGS,
    OPERATIONAL_EVENTS,
    PARSED,
    PARTNER_SCORES,
    REJECT_REASON,
    SILVER_TABLES,
    SilverTable,
)

__all__ = [  # the declarations live in schemas.silver; tests and benchmarks reach them from here too
    "INTERACTION_LOGS",
    "OPERATIONAL_EVENTS",
    "PARSED",
    "PARTNER_SCORES",
    "REJECT_REASON",
    "SILVER_TABLES",
    "Reconciliation",
    "SilverTable",
    "build_silver_assets",
    "flag",
    "quarantine_rows",
    "reconcile",
    "silver_rows",
]

CODE_VERSION = "1"


# ------------------------------------------------------------------------- transformations
def flag(bronze: DataFrame, table: SilverTable) -> DataFrame:
    """The bronze rows with their parsed values (struct `_parsed`) and `_reject_reason` (NULL: valid)."""
    parsed = F.struct(*[expr.alias(name) for name, expr in table.columns().items()])
    frame = bronze.withColumn(PARSED, parsed)
    reason: Column | None = None
    for name, breaks in table.rules():
        reason = F.when(breaks, F.lit(name)) if reason is None else reason.when(breaks, F.lit(name))
    return frame.withColumn(REJECT_REASON, reason)


def silver_rows(flagged: DataFrame, table: SilverTable) -> DataFrame:
    """The valid rows, one per dedup key and quarter, with exactly the silver columns."""
    columns = list(table.columns())
    valid = flagged.filter(F.col(REJECT_REASON).isNull()).select(
        f"{PARSED}.*", "_ingest_date", "_source_file", PARTITION_COLUMN
    )
    group = Window.partitionBy(PARTITION_COLUMN, *table.keys).orderBy(*table.preference())
    return (
        valid.withColumn("_rank", F.row_number().over(group))
        .filter(F.col("_rank") == 1)
        .select(*columns, PARTITION_COLUMN)
    )


def quarantine_rows(flagged: DataFrame, table: SilverTable) -> DataFrame:
    """The invalid rows as bronze holds them (contract and lineage columns), plus the reason."""
    return flagged.filter(F.col(REJECT_REASON).isNotNull()).select(
        *table.bronze.columns, *METADATA_COLUMNS, REJECT_REASON, PARTITION_COLUMN
    )


def reconcile(
    flagged: DataFrame, silver: DataFrame, table: SilverTable, quarters: Sequence[str]
) -> dict[str, Reconciliation]:
    """The four figures and the count per reject reason of every quarter, from a flagged frame and
    its silver rows: what the IO manager records from the bronze rows it read and the two outputs
    it wrote (`metadata.record_silver`), on a handful of rows for the tests.

    Duplicates removed = valid - silver. (Counting the distinct keys of the valid rows instead would
    repeat the dedup's shuffle: measured 9 s of a 45 s step at SIZE=M.)
    """
    reason = F.col(REJECT_REASON)
    figures = (
        flagged.groupBy(PARTITION_COLUMN)
        .agg(
            F.count(F.lit(1)).alias("bronze"),
            *[F.count_if(reason == name).alias(f"reject_{i}") for i, name in enumerate(table.reasons)],
        )
        .collect()
    )
    by_quarter = {row[PARTITION_COLUMN]: row for row in figures}
    kept = {row[PARTITION_COLUMN]: int(row["count"]) for row in silver.groupBy(PARTITION_COLUMN).count().collect()}
    result = {}
    for quarter in (to_label(q) for q in quarters):
        get = partial(_figure, by_quarter.get(quarter))
        rejects = {name: get(f"reject_{i}") for i, name in enumerate(table.reasons)}
        result[quarter] = reconciliation_of(get("bronze"), kept.get(quarter, 0), rejects)
    return result


def _figure(row, name: str) -> int:
    return 0 if row is None else int(row[name])


# -------------------------------------------------------------------------------------- assets
def build_silver_asset(table: SilverTable, partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    silver, quarantine = table.tables()
    kinds = {"spark", "delta", "pandera"}
    keys = ", ".join(table.keys)

    @dg.multi_asset(
        name=f"silver_{table.name}",
        pool=silver.pool,  # its quarantine too: no other step writes it
        group_name="silver",
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        ins={"bronze": dg.AssetIn(key=table.bronze_key)},
        outs={
            "silver": dg.AssetOut(
                key=table.silver_key,
                kinds=kinds,
                code_version=CODE_VERSION,
                description=(
                    f"`bronze/{table.source}` rows of the quarter, trimmed, typed and lower-cased, the valid ones "
                    f"only, one row per ({keys}). SPEC.md, 'Silver: typed, cleaned, deduplicated'."
                ),
                metadata={**silver.definition_metadata(), "dedup_key": keys},
            ),
            "quarantine": dg.AssetOut(
                key=table.quarantine_key,
                kinds=kinds,
                code_version=CODE_VERSION,
                description=(
                    f"The `bronze/{table.source}` rows of the quarter that break a silver rule, whole and as text, "
                    f"with `_reject_reason` naming the first rule broken ({', '.join(table.reasons)}). "
                    "SPEC.md, 'Silver: typed, cleaned, deduplicated'."
                ),
                metadata=quarantine.definition_metadata(),
            ),
        },
    )
    def silver_asset(bronze: DataFrame) -> Iterator[dg.Output]:
        # Both outputs filter one parse of bronze, cached by the step until both are written (an
        # intermediate of the transformation; the IO manager caches the outputs). The quarantine
        # first: the silver table's figures include its rejects (module docstring).
        flagged = flag(bronze, table).persist()
        try:
            yield dg.Output(quarantine_rows(flagged, table), output_name="quarantine")
            yield dg.Output(silver_rows(flagged, table), output_name="silver")
        finally:
            flagged.unpersist()

    return silver_asset


def build_silver_assets(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    """One multi-asset (table + quarantine) per silver table."""
    return [build_silver_asset(table, partitions_def) for table in SILVER_TABLES.values()]
