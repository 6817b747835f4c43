"""How a materialisation tells its story: the per-quarter metadata the IO manager records (numbers
as numeric metadata, which the UI plots across quarters), so asset functions hold the transformation
only.

Every materialisation gets the IO manager's own entries (path, Delta version, row count, preview);
beyond them, a table declares in its declaration (`schemas/`, `Table.record`) which recorder below
computes its quarters' figures from what was written (`schemas.base.Written`): the frame (persisted
by the IO manager for a `cached` table), its rows per quarter, and the rows per quarter of every
input the step read (from the Delta log, no data read).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import dagster as dg
import pyspark.sql.types as T
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from batch_platform.partitions import quarter_start, to_key
from batch_platform.schemas.base import PARTITION_COLUMN, Record, Written

if TYPE_CHECKING:  # pragma: no cover - typing only
    from batch_platform.postgres import Replaced

PREVIEW_ROWS = 10
PREVIEW_SAMPLE = 200
PREVIEW_CELL_CHARS = 200
"""The longest text a preview cell shows: a longer one keeps its first 199 characters and `…`."""


# ------------------------------------------------------------------------------------ previews
def previews(
    df: DataFrame, rows_per_quarter: Mapping[str, int], rows: int = PREVIEW_ROWS
) -> Mapping[str, dg.MetadataValue]:
    """`rows` rows of every quarter in `df` as Dagster tables, in one Spark job.

    A `limit().collect()` per quarter costs a job (sometimes two) per quarter and output — a third
    of a backfill's Spark jobs, measured. Here each quarter is sampled (seeded, stratified by
    quarter) down to about `PREVIEW_SAMPLE` rows using the known row counts; the driver collects
    those few hundred rows per quarter and keeps the first `rows` of each in column order. A quarter
    without rows gets an empty table.

    A cell shows at most `PREVIEW_CELL_CHARS` characters (`_cell`): the previews are stored in the
    event log with every materialisation, so a text column of megabytes must not be copied there.
    Spark cuts string columns before the driver collects them.
    """
    columns = [f for f in df.schema.fields if f.name != PARTITION_COLUMN]
    fractions = {q: min(1.0, PREVIEW_SAMPLE / n) for q, n in rows_per_quarter.items() if n}
    by_quarter: dict[str, list[dict]] = defaultdict(list)
    if fractions:
        cut = [
            F.substring(f.name, 1, PREVIEW_CELL_CHARS + 1).alias(f.name)
            if isinstance(f.dataType, T.StringType)
            else f.name
            for f in df.schema.fields
        ]
        for row in df.select(*cut).sampleBy(PARTITION_COLUMN, fractions, seed=0).collect():
            by_quarter[row[PARTITION_COLUMN]].append({f.name: _cell(row[f.name]) for f in columns})
    ordered = [f.name for f in columns if not isinstance(f.dataType, T.MapType)]
    schema = dg.TableSchema(columns=[dg.TableColumn(f.name, f.dataType.simpleString()) for f in columns])

    def first_rows(cells: list[dict]) -> list[dg.TableRecord]:
        cells.sort(
            key=lambda record: tuple((record[c] is None, "" if record[c] is None else record[c]) for c in ordered)
        )
        return [dg.TableRecord(record) for record in cells[:rows]]

    return defaultdict(
        lambda: dg.MetadataValue.table(records=[], schema=schema),
        {q: dg.MetadataValue.table(records=first_rows(cells), schema=schema) for q, cells in by_quarter.items()},
    )


def _cell(value):
    if value is None or isinstance(value, (int, float, bool)):
        return value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    text = str(value)
    return text if len(text) <= PREVIEW_CELL_CHARS else text[: PREVIEW_CELL_CHARS - 1] + "…"


def record_quarters(context: dg.AssetExecutionContext, metadata: Mapping[str, Mapping[str, dg.MetadataValue]]) -> None:
    """Record `metadata[quarter]` on the materialisation of each quarter of a (multi-quarter) run: what
    only the transformation knows (the ML tables' MLflow runs, say), built by the table's own functions."""
    for quarter, entries in metadata.items():
        context.add_asset_metadata(dict(entries), partition_key=to_key(quarter))


# --------------------------------------------------------------------------------- column lineage
def lineage_table(lineage: dg.TableColumnLineage) -> dg.MetadataValue:
    """The column lineage as a table a person can read in the UI: per column, the upstream
    `<table>.<column>`s it is made of.

    Dagster's own `dagster/column_lineage` entry drives a Dagster+ feature only: the open-source UI
    hides it from every metadata list, so on its own the lineage is stored but never shown.
    """
    schema = dg.TableSchema(columns=[dg.TableColumn("column", "string"), dg.TableColumn("upstream", "string")])
    records = [
        dg.TableRecord(
            {
                "column": column,
                "upstream": ", ".join(f"{dep.asset_key.to_user_string()}.{dep.column_name}" for dep in deps)
                or "(no upstream column)",
            }
        )
        for column, deps in lineage.deps_by_column.items()
    ]
    return dg.MetadataValue.table(records=records, schema=schema)


# ----------------------------------------------------------------------------------------- gold
def feature_stats(features: DataFrame, numeric: Sequence[str]) -> dict[str, dict]:
    """Per quarter: customers, and per numeric feature null rate, min, mean, max (one aggregation)."""
    aggs = [F.count(F.lit(1)).alias("customers")]
    for name in numeric:
        col = F.col(name).cast("double")
        aggs += [
            F.avg(F.col(name).isNull().cast("double")).alias(f"{name}__null_rate"),
            F.min(col).alias(f"{name}__min"),
            F.avg(col).alias(f"{name}__mean"),
            F.max(col).alias(f"{name}__max"),
        ]
    result = {}
    for row in features.groupBy(PARTITION_COLUMN).agg(*aggs).collect():
        result[row[PARTITION_COLUMN]] = {
            "customers": row["customers"],
            "features": [
                {"feature": name, **{stat: row[f"{name}__{stat}"] for stat in ("null_rate", "min", "mean", "max")}}
                for name in numeric
            ],
        }
    return result


def _stats_table(stats: list[dict]) -> dg.MetadataValue:
    schema = dg.TableSchema(
        columns=[
            dg.TableColumn("feature", "string"),
            *(dg.TableColumn(name, "float") for name in ("null_rate", "min", "mean", "max")),
        ]
    )
    records = [
        dg.TableRecord({key: (round(value, 6) if isinstance(value, float) else value) for key, value in item.items()})
        for item in stats
    ]
    return dg.MetadataValue.table(records=records, schema=schema)


def features_metadata(
    quarter: str, history: Sequence[str], loaded: set[str], source_rows: Mapping[str, int], stats: Mapping[str, dict]
) -> tuple[dict[str, dg.MetadataValue], list[str]]:
    """One quarter of `gold/customer_features`: what it read of its lookback `history`, and the
    lookback quarters that were readable but held no events (to warn about)."""
    readable = [q for q in history if q in loaded]
    empty = [q for q in readable if not source_rows.get(q)]
    metadata = {
        "customers": dg.MetadataValue.int(int(stats.get(quarter, {}).get("customers", 0))),
        "feature_cutoff": dg.MetadataValue.text(quarter_start(quarter).isoformat()),
        "lookback_quarters_read": dg.MetadataValue.json(readable),
        "lookback_quarters_before_first": dg.MetadataValue.json([q for q in history if q not in readable]),
        "lookback_quarters_empty": dg.MetadataValue.json(empty),
        "silver_events_read": dg.MetadataValue.int(int(sum(source_rows.get(q, 0) for q in readable))),
    }
    if quarter in stats:
        metadata["feature_stats"] = _stats_table(stats[quarter]["features"])
    return metadata, empty


def label_counts(frame: DataFrame, by_split: bool = False) -> dict[str, dict]:
    """Per quarter: rows, churned (label = 1) and, optionally, per-split rows and churned."""
    aggs = [F.count(F.lit(1)).alias("rows"), F.sum("label").alias("churned")]
    if by_split:
        for side in ("train", "eval"):
            on_side = F.col("split") == side
            aggs += [
                F.sum(on_side.cast("long")).alias(f"{side}_rows"),
                F.sum(F.when(on_side, F.col("label")).otherwise(0)).alias(f"{side}_churned"),
            ]
    return {row[PARTITION_COLUMN]: row.asDict() for row in frame.groupBy(PARTITION_COLUMN).agg(*aggs).collect()}


def _share(part: int, whole: int) -> dg.MetadataValue:
    return dg.MetadataValue.float(round(part / whole, 6))


def labels_metadata(count: Mapping[str, int]) -> dict[str, dg.MetadataValue]:
    """One quarter of `gold/churn_labels` from its `label_counts` (the prediction window in force is
    the asset's own entry: it is the run's config, not a figure of the rows)."""
    rows, churned = int(count.get("rows") or 0), int(count.get("churned") or 0)
    metadata = {
        "customers": dg.MetadataValue.int(rows),
        "churned": dg.MetadataValue.int(churned),
    }
    if rows:
        metadata["churn_rate"] = _share(churned, rows)
    return metadata


def training_metadata(count: Mapping[str, int]) -> dict[str, dg.MetadataValue]:
    """One quarter of `gold/training_set` from its `label_counts(by_split=True)` (the eval share in
    force is the asset's own entry, `eval_fraction_configured`: the run's config)."""
    rows = int(count.get("rows") or 0)
    metadata = {
        "customers": dg.MetadataValue.int(rows),
        "train_rows": dg.MetadataValue.int(int(count.get("train_rows") or 0)),
        "eval_rows": dg.MetadataValue.int(int(count.get("eval_rows") or 0)),
    }
    if rows:
        metadata["churn_rate"] = _share(int(count["churned"]), rows)
        metadata["eval_share"] = _share(int(count["eval_rows"]), rows)
    for side in ("train", "eval"):
        if count.get(f"{side}_rows"):
            metadata[f"{side}_churn_rate"] = _share(int(count[f"{side}_churned"]), int(count[f"{side}_rows"]))
    return metadata


def _definition_value(written: Written, name: str) -> Any:
    value = written.definition_metadata[name]
    return getattr(value, "value", value)


def input_partitions(written: Written, *names: str) -> dg.MetadataValue:
    """The quarters each named input of the step was handed, as Dagster mapped them."""
    return dg.MetadataValue.json({name: list(written.read.get(name, {})) for name in names})


def record_features(numeric: Sequence[str], lookback_of: Callable[[str, int], Sequence[str]]) -> Record:
    """`gold/customer_features`: per quarter, its customers, cutoff, the statistics of the `numeric`
    features and what it read of its lookback (`lookback_of(quarter, L)`, L the asset's
    `lookback_quarters`) of silver operational_events; a warning for a lookback quarter materialised
    with no rows."""

    def record(written: Written) -> dict[str, dict[str, dg.MetadataValue]]:
        lookback = int(_definition_value(written, "lookback_quarters"))
        events = written.read.get("operational_events", {})
        stats = feature_stats(written.frame, numeric)
        inputs = input_partitions(
            written, "operational_events", "interaction_logs", "partner_scores", "customer_history"
        )
        recorded = {}
        for quarter in written.quarters:
            metadata, empty = features_metadata(quarter, lookback_of(quarter, lookback), set(events), events, stats)
            if empty:
                written.log.warning(
                    f"customer_features {quarter}: silver operational_events {', '.join(empty)} was materialised "
                    "with no rows; the features of this quarter see no events from it"
                )
            recorded[quarter] = {"input_partitions": inputs, **metadata}
        return recorded

    return record


def record_labels(written: Written) -> dict[str, dict[str, dg.MetadataValue]]:
    """`gold/churn_labels`: per quarter, customers, churned and the churn rate."""
    counts = label_counts(written.frame)
    inputs = input_partitions(written, "operational_events")
    return {q: {"input_partitions": inputs, **labels_metadata(counts.get(q, {}))} for q in written.quarters}


def record_training(written: Written) -> dict[str, dict[str, dg.MetadataValue]]:
    """`gold/training_set`: per quarter, customers, rows and churn rate per split, the eval share."""
    counts = label_counts(written.frame, by_split=True)
    return {quarter: training_metadata(counts.get(quarter, {})) for quarter in written.quarters}


def record_history(written: Written) -> dict[str, dict[str, dg.MetadataValue]]:
    """`gold/customer_history`: per quarter, its customers, versions and customers with more than one
    version, and the silver profile quarters it was built from."""
    rows = (
        written.frame.groupBy(PARTITION_COLUMN)
        .agg(
            F.count_distinct("customer_id").alias("customers"),
            F.count(F.lit(1)).alias("versions"),
            F.count_distinct(F.when(F.col("version") > 1, F.col("customer_id"))).alias("changed"),
        )
        .collect()
    )
    found = {row[PARTITION_COLUMN]: row for row in rows}
    inputs = input_partitions(written, "customer_profiles")
    return {
        q: {
            "customers": dg.MetadataValue.int(int(found[q]["customers"]) if q in found else 0),
            "versions": dg.MetadataValue.int(int(found[q]["versions"]) if q in found else 0),
            "customers_with_changes": dg.MetadataValue.int(int(found[q]["changed"]) if q in found else 0),
            "input_partitions": inputs,
        }
        for q in written.quarters
    }


# ---------------------------------------------------------------------------------------- silver
@dataclass(frozen=True)
class Reconciliation:
    """SPEC.md's promise for one partition: bronze = silver + quarantined + duplicates removed."""

    bronze_rows: int
    silver_rows: int
    quarantined_rows: int
    duplicates_removed: int
    rejects: dict[str, int]

    def metadata(self) -> dict[str, dg.MetadataValue]:
        """The quarantine's figures (`_quarantined`) with the silver table's two beside them."""
        quarantined = _quarantined(self.bronze_rows, self.rejects)
        return {
            "bronze_rows": quarantined["bronze_rows"],
            "silver_rows": dg.MetadataValue.int(self.silver_rows),
            "quarantined_rows": quarantined["quarantined_rows"],
            "duplicates_removed": dg.MetadataValue.int(self.duplicates_removed),
            **quarantined,
        }


def _quarantined(bronze: int, rejects: Mapping[str, int]) -> dict[str, dg.MetadataValue]:
    quarantined = sum(rejects.values())
    return {
        "bronze_rows": dg.MetadataValue.int(bronze),
        "quarantined_rows": dg.MetadataValue.int(quarantined),
        "quarantine_rate": dg.MetadataValue.float(quarantined / bronze if bronze else 0.0),
        **{f"rejects/{reason}": dg.MetadataValue.int(count) for reason, count in rejects.items()},
    }


def record_quarantine(reasons: Sequence[str], reason_column: str) -> Record:
    """A silver quarantine, written before its silver table: per quarter, the bronze rows its step
    read, the rows quarantined and the count of every reject reason (zeros included)."""

    def record(written: Written) -> dict[str, dict[str, dg.MetadataValue]]:
        bronze = written.read.get("bronze", {})
        found = written.frame.groupBy(PARTITION_COLUMN, reason_column).count().collect()
        counts = {(row[PARTITION_COLUMN], row[reason_column]): int(row["count"]) for row in found}
        return {
            q: _quarantined(int(bronze.get(q, 0)), {r: counts.get((q, r), 0) for r in reasons})
            for q in written.quarters
        }

    return record


def record_silver(reasons: Sequence[str], quarantine_key: dg.AssetKey) -> Record:
    """A silver table, written after its quarantine in the same step: per quarter the four figures
    of SPEC.md (bronze read, silver written, quarantined, duplicates removed = the rest) and the
    rejects per reason, from the bronze rows the step read, the rows written and the quarantine's
    record. The `reconciliation` check recounts them in the lake."""

    def record(written: Written) -> dict[str, dict[str, dg.MetadataValue]]:
        bronze = written.read.get("bronze", {})
        quarantine = written.recorded.get(quarantine_key, {})
        recorded = {}
        for quarter in written.quarters:
            kept = quarantine.get(quarter, {})
            rejects = {reason: int(_value(kept.get(f"rejects/{reason}", 0))) for reason in reasons}
            figures = reconciliation_of(int(bronze.get(quarter, 0)), int(written.rows.get(quarter, 0)), rejects)
            recorded[quarter] = figures.metadata()
        return recorded

    return record


def reconciliation_of(bronze: int, silver: int, rejects: Mapping[str, int]) -> Reconciliation:
    """The figures of one quarter: duplicates removed are the valid rows (bronze - quarantined) that
    did not reach silver."""
    quarantined = sum(rejects.values())
    return Reconciliation(bronze, silver, quarantined, bronze - quarantined - silver, dict(rejects))


def _value(entry: Any) -> Any:
    return getattr(entry, "value", entry)


def publish_metadata(
    done: Replaced, files_read: int, quarter: str, table: str, database: str
) -> dict[str, dg.MetadataValue]:
    """One quarter published to PostgreSQL (`publish/<table>`); `database` has no password."""
    return {
        "dagster/row_count": dg.MetadataValue.int(done.rows_loaded),
        "rows_replaced": dg.MetadataValue.int(done.rows_deleted),
        "files_read": dg.MetadataValue.int(files_read),
        "seconds": dg.MetadataValue.float(done.seconds),
        "quarter": dg.MetadataValue.text(quarter),
        "table": dg.MetadataValue.text(table),
        "database": dg.MetadataValue.text(database),
    }
