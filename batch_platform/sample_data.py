"""A deterministic, deliberately dirty landing zone to develop and test the platform against.

The generator writes `<landing>/<source>/<YYYY-MM-DD>/<name>.<csv|json|parquet>` exactly as
SPEC.md ("Landing zone") describes, for the sources `operational`, `logs` and `external`. The
data behind it is a small customer population with a start quarter, a per-customer activity
level, dormant quarters and churn, so that the gold churn label of SPEC.md is sometimes 1 and
sometimes 0 and the features carry signal.

Every kind of dirt that the silver rules of SPEC.md handle is planted in small, fixed
proportions (`ROW_DIRT_RATES`, with a floor per quarter so that every quarter holds every kind
even on a tiny population), and the returned manifest says how many of each were planted and
how many rows each bronze partition must hold. Two runs with the same arguments write
byte-identical files: everything is drawn from one seeded generator in a fixed order, and the
manifest holds no paths outside the landing root and no clock readings.

Everything is vectorised with numpy/pandas/pyarrow; no Spark, so the generator runs anywhere the
package is installed and a million operational rows take a few seconds.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from batch_platform.partitions import label_of, quarter_end, quarter_range, quarter_start

SOURCES = ("operational", "logs", "external")
COLUMNS = {
    "operational": ("customer_id", "event_time", "amount", "currency", "channel"),
    "logs": ("customer_id", "log_event_type", "log_timestamp"),
    "external": ("customer_id", "partner_score", "partner_segment"),
}
EXTRA_COLUMNS = {"operational": "device", "logs": "session_id"}
"""Columns that start to arrive in the middle of the history (SPEC: extra columns are kept in
bronze and ignored after it); from the quarter `quarters[len(quarters) // 2]` onwards."""

MANIFEST_NAME = "_manifest.json"

CURRENCIES = ("eur", "usd", "gbp")
CHANNELS = ("web", "app", "store")
DEVICES = ("ios", "android", "desktop")
LOG_EVENT_TYPES = ("login", "page_view", "support_ticket")
PARTNER_SEGMENTS = ("gold", "silver", "bronze")

DEFAULT_EVENTS_PER_QUARTER = 12.0
LOGS_PER_OPERATIONAL = 1.5

ROW_DIRT_RATES: dict[str, dict[str, float]] = {
    "operational": {
        "blank_customer_id": 0.004,
        "padded_customer_id": 0.01,
        "bad_amount": 0.004,
        "bad_timestamp": 0.004,
        "future_timestamp": 0.003,
        "exact_duplicate": 0.008,
        "respelled_duplicate": 0.008,
        "category_variant": 0.03,
    },
    "logs": {
        "blank_customer_id": 0.004,
        "padded_customer_id": 0.01,
        "bad_timestamp": 0.004,
        "future_timestamp": 0.003,
        "exact_duplicate": 0.008,
        "respelled_duplicate": 0.008,
        "category_variant": 0.03,
    },
    "external": {
        "blank_customer_id": 0.005,
        "padded_customer_id": 0.01,
        "bad_score": 0.005,
        "out_of_range_score": 0.005,
        "double_scored": 0.01,
        "exact_duplicate": 0.005,
        "category_variant": 0.03,
    },
}
"""Share of the clean rows of one source arriving in one quarter that get each kind of dirt.

The rows are disjoint (one permutation is cut into slices), so the counts are exact. Duplicate
kinds add a copy of the chosen row; the others alter the row in place. Each kind gets at least
`_MIN_PER_QUARTER` rows (default 1) per quarter, enough to show every spelling it cycles through.
"""

REDELIVERY_RATE = 0.005
"""Share of the clean operational/logs rows of a quarter that are delivered again, verbatim and
with that quarter's columns, in a file of a folder one or two quarters later."""

QUARANTINED_KINDS = {
    "operational": ("blank_customer_id", "bad_amount", "bad_timestamp", "future_timestamp"),
    "logs": ("blank_customer_id", "bad_timestamp", "future_timestamp"),
    "external": ("blank_customer_id", "bad_score", "out_of_range_score"),
}
DUPLICATE_KINDS = {
    "operational": ("exact_duplicate", "respelled_duplicate"),
    "logs": ("exact_duplicate", "respelled_duplicate"),
    "external": ("exact_duplicate", "double_scored"),
}
"""Which planted dirt the silver rules must quarantine, and which they must deduplicate. Every
other row is valid and unique within its partition (re-deliveries repeat rows of an *earlier*
partition), so the manifest can state the exact silver figures of every partition."""

_MIN_PER_QUARTER = {
    "blank_customer_id": 2,
    "bad_amount": 3,
    "bad_timestamp": 3,
    "bad_score": 3,
    "out_of_range_score": 2,
    "padded_customer_id": 3,
}

_BLANK_IDS = ("", "   ")
_BAD_SCORES = ("abc", "n/a", "")
_OUT_OF_RANGE_SCORES = ("9999", "-5")

US = 1_000_000
DAY_S = 86_400


@dataclass(frozen=True)
class _Style:
    name: str
    weight: float
    sep: str | None
    fraction: bool
    suffix: str

    @property
    def offset_us(self) -> int:
        if self.suffix in ("", "Z"):
            return 0
        sign = 1 if self.suffix[0] == "+" else -1
        hours, minutes = self.suffix[1:].split(":")
        return sign * (int(hours) * 3600 + int(minutes) * 60) * US


TIMESTAMP_STYLES = (
    _Style("space", 0.40, " ", False, ""),
    _Style("t", 0.15, "T", False, ""),
    _Style("space_fraction", 0.08, " ", True, ""),
    _Style("t_z", 0.10, "T", False, "Z"),
    _Style("t_fraction_z", 0.05, "T", True, "Z"),
    _Style("t_plus_0200", 0.07, "T", False, "+02:00"),
    _Style("t_fraction_minus_0500", 0.05, "T", True, "-05:00"),
    _Style("space_z", 0.05, " ", False, "Z"),
    _Style("date_only", 0.05, None, False, ""),
)
"""The valid ISO-8601 spellings of SPEC.md, with their share of the valid timestamps. An offset
spelling writes the same UTC instant as local wall time plus its offset; a fraction spelling
carries real microseconds; a date-only spelling is an event at midnight UTC."""

_STYLE = {s.name: i for i, s in enumerate(TIMESTAMP_STYLES)}
_FRACTION_STYLES = np.array([i for i, s in enumerate(TIMESTAMP_STYLES) if s.fraction])
_OFFSET_STYLES = np.array([i for i, s in enumerate(TIMESTAMP_STYLES) if s.offset_us])
_DATE_ONLY = _STYLE["date_only"]


# --------------------------------------------------------------------------------------------
# calendar, population and clean events


@dataclass(frozen=True)
class _Calendar:
    quarters: list[str]
    bounds_s: np.ndarray
    """Epoch seconds of each quarter's start, plus the end of the last quarter."""

    @classmethod
    def of(cls, quarters: list[str]) -> _Calendar:
        starts = [int(quarter_start(q).timestamp()) for q in quarters]
        end = int(quarter_end(quarters[-1]).timestamp())
        return cls(quarters, np.array(starts + [end], dtype=np.int64))

    @property
    def n(self) -> int:
        return len(self.quarters)


@dataclass(frozen=True)
class _Schedule:
    """The arrival folders of one source: 3-6 drop days per quarter, each holding 1-2 part files,
    at least 4 files per quarter so that plain CSV files remain besides the JSON, Parquet and
    shuffled-column ones.

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
    def draw(cls, rng: np.random.Generator, cal: _Calendar) -> _Schedule:
        days, quarters, parts = [], [], []
        for qi in range(cal.n):
            length = int((cal.bounds_s[qi + 1] - cal.bounds_s[qi]) // DAY_S)
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
class _Population:
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
    def draw(cls, rng: np.random.Generator, customers: int, n_quarters: int) -> _Population:
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
class _Cells:
    """Active (customer, quarter) pairs with the time window the customer was active in."""

    cust: np.ndarray
    lo_s: np.ndarray
    hi_s: np.ndarray
    weight: np.ndarray
    """activity x share of the quarter covered: the expected events relative to the density."""

    @classmethod
    def draw(cls, rng: np.random.Generator, pop: _Population, cal: _Calendar) -> _Cells:
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


# --------------------------------------------------------------------------------------------
# text rendering


def _text(fn):
    """numpy's string functions fail on empty arrays; a tiny quarter can leave a kind empty."""

    @functools.wraps(fn)
    def wrapper(values, *args):
        return np.empty(0, dtype=object) if len(values) == 0 else fn(values, *args)

    return wrapper


def _cycle(options: Sequence[str], n: int) -> np.ndarray:
    return np.array(options, dtype=object)[np.arange(n) % len(options)]


def _proportional(rng: np.random.Generator, n: int, weights: Sequence[float]) -> np.ndarray:
    """Category per row in exactly the given proportions (up to rounding), in random order."""
    cum = np.cumsum(weights) / np.sum(weights)
    kinds = np.minimum(np.searchsorted(cum, (np.arange(n) + 0.5) / max(n, 1)), len(weights) - 1)
    return kinds[rng.permutation(n)]


def _styles(rng: np.random.Generator, n: int) -> np.ndarray:
    return _proportional(rng, n, [s.weight for s in TIMESTAMP_STYLES])


def _snap(rng: np.random.Generator, t_us: np.ndarray, style: np.ndarray) -> np.ndarray:
    """Make the instant match what its spelling can say: microseconds only where a fraction is
    written, midnight where only the date is."""
    t_us = t_us - t_us % US
    fraction = np.isin(style, _FRACTION_STYLES)
    t_us[fraction] += rng.integers(0, US, int(fraction.sum()))
    date_only = style == _DATE_ONLY
    t_us[date_only] -= t_us[date_only] % (DAY_S * US)
    return t_us


def _render_ts(t_us: np.ndarray, style: np.ndarray) -> np.ndarray:
    out = np.empty(len(t_us), dtype=object)
    for k, s in enumerate(TIMESTAMP_STYLES):
        m = style == k
        if not m.any():
            continue
        local = (t_us[m] + s.offset_us).astype("datetime64[us]")
        if s.sep is None:
            text = np.datetime_as_string(local, unit="D")
        else:
            text = np.datetime_as_string(local, unit="us" if s.fraction else "s")
            if s.sep != "T":
                text = np.char.replace(text, "T", s.sep)
            if s.suffix:
                text = np.char.add(text, s.suffix)
        out[m] = text
    return out


def _respelled_style(rng: np.random.Generator, style: np.ndarray, t_us: np.ndarray) -> np.ndarray:
    """Another spelling of the same instant: a time with an offset is written in UTC with `Z`,
    a `Z` time with `+02:00`, anything else with an offset; the fraction stays where the
    instant has microseconds. (Half the respelled rows are given a `Z` spelling first, so every
    quarter has the same instant written with `Z` and with `+02:00`.)"""
    had_offset = np.isin(style, _OFFSET_STYLES)
    had_z = np.isin(style, [_STYLE["t_z"], _STYLE["space_z"]])
    has_us = t_us % US != 0
    pick = rng.integers(0, 2, len(style)).astype(bool)
    to_z = np.where(has_us, _STYLE["t_fraction_z"], np.where(pick, _STYLE["t_z"], _STYLE["space_z"]))
    to_offset = np.where(has_us | (pick & ~had_z), _STYLE["t_fraction_minus_0500"], _STYLE["t_plus_0200"])
    return np.where(had_offset, to_z, to_offset)


@_text
def _bad_timestamps(t_us: np.ndarray) -> np.ndarray:
    """Cycle through a free-text value, an impossible ISO date and a day-first date."""
    day = np.datetime_as_string(t_us.astype("datetime64[us]"), unit="D").astype(object)
    year = pd.Series(day, dtype=object).str.slice(0, 4)
    day_first = (
        pd.Series(day, dtype=object).str.slice(8, 10) + "/" + pd.Series(day, dtype=object).str.slice(5, 7) + "/" + year
    )
    kind = np.arange(len(t_us)) % 3
    out = np.where(kind == 0, "not a date", np.where(kind == 1, (year + "-13-45").to_numpy(), day_first.to_numpy()))
    return out.astype(object)


@_text
def _cents_text(cents: np.ndarray) -> np.ndarray:
    a = np.abs(cents)
    text = np.char.add(np.char.add((a // 100).astype(str), "."), np.char.zfill((a % 100).astype(str), 2))
    return np.where(cents < 0, np.char.add("-", text), text).astype(object)


@_text
def _respelled_cents(cents: np.ndarray) -> np.ndarray:
    """The same decimal spelled differently: `12.50` -> `12.5`, else `1234e-2`."""
    text = _cents_text(cents).astype(str)
    stripped = np.char.rstrip(np.char.rstrip(text, "0"), ".")
    return np.where(stripped != text, stripped, np.char.add(cents.astype(str), "e-2")).astype(object)


@_text
def _tenths_text(tenths: np.ndarray) -> np.ndarray:
    """Scores with one decimal, whole scores without one (`734.5`, `734`)."""
    whole = (tenths // 10).astype(str).astype(object)
    rest = tenths % 10
    out = whole.copy()
    m = rest != 0
    out[m] = whole[m] + "." + rest[m].astype(str).astype(object)
    return out


_CATEGORY_VARIANTS = (
    lambda v: np.char.upper(v),
    lambda v: np.char.add(np.char.add(" ", np.char.upper(v)), " "),
    lambda v: np.char.capitalize(v),
    lambda v: np.char.add(" ", v),
    lambda v: np.char.add(v, "  "),
)


@_text
def _category_variant(values: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """`eur` -> `EUR`, ` EUR `, `Eur`, ` eur`, `eur  `: equal after trimming and lower-casing."""
    values = values.astype(str)
    out = values.astype(object)
    for k, fn in enumerate(_CATEGORY_VARIANTS):
        m = kind % len(_CATEGORY_VARIANTS) == k
        if m.any():
            out[m] = fn(values[m])
    return out


@_text
def _session_ids(numbers: np.ndarray) -> np.ndarray:
    return np.char.add("S", np.char.zfill(numbers.astype(str), 9)).astype(object)


@_text
def _padded(ids: np.ndarray) -> np.ndarray:
    kind = np.arange(len(ids)) % 3
    left = np.where(kind != 1, " ", "")
    right = np.where(kind != 0, " ", "")
    return (left.astype(object) + ids.astype(object) + right.astype(object)).astype(object)


# --------------------------------------------------------------------------------------------
# dirt


def _allocate(rng: np.random.Generator, n: int, rates: dict[str, float]) -> dict[str, np.ndarray]:
    """Disjoint row positions per dirt kind, plus `clean` for the untouched rest."""
    perm = rng.permutation(n)
    out, pos = {}, 0
    for kind, rate in rates.items():
        want = max(_MIN_PER_QUARTER.get(kind, 1), math.ceil(rate * n)) if n else 0
        take = min(want, n - pos)
        out[kind] = np.sort(perm[pos : pos + take])
        pos += take
    out["clean"] = np.sort(perm[pos:])
    return out


@dataclass
class _Rows:
    """Rendered rows of one source arriving in one quarter, ready to be cut into files."""

    columns: dict[str, np.ndarray]
    file: np.ndarray
    order: np.ndarray
    dirt: dict[str, int]
    clean: np.ndarray


def _event_rows(
    rng: np.random.Generator,
    source: str,
    qi: int,
    cal: _Calendar,
    pop: _Population,
    ev: dict[str, np.ndarray],
    extra_on: bool,
) -> _Rows:
    """Dirty the clean operational or logs events arriving in quarter `qi` and render them.

    Writing a time as a bare date can make two genuine events of a customer share a silver key;
    such accidental twins are spelled in full instead, so that the only duplicates in a
    partition are the planted ones and the manifest's expected silver counts are exact.
    """
    n = len(ev["cust"])
    sl = _allocate(rng, n, ROW_DIRT_RATES[source])
    ts_col = "event_time" if source == "operational" else "log_timestamp"
    late, style, t_us = _event_times(rng, source, cal.bounds_s[qi], cal.bounds_s[qi + 1], ev, sl)
    cols, names = _event_columns(source, pop, ev, sl, t_us, style)

    variant = sl["category_variant"]
    which = np.arange(len(variant)) % (len(names) + 1)
    kind = rng.integers(0, len(_CATEGORY_VARIANTS), len(variant))
    for j, name in enumerate(names):
        m = (which == j) | (which == len(names))
        cols[name][variant[m]] = _category_variant(cols[name][variant[m]], kind[m])

    if extra_on:
        extra = EXTRA_COLUMNS[source]
        if source == "operational":
            cols[extra] = np.array(DEVICES, dtype=object)[ev["device"]]
        else:
            cols[extra] = _session_ids(ev["session"])

    exact, resp = sl["exact_duplicate"], sl["respelled_duplicate"]
    copy = {c: v[resp].copy() for c, v in cols.items()}
    copy[ts_col] = _render_ts(t_us[resp], _respelled_style(rng, style[resp], t_us[resp]))
    if source == "operational":
        copy["amount"] = _respelled_cents(ev["cents"][resp])
    for name in names:
        copy[name] = _category_variant(copy[name], rng.integers(0, len(_CATEGORY_VARIANTS), len(resp)))

    columns = {c: np.concatenate([v, v[exact], copy[c]]) for c, v in cols.items()}
    idx = np.concatenate([np.arange(n), exact, resp])
    dirt = {k: len(v) for k, v in sl.items() if k != "clean"}
    dirt["late_arrival"] = int(late[idx].sum())
    for k, s in enumerate(TIMESTAMP_STYLES):
        dirt[f"timestamp_{s.name}"] = int(np.count_nonzero(style == k)) - int(
            np.count_nonzero(style[sl["bad_timestamp"]] == k)
        )
    return _Rows(columns, ev["file"][idx], ev["t_s"][idx], dirt, sl["clean"])


def _event_times(
    rng: np.random.Generator, source: str, q_lo: int, q_hi: int, ev: dict[str, np.ndarray], sl: dict[str, np.ndarray]
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
    style = _styles(rng, n)
    resp = sl["respelled_duplicate"]
    style[resp[::2]] = np.where(np.arange(len(resp[::2])) % 2 == 0, _STYLE["t_z"], _STYLE["space_z"])
    t_us = _snap(rng, t_s * US, style)
    key = ev["cents"] if source == "operational" else ev["type"]
    for attempt in range(10):
        clash = pd.DataFrame({"c": ev["cust"], "k": key, "t": t_us}).duplicated().to_numpy()
        if not clash.any():
            break
        style[clash] = _STYLE["space"]
        t_us[clash] = (t_s[clash] + attempt) * US
    return late, style, t_us


def _event_columns(
    source: str,
    pop: _Population,
    ev: dict[str, np.ndarray],
    sl: dict[str, np.ndarray],
    t_us: np.ndarray,
    style: np.ndarray,
) -> tuple[dict[str, np.ndarray], list[str]]:
    """The rendered text columns of the events (ids, timestamps, amounts, categories) with the
    row dirt planted, and the names of the category columns."""
    cid = pop.ids[ev["cust"]].copy()
    cid[sl["blank_customer_id"]] = _cycle(_BLANK_IDS, len(sl["blank_customer_id"]))
    cid[sl["padded_customer_id"]] = _padded(cid[sl["padded_customer_id"]])
    ts = _render_ts(t_us, style)
    ts[sl["bad_timestamp"]] = _bad_timestamps(t_us[sl["bad_timestamp"]])

    cols: dict[str, np.ndarray] = {"customer_id": cid}
    cats: dict[str, np.ndarray] = {}
    if source == "operational":
        amount = _cents_text(ev["cents"])
        bad = sl["bad_amount"]
        comma = pd.Series(amount[bad], dtype=object).str.replace(".", ",", regex=False).to_numpy()
        amount[bad] = np.where(np.arange(len(bad)) % 3 == 0, "abc", np.where(np.arange(len(bad)) % 3 == 1, comma, ""))
        cats["currency"] = np.array(CURRENCIES, dtype=object)[ev["currency"]]
        cats["channel"] = np.array(CHANNELS, dtype=object)[ev["channel"]]
        cols.update(event_time=ts, amount=amount, **cats)
    else:
        cats["log_event_type"] = np.array(LOG_EVENT_TYPES, dtype=object)[ev["type"]]
        cols.update(log_event_type=cats["log_event_type"], log_timestamp=ts)
    return cols, list(cats)


def _partner_rows(rng: np.random.Generator, pop: _Population, ext: dict[str, np.ndarray]) -> _Rows:
    """Dirty the partner scores arriving in quarter `qi` and render them."""
    n = len(ext["cust"])
    sl = _allocate(rng, n, ROW_DIRT_RATES["external"])
    tenths = ext["tenths"]
    cid = pop.ids[ext["cust"]].copy()
    cid[sl["blank_customer_id"]] = _cycle(_BLANK_IDS, len(sl["blank_customer_id"]))
    cid[sl["padded_customer_id"]] = _padded(cid[sl["padded_customer_id"]])
    score = _tenths_text(tenths)
    score[sl["bad_score"]] = _cycle(_BAD_SCORES, len(sl["bad_score"]))
    score[sl["out_of_range_score"]] = _cycle(_OUT_OF_RANGE_SCORES, len(sl["out_of_range_score"]))
    segment = np.array(PARTNER_SEGMENTS, dtype=object)[_segment_of(tenths)]
    variant = sl["category_variant"]
    segment[variant] = _category_variant(segment[variant], np.arange(len(variant)))
    cols = {"customer_id": cid, "partner_score": score, "partner_segment": segment}

    exact, double = sl["exact_duplicate"], sl["double_scored"]
    delta = rng.integers(10, 1500, len(double)) * np.where(rng.random(len(double)) < 0.5, -1, 1)
    rescored = np.clip(tenths[double] + delta, 0, 10_000)
    rescored = np.where(rescored == tenths[double], (tenths[double] + 100) % 10_001, rescored)
    copy = {
        "customer_id": cid[double],
        "partner_score": _tenths_text(rescored),
        "partner_segment": np.array(PARTNER_SEGMENTS, dtype=object)[_segment_of(rescored)],
    }
    columns = {c: np.concatenate([v, v[exact], copy[c]]) for c, v in cols.items()}
    idx = np.concatenate([np.arange(n), exact, double])
    dirt = {k: len(v) for k, v in sl.items() if k != "clean"}
    return _Rows(columns, ext["file"][idx], ext["cust"][idx], dirt, sl["clean"])


def _segment_of(tenths: np.ndarray) -> np.ndarray:
    return np.where(tenths >= 7000, 0, np.where(tenths >= 4000, 1, 2))


# --------------------------------------------------------------------------------------------
# files


class _Landing:
    def __init__(self, root: Path):
        self.root = root
        self.files: list[dict] = []

    def write(
        self,
        source: str,
        day: np.datetime64,
        name: str,
        fmt: str,
        kind: str,
        columns: Sequence[str],
        data: dict[str, np.ndarray] | None,
    ) -> int:
        folder = self.root / source / str(day)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.{'csv' if fmt in ('zero_byte', 'header_only') else fmt}"
        rows = 0 if data is None else len(next(iter(data.values())))
        if fmt == "zero_byte":
            path.write_bytes(b"")
            columns = []
        elif fmt == "header_only":
            path.write_text(",".join(columns) + "\n", encoding="utf-8")
        elif fmt == "csv":
            pd.DataFrame({c: data[c] for c in columns}).to_csv(path, index=False, lineterminator="\n", encoding="utf-8")
        elif fmt == "json":
            text = pd.DataFrame({c: data[c] for c in columns}).to_json(orient="records", lines=True, force_ascii=True)
            text = text.replace("\\/", "/")
            path.write_text(text if text.endswith("\n") or not text else text + "\n", encoding="utf-8")
        elif fmt == "parquet":
            table = pa.table({c: pa.array(data[c], type=pa.string()) for c in columns})
            pq.write_table(table, path)
        else:
            raise ValueError(fmt)
        self.files.append(
            {
                "source": source,
                "path": path.relative_to(self.root).as_posix(),
                "format": "csv" if fmt in ("zero_byte", "header_only") else fmt,
                "kind": kind,
                "arrival_date": str(day),
                "quarter": label_of(day.astype(object)),
                "rows": rows,
                "columns": list(columns),
            }
        )
        return rows


def _write_quarter(
    rng: np.random.Generator,
    landing: _Landing,
    source: str,
    qi: int,
    sched: _Schedule,
    rows: _Rows,
    columns: list[str],
    dirt: dict[str, int],
) -> None:
    """Cut the quarter's rows into its (drop, part) files: one JSON file, one Parquet file and
    one CSV with shuffled columns among them, the rest plain CSV; plus one empty file."""
    drops = sched.drops_of(qi)
    file_ids = np.concatenate([sched.first_file[d] + np.arange(sched.parts[d]) for d in drops])
    order = np.lexsort((np.arange(len(rows.file)), rows.order, rows.file))
    sorted_file = rows.file[order]
    cut = np.searchsorted(sorted_file, np.concatenate([file_ids, [file_ids[-1] + 1]]))
    json_i, parquet_i, shuffled_i = rng.choice(len(file_ids), size=3, replace=False)
    shuffle = rng.permutation(len(columns))
    if (shuffle == np.arange(len(columns))).all():
        shuffle = np.roll(shuffle, 1)
    for i, fid in enumerate(file_ids):
        d = drops[np.searchsorted(sched.first_file[drops], fid, side="right") - 1]
        part = fid - sched.first_file[d]
        sel = order[cut[i] : cut[i + 1]]
        data = {c: v[sel] for c, v in rows.columns.items()}
        fmt = "json" if i == json_i else "parquet" if i == parquet_i else "csv"
        cols = [columns[j] for j in shuffle] if i == shuffled_i else columns
        landing.write(
            source,
            sched.day[d],
            f"{source}_{str(sched.day[d]).replace('-', '')}_part{part + 1}",
            fmt,
            "data",
            cols,
            data,
        )
    dirt.update(json_file=1, parquet_file=1, shuffled_columns_file=1, zero_byte_file=0, header_only_file=0)
    if source in EXTRA_COLUMNS:
        dirt["extra_column_file"] = len(file_ids) if EXTRA_COLUMNS[source] in columns else 0

    empty = "zero_byte" if (qi + SOURCES.index(source)) % 2 == 0 else "header_only"
    d = drops[int(rng.integers(0, len(drops)))]
    landing.write(
        source, sched.day[d], f"{source}_{str(sched.day[d]).replace('-', '')}_{empty}", empty, empty, columns, None
    )
    dirt[f"{empty}_file"] = 1


# --------------------------------------------------------------------------------------------
# public API


def generate_landing(
    landing_root: str | Path,
    *,
    first_quarter: str = "2024-Q1",
    last_quarter: str = "2025-Q4",
    customers: int = 2000,
    operational_rows: int | None = None,
    seed: int = 7,
) -> dict:
    """Write a dirty landing zone for `first_quarter`..`last_quarter` and return its manifest.

    Quarters are labels (`2025-Q4`) or start keys (`2025-10-01`). `operational_rows`, when
    given, is the approximate total of operational rows over all quarters (default: about 12
    events per active customer per quarter); logs are about 1.5x that, partner scores one or
    two per customer per quarter. The folders `<landing_root>/operational|logs|external` are
    wiped and rewritten; anything else under `landing_root` is left alone. The manifest is also
    written to `<landing_root>/_manifest.json`.
    """
    quarters = quarter_range(first_quarter, last_quarter)
    if customers < 1:
        raise ValueError(f"customers must be at least 1, got {customers}")
    if operational_rows is not None and operational_rows < 0:
        raise ValueError(f"operational_rows must not be negative, got {operational_rows}")
    root = Path(landing_root)
    rng = np.random.default_rng(seed)
    cal = _Calendar.of(quarters)
    mid = cal.n // 2
    pop = _Population.draw(rng, customers, cal.n)
    cells = _Cells.draw(rng, pop, cal)
    schedules = {s: _Schedule.draw(rng, cal) for s in SOURCES}

    if operational_rows is None:
        density = DEFAULT_EVENTS_PER_QUARTER
    else:
        extra = (
            ROW_DIRT_RATES["operational"]["exact_duplicate"]
            + ROW_DIRT_RATES["operational"]["respelled_duplicate"]
            + REDELIVERY_RATE
        )
        density = operational_rows / (1 + extra) / max(float(cells.weight.sum()), 1e-9)

    events = {
        "operational": _operational_events(rng, cells, pop, density),
        "logs": _log_events(rng, cells, density * LOGS_PER_OPERATIONAL),
    }
    external = _external_scores(rng, pop, cal, schedules["external"])

    for source in SOURCES:
        if (root / source).exists():
            shutil.rmtree(root / source)
    root.mkdir(parents=True, exist_ok=True)
    landing = _Landing(root)
    dirt_by_quarter: dict[str, dict[str, dict[str, int]]] = {s: {} for s in SOURCES}

    for source in SOURCES:
        dirt_by_quarter[source] = _write_source(
            rng, landing, source, events.get(source, external), schedules[source], cal, quarters, pop
        )

    manifest = _manifest(seed, quarters, customers, operational_rows, landing, schedules, dirt_by_quarter, mid)
    (root / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def _write_source(
    rng: np.random.Generator,
    landing: _Landing,
    source: str,
    data: dict[str, np.ndarray],
    sched: _Schedule,
    cal: _Calendar,
    quarters: list[str],
    pop: _Population,
) -> dict[str, dict[str, int]]:
    """Write every quarter of one source (dirt planted, redeliveries of earlier quarters added);
    return its dirt counts by kind and quarter."""
    mid = cal.n // 2
    if source != "external":
        t_s, folder, part = sched.assign(rng, data["t_s"], int(cal.bounds_s[-1]))
        data = dict(data, t_s=t_s, file=sched.first_file[folder] + part, folder=folder)
    order = np.lexsort((data["t_s"] if "t_s" in data else data["cust"], data["folder"]))
    data = {k: v[order] for k, v in data.items()}
    q_of_row = sched.quarter[data["folder"]]
    cuts = np.searchsorted(q_of_row, np.arange(cal.n + 1))
    pools: list[tuple[list[str], dict[str, np.ndarray]]] = []
    dirt_by_kind: dict[str, dict[str, int]] = {}
    for qi, q in enumerate(quarters):
        part_data = {k: v[cuts[qi] : cuts[qi + 1]] for k, v in data.items()}
        extra_on = source in EXTRA_COLUMNS and qi >= mid
        columns = list(COLUMNS[source]) + ([EXTRA_COLUMNS[source]] if extra_on else [])
        if source == "external":
            rows = _partner_rows(rng, pop, part_data)
        else:
            rows = _event_rows(rng, source, qi, cal, pop, part_data, extra_on)
        dirt = dict(rows.dirt)
        _write_quarter(rng, landing, source, qi, sched, rows, columns, dirt)
        if source != "external":
            take = min(len(rows.clean), max(1, math.ceil(REDELIVERY_RATE * len(rows.clean))))
            chosen = np.sort(rng.choice(rows.clean, size=take, replace=False))
            pools.append((columns, {c: v[chosen] for c, v in rows.columns.items()}))
            dirt["redelivered_row"] = _redeliver(rng, landing, source, sched, quarters, qi, pools)
        for kind, count in dirt.items():
            dirt_by_kind.setdefault(kind, {})[q] = count
    return dirt_by_kind


def _redeliver(
    rng: np.random.Generator,
    landing: _Landing,
    source: str,
    sched: _Schedule,
    quarters: list[str],
    qi: int,
    pools: list[tuple[list[str], dict[str, np.ndarray]]],
) -> int:
    """Redeliver, into quarter `qi`, a sample of the clean rows of the previous quarter (or of
    the one before); the rows written."""
    if qi < 1:
        return 0
    back = 1 if qi == 1 else int(rng.integers(1, 3))
    old_columns, old_rows = pools[qi - back]
    drops = sched.drops_of(qi)
    d = drops[int(rng.integers(0, len(drops)))]
    return landing.write(
        source,
        sched.day[d],
        f"{source}_{str(sched.day[d]).replace('-', '')}_redelivery_{quarters[qi - back]}",
        "csv",
        "redelivery",
        old_columns,
        old_rows,
    )


def _operational_events(rng, cells: _Cells, pop: _Population, density: float) -> dict:
    """Amounts are a per-customer spend level times noise, 30% of them round to a half unit and
    3% are refunds; the currency is the customer's own."""
    cust, t_s = cells.events(rng, density)
    n = len(cust)
    value = pop.spend_scale[cust] * rng.lognormal(0.0, 0.5, n)
    cents = np.maximum(1, np.round(value * 100)).astype(np.int64)
    halves = rng.random(n) < 0.3
    cents[halves] = np.maximum(50, np.round(cents[halves] / 50) * 50).astype(np.int64)
    cents[rng.random(n) < 0.03] *= -1
    return {
        "cust": cust,
        "t_s": t_s,
        "cents": cents,
        "currency": pop.currency[cust],
        "channel": rng.choice(len(CHANNELS), size=n, p=[0.5, 0.35, 0.15]),
        "device": rng.choice(len(DEVICES), size=n, p=[0.4, 0.4, 0.2]),
    }


def _log_events(rng, cells: _Cells, density: float) -> dict:
    cust, t_s = cells.events(rng, density)
    n = len(cust)
    return {
        "cust": cust,
        "t_s": t_s,
        "type": rng.choice(len(LOG_EVENT_TYPES), size=n, p=[0.45, 0.45, 0.10]),
        "session": rng.integers(0, 10**9, n),
    }


def _external_scores(rng, pop: _Population, cal: _Calendar, sched: _Schedule) -> dict:
    """One or two scores per customer per quarter from its start quarter on (the partner keeps
    scoring churned customers), in distinct folders of the quarter."""
    n = len(pop.ids)
    cust, q = np.divmod(np.arange(n * cal.n), cal.n)
    keep = q >= pop.start_q[cust]
    cust, q = cust[keep], q[keep]
    twice = rng.random(len(cust)) < 0.5
    k = np.bincount(sched.quarter, minlength=cal.n)[q]
    first_drop = np.searchsorted(sched.quarter, q)
    r1 = rng.integers(0, k)
    r2 = (r1 + 1 + rng.integers(0, k - 1)) % k
    cust = np.concatenate([cust, cust[twice]])
    folder = np.concatenate([first_drop + r1, (first_drop + r2)[twice]])
    part = (rng.random(len(cust)) * sched.parts[folder]).astype(np.int64)
    score = np.clip(pop.partner_base[cust] + rng.normal(0, 40, len(cust)), 0, 1000)
    return {
        "cust": cust,
        "folder": folder,
        "file": sched.first_file[folder] + part,
        "tenths": np.round(score * 10).astype(np.int64),
    }


def _manifest(seed, quarters, customers, operational_rows, landing, schedules, dirt_by_quarter, mid) -> dict:
    files = sorted(landing.files, key=lambda f: f["path"])
    rows = {s: {q: 0 for q in quarters} for s in SOURCES}
    for f in files:
        rows[f["source"]][f["quarter"]] += f["rows"]
    return {
        "seed": seed,
        "first_quarter": quarters[0],
        "last_quarter": quarters[-1],
        "quarters": quarters,
        "customers": customers,
        "operational_rows_requested": operational_rows,
        "rows_by_source": {s: sum(rows[s].values()) for s in SOURCES},
        "rows_by_source_quarter": rows,
        "files": files,
        "arrival_dates": {
            s: {q: [str(schedules[s].day[d]) for d in schedules[s].drops_of(qi)] for qi, q in enumerate(quarters)}
            for s in SOURCES
        },
        "extra_columns": {s: {"column": c, "from_quarter": quarters[mid]} for s, c in EXTRA_COLUMNS.items()},
        "expected_silver": _expected_silver(quarters, rows, dirt_by_quarter),
        "dirt": {s: {k: sum(v.values()) for k, v in kinds.items()} for s, kinds in dirt_by_quarter.items()},
        "dirt_by_quarter": dirt_by_quarter,
        "dirt_rates": {**ROW_DIRT_RATES, "redelivery": REDELIVERY_RATE},
    }


def _expected_silver(quarters, rows, dirt_by_quarter) -> dict:
    """Per source and quarter: bronze = silver + quarantined + duplicates (SPEC.md, "Silver")."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for source in SOURCES:
        kinds = dirt_by_quarter[source]
        out[source] = {}
        for q in quarters:
            quarantined = sum(kinds.get(k, {}).get(q, 0) for k in QUARANTINED_KINDS[source])
            duplicates = sum(kinds.get(k, {}).get(q, 0) for k in DUPLICATE_KINDS[source])
            bronze = rows[source][q]
            out[source][q] = {
                "bronze": bronze,
                "silver": bronze - quarantined - duplicates,
                "quarantined": quarantined,
                "duplicates": duplicates,
            }
    return out


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Write a deterministic, deliberately dirty sample landing zone."
    )
    parser.add_argument("--landing", default="data/landing", help="landing root (default: %(default)s)")
    parser.add_argument(
        "--from",
        dest="first_quarter",
        default="2024-Q1",
        help="first quarter, 2024-Q1 or 2024-01-01 (default: %(default)s)",
    )
    parser.add_argument(
        "--to", dest="last_quarter", default="2025-Q4", help="last quarter, included (default: %(default)s)"
    )
    parser.add_argument("--customers", type=int, default=2000, help="default: %(default)s")
    parser.add_argument(
        "--operational-rows",
        type=int,
        default=None,
        help="approximate total operational rows (default: ~12 per active customer per quarter)",
    )
    parser.add_argument("--seed", type=int, default=7, help="default: %(default)s")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    began = time.perf_counter()
    manifest = generate_landing(
        args.landing,
        first_quarter=args.first_quarter,
        last_quarter=args.last_quarter,
        customers=args.customers,
        operational_rows=args.operational_rows,
        seed=args.seed,
    )
    seconds = time.perf_counter() - began
    print(
        f"landing zone {args.landing}: {manifest['first_quarter']}..{manifest['last_quarter']}, "
        f"{manifest['customers']} customers, seed {manifest['seed']} ({seconds:.1f} s)"
    )
    for source in SOURCES:
        files = [f for f in manifest["files"] if f["source"] == source]
        print(f"  {source:<12} {len(files):>5} files {manifest['rows_by_source'][source]:>12,} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
