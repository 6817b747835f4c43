"""Asset checks of the silver tables (SPEC.md, "Silver"), one quarter per evaluation.

Every check is partitioned on `quarterly`, so it reads the quarter it is run for, through the IO
manager, and its result is recorded against that partition. All four are attached to the silver
table (not the quarantine) because that is what gold reads, and all are blocking: a check that
fails with ERROR severity in a run stops the assets downstream of the silver table in that run
(gold), for the quarter(s) of the run. A WARN result never blocks.

- `reconciliation`: recounts bronze, silver and quarantine of the quarter as they are in the lake
  now and checks them against the materialisation's metadata: bronze, silver and quarantined rows
  and the count per reject reason must equal the recounts, and bronze = silver + quarantined +
  duplicates removed (the one figure the lake cannot show, taken from the metadata). A row lost or
  added after the materialisation, or a materialisation that reported wrong figures, fails it.
- `no_null_keys`: no row lacks a key column the contract requires.
- `no_duplicate_keys`: one row per dedup key.
- `quarantine_rate`: quarantined / bronze rows of the quarter (recounted); above
  `checks.quarantine_rate_warn` it fails with WARN severity, above `checks.quarantine_rate_fail`
  with ERROR (both from the config file, through the `settings` resource).

A single-run backfill of several quarters evaluates each check once for the whole range (Dagster
records one evaluation per run step, not per quarter): it fails when any quarter fails, and its
metadata lists the figures of each quarter.
"""


import operator
from collections.abc import Mapping
from functools import reduce
from typing import Any

import dagster as dg
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from batch_platform.assets.silver import REJECT_REASON, SILVER_TABLES, SilverTable
from batch_platform.partitions import quarterly, to_label
from batch_platform.resources import BatchSettings
from batch_platform.schemas.base import PARTITION_COLUMN
from batch_platform.schemas.silver import REQUIRED_KEYS

RECONCILED_FIGURES = ("bronze_rows", "silver_rows", "quarantined_rows")


def _counts(frame: DataFrame, *by: str) -> dict[Any, int]:
    """Rows per `quarter` (or per (`quarter`, *by)) in one aggregation."""
    group = [PARTITION_COLUMN, *by]
    rows = frame.groupBy(*group).count().collect()
    return {(row[0] if not by else tuple(row[g] for g in group)): int(row["count"]) for row in rows}


def _quarters(context: dg.AssetCheckExecutionContext) -> list[tuple[str, str]]:
    """(partition key, label) of every quarter this evaluation covers."""
    return [(key, to_label(key)) for key in context.partition_keys]


def _metadata(per_quarter: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """One quarter: its figures as metadata entries; several: a JSON table keyed by quarter."""
    if len(per_quarter) == 1:
        (quarter, figures), = per_quarter.items()
        return {"quarter": quarter, **figures}
    return {"quarters": dg.MetadataValue.json({q: dict(f) for q, f in per_quarter.items()})}


def materialization_metadata(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, partition_key: str
) -> Mapping[str, dg.MetadataValue] | None:
    """The metadata of the latest materialisation of one partition of an asset, if any."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[partition_key]), limit=1
    ).records
    if not records or records[0].asset_materialization is None:
        return None
    return records[0].asset_materialization.metadata


def _reported(metadata: Mapping[str, dg.MetadataValue], name: str) -> int | None:
    entry = metadata.get(name)
    return None if entry is None else int(entry.value)


def build_silver_checks(table: SilverTable) -> list[dg.AssetChecksDefinition]:
    silver_key = table.silver_key
    bronze_in = dg.AssetIn(key=table.bronze_key)
    quarantine_in = dg.AssetIn(key=table.quarantine_key)
    keys, required = list(table.keys), list(REQUIRED_KEYS[table.name])

    @dg.asset_check(
        asset=silver_key,
        name="reconciliation",
        blocking=True,
        partitions_def=quarterly,
        additional_ins={"bronze": bronze_in, "quarantine": quarantine_in},
        description=(
            "Nothing lost (SPEC.md, 'Silver'): the quarter's bronze, silver and quarantine rows and rejects per "
            "reason, recounted in the lake, equal the materialisation's metadata, and bronze = silver + "
            "quarantined + duplicates removed."
        ),
    )
    def reconciliation(
        context: dg.AssetCheckExecutionContext, silver: DataFrame, bronze: DataFrame, quarantine: DataFrame
    ) -> dg.AssetCheckResult:
        bronze_n, silver_n = _counts(bronze), _counts(silver)
        rejects = _counts(quarantine, REJECT_REASON)
        problems: list[str] = []
        figures: dict[str, dict[str, Any]] = {}
        for key, quarter in _quarters(context):
            recount = {
                "bronze_rows": bronze_n.get(quarter, 0),
                "silver_rows": silver_n.get(quarter, 0),
                "quarantined_rows": sum(n for (q, _), n in rejects.items() if q == quarter),
            }
            reasons = {reason: n for (q, reason), n in rejects.items() if q == quarter}
            reported = materialization_metadata(context.instance, silver_key, key)
            duplicates = None if reported is None else _reported(reported, "duplicates_removed")
            figures[quarter] = {**recount, "duplicates_removed": duplicates}
            if reported is None or duplicates is None:
                problems.append(f"{quarter}: no materialisation of {silver_key.to_user_string()} reports its figures")
                continue
            for name in RECONCILED_FIGURES:
                if _reported(reported, name) != recount[name]:
                    problems.append(
                        f"{quarter}: {name} reported {_reported(reported, name)}, the lake holds {recount[name]}"
                    )
            for reason in sorted(set(reasons) | set(table.reasons)):
                stated = _reported(reported, f"rejects/{reason}")
                if stated != reasons.get(reason, 0):
                    problems.append(
                        f"{quarter}: rejects/{reason} reported {stated}, the quarantine holds {reasons.get(reason, 0)}"
                    )
            total = recount["silver_rows"] + recount["quarantined_rows"] + duplicates
            if recount["bronze_rows"] != total:
                problems.append(
                    f"{quarter}: bronze {recount['bronze_rows']} != silver {recount['silver_rows']} + quarantined "
                    f"{recount['quarantined_rows']} + duplicates removed {duplicates} (= {total})"
                )
        return dg.AssetCheckResult(
            passed=not problems,
            severity=dg.AssetCheckSeverity.ERROR,
            description="; ".join(problems) or "bronze = silver + quarantined + duplicates removed",
            metadata=_metadata(figures),
        )

    @dg.asset_check(
        asset=silver_key,
        name="no_null_keys",
        blocking=True,
        partitions_def=quarterly,
        description=f"No row of the quarter lacks a required key column ({', '.join(required)}).",
    )
    def no_null_keys(context: dg.AssetCheckExecutionContext, silver: DataFrame) -> dg.AssetCheckResult:
        any_null = reduce(operator.or_, [F.col(c).isNull() for c in required])
        found = {
            row[PARTITION_COLUMN]: int(row["n"])
            for row in silver.groupBy(PARTITION_COLUMN).agg(F.count_if(any_null).alias("n")).collect()
        }
        figures = {q: {"rows_with_null_key": found.get(q, 0)} for _, q in _quarters(context)}
        bad = {q: f["rows_with_null_key"] for q, f in figures.items() if f["rows_with_null_key"]}
        return dg.AssetCheckResult(
            passed=not bad,
            severity=dg.AssetCheckSeverity.ERROR,
            description=", ".join(f"{q}: {n} row(s) with a NULL in ({', '.join(required)})" for q, n in bad.items())
            or None,
            metadata=_metadata(figures),
        )

    @dg.asset_check(
        asset=silver_key,
        name="no_duplicate_keys",
        blocking=True,
        partitions_def=quarterly,
        description=f"One row per ({', '.join(keys)}) in the quarter (SPEC.md, 'Silver', duplicates).",
    )
    def no_duplicate_keys(context: dg.AssetCheckExecutionContext, silver: DataFrame) -> dg.AssetCheckResult:
        found = {
            row[PARTITION_COLUMN]: int(row["n"])
            for row in silver.groupBy(PARTITION_COLUMN)
            .agg((F.count(F.lit(1)) - F.count_distinct(F.struct(*keys))).alias("n"))
            .collect()
        }
        figures = {q: {"duplicate_rows": found.get(q, 0)} for _, q in _quarters(context)}
        bad = {q: f["duplicate_rows"] for q, f in figures.items() if f["duplicate_rows"]}
        return dg.AssetCheckResult(
            passed=not bad,
            severity=dg.AssetCheckSeverity.ERROR,
            description=", ".join(f"{q}: {n} row(s) repeat a ({', '.join(keys)}) key" for q, n in bad.items())
            or None,
            metadata=_metadata(figures),
        )

    @dg.asset_check(
        asset=silver_key,
        name="quarantine_rate",
        blocking=True,
        partitions_def=quarterly,
        additional_ins={"bronze": bronze_in, "quarantine": quarantine_in},
        description=(
            "Share of the quarter's bronze rows that were quarantined: WARN above checks.quarantine_rate_warn, "
            "ERROR (blocks gold) above checks.quarantine_rate_fail (config file)."
        ),
    )
    def quarantine_rate(
        context: dg.AssetCheckExecutionContext, settings: BatchSettings, bronze: DataFrame, quarantine: DataFrame
    ) -> dg.AssetCheckResult:
        bronze_n, quarantined_n = _counts(bronze), _counts(quarantine)
        warn, fail = settings.quarantine_rate_warn, settings.quarantine_rate_fail
        figures: dict[str, dict[str, Any]] = {}
        for _, quarter in _quarters(context):
            rows, quarantined = bronze_n.get(quarter, 0), quarantined_n.get(quarter, 0)
            figures[quarter] = {
                "bronze_rows": rows,
                "quarantined_rows": quarantined,
                "quarantine_rate": quarantined / rows if rows else 0.0,
            }
        worst = max(f["quarantine_rate"] for f in figures.values()) if figures else 0.0
        severity = dg.AssetCheckSeverity.ERROR if worst > fail else dg.AssetCheckSeverity.WARN
        over = {q: f["quarantine_rate"] for q, f in figures.items() if f["quarantine_rate"] > warn}
        return dg.AssetCheckResult(
            passed=not over,
            severity=severity,
            description=(
                ", ".join(f"{q}: {rate:.2%} quarantined" for q, rate in over.items())
                + f" (warn above {warn:.2%}, fail above {fail:.2%})"
                if over
                else None
            ),
            metadata={**_metadata(figures), "warn_threshold": warn, "fail_threshold": fail},
        )

    return [reconciliation, no_null_keys, no_duplicate_keys, quarantine_rate]


silver_checks = [check for table in SILVER_TABLES.values() for check in build_silver_checks(table)]
