"""The shape every silver declaration shares (SPEC.md, "Silver"): `SilverTable`, the one
declaration of a silver table and its quarantine, and the small pieces the declarations are made
of — reject rules (`Rule`), the parsed-value and missing-text tests they use, the first-arrival
preference, and the Pandera fields every silver model repeats (customer_id, a category, the
quarantine's `_reject_reason`).

The declarations themselves live in `batch_platform.schemas.silver` (operational events,
interaction logs, partner scores) and `batch_platform.schemas.silver_profiles` (customer
profiles); `SILVER_TABLES` lists them all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import dagster as dg
import pandera.pyspark as pa
from pyspark.sql import Column
from pyspark.sql import functions as F

from batch_platform.metadata import record_quarantine, record_silver
from batch_platform.schemas.base import LakeTable, Lineage, Table
from batch_platform.schemas.bronze import METADATA_COLUMNS, BronzeTable
from batch_platform.schemas.silver_parsing import clean_text, trimmed

PARSED = "_parsed"
REJECT_REASON = "_reject_reason"


def parsed(name: str) -> Column:
    return F.col(f"{PARSED}.{name}")


def missing(bronze_column: str) -> Column:
    return clean_text(F.col(bronze_column)).isNull()


Rule = tuple[str, Callable[[], Column]]
"""(reject reason, "the row breaks it"): a function, so no Spark Column is built at import time."""


def first_arrival() -> list[Column]:
    return [F.col("_ingest_date").asc(), F.col("_source_file").asc()]


def is_trimmed(column: str) -> Column:
    """Trimmed and not empty (NULL passes: nullability is the field's own check)."""
    value = F.col(column)
    return (value == trimmed(value)) & (F.length(value) > 0)


def is_normalised(column: str) -> Column:
    """Trimmed, not empty and lower case."""
    return is_trimmed(column) & (F.col(column) == F.lower(F.col(column)))


def category_field(description: str):
    return pa.Field(nullable=True, description=f"{description} Trimmed, lower case; NULL when absent or blank.")


def customer_id_field():
    return pa.Field(nullable=False, description="Customer identifier, white space trimmed; never empty.")


def reject_reason_field(rules: tuple[Rule, ...]):
    reasons = [name for name, _ in rules]
    return pa.Field(
        alias=REJECT_REASON,
        nullable=False,
        isin=reasons,
        description="The first silver rule the row broke: one of " + ", ".join(reasons) + ".",
    )


@dataclass(frozen=True)
class SilverTable:
    """One silver table and its quarantine, declared once: the bronze table it cleans, how each
    silver column comes from a bronze column, the reject rules in checking order (the reasons are
    their names), the dedup key and which copy of a key wins, the key columns a valid row always
    has, and the two Pandera models. The column lineage of both tables is derived from it."""

    name: str
    bronze: BronzeTable
    parsing: Mapping[str, tuple[str, Callable[[Column], Column]]]
    """Silver column -> (bronze column, parser), in the silver table's column order."""
    reject_rules: tuple[Rule, ...]
    keys: tuple[str, ...]
    """SPEC.md's "duplicates" column: silver holds one row per key within a partition."""
    required: tuple[str, ...]
    """The key columns a valid row always has (NULL-free); may be fewer than `keys`."""
    order: Callable[[], list[Column]] = field(default=first_arrival)
    """Order within a duplicate group (silver columns, `_ingest_date`, `_source_file`): first wins."""
    model: type[LakeTable] = LakeTable
    quarantine_model: type[LakeTable] = LakeTable

    @property
    def source(self) -> str:
        return self.bronze.source

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.reject_rules)

    @property
    def bronze_key(self) -> dg.AssetKey:
        return self.bronze.key

    @property
    def silver_key(self) -> dg.AssetKey:
        return dg.AssetKey(["silver", self.name])

    @property
    def quarantine_key(self) -> dg.AssetKey:
        return dg.AssetKey(["silver", f"{self.name}_quarantine"])

    def columns(self) -> dict[str, Column]:
        """Silver column -> expression over the bronze row."""
        return {name: parse(F.col(source)) for name, (source, parse) in self.parsing.items()}

    def rules(self) -> list[tuple[str, Column]]:
        """(reject reason, "the row breaks it"), in checking order; may use the parsed values."""
        return [(name, breaks()) for name, breaks in self.reject_rules]

    def preference(self) -> list[Column]:
        return self.order()

    def silver_lineage(self) -> Lineage:
        return {name: [(self.bronze_key, source)] for name, (source, _) in self.parsing.items()}

    def quarantine_lineage(self) -> Lineage:
        kept = {name: [(self.bronze_key, name)] for name in (*self.bronze.columns, *METADATA_COLUMNS)}
        return {**kept, REJECT_REASON: [(self.bronze_key, name) for name in self.bronze.columns]}

    def tables(self) -> tuple[Table, Table]:
        """The silver table and its quarantine, as the IO manager writes them: each persisted for its
        passes (`cached`: the parse and the dedup run once per output), the quarantine first, with
        the rows per reject reason, then the silver table, with the four figures of SPEC.md
        (`batch_platform.metadata.record_silver`)."""
        return (
            Table(
                self.silver_key, self.model, self.silver_lineage(), cached=True,
                record=record_silver(self.reasons, self.quarantine_key),
            ),
            Table(
                self.quarantine_key, self.quarantine_model, self.quarantine_lineage(), cached=True,
                record=record_quarantine(self.reasons, REJECT_REASON),
            ),
        )  # fmt: skip
