"""Asset checks of the silver tables, one quarter per evaluation, and what every partitioned check
of the platform shares (`latest_materializations`, `target_materialization`, `check_outputs`).
Bronze's `arrival_and_schema` is in `batch_platform.arrival`, the drift checks of gold and ml in
`batch_platform.monitoring`.

Silver (SPEC.md, "Silver"):

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
  with ERROR (both from the config file's `checks` section, the `checks` resource).

A run of several quarters (a single-run backfill) evaluates every check once per quarter in the
same step: each evaluation carries its partition and that quarter's figures, so the UI shows each
quarter's own result. (`AssetCheckResult` has no partition of its own, so a multi-quarter step
yields `AssetCheckEvaluation`s, the event Dagster makes of a result, one per quarter.) An ERROR
failure of any quarter fails the step, which stops gold for the run's quarters.

Each evaluation names the materialisation it judged (`target_materialization`): Dagster keeps a
check's status per partition only while the evaluation targets that partition's latest
materialisation, so without it the UI shows every quarter of the check as missing. The out-of-time
check of `ml/churn_scores` (`batch_platform/assets/ml.py`) evaluates per quarter the same way.
"""

import operator
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from functools import partial, reduce
from typing import Any

import dagster as dg

# The one name outside Dagster's public API the platform uses (`target_materialization` says why).
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from batch_platform.config_sections import ChecksConfig
from batch_platform.partitions import to_label
from batch_platform.schemas.base import PARTITION_COLUMN
from batch_platform.schemas.silver import REJECT_REASON, SILVER_TABLES, SilverTable

RECONCILED_FIGURES = ("bronze_rows", "silver_rows", "quarantined_rows")
CHECK_NAMES = ("reconciliation", "no_null_keys", "no_duplicate_keys", "quarantine_rate")
Result = dict[str, Any]
"""An evaluation's `passed`, `severity`, `description` and `metadata`."""


def latest_materializations(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, partition_keys: Sequence[str], page: int = 1000
) -> dict[str, dg.EventLogRecord]:
    """The record of the latest materialisation of each of `partition_keys` (those that have one),
    read newest first in pages until every partition is found: one query for a run's quarters,
    not one per quarter."""
    wanted, found = set(partition_keys), {}
    records_filter = dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=list(partition_keys))
    cursor = None
    while wanted - set(found):
        result = instance.fetch_materializations(records_filter, limit=page, cursor=cursor)
        for record in result.records:
            key = record.partition_key
            if key in wanted and key not in found and record.asset_materialization is not None:
                found[key] = record
        if not result.has_more:
            break
        cursor = result.cursor
    return found


def target_materialization(record: dg.EventLogRecord | None) -> AssetCheckEvaluationTargetMaterializationData | None:
    """The materialisation an evaluation judged, from its record (`latest_materializations`), as
    `AssetCheckEvaluation.target_materialization_data`: what ties a partition's check status to
    that partition's latest materialisation (module docstring).

    The one place the platform uses a name outside Dagster's public API: the type of that public
    field, which Dagster 1.13 documents but does not export (`dagster._core...asset_check_evaluation`).
    A step of several quarters can report a result per quarter only as `dg.AssetCheckEvaluation`s:
    `dg.AssetCheckResult` has no partition, and Dagster fills in its target itself only in a step of
    one partition. Without a target, Dagster drops each quarter's result from the check's status.
    Either public API would replace this function: `AssetCheckEvaluationTargetMaterializationData`
    exported by `dagster`, or a `partition` on `dg.AssetCheckResult` (Dagster then finds the target)."""
    if record is None:
        return None
    return AssetCheckEvaluationTargetMaterializationData(
        storage_id=record.storage_id, run_id=record.event_log_entry.run_id, timestamp=record.timestamp
    )


def warn_evaluations(
    context: dg.AssetCheckExecutionContext | dg.AssetExecutionContext,
    asset_key: dg.AssetKey,
    check_name: str,
    results: Mapping[str, Result],
    records: Mapping[str, dg.EventLogRecord] | None = None,
) -> Iterator[dg.AssetCheckEvaluation | dg.Output]:
    """A non-blocking check's evaluation of each partition of the step (`results` by partition key;
    WARN unless a result says otherwise), each against that partition's latest materialisation
    (`records`, read here when not given), then the check's output."""
    if records is None:
        records = latest_materializations(context.instance, asset_key, context.partition_keys)
    for key in context.partition_keys:
        yield dg.AssetCheckEvaluation(
            asset_key=asset_key,
            check_name=check_name,
            partition=key,
            blocking=False,
            target_materialization_data=target_materialization(records.get(key)),
            **{"severity": dg.AssetCheckSeverity.WARN, **results[key]},
        )
    yield from check_outputs(context)


def check_outputs(context: dg.AssetCheckExecutionContext | dg.AssetExecutionContext) -> Iterator[dg.Output]:
    """The output of each selected check, as Dagster yields it after an `AssetCheckResult`, for a
    step that yields `AssetCheckEvaluation`s (one per quarter) instead: without it Dagster warns
    that a blocking check "emitted no result" (the gating itself is the step's failure). The check
    outputs are the step's selected outputs that are not an asset's."""
    step = context.op_execution_context
    assets = {step.output_for_asset_key(key) for key in step.selected_asset_keys}
    for name in sorted(step.selected_output_names - assets):
        yield dg.Output(None, output_name=name)


def _reported(metadata: Mapping[str, dg.MetadataValue], name: str) -> int | None:
    entry = metadata.get(name)
    return None if entry is None else int(entry.value)


def _specs(table: SilverTable, partitions_def: dg.PartitionsDefinition) -> list[dg.AssetCheckSpec]:
    recounted = [table.bronze_key, table.quarantine_key]
    spec = partial(dg.AssetCheckSpec, asset=table.silver_key, blocking=True, partitions_def=partitions_def)
    return [
        spec(
            "reconciliation",
            additional_deps=recounted,
            description=(
                "Nothing lost (SPEC.md, 'Silver'): the quarter's bronze, silver and quarantine rows and rejects per "
                "reason, recounted in the lake, equal the materialisation's metadata, and bronze = silver + "
                "quarantined + duplicates removed."
            ),
        ),
        spec(
            "no_null_keys",
            description=f"No row of the quarter lacks a required key column ({', '.join(table.required)}).",
        ),
        spec(
            "no_duplicate_keys",
            description=f"One row per ({', '.join(table.keys)}) in the quarter (SPEC.md, 'Silver', duplicates).",
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


def build_table_checks(table: SilverTable, partitions_def: dg.PartitionsDefinition) -> dg.AssetChecksDefinition:
    """The four checks of one silver table, evaluated in one step from one read of each table.

    Four separate checks would be four steps, each loading its inputs again (measured: 12 steps
    and ~65 Spark jobs for the three tables, 6.5 % of a backfill); here silver, bronze and the
    quarantine are counted per quarter in one Spark action (`_figures`). Each check keeps its own key,
    severity and result, and a subset of them can still be selected on its own.
    """

    @dg.multi_asset_check(
        name=f"{'__'.join(table.silver_key.path)}_checks",
        specs=_specs(table, partitions_def),
        can_subset=True,
        ins={
            "silver": dg.AssetIn(key=table.silver_key),
            "bronze": dg.AssetIn(key=table.bronze_key),
            "quarantine": dg.AssetIn(key=table.quarantine_key),
        },
        description=(
            f"The silver checks of {table.silver_key.to_user_string()} (SPEC.md, 'Silver'), one evaluation per quarter."
        ),
    )
    def silver_table_checks(
        context: dg.AssetCheckExecutionContext,
        checks: dg.ResourceParam[ChecksConfig],
        silver: DataFrame,
        bronze: DataFrame,
        quarantine: DataFrame,
    ) -> Iterator[dg.AssetCheckEvaluation | dg.Output]:
        selected = [name for name in CHECK_NAMES if name in {key.name for key in context.selected_asset_check_keys}]
        recount = bool(set(selected) & {"reconciliation", "quarantine_rate"})
        figures = _figures(table, silver, bronze if recount else None, quarantine if recount else None)
        records = latest_materializations(context.instance, table.silver_key, context.partition_keys)
        for key in context.partition_keys:
            quarter = to_label(key)
            record = records.get(key)
            for name in selected:
                yield dg.AssetCheckEvaluation(
                    asset_key=table.silver_key,
                    check_name=name,
                    partition=key,
                    blocking=True,
                    target_materialization_data=target_materialization(record),
                    **_evaluate(name, table, quarter, figures, record, checks),
                )
        yield from check_outputs(context)

    return silver_table_checks


def _figures(
    table: SilverTable, silver: DataFrame, bronze: DataFrame | None, quarantine: DataFrame | None
) -> dict[str, dict[str, Any]]:
    """Per quarter: silver rows, NULL-key and duplicate rows, and (when given the tables) the
    recounted bronze and quarantined rows and rejects per reason.

    One Spark action over the union of the three aggregations, not one per table: Spark's adaptive
    execution runs their independent shuffle stages side by side instead of one query after another
    (benchmarks/FINDINGS.md)."""
    rows, zero, no_reason = F.count(F.lit(1)), F.lit(0).cast("long"), F.lit(None).cast("string")

    def tally(name: str, frame: DataFrame, reason: Column = no_reason, null_keys=zero, duplicates=zero) -> DataFrame:
        return frame.groupBy(PARTITION_COLUMN, reason.alias("reason")).agg(
            F.lit(name).alias("table"), rows.alias("rows"), null_keys.alias("null_keys"), duplicates.alias("duplicates")
        )

    any_null = reduce(operator.or_, [F.col(c).isNull() for c in table.required])
    distinct_keys = F.count_distinct(F.struct(*table.keys))
    parts = [tally("silver", silver, null_keys=F.count_if(any_null), duplicates=rows - distinct_keys)]
    if bronze is not None:
        parts.append(tally("bronze", bronze))
    if quarantine is not None:
        parts.append(tally("quarantine", quarantine, F.col(REJECT_REASON)))
    found: dict[str, dict[str, Any]] = defaultdict(lambda: {"rows": 0, "null_keys": 0, "duplicates": 0})
    for row in reduce(DataFrame.unionByName, parts).collect():
        figures = found[row[PARTITION_COLUMN]]
        if row["table"] == "silver":
            figures.update(rows=int(row["rows"]), null_keys=int(row["null_keys"]), duplicates=int(row["duplicates"]))
        elif row["table"] == "bronze":
            figures["bronze"] = int(row["rows"])
        else:
            figures.setdefault("rejects", {})[row["reason"]] = int(row["rows"])
    return found


def _evaluate(
    name: str, table: SilverTable, quarter: str, figures: Mapping[str, Mapping[str, Any]], record, checks
) -> Result:
    found = figures.get(quarter, {})
    bronze_n, silver_n = found.get("bronze", 0), found.get("rows", 0)
    rejects = found.get("rejects", {})
    if name == "reconciliation":
        reported = None if record is None else record.asset_materialization.metadata
        recount = {"bronze_rows": bronze_n, "silver_rows": silver_n, "quarantined_rows": sum(rejects.values())}
        return reconciliation(table, quarter, recount, rejects, reported)
    if name == "no_null_keys":
        what = f"row(s) with a NULL in ({', '.join(table.required)})"
        return _key_result(quarter, found.get("null_keys", 0), "rows_with_null_key", what)
    if name == "no_duplicate_keys":
        what = f"row(s) repeat a ({', '.join(table.keys)}) key"
        return _key_result(quarter, found.get("duplicates", 0), "duplicate_rows", what)
    return quarantine_rate(quarter, checks, bronze_n, sum(rejects.values()))


def reconciliation(
    table: SilverTable,
    quarter: str,
    recount: Mapping[str, int],
    rejects: Mapping[str, int],
    reported: Mapping[str, dg.MetadataValue] | None,
) -> Result:
    """The quarter's recounts against what its latest silver materialisation reported."""
    duplicates = None if reported is None else _reported(reported, "duplicates_removed")
    metadata = {"quarter": quarter, **recount, "duplicates_removed": duplicates}
    if reported is None or duplicates is None:
        problems = [f"{quarter}: no materialisation of {table.silver_key.to_user_string()} reports its figures"]
    else:
        problems = _reconciliation_problems(table, quarter, recount, rejects, reported, duplicates)
    return {
        "passed": not problems,
        "severity": dg.AssetCheckSeverity.ERROR,
        "description": "; ".join(problems) or "bronze = silver + quarantined + duplicates removed",
        "metadata": metadata,
    }


def _reconciliation_problems(table, quarter, recount, rejects, reported, duplicates: int) -> list[str]:
    problems = []
    for name in RECONCILED_FIGURES:
        if _reported(reported, name) != recount[name]:
            problems.append(f"{quarter}: {name} reported {_reported(reported, name)}, the lake holds {recount[name]}")
    for reason in sorted(set(rejects) | set(table.reasons)):
        stated = _reported(reported, f"rejects/{reason}")
        if stated != rejects.get(reason, 0):
            problems.append(
                f"{quarter}: rejects/{reason} reported {stated}, the quarantine holds {rejects.get(reason, 0)}"
            )
    total = recount["silver_rows"] + recount["quarantined_rows"] + duplicates
    if recount["bronze_rows"] != total:
        problems.append(
            f"{quarter}: bronze {recount['bronze_rows']} != silver {recount['silver_rows']} + quarantined "
            f"{recount['quarantined_rows']} + duplicates removed {duplicates} (= {total})"
        )
    return problems


def _key_result(quarter: str, bad: int, name: str, what: str) -> Result:
    return {
        "passed": not bad,
        "severity": dg.AssetCheckSeverity.ERROR,
        "description": f"{quarter}: {bad} {what}" if bad else None,
        "metadata": {"quarter": quarter, name: bad},
    }


def quarantine_rate(quarter: str, checks: ChecksConfig, rows: int, quarantined: int) -> Result:
    warn, fail = checks.quarantine_rate_warn, checks.quarantine_rate_fail
    rate = quarantined / rows if rows else 0.0
    return {
        "passed": rate <= warn,
        "severity": dg.AssetCheckSeverity.ERROR if rate > fail else dg.AssetCheckSeverity.WARN,
        "description": (
            f"{quarter}: {rate:.2%} quarantined (warn above {warn:.2%}, fail above {fail:.2%})" if rate > warn else None
        ),
        "metadata": {
            "quarter": quarter,
            "bronze_rows": rows,
            "quarantined_rows": quarantined,
            "quarantine_rate": rate,
            "warn_threshold": warn,
            "fail_threshold": fail,
        },
    }


def build_silver_checks(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetChecksDefinition]:
    """One check step per silver table."""
    return [build_table_checks(table, partitions_def) for table in SILVER_TABLES.values()]
