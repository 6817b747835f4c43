"""`EventSource`: a source of timed events (operational, logs), dirtied and rendered the same way;
each event source adds its own columns, category columns and extra column."""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import numpy as np
import pandas as pd

from batch_platform.sample_data.dirt import (
    CATEGORY_VARIANTS,
    Rows,
    allocate,
    bad_timestamps,
    category_variant,
    customer_ids,
)
from batch_platform.sample_data.population import DAY_S, US, World
from batch_platform.sample_data.source import SourceGenerator
from batch_platform.sample_data.spelling import STYLE, TIMESTAMP_STYLES, render_ts, respelled_style, snap, styles


class EventSource(SourceGenerator):
    """Events with a customer and a time (`cust`, `t_s`); bad and future timestamps planted, every
    valid spelling of SPEC.md used, duplicates copied verbatim or respelled."""

    time_column: ClassVar[str]
    """The column that holds the event's time."""
    key: ClassVar[str]
    """The record field that makes, with the customer and the time, the event's silver key."""
    categories: ClassVar[tuple[str, ...]]
    """The columns whose values are categories (respelled by `category_variant`)."""
    duplicates = ("exact_duplicate", "respelled_duplicate")
    """A verbatim copy of an event, and the same event spelled differently."""

    @abstractmethod
    def columns_of(self, records: dict[str, np.ndarray], sl: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The source's own columns (all but the customer id and the time), with its dirt planted."""

    def respelled(self, records: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
        """Other spellings of the same values of `rows` for a respelled duplicate, besides the
        time and the categories; none by default."""
        return {}

    def extra(self, records: dict[str, np.ndarray]) -> np.ndarray:
        """The values of `extra_column`."""
        raise NotImplementedError(f"{self.source} has no extra column")

    def rows(
        self, rng: np.random.Generator, world: World, qi: int, records: dict[str, np.ndarray], extra_on: bool
    ) -> Rows:
        """Dirty the clean events arriving in quarter `qi` and render them.

        Writing a time as a bare date can make two genuine events of a customer share a silver key;
        such accidental twins are spelled in full instead, so that the only duplicates in a
        partition are the planted ones and the manifest's expected silver counts are exact.
        """
        ev = records
        n = len(ev["cust"])
        sl = allocate(rng, n, self.dirt_rates)
        cal = world.cal
        late, style, t_us = self._times(rng, cal.bounds_s[qi], cal.bounds_s[qi + 1], ev, sl)
        ts = render_ts(t_us, style)
        ts[sl["bad_timestamp"]] = bad_timestamps(t_us[sl["bad_timestamp"]])
        cols = {"customer_id": customer_ids(world.pop, ev["cust"], sl), self.time_column: ts, **self.columns_of(ev, sl)}
        names = self.categories

        variant = sl["category_variant"]
        which = np.arange(len(variant)) % (len(names) + 1)
        kind = rng.integers(0, len(CATEGORY_VARIANTS), len(variant))
        for j, name in enumerate(names):
            m = (which == j) | (which == len(names))
            cols[name][variant[m]] = category_variant(cols[name][variant[m]], kind[m])

        if extra_on:
            cols[self.extra_column] = self.extra(ev)

        exact, resp = sl["exact_duplicate"], sl["respelled_duplicate"]
        copy = {c: v[resp].copy() for c, v in cols.items()}
        copy[self.time_column] = render_ts(t_us[resp], respelled_style(rng, style[resp], t_us[resp]))
        copy.update(self.respelled(ev, resp))
        for name in names:
            copy[name] = category_variant(copy[name], rng.integers(0, len(CATEGORY_VARIANTS), len(resp)))

        columns = {c: np.concatenate([v, v[exact], copy[c]]) for c, v in cols.items()}
        idx = np.concatenate([np.arange(n), exact, resp])
        dirt = {k: len(v) for k, v in sl.items() if k != "clean"}
        dirt["late_arrival"] = int(late[idx].sum())
        for k, s in enumerate(TIMESTAMP_STYLES):
            dirt[f"timestamp_{s.name}"] = int(np.count_nonzero(style == k)) - int(
                np.count_nonzero(style[sl["bad_timestamp"]] == k)
            )
        return Rows(columns, ev["file"][idx], ev["t_s"][idx], dirt, sl["clean"])

    def _times(
        self, rng: np.random.Generator, q_lo: int, q_hi: int, ev: dict[str, np.ndarray], sl: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Which events are late arrivals, each event's timestamp style and its time in microseconds
        (future timestamps planted, accidental twins of a silver key spelled in full)."""
        n = len(ev["cust"])
        t_s = ev["t_s"].copy()
        late = t_s < q_lo
        late[sl["future_timestamp"]] = False
        late[sl["bad_timestamp"]] = False
        future = sl["future_timestamp"]
        t_s[future] = q_hi + rng.integers(3600, 120 * DAY_S, len(future))
        style = styles(rng, n)
        resp = sl["respelled_duplicate"]
        style[resp[::2]] = np.where(np.arange(len(resp[::2])) % 2 == 0, STYLE["t_z"], STYLE["space_z"])
        t_us = snap(rng, t_s * US, style)
        for attempt in range(10):
            clash = pd.DataFrame({"c": ev["cust"], "k": ev[self.key], "t": t_us}).duplicated().to_numpy()
            if not clash.any():
                break
            style[clash] = STYLE["space"]
            t_us[clash] = (t_s[clash] + attempt) * US
        return late, style, t_us
