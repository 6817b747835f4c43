"""How values are written as text: the valid timestamp spellings of SPEC.md and their mix, and the
spellings of amounts, scores and session ids. The invalid spellings are in `dirt`."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from batch_platform.sample_data.population import DAY_S, US


@dataclass(frozen=True)
class Style:
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
    Style("space", 0.40, " ", False, ""),
    Style("t", 0.15, "T", False, ""),
    Style("space_fraction", 0.08, " ", True, ""),
    Style("t_z", 0.10, "T", False, "Z"),
    Style("t_fraction_z", 0.05, "T", True, "Z"),
    Style("t_plus_0200", 0.07, "T", False, "+02:00"),
    Style("t_fraction_minus_0500", 0.05, "T", True, "-05:00"),
    Style("space_z", 0.05, " ", False, "Z"),
    Style("date_only", 0.05, None, False, ""),
)
"""The valid ISO-8601 spellings of SPEC.md, with their share of the valid timestamps. An offset
spelling writes the same UTC instant as local wall time plus its offset; a fraction spelling
carries real microseconds; a date-only spelling is an event at midnight UTC."""

STYLE = {s.name: i for i, s in enumerate(TIMESTAMP_STYLES)}
"""The index of each spelling in `TIMESTAMP_STYLES`, by name."""
_FRACTION_STYLES = np.array([i for i, s in enumerate(TIMESTAMP_STYLES) if s.fraction])
_OFFSET_STYLES = np.array([i for i, s in enumerate(TIMESTAMP_STYLES) if s.offset_us])
_DATE_ONLY = STYLE["date_only"]


def text(fn):
    """numpy's string functions fail on empty arrays; a tiny quarter can leave a kind empty."""

    @functools.wraps(fn)
    def wrapper(values, *args):
        return np.empty(0, dtype=object) if len(values) == 0 else fn(values, *args)

    return wrapper


def proportional(rng: np.random.Generator, n: int, weights: Sequence[float]) -> np.ndarray:
    """Category per row in exactly the given proportions (up to rounding), in random order."""
    cum = np.cumsum(weights) / np.sum(weights)
    kinds = np.minimum(np.searchsorted(cum, (np.arange(n) + 0.5) / max(n, 1)), len(weights) - 1)
    return kinds[rng.permutation(n)]


def styles(rng: np.random.Generator, n: int) -> np.ndarray:
    return proportional(rng, n, [s.weight for s in TIMESTAMP_STYLES])


def snap(rng: np.random.Generator, t_us: np.ndarray, style: np.ndarray) -> np.ndarray:
    """Make the instant match what its spelling can say: microseconds only where a fraction is
    written, midnight where only the date is."""
    t_us = t_us - t_us % US
    fraction = np.isin(style, _FRACTION_STYLES)
    t_us[fraction] += rng.integers(0, US, int(fraction.sum()))
    date_only = style == _DATE_ONLY
    t_us[date_only] -= t_us[date_only] % (DAY_S * US)
    return t_us


def render_ts(t_us: np.ndarray, style: np.ndarray) -> np.ndarray:
    out = np.empty(len(t_us), dtype=object)
    for k, s in enumerate(TIMESTAMP_STYLES):
        m = style == k
        if not m.any():
            continue
        local = (t_us[m] + s.offset_us).astype("datetime64[us]")
        if s.sep is None:
            written = np.datetime_as_string(local, unit="D")
        else:
            written = np.datetime_as_string(local, unit="us" if s.fraction else "s")
            if s.sep != "T":
                written = np.char.replace(written, "T", s.sep)
            if s.suffix:
                written = np.char.add(written, s.suffix)
        out[m] = written
    return out


def respelled_style(rng: np.random.Generator, style: np.ndarray, t_us: np.ndarray) -> np.ndarray:
    """Another spelling of the same instant: a time with an offset is written in UTC with `Z`,
    a `Z` time with `+02:00`, anything else with an offset; the fraction stays where the
    instant has microseconds. (Half the respelled rows are given a `Z` spelling first, so every
    quarter has the same instant written with `Z` and with `+02:00`.)"""
    had_offset = np.isin(style, _OFFSET_STYLES)
    had_z = np.isin(style, [STYLE["t_z"], STYLE["space_z"]])
    has_us = t_us % US != 0
    pick = rng.integers(0, 2, len(style)).astype(bool)
    to_z = np.where(has_us, STYLE["t_fraction_z"], np.where(pick, STYLE["t_z"], STYLE["space_z"]))
    to_offset = np.where(has_us | (pick & ~had_z), STYLE["t_fraction_minus_0500"], STYLE["t_plus_0200"])
    return np.where(had_offset, to_z, to_offset)


@text
def cents_text(cents: np.ndarray) -> np.ndarray:
    a = np.abs(cents)
    written = np.char.add(np.char.add((a // 100).astype(str), "."), np.char.zfill((a % 100).astype(str), 2))
    return np.where(cents < 0, np.char.add("-", written), written).astype(object)


@text
def respelled_cents(cents: np.ndarray) -> np.ndarray:
    """The same decimal spelled differently: `12.50` -> `12.5`, else `1234e-2`."""
    written = cents_text(cents).astype(str)
    stripped = np.char.rstrip(np.char.rstrip(written, "0"), ".")
    return np.where(stripped != written, stripped, np.char.add(cents.astype(str), "e-2")).astype(object)


@text
def tenths_text(tenths: np.ndarray) -> np.ndarray:
    """Scores with one decimal, whole scores without one (`734.5`, `734`)."""
    whole = (tenths // 10).astype(str).astype(object)
    rest = tenths % 10
    out = whole.copy()
    m = rest != 0
    out[m] = whole[m] + "." + rest[m].astype(str).astype(object)
    return out


@text
def session_ids(numbers: np.ndarray) -> np.ndarray:
    return np.char.add("S", np.char.zfill(numbers.astype(str), 9)).astype(object)
