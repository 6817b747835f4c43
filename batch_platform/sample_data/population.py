"""The world behind the sample data: the calendar, each source's arrival schedule, the customers
and the quarters each of them is active in. Every draw comes from the one seeded generator."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from batch_platform.partitions import quarter_end, quarter_start

US = 1_000_000
DAY_S = 86_400

CURRENCIES = ("eur", "usd", "gbp")
"""Each customer pays in one currency (operational `currency`)."""


@dataclass(frozen=True)
class Calendar:
    quarters: list[str]
    bounds_s: np.ndarray
    """Epoch seconds of each quarter's start, plus the end of the last quarter."""

    @classmethod
    def of(cls, quarters: list[str]) -> Calendar:
        starts = [int(quarter_start(q).timestamp()) for q in quarters]
        end = int(quarter_end(quarters[-1]).timestamp())
        return cls(quarters, np.array(starts + [end], dtype=np.int64))

    @property
    def n(self) -> int:
        return len(self.quarters)

    @property
    def mid(self) -> int:
        """The quarter from which the extra columns arrive: the middle of the history."""
        return self.n // 2

    @property
    def reordered(self) -> int:
        """The quarter whose files all carry the columns in another order (reversed), as a feed does
        for a while after its export changes: the one before the middle, or the only one."""
        return max(self.mid - 1, 0)


@dataclass(frozen=True)
class Schedule:
    """The arrival folders of one source: 3-6 drop days per quarter, each holding 1-2 part files,
    at least 4 files per quarter so that plain CSV files remain besides the JSON, Parquet and
    shuffled-column ones. With `daily`, the shape of a production feed instead: a drop every day
    from the quarter's second day to its last but one, one file each.

    The first drop of a quarter comes 1-14 days in and the last one 2-6 days before its end, so
    the events of a quarter's final days arrive in the next quarter's first folder: late arrivals
    happen the way they do in real feeds, in every quarter but the first.
    """

    day: np.ndarray
    quarter: np.ndarray
    parts: np.ndarray
    midnight_s: np.ndarray
    first_file: np.ndarray
    """Index of the first file of each drop in a global numbering of all (drop, part) files."""

    @classmethod
    def draw(cls, rng: np.random.Generator, cal: Calendar, daily: bool = False) -> Schedule:
        days, quarters, parts = [], [], []
        for qi in range(cal.n):
            length = int((cal.bounds_s[qi + 1] - cal.bounds_s[qi]) // DAY_S)
            if daily:
                offsets = np.arange(1, length - 1)
                days.append(np.datetime64(int(cal.bounds_s[qi] // DAY_S), "D") + offsets)
                quarters.append(np.full(len(offsets), qi))
                parts.append(np.ones(len(offsets), dtype=np.int64))
                continue
            k = int(rng.integers(3, 7))
            first = int(rng.integers(1, 15))
            last = length - int(rng.integers(2, 7))
            middle = np.sort(rng.choice(np.arange(first + 1, last), size=k - 2, replace=False))
            offsets = np.concatenate([[first], middle, [last]])
            days.append(np.datetime64(int(cal.bounds_s[qi] // DAY_S), "D") + offsets)
            quarters.append(np.full(k, qi))
            counts = rng.integers(1, 3, size=k)
            if counts.sum() < 4:
                counts[: 4 - counts.sum()] = 2
            parts.append(counts)
        day = np.concatenate(days)
        parts = np.concatenate(parts)
        first_file = np.concatenate([[0], np.cumsum(parts)[:-1]])
        midnight_s = day.astype("datetime64[s]").astype(np.int64)
        return cls(day, np.concatenate(quarters), parts, midnight_s, first_file)

    def assign(self, rng: np.random.Generator, t_s: np.ndarray, end_s: int):
        """Folder and part file of events at `t_s`: the first drop strictly after the event's day.

        Events after the very last drop have no folder in the history; they are moved back by
        the gap, so the final quarter stays as busy as the others.
        """
        last = self.midnight_s[-1]
        t_s = np.where(t_s >= last, t_s - (end_s - last), t_s)
        folder = np.searchsorted(self.midnight_s, t_s, side="right")
        part = (rng.random(len(t_s)) * self.parts[folder]).astype(np.int64)
        return t_s, folder, part

    def drops_of(self, qi: int) -> np.ndarray:
        return np.flatnonzero(self.quarter == qi)


@dataclass(frozen=True)
class Population:
    ids: np.ndarray
    start_q: np.ndarray
    start_u: np.ndarray
    end_q: np.ndarray
    end_u: np.ndarray
    activity: np.ndarray
    currency: np.ndarray
    spend_scale: np.ndarray
    partner_base: np.ndarray

    @classmethod
    def draw(cls, rng: np.random.Generator, customers: int, n_quarters: int) -> Population:
        """Half the customers exist before the history starts, the rest join in a random quarter
        at a random moment; each is then active for a geometric number of quarters (7% churn per
        quarter) and stops at a random moment of its last quarter."""
        n = customers
        ids = np.char.add("C", np.char.zfill(np.arange(1, n + 1).astype(str), 6)).astype(object)
        existing = rng.random(n) < 0.5
        start_q = np.where(existing, 0, rng.integers(0, n_quarters, n))
        start_u = np.where(existing, 0.0, rng.random(n) * 0.9)
        end_q = start_q + rng.geometric(0.07, n) - 1
        end_u = rng.uniform(0.1, 1.0, n)
        activity = rng.gamma(2.0, 0.5, n)
        currency = rng.choice(len(CURRENCIES), size=n, p=[0.6, 0.25, 0.15])
        spend_scale = np.exp(rng.normal(3.3, 0.6, n))
        partner_base = np.clip(rng.normal(550, 180, n), 0, 1000)
        return cls(ids, start_q, start_u, end_q, end_u, activity, currency, spend_scale, partner_base)


@dataclass(frozen=True)
class Cells:
    """Active (customer, quarter) pairs with the time window the customer was active in."""

    cust: np.ndarray
    lo_s: np.ndarray
    hi_s: np.ndarray
    weight: np.ndarray
    """activity x share of the quarter covered: the expected events relative to the density."""

    @classmethod
    def draw(cls, rng: np.random.Generator, pop: Population, cal: Calendar) -> Cells:
        n = len(pop.ids)
        cust, q = np.divmod(np.arange(n * cal.n), cal.n)
        dormant = (rng.random(n * cal.n) < 0.04) & (q != pop.start_q[cust])
        keep = (q >= pop.start_q[cust]) & (q <= pop.end_q[cust]) & ~dormant
        cust, q = cust[keep], q[keep]
        q_lo, q_hi = cal.bounds_s[q], cal.bounds_s[q + 1]
        length = (q_hi - q_lo).astype(float)
        lo = q_lo + np.where(q == pop.start_q[cust], pop.start_u[cust], 0.0) * length
        stop = np.where(q == pop.end_q[cust], pop.end_u[cust], 1.0)
        hi = lo + (q_hi - lo) * stop
        weight = pop.activity[cust] * (hi - lo) / length
        return cls(cust, lo.astype(np.int64), hi.astype(np.int64), weight)

    def events(self, rng: np.random.Generator, density: float):
        counts = rng.poisson(density * self.weight)
        cust = np.repeat(self.cust, counts)
        lo, hi = np.repeat(self.lo_s, counts), np.repeat(self.hi_s, counts)
        t_s = lo + (rng.random(len(cust)) * (hi - lo)).astype(np.int64)
        return cust, t_s


@dataclass(frozen=True)
class World:
    """What every source's generator draws its rows from."""

    cal: Calendar
    pop: Population
    cells: Cells
    density: float
    """Expected operational events per unit of cell weight."""
