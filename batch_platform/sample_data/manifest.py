"""The manifest of a generated landing zone: its arguments, every file, the dirt planted and the
exact bronze and silver figures each partition must give. No paths outside the landing root and
no clock readings, so that two runs with the same arguments write the same manifest."""

from __future__ import annotations

from batch_platform.sample_data.dirt import REDELIVERY_RATE
from batch_platform.sample_data.files import Landing
from batch_platform.sample_data.population import Calendar, Schedule
from batch_platform.sample_data.source import SourceGenerator

MANIFEST_NAME = "_manifest.json"
"""The manifest's file name, at the landing root."""


def manifest(
    seed: int,
    customers: int,
    operational_rows: int | None,
    cal: Calendar,
    landing: Landing,
    generators: dict[str, SourceGenerator],
    schedules: dict[str, Schedule],
    dirt_by_quarter: dict[str, dict[str, dict[str, int]]],
    daily: bool = False,
) -> dict:
    """The manifest; `generators` and the other mappings by source, in the declarations' order."""
    quarters = cal.quarters
    files = sorted(landing.files, key=lambda f: f["path"])
    rows = {s: {q: 0 for q in quarters} for s in generators}
    for f in files:
        rows[f["source"]][f["quarter"]] += f["rows"]
    return {
        "seed": seed,
        "first_quarter": quarters[0],
        "last_quarter": quarters[-1],
        "quarters": quarters,
        "customers": customers,
        "operational_rows_requested": operational_rows,
        "daily": daily,
        "rows_by_source": {s: sum(rows[s].values()) for s in generators},
        "rows_by_source_quarter": rows,
        "files": files,
        "arrival_dates": {
            s: {q: [str(schedules[s].day[d]) for d in schedules[s].drops_of(qi)] for qi, q in enumerate(quarters)}
            for s in generators
        },
        "extra_columns": {
            s: {"column": g.extra_column, "from_quarter": quarters[cal.mid]}
            for s, g in generators.items()
            if g.extra_column is not None
        },
        "reordered_columns_quarter": quarters[cal.reordered],
        "expected_silver": _expected_silver(quarters, rows, generators, dirt_by_quarter),
        "dirt": {s: {k: sum(v.values()) for k, v in kinds.items()} for s, kinds in dirt_by_quarter.items()},
        "dirt_by_quarter": dirt_by_quarter,
        "dirt_rates": {**{s: dict(g.dirt_rates) for s, g in generators.items()}, "redelivery": REDELIVERY_RATE},
    }


def _expected_silver(quarters, rows, generators: dict[str, SourceGenerator], dirt_by_quarter) -> dict:
    """Per source and quarter: bronze = silver + quarantined + duplicates (SPEC.md, "Silver")."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for source, generator in generators.items():
        kinds = dirt_by_quarter[source]
        out[source] = {}
        for q in quarters:
            quarantined = sum(kinds.get(k, {}).get(q, 0) for k in generator.quarantined)
            duplicates = sum(kinds.get(k, {}).get(q, 0) for k in generator.duplicates)
            bronze = rows[source][q]
            out[source][q] = {
                "bronze": bronze,
                "silver": bronze - quarantined - duplicates,
                "quarantined": quarantined,
                "duplicates": duplicates,
            }
    return out
