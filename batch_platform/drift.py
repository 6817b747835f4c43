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

`drift_pairs` computes every pair of a multi-quarter run from the one frame that holds their
quarters, in five Spark jobs whatever the number of quarters, pairs and columns (the deciles of
every reference, the bin counts of every quarter in every reference's bins, the category counts,
the KS of every pair, and the null counts): a quarter's features are a few thousand rows, so the
cost is jobs, not data. Only bin counts and per-pair maxima reach the driver, never a table's rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

DECILES = [i / 10 for i in range(1, 10)]
ACCURACY = 1000
"""`percentile_approx`'s accuracy: relative error 1 / 1000 = 0.001, as SPEC.md asks."""
SHARE_FLOOR = 0.0001
SIDE = "_side"


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


def decile_edges(frame: DataFrame, by: str, references: Sequence[str], columns: Sequence[str]) -> dict:
    """Per reference (a value of `by`) and numeric column, its distinct deciles (empty: no value)."""
    if not columns or not references:
        return {r: {c: [] for c in columns} for r in references}
    rows = (
        frame.where(F.col(by).isin(list(references)))
        .groupBy(by)
        .agg(*[F.percentile_approx(_double(c), DECILES, ACCURACY).alias(c) for c in columns])
        .collect()
    )
    found = {row[by]: row for row in rows}
    return {r: {c: sorted(set(found[r][c] or [])) if r in found else [] for c in columns} for r in references}


def _bin_counts(frame: DataFrame, by: str, edges: Mapping[str, Mapping[str, Sequence[float]]]) -> dict:
    """Per (reference, quarter), per numeric column, the quarter's non-null values in each bin of the
    reference's edges (k edges make k + 1 bins): one aggregation over every quarter."""
    aggregates, names = [], {}
    for r, (reference, columns) in enumerate(edges.items()):
        for c, (column, cuts) in enumerate(columns.items()):
            value = _double(column)
            index = sum((value > F.lit(e)).cast("int") for e in cuts) if cuts else F.lit(0)
            for i in range(len(cuts) + 1):
                name = f"b{r}_{c}_{i}"
                names[(reference, column, i)] = name
                aggregates.append(F.count(F.when(value.isNotNull() & (index == i), 1)).alias(name))
    if not aggregates:
        return {}
    rows = frame.groupBy(by).agg(*aggregates).collect()
    return {
        (reference, row[by]): {
            column: [row[names[(reference, column, i)]] for i in range(len(cuts) + 1)]
            for column, cuts in columns.items()
        }
        for reference, columns in edges.items()
        for row in rows
    }


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


def drift_pairs(
    frame: DataFrame, by: str, pairs: Sequence[tuple[str, str]], numeric: Sequence[str], categorical: Sequence[str] = ()
) -> dict[tuple[str, str], dict[str, Drift]]:
    """PSI of every column and KS of the numeric ones for each pair (R, S) of values of `by` in
    `frame` (a reference's quarter may be a current quarter of another pair)."""
    pairs = list(dict.fromkeys(pairs))
    quarters = sorted({q for pair in pairs for q in pair})
    frame = frame.where(F.col(by).isin(quarters))
    edges = decile_edges(frame, by, sorted({r for r, _ in pairs}), numeric)
    counts = _bin_counts(frame, by, edges) if numeric else {}
    ks = ks_statistics(frame, by, pairs, numeric)
    categories = _category_counts(frame, by, categorical)
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
    return result


def drift(
    reference: DataFrame, current: DataFrame, numeric: Sequence[str], categorical: Sequence[str] = ()
) -> dict[str, Drift]:
    """`drift_pairs` of two frames: S = `current` against R = `reference`."""
    both = reference.withColumn(SIDE, F.lit("R")).unionByName(current.withColumn(SIDE, F.lit("S")))
    return drift_pairs(both, SIDE, [("R", "S")], numeric, categorical)[("R", "S")]


def null_rates(frame: DataFrame, by: str, columns: Sequence[str]) -> dict[str, dict[str, float | None]]:
    """Per value of `by`, the share of its rows with a null in each column (a quarter without rows
    is absent: it has no rate)."""
    rows = frame.groupBy(by).agg(F.count(F.lit(1)).alias("__rows"), *[F.count(F.col(c)).alias(c) for c in columns])
    return {row[by]: {c: 1 - row[c] / row["__rows"] for c in columns} for row in rows.collect()}
