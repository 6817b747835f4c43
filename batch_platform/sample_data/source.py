"""What the generator needs to know to write one bronze source: `SourceGenerator`.

Which sources exist, their folders, file formats and contract columns are the bronze
declarations' (`schemas.bronze.BRONZE_TABLES`); a generator adds how the source's rows are drawn
and dirtied. One module per source (`operational`, `logs`, `external`) holds its generator, and
`generate.GENERATORS` lists them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from batch_platform.sample_data.dirt import Rows
from batch_platform.sample_data.population import Schedule, World

WRITTEN_FORMATS = ("csv", "json", "parquet")
"""The file formats the generator writes in every quarter of every source."""


class SourceGenerator(ABC):
    """Draws the clean records of one source over the whole history, then renders and dirties the
    records of each quarter. Calls happen in a fixed order, so the output depends on the seed only."""

    source: ClassVar[str]
    """The bronze source it writes (`BronzeTable.source`)."""
    columns: ClassVar[tuple[str, ...]]
    """The contract columns it writes; they must be the declaration's."""
    dirt_rates: ClassVar[dict[str, float]]
    """Share of the clean rows of one quarter that get each kind of dirt (`dirt.allocate`): duplicate
    kinds add a copy of the chosen row, the others alter the row in place."""
    quarantined: ClassVar[tuple[str, ...]]
    duplicates: ClassVar[tuple[str, ...]]
    """Which planted dirt the silver rules must quarantine, and which they must deduplicate. Every
    other row is valid and unique within its partition (redeliveries repeat rows of an *earlier*
    partition), so the manifest can state the exact silver figures of every partition."""
    extra_column: ClassVar[str | None] = None
    """A column that starts to arrive in the middle of the history (SPEC: extra columns are kept in
    bronze and ignored after it), from the quarter `quarters[len(quarters) // 2]` onwards."""
    timed: ClassVar[bool] = True
    """Its records are events with a time (`t_s`): each arrives in the first drop after it
    happened, and a few are delivered again later. Otherwise `draw` gives each record its
    `folder` and `file`, and nothing is redelivered."""

    @abstractmethod
    def draw(self, rng: np.random.Generator, world: World, schedule: Schedule) -> dict[str, np.ndarray]:
        """The clean records of every quarter, one array per field, with `cust` (the customer)."""

    @abstractmethod
    def rows(
        self, rng: np.random.Generator, world: World, qi: int, records: dict[str, np.ndarray], extra_on: bool
    ) -> Rows:
        """The records arriving in quarter `qi`, dirtied and rendered as text (with the extra
        column when `extra_on`)."""
