"""Bronze arrival and schema (SPEC.md, "Monitoring"): per source and quarter, what arrived and with
which columns, recorded by the bronze step (the one step that knows the landing files it read).

Each bronze materialisation records per quarter: `files_read`, `days_with_files`, `first_arrival`
and `last_arrival` (arrival folder dates as timestamps; null without files), `landing_files`,
`columns_seen` (every column of its files, extras included) and the files that lack contract
columns. Rows are the IO manager's `dagster/row_count`.

The partitioned check `arrival_and_schema` on every bronze table WARNs for a quarter, naming:
- no files, when an earlier quarter had some (a source that stopped sending);
- each file that lacks contract columns, and which;
- the columns that appeared or disappeared against the latest earlier quarter with files.

Earlier quarters outside the run are known from their latest materialisations' metadata, so a
quarter is compared with what the platform recorded of the quarters before it (a quarter recorded
before `columns_seen` existed is not compared). It never blocks: bronze keeps every column that
arrived, and silver quarantines what it cannot use; the check is what makes a change visible.
"""

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from typing import Any

import dagster as dg

from batch_platform.checks import latest_materializations, warn_evaluations
from batch_platform.landing import LandingFile
from batch_platform.partitions import label_of, to_label
from batch_platform.schemas.bronze import BronzeTable

ARRIVAL_AND_SCHEMA = "arrival_and_schema"
LISTED = 10
"""Files named in a check's description; the metadata lists them all."""


@dataclass(frozen=True)
class Arrival:
    """One quarter of one source: how many files arrived, the columns they hold, and the contract
    columns each file lacks (by path)."""

    files: int
    columns: frozenset[str] | None
    lacking: Mapping[str, list[str]] = field(default_factory=dict)


def arrivals(files: Sequence[LandingFile], contract: Sequence[str], quarters: Sequence[str]) -> dict[str, Arrival]:
    """Per quarter label of `quarters`, its `files` (once read: their columns are known)."""
    found = {}
    for quarter in quarters:
        mine = [item for item in files if label_of(item.arrival) == quarter]
        known = [item.columns for item in mine if item.columns is not None]
        found[quarter] = Arrival(
            files=len(mine),
            columns=frozenset().union(*known) if known else None,
            lacking={item.path: item.missing(tuple(contract)) for item in mine if item.missing(tuple(contract))},
        )
    return found


def _day(day) -> dg.MetadataValue:
    return dg.MetadataValue.timestamp(datetime.combine(day, time(), UTC))


def landing_metadata(files: Sequence[LandingFile], arrival: Arrival, contract: Sequence[str]) -> dict[str, Any]:
    """One quarter's materialisation metadata of its landing `files`."""
    days = sorted({item.arrival for item in files})
    return {
        "files_read": dg.MetadataValue.int(len(files)),
        "days_with_files": dg.MetadataValue.int(len(days)),
        "first_arrival": _day(days[0]) if days else dg.MetadataValue.null(),
        "last_arrival": _day(days[-1]) if days else dg.MetadataValue.null(),
        "landing_files": dg.MetadataValue.json([item.path for item in files]),
        "columns_seen": dg.MetadataValue.json(sorted(arrival.columns or ())),
        **missing_columns_metadata(contract, arrival.lacking),
    }


def missing_columns_metadata(contract: Sequence[str], lacking: Mapping[str, list[str]]) -> dict[str, Any]:
    """The files of a quarter that lack contract columns, and how many lack each, as metadata."""
    return {
        "files_missing_columns": len(lacking),
        **{f"files_missing/{name}": sum(name in names for names in lacking.values()) for name in contract},
        "missing_columns": dg.MetadataValue.json(dict(lacking)),
    }


def arrival_spec(table: BronzeTable, partitions_def: dg.PartitionsDefinition) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        ARRIVAL_AND_SCHEMA,
        asset=table.key,
        partitions_def=partitions_def,
        description=(
            f"Arrival and schema (SPEC.md, 'Monitoring'): WARN when no file arrived in the quarter though earlier "
            f"quarters had some, naming each file that lacks contract columns ({', '.join(table.columns)}), and "
            "naming the columns that appeared or disappeared since the latest earlier quarter with files."
        ),
    )


def _recorded(record: dg.EventLogRecord) -> Arrival:
    metadata = record.asset_materialization.metadata
    files = metadata.get("files_read")
    columns = metadata.get("columns_seen")
    return Arrival(
        files=int(files.value) if files is not None else 0,
        columns=frozenset(columns.value) if columns is not None and columns.value else None,
    )


def arrival_result(
    quarter: str, arrival: Arrival, earlier: Sequence[tuple[str, Arrival]], contract: Sequence[str]
) -> dict[str, Any]:
    """One quarter's evaluation against the quarters before it (`earlier`, oldest first)."""
    with_files = [(q, a) for q, a in earlier if a.files]
    compared = next(((q, a) for q, a in reversed(with_files) if a.columns is not None), None)
    problems = []
    if not arrival.files and with_files:
        problems.append(f"no file arrived, though {with_files[-1][0]} had {with_files[-1][1].files}")
    if arrival.lacking:
        listed = "; ".join(
            f"{path} lacks {', '.join(names)}" for path, names in sorted(arrival.lacking.items())[:LISTED]
        )
        more = f"; {len(arrival.lacking) - LISTED} more in missing_columns" if len(arrival.lacking) > LISTED else ""
        problems.append(f"{len(arrival.lacking)} file(s) lack contract columns: {listed}{more}")
    appeared: list[str] = []
    disappeared: list[str] = []
    if compared is not None and arrival.columns is not None:
        appeared = sorted(arrival.columns - compared[1].columns)
        disappeared = sorted(compared[1].columns - arrival.columns)
        if appeared:
            problems.append(f"column(s) {', '.join(appeared)} appeared since {compared[0]}")
        if disappeared:
            problems.append(f"column(s) {', '.join(disappeared)} disappeared since {compared[0]}")
    return {
        "passed": not problems,
        "description": f"{quarter}: " + "; ".join(problems) if problems else None,
        "metadata": {
            "quarter": quarter,
            "files_read": arrival.files,
            "earlier_quarters_with_files": len(with_files),
            "columns_compared_with": compared[0] if compared else "none",
            "columns_appeared": dg.MetadataValue.json(appeared),
            "columns_disappeared": dg.MetadataValue.json(disappeared),
            "columns_changed": len(appeared) + len(disappeared),
            **missing_columns_metadata(contract, arrival.lacking),
        },
    }


def arrival_evaluations(
    context: dg.AssetExecutionContext, table: BronzeTable, found: Mapping[str, Arrival]
) -> Iterator[dg.AssetCheckEvaluation | dg.Output]:
    """One evaluation per quarter of the step (`found`: per quarter label, what arrived), each
    against that quarter's materialisation, once the bronze output is written."""
    if dg.AssetCheckKey(table.key, ARRIVAL_AND_SCHEMA) not in context.selected_asset_check_keys:
        return
    keys = list(context.partition_keys)
    before = [key for key in context.assets_def.partitions_def.get_partition_keys() if key < keys[0]]
    records = latest_materializations(context.instance, table.key, [*before, *keys])
    history = [(to_label(key), _recorded(records[key])) for key in before if key in records]
    results = {}
    for key in keys:
        quarter = to_label(key)
        results[key] = arrival_result(quarter, found[quarter], history, table.columns)
        history.append((quarter, found[quarter]))
    yield from warn_evaluations(context, table.key, ARRIVAL_AND_SCHEMA, results, records)
