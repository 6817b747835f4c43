"""What a scoring request names — the cutoff, the model — checked without Spark, MLflow or Dagster,
so `batch-platform score` refuses a bad one at once (`batch_platform.cli`) and `score_landing`
refuses it before any work (`batch_platform.inference`).

The cutoff C (`as_of`) is the first day of a quarter, 00:00 UTC. Features are defined by quarters:
the lookback is the L silver partitions before C, each of them a calendar quarter of arrivals
(SPEC.md, "Gold"), and `ml/churn_scores` Q scores at C = the start of Q+1 (SPEC.md, "ML"). Scoring
at C is scoring the quarter Q that ends at C, so C is written `2026-01-01` or, equally, `2026-Q1`
(the quarter whose first day it is, as everywhere a quarter is typed). Any other day is refused, with
the two quarter starts around it named.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from batch_platform.partitions import (
    QuarterError,
    label_of,
    last_complete_quarter,
    parse_quarter,
    quarter_end,
    quarter_start,
    shift,
    to_label,
)

MODEL_URI_FORMS = "models:/<name>@<alias> (e.g. models:/batch_platform_churn@champion) or models:/<name>/<version>"
_MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>[1-9]\d*)|@(?P<alias>[A-Za-z0-9_.-]+))$")


class ScoringError(Exception):
    """A scoring request that cannot be carried out; the message says why and what would do."""


class AsOfError(ScoringError, ValueError):
    """An `as_of` that is not a cutoff the platform can score at."""


@dataclass(frozen=True)
class ModelRef:
    """A registered model version, by alias or by number, as a `models:/` URI names it."""

    uri: str
    name: str
    version: int | None
    alias: str | None


def scored_quarter(as_of: str | date | datetime, first_quarter: str, now: datetime | None = None) -> str:
    """The quarter Q ending at the cutoff `as_of` (C = start of Q+1), when C is the first day of a
    quarter that has begun and Q is a quarter of the platform (from `first_quarter` on: before it
    there is nothing to look back on). Else `AsOfError`, naming the value."""
    cutoff = _cutoff(as_of)
    quarter = shift(label_of(cutoff), -1)
    first = to_label(first_quarter)
    if cutoff > (now or datetime.now(UTC)):
        latest = quarter_end(last_complete_quarter(now)).date()
        raise AsOfError(
            f"as-of {cutoff.date()} is in the future: the cutoff must have passed, so that every file that "
            f"arrived before it is in the landing zone (the latest is {latest})"
        )
    if parse_quarter(quarter) < parse_quarter(first):
        raise AsOfError(
            f"as-of {cutoff.date()}: the platform's quarters start at {first} (batch.first_quarter), so no quarter "
            f"ends at or before it and there is nothing to look back on; the first cutoff is {quarter_end(first).date()}"
        )
    return quarter


def _cutoff(as_of: str | date | datetime) -> datetime:
    """`as_of` as the UTC instant it names, when that is the first instant of a quarter."""
    if isinstance(as_of, datetime):
        moment = as_of if as_of.tzinfo is not None else as_of.replace(tzinfo=UTC)
        moment = moment.astimezone(UTC)
        if moment.time() != datetime.min.time():
            raise AsOfError(f"as-of {as_of.isoformat()} is not midnight UTC: the cutoff is the first day of a quarter")
        day = moment.date()
    elif isinstance(as_of, date):
        day = as_of
    else:
        text = str(as_of).strip()
        try:
            return quarter_start(text)
        except QuarterError:
            pass
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise AsOfError(
                f"as-of {text!r} is not a date: write the cutoff as the first day of a quarter, YYYY-MM-DD "
                "(e.g. 2026-01-01), or as that quarter's label (2026-Q1)"
            ) from None
    label = label_of(day)
    if day != quarter_start(label).date():
        raise AsOfError(
            f"as-of {day} is not the first day of a quarter: features and their lookback are defined by quarters "
            f"(SPEC.md, 'Gold'), so the cutoff is one of the quarter starts, e.g. {quarter_start(label).date()} or "
            f"{quarter_end(label).date()}"
        )
    return quarter_start(label)


def parse_model_uri(uri: str) -> ModelRef:
    """A `models:/<name>@<alias>` or `models:/<name>/<version>` URI; else `ScoringError`. Only a
    registered version can be recorded on every score, as `ml/churn_scores` records it."""
    found = _MODEL_URI.match(uri.strip())
    if found is None:
        raise ScoringError(f"model {uri!r} is not a registered model's URI: write {MODEL_URI_FORMS}")
    version = found.group("version")
    return ModelRef(uri.strip(), found.group("name"), int(version) if version else None, found.group("alias"))


def landing_root(landing: str | os.PathLike) -> str:
    """The landing root as a Hadoop path: a local folder made absolute (it must exist), a URI as given."""
    text = os.fspath(landing)
    if "://" in text:
        return text
    if not os.path.isdir(text):
        raise ScoringError(f"landing folder {text} does not exist (it holds <source>/<YYYY-MM-DD>/<file> folders)")
    return os.path.abspath(text)


def output_path(output: str | os.PathLike, overwrite: bool) -> str:
    """Where the scores go: a local path made absolute, refused when it exists unless `overwrite`; a URI as given."""
    text = os.fspath(output)
    if "://" in text:
        return text
    if os.path.exists(text) and not overwrite:
        raise ScoringError(f"output {text} exists: choose another path, or overwrite it (--overwrite)")
    return os.path.abspath(text)
