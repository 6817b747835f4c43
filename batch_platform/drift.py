"""Drift statistics of SPEC.md ("Monitoring", Definitions), computed by Spark.

For a pair (R, S) of quarters of one table, R the reference and S the current quarter, every column
is compared over its non-null values:

- numeric PSI: bin edges are the distinct deciles of R (`percentile_approx` with accuracy 1000,
  i.e. relative error 0.001), bins (−∞, e1], (e1, e2], …, (ek, +∞); categorical PSI: one bin per
  category seen in R or S. With p_i and q_i the shares of R and S in bin i, each floored at
  `SHARE_FLOOR`, PSI = Σ (q_i − p_i) · ln(q_i / p_i).
- KS (numeric only): max over x of |F_R(x) − F_S(x)|, the empirical distribution functions
  compared at every distinct value of R ∪ S.

A column with no non-null value in R or in S has neither (`None`, never 0).

`drift_statistics` computes every pair of a multi-quarter run, and every quarter's null rates, from
the one frame that holds their quarters, persisted for the call and unpersisted on the way out: the
frame (a Delta read) is scanned once, whatever the number of quarters, pairs and columns. One
aggregation per quarter gives the deciles of every reference and the null counts; then three
aggregations run side by side (`AT_ONCE` threads: their jobs are small and mostly wait on the
driver): the bin counts of each quarter in the bins of its own references, with the values in long
form (a wide aggregation of one count per reference, column and bin made a plan of some thousand
expressions that Spark took longer to compile than to run), the category counts, and the KS of
every pair. A quarter's features are a few thousand rows, so the cost is jobs, not data. Only bin
counts, category counts and per-pair maxima reach the driver, never a table's rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

DECILES = [i / 10 for i in range(1, 10)]
ACCURACY = 1000
"""`percentile_approx`'s accuracy: relative error 1 / 1000 = 0.001, as SPEC.md asks."""
SHARE_FLOOR = 0.0001
SIDE = "_side"
ROWS = "__rows"
AT_ONCE = 3
"""Aggregations `drift_statistics` submits side by side once the deciles are known: bins, categories, KS."""


@dataclass(frozen=True)
class Drift:
    """One column's drift of S against R: `psi` and `ks` are None when either side has no value;
    `bins` and the counts of R and S in each are what the PSI was computed from (for a picture)."""

    psi: float | None
    ks: float | None = None
    bins: tuple[str, ...] = ()
    reference_counts: tuple[int, ...] = ()
    current_counts: tuple[int, ...] = ()


def bin_labels(edges: Sequence[float]) -> tuple[str, ...]:
    """`≤ e1`, `(e1, e2]`, …, `> ek`: the bins of `edges`, for a reader."""
    if not edges:
        return ("all",)
    cuts = [f"{e:.4g}" for e in edges]
    return (f"≤ {cuts[0]}", *(f"({a}, {b}]" for a, b in zip(cuts, cuts[1:], strict=False)), f"> {cuts[-1]}")


def psi(reference: Sequence[int], current: Sequence[int]) -> float | None:
    """PSI of two lists of bin counts (the same bins, in the same order); None when a side is empty."""
    r_total, s_total = sum(reference), sum(current)
    if not r_total or not s_total:
        return None
    value = 0.0
    for r, s in zip(reference, current, strict=True):
        p, q = max(r / r_total, SHARE_FLOOR), max(s / s_total, SHARE_FLOOR)
        value += (q - p) * math.log(q / p)
    return value


def _double(column: str) -> Column:
    return F.col(column).cast("double")


def _per_quarter(
    frame: DataFrame, by: str, references: Sequence[str], numeric: Sequence[str], rated: Sequence[str]
) -> tuple[dict, dict]:
    """One aggregation per value of `by`: the distinct deciles of each `numeric` column in each
    reference (empty: no value), and the share of each value's rows with a null in each `rated`
    column (a value without rows is absent: it has no rate)."""
    chosen = F.col(by).isin(list(references)) if references else F.lit(False)
    deciles = [F.percentile_approx(F.when(chosen, _double(c)), DECILES, ACCURACY).alias(f"d_{c}") for c in numeric]
    counts = [F.count(F.col(c)).alias(f"n_{c}") for c in rated]
    rows = frame.groupBy(by).agg(F.count(F.lit(1)).alias(ROWS), *deciles, *counts).collect()
    found = {row[by]: row for row in rows}
    edges = {r: {c: sorted(set(found[r][f"d_{c}"] or [])) if r in found else [] for c in numeric} for r in references}
    rates = {row[by]: {c: 1 - row[f"n_{c}"] / row[ROWS] for c in rated} for row in rows if row[ROWS]}
    return edges, rates


def decile_edges(frame: DataFrame, by: str, references: Sequence[str], columns: Sequence[str]) -> dict:
    """Per reference (a value of `by`) and numeric column, its distinct deciles (empty: no value)."""
    if not columns or not references:
        return {r: {c: [] for c in columns} for r in references}
    return _per_quarter(frame.where(F.col(by).isin(list(references))), by, references, columns, ())[0]


def _bin_counts(
    frame: DataFrame, by: str, edges: Mapping[str, Mapping[str, Sequence[float]]], pairs: Sequence[tuple[str, str]]
) -> dict:
    """Per (R, S) of `pairs` and per (R, R), per numeric column, the non-null values of S (of R) in
    each bin of R's edges (k edges make k + 1 bins): one aggregation over the values in long form,
    each value binned against the references of its quarter only, by the number of edges below it."""
    against: dict[str, set[str]] = {}
    for r, s in pairs:
        against.setdefault(r, set()).add(r)
        against.setdefault(s, set()).add(r)
    columns = sorted({c for found in edges.values() for c in found})
    if not against or not columns:
        return {}

    def cuts(found: Mapping[str, Sequence[float]]) -> Column:
        return F.create_map(
            *[
                x
                for c in columns
                for x in (F.lit(c), F.array(*[F.lit(float(e)) for e in found[c]]).cast("array<double>"))
            ]
        )

    every = F.create_map(*[x for r in sorted({r for r, _ in pairs}) for x in (F.lit(r), cuts(edges[r]))])
    chosen = F.create_map(
        *[x for q, refs in sorted(against.items()) for x in (F.lit(q), F.array(*map(F.lit, sorted(refs))))]
    )
    values = _long(frame.where(F.col(by).isin(sorted(against))), by, columns, _double)
    binned = values.select("q", "f", "v", F.explode(chosen[F.col("q")]).alias("r")).select(
        "r", "q", "f", F.size(F.filter(every[F.col("r")][F.col("f")], lambda e: F.col("v") > e)).alias("b")
    )
    counts: dict = {}
    for row in binned.groupBy("r", "q", "f", "b").count().collect():
        found = counts.setdefault((row["r"], row["q"]), {})
        found.setdefault(row["f"], [0] * (len(edges[row["r"]][row["f"]]) + 1))[row["b"]] += row["count"]
    return counts


def _long(frame: DataFrame, by: str, columns: Sequence[str], value) -> DataFrame:
    pairs = F.explode(F.array(*[F.struct(F.lit(c).alias("f"), value(c).alias("v")) for c in columns]))
    return frame.select(F.col(by).alias("q"), pairs.alias("p")).select("q", "p.f", "p.v").where(F.col("v").isNotNull())


def _category_counts(frame: DataFrame, by: str, columns: Sequence[str]) -> dict:
    """Per (quarter, column), the count of each category: one aggregation."""
    if not columns:
        return {}
    counts: dict = {}
    for row in _long(frame, by, columns, lambda c: F.col(c).cast("string")).groupBy("q", "f", "v").count().collect():
        counts.setdefault((row["q"], row["f"]), {})[row["v"]] = row["count"]
    return counts


def ks_statistics(frame: DataFrame, by: str, pairs: Sequence[tuple[str, str]], columns: Sequence[str]) -> dict:
    """Per pair (R, S) and numeric column, the two-sample KS statistic (None when a side has no
    value): each quarter's distribution function at every distinct value, one job for all pairs."""
    if not columns or not pairs:
        return {pair: {c: None for c in columns} for pair in pairs}
    quarters = sorted({q for pair in pairs for q in pair})
    counted = _long(frame.where(F.col(by).isin(quarters)), by, columns, _double).groupBy("f", "v").pivot("q", quarters)
    counted = counted.count().fillna(0)
    upto = Window.partitionBy("f").orderBy("v").rowsBetween(Window.unboundedPreceding, Window.currentRow)
    whole = Window.partitionBy("f")
    share = counted.select(
        "f",
        *[
            (F.sum(F.col(f"`{q}`")).over(upto) / F.nullif(F.sum(F.col(f"`{q}`")).over(whole), F.lit(0))).alias(q)
            for q in quarters
        ],
    )
    gaps = share.groupBy("f").agg(
        *[F.max(F.abs(F.col(f"`{r}`") - F.col(f"`{s}`"))).alias(f"k{i}") for i, (r, s) in enumerate(pairs)]
    )
    found = {row["f"]: row for row in gaps.collect()}
    return {pair: {c: found[c][f"k{i}"] if c in found else None for c in columns} for i, pair in enumerate(pairs)}


def drift_statistics(
    frame: DataFrame,
    by: str,
    pairs: Sequence[tuple[str, str]],
    numeric: Sequence[str],
    categorical: Sequence[str] = (),
    rated: Sequence[str] = (),
) -> tuple[dict[tuple[str, str], dict[str, Drift]], dict[str, dict[str, float | None]]]:
    """PSI of every column and KS of the numeric ones for each pair (R, S) of values of `by` in
    `frame` (a reference's quarter may be a current quarter of another pair), and the null rates of
    the `rated` columns in every value of `by` (`null_rates`), from `frame` read once (module docstring)."""
    pairs = list(dict.fromkeys(pairs))
    quarters = sorted({q for pair in pairs for q in pair})
    references = sorted({r for r, _ in pairs})
    columns = list(dict.fromkeys([*numeric, *categorical, *rated]))
    cached = frame.select(by, *columns).persist()
    try:
        edges, rates = _per_quarter(cached, by, references, numeric, rated)
        paired = cached.where(F.col(by).isin(quarters))
        with ThreadPoolExecutor(AT_ONCE) as pool:
            counts = pool.submit(_bin_counts, paired, by, edges, pairs) if numeric and pairs else None
            ks = pool.submit(ks_statistics, paired, by, pairs, numeric)
            categories = pool.submit(_category_counts, paired, by, categorical) if pairs else None
            counts, ks = counts.result() if counts else {}, ks.result()
            categories = categories.result() if categories else {}
    finally:
        cached.unpersist()
    result = {}
    for r, s in pairs:
        found = {}
        for c in numeric:
            cuts = edges[r][c]
            r_counts = tuple(counts.get((r, r), {}).get(c, [0] * (len(cuts) + 1)))
            s_counts = tuple(counts.get((r, s), {}).get(c, [0] * (len(cuts) + 1)))
            found[c] = Drift(
                psi=psi(r_counts, s_counts) if cuts else None,
                ks=ks[(r, s)][c] if cuts and sum(s_counts) else None,
                bins=bin_labels(cuts),
                reference_counts=r_counts,
                current_counts=s_counts,
            )
        for c in categorical:
            in_r, in_s = categories.get((r, c), {}), categories.get((s, c), {})
            names = tuple(sorted(set(in_r) | set(in_s)))
            r_counts, s_counts = tuple(in_r.get(k, 0) for k in names), tuple(in_s.get(k, 0) for k in names)
            found[c] = Drift(psi(r_counts, s_counts), None, names, r_counts, s_counts)
        result[(r, s)] = found
    return result, rates


def drift_pairs(
    frame: DataFrame, by: str, pairs: Sequence[tuple[str, str]], numeric: Sequence[str], categorical: Sequence[str] = ()
) -> dict[tuple[str, str], dict[str, Drift]]:
    """`drift_statistics`' drift of every pair, without null rates."""
    return drift_statistics(frame, by, pairs, numeric, categorical)[0]


def drift(
    reference: DataFrame, current: DataFrame, numeric: Sequence[str], categorical: Sequence[str] = ()
) -> dict[str, Drift]:
    """`drift_pairs` of two frames: S = `current` against R = `reference`."""
    both = reference.withColumn(SIDE, F.lit("R")).unionByName(current.withColumn(SIDE, F.lit("S")))
    return drift_pairs(both, SIDE, [("R", "S")], numeric, categorical)[("R", "S")]


def null_rates(frame: DataFrame, by: str, columns: Sequence[str]) -> dict[str, dict[str, float | None]]:
    """Per value of `by`, the share of its rows with a null in each column (a quarter without rows
    is absent: it has no rate)."""
    return _per_quarter(frame, by, (), (), columns)[1]
