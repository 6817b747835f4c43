"""Drift statistics of SPEC.md ("Monitoring", Definitions), computed by Spark over two quarters.

R is the reference (an earlier quarter), S the current one; both are frames holding the same
columns. For every column the statistics use only its non-null values:

- numeric PSI: bin edges are the distinct deciles of R (`approxQuantile`, relative error 0.001),
  bins (−∞, e1], (e1, e2], …, (ek, +∞); categorical PSI: one bin per category seen in R or S. With
  p_i and q_i the shares of R and S in bin i, each floored at `SHARE_FLOOR`,
  PSI = Σ (q_i − p_i) · ln(q_i / p_i).
- KS (numeric only): max over x of |F_R(x) − F_S(x)|, the empirical distribution functions
  compared at every distinct value of R ∪ S.

A column with no non-null value in R or in S has neither (`None`, never 0). Each statistic is one
aggregation per frame over all columns at once; only bin counts and per-column maxima reach the
driver, never a table's rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

DECILES = [i / 10 for i in range(1, 10)]
QUANTILE_ERROR = 0.001
SHARE_FLOOR = 0.0001


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


def decile_edges(reference: DataFrame, columns: Sequence[str]) -> dict[str, list[float]]:
    """The distinct deciles of each numeric column of R (empty when it has no non-null value)."""
    if not columns:
        return {}
    doubles = reference.select(*[F.col(c).cast("double").alias(c) for c in columns])
    quantiles = doubles.approxQuantile(list(columns), DECILES, QUANTILE_ERROR)
    return {c: sorted(set(q)) for c, q in zip(columns, quantiles, strict=True)}


def _bin_counts(frame: DataFrame, edges: Mapping[str, Sequence[float]]) -> dict[str, list[int]]:
    """How many non-null values of each column fall in each bin (k edges make k + 1 bins)."""
    aggregates = []
    for column, cuts in edges.items():
        value = F.col(column).cast("double")
        index = sum((value > F.lit(e)).cast("int") for e in cuts) if cuts else F.lit(0)
        aggregates += [
            F.count(F.when(value.isNotNull() & (index == i), 1)).alias(f"{column}__bin{i}")
            for i in range(len(cuts) + 1)
        ]
    if not aggregates:
        return {}
    row = frame.agg(*aggregates).first()
    return {column: [row[f"{column}__bin{i}"] for i in range(len(cuts) + 1)] for column, cuts in edges.items()}


def _category_counts(frame: DataFrame, columns: Sequence[str]) -> dict[str, dict[str, int]]:
    if not columns:
        return {}
    pairs = F.explode(F.array(*[F.struct(F.lit(c).alias("f"), F.col(c).cast("string").alias("v")) for c in columns]))
    counted = (
        frame.select(pairs.alias("p")).select("p.f", "p.v").where(F.col("v").isNotNull()).groupBy("f", "v").count()
    )
    counts: dict[str, dict[str, int]] = {c: {} for c in columns}
    for row in counted.collect():
        counts[row["f"]][row["v"]] = row["count"]
    return counts


def ks_statistics(reference: DataFrame, current: DataFrame, columns: Sequence[str]) -> dict[str, float | None]:
    """Two-sample Kolmogorov–Smirnov statistic of each numeric column, in one Spark job."""
    if not columns:
        return {}

    def long(frame: DataFrame, side: str) -> DataFrame:
        pairs = F.explode(
            F.array(*[F.struct(F.lit(c).alias("f"), F.col(c).cast("double").alias("v")) for c in columns])
        )
        return (
            frame.select(pairs.alias("p"))
            .select("p.f", "p.v")
            .where(F.col("v").isNotNull())
            .withColumn("r", F.lit(1 if side == "r" else 0))
            .withColumn("s", F.lit(1 if side == "s" else 0))
        )

    at_value = (
        long(reference, "r")
        .unionByName(long(current, "s"))
        .groupBy("f", "v")
        .agg(F.sum("r").alias("r"), F.sum("s").alias("s"))
    )
    upto = Window.partitionBy("f").orderBy("v").rowsBetween(Window.unboundedPreceding, Window.currentRow)
    whole = Window.partitionBy("f")
    gaps = (
        at_value.select(
            "f",
            F.sum("r").over(upto).alias("r_upto"),
            F.sum("s").over(upto).alias("s_upto"),
            F.sum("r").over(whole).alias("r_n"),
            F.sum("s").over(whole).alias("s_n"),
        )
        .where((F.col("r_n") > 0) & (F.col("s_n") > 0))
        .groupBy("f")
        .agg(F.max(F.abs(F.col("r_upto") / F.col("r_n") - F.col("s_upto") / F.col("s_n"))).alias("ks"))
    )
    found = {row["f"]: row["ks"] for row in gaps.collect()}
    return {c: found.get(c) for c in columns}


def drift(
    reference: DataFrame, current: DataFrame, numeric: Sequence[str], categorical: Sequence[str] = ()
) -> dict[str, Drift]:
    """PSI of every column and KS of the numeric ones, S = `current` against R = `reference`."""
    edges = decile_edges(reference, numeric)
    r_bins, s_bins = _bin_counts(reference, edges), _bin_counts(current, edges)
    ks = ks_statistics(reference, current, numeric)
    result = {
        c: Drift(
            psi=psi(r_bins[c], s_bins[c]) if edges[c] else None,
            ks=ks[c] if edges[c] else None,
            bins=bin_labels(edges[c]),
            reference_counts=tuple(r_bins[c]),
            current_counts=tuple(s_bins[c]),
        )
        for c in numeric
    }
    r_cats, s_cats = _category_counts(reference, categorical), _category_counts(current, categorical)
    for c in categorical:
        categories = tuple(sorted(set(r_cats[c]) | set(s_cats[c])))
        r_counts = tuple(r_cats[c].get(k, 0) for k in categories)
        s_counts = tuple(s_cats[c].get(k, 0) for k in categories)
        result[c] = Drift(psi(r_counts, s_counts), None, categories, r_counts, s_counts)
    return result


def null_rates(frame: DataFrame, columns: Sequence[str]) -> dict[str, float | None]:
    """The share of rows with a null in each column (None for a frame without rows)."""
    if not columns:
        return {}
    row = frame.agg(F.count(F.lit(1)).alias("__rows"), *[F.count(F.col(c)).alias(c) for c in columns]).first()
    n = row["__rows"]
    return {c: (1 - row[c] / n) if n else None for c in columns}
