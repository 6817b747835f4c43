"""The dirt every source can carry: which rows get which kind (`allocate`), and the dirty
spellings the sources share (blank and padded customer ids, bad timestamps, category variants).

Each source's generator names its own kinds and their rates (`SourceGenerator.dirt_rates`) and
plants the kinds only it has (a bad amount, a bad score)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from batch_platform.sample_data.population import Population
from batch_platform.sample_data.spelling import text

REDELIVERY_RATE = 0.005
"""Share of the clean rows of a quarter of a timed source (operational, logs) that are delivered
again, verbatim and with that quarter's columns, in a file of a folder one or two quarters later."""

MIN_PER_QUARTER = {
    "blank_customer_id": 2,
    "bad_amount": 3,
    "bad_timestamp": 3,
    "bad_score": 3,
    "out_of_range_score": 2,
    "padded_customer_id": 3,
}
"""Rows of a kind per quarter at least (1 for a kind not named), enough to show every spelling it
cycles through even on a tiny population."""

_BLANK_IDS = ("", "   ")


@dataclass
class Rows:
    """Rendered rows of one source arriving in one quarter, ready to be cut into files."""

    columns: dict[str, np.ndarray]
    file: np.ndarray
    order: np.ndarray
    dirt: dict[str, int]
    clean: np.ndarray


def allocate(rng: np.random.Generator, n: int, rates: dict[str, float]) -> dict[str, np.ndarray]:
    """Disjoint row positions per dirt kind, plus `clean` for the untouched rest.

    The rows are disjoint (one permutation is cut into slices), so the counts are exact."""
    perm = rng.permutation(n)
    out, pos = {}, 0
    for kind, rate in rates.items():
        want = max(MIN_PER_QUARTER.get(kind, 1), math.ceil(rate * n)) if n else 0
        take = min(want, n - pos)
        out[kind] = np.sort(perm[pos : pos + take])
        pos += take
    out["clean"] = np.sort(perm[pos:])
    return out


def cycle(options: Sequence[str], n: int) -> np.ndarray:
    return np.array(options, dtype=object)[np.arange(n) % len(options)]


def customer_ids(pop: Population, cust: np.ndarray, sl: dict[str, np.ndarray]) -> np.ndarray:
    """The customers' ids, blank on the `blank_customer_id` rows and padded on the `padded_customer_id` ones."""
    cid = pop.ids[cust].copy()
    cid[sl["blank_customer_id"]] = cycle(_BLANK_IDS, len(sl["blank_customer_id"]))
    cid[sl["padded_customer_id"]] = _padded(cid[sl["padded_customer_id"]])
    return cid


@text
def _padded(ids: np.ndarray) -> np.ndarray:
    kind = np.arange(len(ids)) % 3
    left = np.where(kind != 1, " ", "")
    right = np.where(kind != 0, " ", "")
    return (left.astype(object) + ids.astype(object) + right.astype(object)).astype(object)


@text
def bad_timestamps(t_us: np.ndarray) -> np.ndarray:
    """Cycle through a free-text value, an impossible ISO date and a day-first date."""
    day = np.datetime_as_string(t_us.astype("datetime64[us]"), unit="D").astype(object)
    year = pd.Series(day, dtype=object).str.slice(0, 4)
    day_first = (
        pd.Series(day, dtype=object).str.slice(8, 10) + "/" + pd.Series(day, dtype=object).str.slice(5, 7) + "/" + year
    )
    kind = np.arange(len(t_us)) % 3
    out = np.where(kind == 0, "not a date", np.where(kind == 1, (year + "-13-45").to_numpy(), day_first.to_numpy()))
    return out.astype(object)


CATEGORY_VARIANTS = (
    lambda v: np.char.upper(v),
    lambda v: np.char.add(np.char.add(" ", np.char.upper(v)), " "),
    lambda v: np.char.capitalize(v),
    lambda v: np.char.add(" ", v),
    lambda v: np.char.add(v, "  "),
)


@text
def category_variant(values: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """`eur` -> `EUR`, ` EUR `, `Eur`, ` eur`, `eur  `: equal after trimming and lower-casing."""
    values = values.astype(str)
    out = values.astype(object)
    for k, fn in enumerate(CATEGORY_VARIANTS):
        m = kind % len(CATEGORY_VARIANTS) == k
        if m.any():
            out[m] = fn(values[m])
    return out
