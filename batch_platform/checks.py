"""Asset checks of the silver tables (SPEC.md, "Silver"), one quarter per evaluation.

Every check is partitioned on `quarterly`, so it reads the quarter it is run for, through the IO
manager, and its result is recorded against that partition. All four are attached to the silver
table (not the quarantine) because that is what gold reads, and all are blocking: a check that
fails with ERROR severity in a run stops the assets downstream of the silver table in that run
(gold), for the quarter(s) of the run. A WARN result never blocks. The four checks of a table run
in one step (`silver__<table>_checks`), which reads each table it recounts once.

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
from collections import defaultdict
from collections.abc import Iterator, Mapping
from functools import partial, reduce
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


CHECK_NAMES = ("reconciliation", "no_null_keys", "no_duplicate_keys", "quarantine_rate")


def build_silver_checks(table: SilverTable) -> dg.AssetChecksDefinition:
    """The four checks of one silver table, evaluated in one step from one read of each table.

    Four separate checks would be four steps, each loading its inputs again (measured: 12 steps
    and ~65 Spark jobs for the three tables, 6.5 % of a backfill); here silver, bronze and the
    quarantine are each counted in one aggregation per quarter. Each check keeps its own key,
    severity and result, and a subset of them can still be selected on its own.
    """
    silver_key = table.silver_key
    keys, required = list(table.keys), list(REQUIRED_KEYS[table.name])
    recounted = [table.bronze_key, table.quarantine_key]
    spec = partial(dg.AssetCheckSpec, asset=silver_key, blocking=True, partitions_def=quarterly)
    specs = [
        spec(
            "reconciliation",
            additional_deps=recounted,
            description=(
                "Nothing lost (SPEC.md, 'Silver'): the quarter's bronze, silver and quarantine rows and rejects per "
                "reason, recounted in the lake, equal the materialisation's metadata, and bronze = silver + "
                "quarantined + duplicates removed."
            ),
        ),
        spec("no_null_keys", description=f"No row of the quarter lacks a required key column ({', '.join(required)})."),
        spec(
            "no_duplicate_keys",
            description=f"One row per ({', '.join(keys)}) in the quarter (SPEC.md, 'Silver', duplicates).",
        ),
        spec(
            "quarantine_rate",
            additional_deps=recounted,
            description=(
                "Share of the quarter's bronze rows that were quarantined: WARN above checks.quarantine_rate_warn, "
                "ERROR (blocks gold) above checks.quarantine_rate_fail (config file)."
            ),
        ),
    ]

    @dg.multi_asset_check(
        name=f"{'__'.join(silver_key.path)}_checks",
        specs=specs,
        can_subset=True,
        ins={
            "silver": dg.AssetIn(key=silver_key),
            "bronze": dg.AssetIn(key=table.bronze_key),
            "quarantine": dg.AssetIn(key=table.quarantine_key),
        },
        description=f"The silver checks of {silver_key.to_user_string()} (SPEC.md, 'Silver'), one quarter per evaluation.",
    )
    def silver_table_checks(
        context: dg.AssetCheckExecutionContext,
        settings: BatchSettings,
        silver: DataFrame,
        bronze: DataFrame,
        quarantine: DataFrame,
    ) -> Iterator[dg.AssetCheckResult]:
        selected = {key.name for key in context.selected_asset_check_keys}
        quarters = _quarters(context)
        any_null = reduce(operator.or_, [F.col(c).isNull() for c in required])
        per_quarter = {
            row[PARTITION_COLUMN]: row
            for row in silver.groupBy(PARTITION_COLUMN)
            .agg(
                F.count(F.lit(1)).alias("rows"),
                F.count_if(any_null).alias("null_keys"),
                (F.count(F.lit(1)) - F.count_distinct(F.struct(*keys))).alias("duplicates"),
            )
            .collect()
        }
        silver_n = {q: int(row["rows"]) for q, row in per_quarter.items()}
        recount = bool(selected & {"reconciliation", "quarantine_rate"})
        bronze_n = _counts(bronze) if recount else {}
        rejects = _counts(quarantine, REJECT_REASON) if recount else {}
        quarantined_n: dict[str, int] = defaultdict(int)
        for (quarter, _), n in rejects.items():
            quarantined_n[quarter] += n
        figures = {
            q: {"null_keys": int(row["null_keys"]), "duplicates": int(row["duplicates"])} for q, row in per_quarter.items()
        }
        results = {
            "reconciliation": lambda: reconciliation(context, table, quarters, bronze_n, silver_n, quarantined_n, rejects),
            "no_null_keys": lambda: _key_result(
                quarters, figures, "null_keys", "rows_with_null_key", f"row(s) with a NULL in ({', '.join(required)})"
            ),
            "no_duplicate_keys": lambda: _key_result(
                quarters, figures, "duplicates", "duplicate_rows", f"row(s) repeat a ({', '.join(keys)}) key"
            ),
            "quarantine_rate": lambda: quarantine_rate(quarters, settings, bronze_n, quarantined_n),
        }
        for name in CHECK_NAMES:
            if name in selected:
                yield dg.AssetCheckResult(asset_key=silver_key, check_name=name, **results[name]())

    return silver_table_checks


def reconciliation(
    context: dg.AssetCheckExecutionContext,
    table: SilverTable,
    quarters: list[tuple[str, str]],
    bronze_n: Mapping[str, int],
    silver_n: Mapping[str, int],
    quarantined_n: Mapping[str, int],
    rejects: Mapping[tuple[str, str], int],
) -> dict[str, Any]:
    problems: list[str] = []
    figures: dict[str, dict[str, Any]] = {}
    for key, quarter in quarters:
        recount = {
            "bronze_rows": bronze_n.get(quarter, 0),
            "silver_rows": silver_n.get(quarter, 0),
            "quarantined_rows": quarantined_n.get(quarter, 0),
        }
        reasons = {reason: n for (q, reason), n in rejects.items() if q == quarter}
        reported = materialization_metadata(context.instance, table.silver_key, key)
        duplicates = None if reported is None else _reported(reported, "duplicates_removed")
        figures[quarter] = {**recount, "duplicates_removed": duplicates}
        if reported is None or duplicates is None:
            problems.append(f"{quarter}: no materialisation of {table.silver_key.to_user_string()} reports its figures")
            continue
        for name in RECONCILED_FIGURES:
            if _reported(reported, name) != recount[name]:
                problems.append(f"{quarter}: {name} reported {_reported(reported, name)}, the lake holds {recount[name]}")
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
    return {
        "passed": not problems,
        "severity": dg.AssetCheckSeverity.ERROR,
        "description": "; ".join(problems) or "bronze = silver + quarantined + duplicates removed",
        "metadata": _metadata(figures),
    }


def _key_result(
    quarters: list[tuple[str, str]], found: Mapping[str, Mapping[str, int]], figure: str, name: str, what: str
) -> dict[str, Any]:
    figures = {q: {name: found.get(q, {}).get(figure, 0)} for _, q in quarters}
    bad = {q: f[name] for q, f in figures.items() if f[name]}
    return {
        "passed": not bad,
        "severity": dg.AssetCheckSeverity.ERROR,
        "description": ", ".join(f"{q}: {n} {what}" for q, n in bad.items()) or None,
        "metadata": _metadata(figures),
    }


def quarantine_rate(
    quarters: list[tuple[str, str]], settings: BatchSettings, bronze_n: Mapping[str, int], quarantined_n: Mapping[str, int]
) -> dict[str, Any]:
    warn, fail = settings.quarantine_rate_warn, settings.quarantine_rate_fail
    figures: dict[str, dict[str, Any]] = {}
    for _, quarter in quarters:
        rows, quarantined = bronze_n.get(quarter, 0), quarantined_n.get(quarter, 0)
        figures[quarter] = {
            "bronze_rows": rows,
            "quarantined_rows": quarantined,
            "quarantine_rate": quarantined / rows if rows else 0.0,
        }
    worst = max(f["quarantine_rate"] for f in figures.values()) if figures else 0.0
    over = {q: f["quarantine_rate"] for q, f in figures.items() if f["quarantine_rate"] > warn}
    return {
        "passed": not over,
        "severity": dg.AssetCheckSeverity.ERROR if worst > fail else dg.AssetCheckSeverity.WARN,
        "description": (
            ", ".join(f"{q}: {rate:.2%} quarantined" for q, rate in over.items())
            + f" (warn above {warn:.2%}, fail above {fail:.2%})"
            if over
            else None
        ),
        "metadata": {**_metadata(figures), "warn_threshold": warn, "fail_threshold": fail},
    }


silver_checks = [build_silver_checks(table) for table in SILVER_TABLES.values()]
