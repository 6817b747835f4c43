"""`python -m benchmarks.report_pages [--pages 8] [--repeat 3]`: the seconds the feature-drift check
spends drawing its report pages, without Spark.

Builds statistics of the shape `batch_platform.drift.drift_statistics` returns for every monitored
feature of `gold/customer_features` (numeric ones binned on their reference's distinct deciles,
categories per value; generated values, one quarter against two references), then times
`monitoring_report.feature_report` for one page and for `--pages` pages (a backfill's quarters),
with one reference (a backfill without models: Q-1 only) and with two (Q-1 and the champion's
quarter). Prints wall and CPU seconds and the page's size; the best of `--repeat` runs.
"""

import argparse
import time

import numpy as np

from batch_platform.drift import DECILES, Drift, bin_labels, psi
from batch_platform.monitoring import CATEGORICAL_FEATURES, MONITORED
from batch_platform.monitoring_report import feature_report

ROWS = 60_000
CATEGORIES = {"partner_segment": 4, "contract": 3, "payment_method": 4, "country": 12}


def _values(name: str, rng: np.random.Generator, shift: float) -> np.ndarray:
    if "amount" in name or "charges" in name or "score" in name:
        return rng.lognormal(4.0 + shift, 1.2, ROWS).round(2)
    return rng.poisson(20 * (1 + shift), ROWS).astype(float)


def _drift(name: str, rng: np.random.Generator, shift: float) -> Drift:
    if name in CATEGORICAL_FEATURES:
        names = tuple(f"{name[:4]}_{i}" for i in range(CATEGORIES.get(name, 5)))
        reference = tuple(int(c) for c in rng.multinomial(ROWS, np.full(len(names), 1 / len(names))))
        current = tuple(int(c) for c in rng.multinomial(ROWS, np.full(len(names), 1 / len(names))))
        return Drift(psi(reference, current), None, names, reference, current)
    before, after = _values(name, rng, 0.0), _values(name, rng, shift)
    edges = sorted(set(np.quantile(before, DECILES).tolist()))
    reference = tuple(int(c) for c in np.bincount(np.searchsorted(edges, before), minlength=len(edges) + 1))
    current = tuple(int(c) for c in np.bincount(np.searchsorted(edges, after), minlength=len(edges) + 1))
    return Drift(psi(reference, current), float(rng.uniform(0, 0.3)), bin_labels(edges), reference, current)


def pages(count: int, kinds: int, seed: int = 7) -> list[tuple]:
    """The arguments of `feature_report` for `count` quarters, each against `kinds` references."""
    rng = np.random.default_rng(seed)
    found = []
    for i in range(count):
        quarter = f"2024-Q{i % 4 + 1}" if i < 4 else f"2025-Q{i % 4 + 1}"
        references = {"previous": "2023-Q4", "champion": "2023-Q3"} if kinds == 2 else {"previous": "2023-Q4"}
        drifts = {kind: {name: _drift(name, rng, rng.uniform(0, 0.4)) for name in MONITORED} for kind in references}
        rates = {name: float(rng.uniform(0, 0.1)) for name in MONITORED}
        found.append((quarter, references, drifts, rates, 0.2))
    return found


def _timed(arguments: list[tuple], repeat: int) -> tuple[float, float, int]:
    best = (float("inf"), float("inf"), 0)
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        size = sum(len(feature_report(*one)) for one in arguments)
        best = min(best, (time.perf_counter() - wall, time.process_time() - cpu, size))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    feature_report(*pages(1, 2)[0])  # matplotlib's fonts and caches, as a check's first page pays them
    for kinds in (1, 2):
        for count in (1, args.pages):
            wall, cpu, size = _timed(pages(count, kinds), args.repeat)
            print(
                f"{count} page(s), {kinds} reference(s): {wall:.2f} s wall, {cpu:.2f} s CPU, "
                f"{wall / count:.2f} s a page, {size / count / 1024:.0f} KiB a page"
            )


if __name__ == "__main__":
    main()
