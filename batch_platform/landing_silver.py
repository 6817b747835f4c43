"""Silver rows straight from landing files, outside Dagster, by the bronze and silver steps' own
functions: what `batch_platform.inference` scores from (docs/inference.md).

A table's files that arrived in a window are read as `bronze/<source>` reads a quarter's arrivals
(`LandingZone.read`, `with_ingest_columns`, `verify_rows`: a file that cannot be read fails with the
same message); each row is then parsed and kept or quarantined by `flag`, `silver_rows` and
`reconcile` of `batch_platform.assets.silver`, for the same first broken rule. The silver check
`quarantine_rate` runs on each quarter read (`batch_platform.checks.quarantine_rate`): ERROR stops
the scoring, naming the first rejected rows, as it stops gold in the pipeline; WARN is a warning.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date

import dagster as dg
from pyspark.sql import DataFrame, SparkSession

from batch_platform.assets.bronze import with_ingest_columns
from batch_platform.assets.silver import flag, quarantine_rows, reconcile, silver_rows
from batch_platform.checks import quarantine_rate
from batch_platform.config import PlatformConfig
from batch_platform.landing import LandingZone, excerpt, verify_rows
from batch_platform.metadata import Reconciliation
from batch_platform.partitions import quarter_range, shift, to_label
from batch_platform.schemas.base import spark_schema
from batch_platform.schemas.silver import OPERATIONAL_EVENTS, REJECT_REASON, SilverTable
from batch_platform.score_request import ScoringError

EXAMPLES = 5
"""The most rejected rows a message or a summary quotes per table."""
_log = logging.getLogger(__name__)


@dataclass
class Rejected:
    """What silver quarantined of one table: rows per reject reason, and the first few rows."""

    table: str
    rejects: dict[str, int]
    examples: list[str]

    @property
    def rows(self) -> int:
        return sum(self.rejects.values())


@dataclass
class Quarantine:
    """What silver quarantined of the tables read, and the warnings of the silver quarantine check."""

    rejected: list[Rejected] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def landing_silver(
    spark: SparkSession,
    root: str,
    table: SilverTable,
    window: tuple[date, date],
    config: PlatformConfig,
    quarantine: Quarantine,
    cached: list[DataFrame],
) -> DataFrame:
    """The silver rows of `table` from the landing files of its source that arrived in `window`, by
    the bronze and silver steps' own functions; what silver quarantined is recorded on `quarantine`,
    and a quarter above the silver check's fail threshold raises `ScoringError`. The frames cached
    on the way are appended to `cached`, for the caller to release."""
    source, columns = table.source, table.bronze.columns
    start, end = window
    batch = LandingZone(root=root).read(spark, source, columns, start, end)
    if table is OPERATIONAL_EVENTS and not batch.files:
        raise ScoringError(_no_files(spark, root, source, start, end, config))
    if batch.frame is None:
        bronze = spark.createDataFrame([], spark_schema(table.bronze.model))
    else:
        read = with_ingest_columns(batch.frame, source)
        cached.append(read)
        bronze = verify_rows(read, batch, source, columns)
    flagged = flag(bronze, table).persist()
    cached.append(flagged)
    rows = silver_rows(flagged, table)
    quarters = quarter_range(to_label(start.isoformat()), shift(to_label(end.isoformat()), -1))
    figures = reconcile(flagged, rows, table, quarters)
    _check_quarantine(table, figures, flagged, config, quarantine)
    return rows


def _no_files(spark: SparkSession, root: str, source: str, start: date, end: date, config: PlatformConfig) -> str:
    arrived = sorted({item.arrival for item in LandingZone(root=root).list_files(spark, source, date.min, date.max)[0]})
    found = f"its files arrived {arrived[0]} … {arrived[-1]}" if arrived else f"{root}/{source} holds no landing file"
    last = date.fromordinal(end.toordinal() - 1)
    return (
        f"nothing to score: no {source} landing file arrived in the lookback before the cutoff {end}, i.e. in a "
        f"folder {root}/{source}/<YYYY-MM-DD>/ dated {start} … {last} (batch.lookback_quarters = "
        f"{config.batch.lookback_quarters}, from batch.first_quarter {config.batch.first_quarter} on); {found}"
    )


def _check_quarantine(
    table: SilverTable,
    figures: dict[str, Reconciliation],
    flagged: DataFrame,
    config: PlatformConfig,
    quarantine: Quarantine,
) -> None:
    """The silver check `quarantine_rate` on each quarter read: ERROR stops the scoring, naming the
    first rejected rows (file, rule, values), as it stops gold; WARN is a warning."""
    name = f"silver/{table.name}"
    rejects: dict[str, int] = {}
    for figure in figures.values():
        for reason, count in figure.rejects.items():
            if count:
                rejects[reason] = rejects.get(reason, 0) + count
    if not rejects:
        return
    rejected = Rejected(name, rejects, _examples(flagged, table))
    quarantine.rejected.append(rejected)
    failed = []
    for quarter, figure in figures.items():
        result = quarantine_rate(quarter, config.checks, figure.bronze_rows, figure.quarantined_rows)
        if result["passed"]:
            continue
        if result["severity"] == dg.AssetCheckSeverity.ERROR:
            failed.append(f"{name} {result['description']}")
        else:
            quarantine.warnings.append(f"{name} {result['description']}")
            _log.warning("%s %s", name, result["description"])
    if failed:
        lines = "\n".join(f"  - {line}" for line in rejected.examples)
        raise ScoringError(
            "the silver check quarantine_rate fails, as it would stop gold in the pipeline (checks.quarantine_rate_fail): "
            + "; ".join(failed)
            + f". First rejected rows (file: rule: values):\n{lines}"
        )


def _examples(flagged: DataFrame, table: SilverTable) -> list[str]:
    """The first rejected rows of `table`, each as `file: rule: column=value, …` (values quoted, short)."""
    rows = (
        quarantine_rows(flagged, table)
        .orderBy("_source_file", REJECT_REASON, *table.bronze.columns)
        .limit(EXAMPLES)
        .collect()
    )
    return [
        f"{row['_source_file']}: {row[REJECT_REASON]}: "
        + ", ".join(
            f"{name}={excerpt(row[name]) if row[name] is not None else 'null'}" for name in table.bronze.columns
        )
        for row in rows
    ]
