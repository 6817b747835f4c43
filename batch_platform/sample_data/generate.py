"""`generate_landing`: the sample landing zone of every declared bronze source, and its manifest.

The sources, their folders, formats and contract columns come from the bronze declarations
(`schemas.bronze.BRONZE_TABLES`); `GENERATORS` says how each one's rows are drawn. A declared
source without a generator stops the run before anything is written, naming the source.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from batch_platform.partitions import quarter_range
from batch_platform.sample_data.customers import Customers
from batch_platform.sample_data.dirt import REDELIVERY_RATE
from batch_platform.sample_data.external import External
from batch_platform.sample_data.files import Landing, SourceFiles
from batch_platform.sample_data.logs import Logs
from batch_platform.sample_data.manifest import MANIFEST_NAME, manifest
from batch_platform.sample_data.operational import Operational
from batch_platform.sample_data.population import Calendar, Cells, Population, Schedule, World
from batch_platform.sample_data.source import WRITTEN_FORMATS, SourceGenerator
from batch_platform.schemas.bronze import BRONZE_TABLES, BronzeTable

GENERATORS: dict[str, SourceGenerator] = {g.source: g for g in (Operational(), Logs(), External(), Customers())}
"""The generator of each bronze source, by source name. A new landing source needs one here."""

DEFAULT_EVENTS_PER_QUARTER = 12.0
"""Operational events per active customer and quarter, on average, when no volume is asked for."""


def generators_for(tables: Iterable[BronzeTable]) -> dict[str, tuple[BronzeTable, SourceGenerator]]:
    """Each declared source's declaration and generator, in the declarations' order; a `ValueError`
    naming the source when one has no generator or its generator does not fit its declaration."""
    out: dict[str, tuple[BronzeTable, SourceGenerator]] = {}
    for table in tables:
        generator = GENERATORS.get(table.source)
        if generator is None:
            raise ValueError(
                f"bronze source {table.source!r} is declared (schemas/bronze.py) but the sample-data generator "
                f"has none for it: add one to batch_platform/sample_data/ and to GENERATORS "
                f"(generators exist for {', '.join(sorted(GENERATORS))})"
            )
        if set(generator.columns) != set(table.columns):
            raise ValueError(
                f"bronze source {table.source!r}: its sample-data generator writes the columns "
                f"{', '.join(generator.columns)}, its declaration has {', '.join(table.columns)}"
            )
        if missing := [fmt for fmt in WRITTEN_FORMATS if fmt not in table.formats]:
            raise ValueError(
                f"bronze source {table.source!r}: the sample-data generator writes {', '.join(WRITTEN_FORMATS)} "
                f"files, but the declaration does not allow {', '.join(missing)}"
            )
        out[table.source] = (table, generator)
    return out


def generate_landing(
    landing_root: str | Path,
    *,
    first_quarter: str = "2024-Q1",
    last_quarter: str = "2025-Q4",
    customers: int = 2000,
    operational_rows: int | None = None,
    seed: int = 7,
    daily: bool = False,
) -> dict:
    """Write a dirty landing zone for `first_quarter`..`last_quarter` and return its manifest.

    Quarters are labels (`2025-Q4`) or start keys (`2025-10-01`). `operational_rows`, when
    given, is the approximate total of operational rows over all quarters (default: about 12
    events per active customer per quarter); logs are about 1.5x that, partner scores one or
    two per customer per quarter. The folders of the declared sources (`<landing_root>/operational`,
    …) are wiped and rewritten; anything else under `landing_root` is left alone. The manifest is
    also written to `<landing_root>/_manifest.json`. `daily`: a file every day of each quarter but
    its first and last, as a production feed drops them, instead of 3-6 drops a quarter (the
    benchmark's `--daily` shape); the rows and the dirt are the same kinds either way.
    """
    quarters = quarter_range(first_quarter, last_quarter)
    if customers < 1:
        raise ValueError(f"customers must be at least 1, got {customers}")
    if operational_rows is not None and operational_rows < 0:
        raise ValueError(f"operational_rows must not be negative, got {operational_rows}")
    sources = generators_for(BRONZE_TABLES.values())
    generators = {source: generator for source, (_, generator) in sources.items()}
    root = Path(landing_root)
    rng = np.random.default_rng(seed)
    cal = Calendar.of(quarters)
    pop = Population.draw(rng, customers, cal.n)
    cells = Cells.draw(rng, pop, cal)
    schedules = {source: Schedule.draw(rng, cal, daily) for source in sources}
    world = World(cal, pop, cells, _density(cells, operational_rows))
    records = {source: generators[source].draw(rng, world, schedules[source]) for source in sources}

    for table, _ in sources.values():
        if (root / table.folder).exists():
            shutil.rmtree(root / table.folder)
    root.mkdir(parents=True, exist_ok=True)
    landing = Landing(root)
    dirt_by_quarter: dict[str, dict[str, dict[str, int]]] = {}
    for source, (table, generator) in sources.items():
        files = SourceFiles(landing, table, schedules[source])
        dirt_by_quarter[source] = _write_source(rng, world, table, generator, files, records[source])

    written = manifest(seed, customers, operational_rows, cal, landing, generators, schedules, dirt_by_quarter, daily)
    (root / MANIFEST_NAME).write_text(json.dumps(written, indent=2) + "\n", encoding="utf-8")
    return written


def _density(cells: Cells, operational_rows: int | None) -> float:
    """Operational events per unit of cell weight that give about `operational_rows` rows, counting
    the duplicates and redeliveries added."""
    if operational_rows is None:
        return DEFAULT_EVENTS_PER_QUARTER
    rates = Operational.dirt_rates
    extra = rates["exact_duplicate"] + rates["respelled_duplicate"] + REDELIVERY_RATE
    return operational_rows / (1 + extra) / max(float(cells.weight.sum()), 1e-9)


def _write_source(
    rng: np.random.Generator,
    world: World,
    table: BronzeTable,
    generator: SourceGenerator,
    files: SourceFiles,
    data: dict[str, np.ndarray],
) -> dict[str, dict[str, int]]:
    """Write every quarter of one source (dirt planted, redeliveries of earlier quarters added);
    return its dirt counts by kind and quarter."""
    cal, sched = world.cal, files.schedule
    if generator.timed:
        t_s, folder, part = sched.assign(rng, data["t_s"], int(cal.bounds_s[-1]))
        data = dict(data, t_s=t_s, file=sched.first_file[folder] + part, folder=folder)
    order = np.lexsort((data["t_s"] if generator.timed else data["cust"], data["folder"]))
    data = {k: v[order] for k, v in data.items()}
    q_of_row = sched.quarter[data["folder"]]
    cuts = np.searchsorted(q_of_row, np.arange(cal.n + 1))
    pools: list[tuple[list[str], dict[str, np.ndarray]]] = []
    dirt_by_kind: dict[str, dict[str, int]] = {}
    for qi, q in enumerate(cal.quarters):
        part_data = {k: v[cuts[qi] : cuts[qi + 1]] for k, v in data.items()}
        extra_on = generator.extra_column is not None and qi >= cal.mid
        columns = list(table.columns) + ([generator.extra_column] if extra_on else [])
        reordered = qi == cal.reordered
        if reordered:
            columns.reverse()
        rows = generator.rows(rng, world, qi, part_data, extra_on)
        dirt = dict(rows.dirt)
        files.write_quarter(rng, qi, rows, columns, generator.extra_column, dirt, reordered)
        if generator.timed:
            take = min(len(rows.clean), max(1, math.ceil(REDELIVERY_RATE * len(rows.clean))))
            chosen = np.sort(rng.choice(rows.clean, size=take, replace=False))
            pools.append((columns, {c: v[chosen] for c, v in rows.columns.items()}))
            dirt["redelivered_row"] = files.redeliver(rng, cal.quarters, qi, pools)
        for kind, count in dirt.items():
            dirt_by_kind.setdefault(kind, {})[q] = count
    return dirt_by_kind
