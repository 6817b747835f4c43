"""The `external` source: a partner's score and segment of each customer, once or twice a quarter."""

from __future__ import annotations

import numpy as np

from batch_platform.sample_data.dirt import Rows, allocate, category_variant, customer_ids, cycle
from batch_platform.sample_data.population import Schedule, World
from batch_platform.sample_data.source import SourceGenerator
from batch_platform.sample_data.spelling import tenths_text

PARTNER_SEGMENTS = ("gold", "silver", "bronze")
_BAD_SCORES = ("abc", "n/a", "")
_OUT_OF_RANGE_SCORES = ("9999", "-5")


class External(SourceGenerator):
    source = "external"
    columns = ("customer_id", "partner_score", "partner_segment")
    timed = False
    dirt_rates = {
        "blank_customer_id": 0.005,
        "padded_customer_id": 0.01,
        "bad_score": 0.005,
        "out_of_range_score": 0.005,
        "double_scored": 0.01,
        "exact_duplicate": 0.005,
        "category_variant": 0.03,
    }
    quarantined = ("blank_customer_id", "bad_score", "out_of_range_score")
    duplicates = ("exact_duplicate", "double_scored")

    def draw(self, rng: np.random.Generator, world: World, schedule: Schedule) -> dict[str, np.ndarray]:
        """One or two scores per customer per quarter from its start quarter on (the partner keeps
        scoring churned customers), in distinct folders of the quarter."""
        pop, cal, sched = world.pop, world.cal, schedule
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

    def rows(
        self, rng: np.random.Generator, world: World, qi: int, records: dict[str, np.ndarray], extra_on: bool
    ) -> Rows:
        """Dirty the partner scores arriving in quarter `qi` and render them."""
        ext = records
        n = len(ext["cust"])
        sl = allocate(rng, n, self.dirt_rates)
        tenths = ext["tenths"]
        cid = customer_ids(world.pop, ext["cust"], sl)
        score = tenths_text(tenths)
        score[sl["bad_score"]] = cycle(_BAD_SCORES, len(sl["bad_score"]))
        score[sl["out_of_range_score"]] = cycle(_OUT_OF_RANGE_SCORES, len(sl["out_of_range_score"]))
        segment = np.array(PARTNER_SEGMENTS, dtype=object)[_segment_of(tenths)]
        variant = sl["category_variant"]
        segment[variant] = category_variant(segment[variant], np.arange(len(variant)))
        cols = {"customer_id": cid, "partner_score": score, "partner_segment": segment}

        exact, double = sl["exact_duplicate"], sl["double_scored"]
        delta = rng.integers(10, 1500, len(double)) * np.where(rng.random(len(double)) < 0.5, -1, 1)
        rescored = np.clip(tenths[double] + delta, 0, 10_000)
        rescored = np.where(rescored == tenths[double], (tenths[double] + 100) % 10_001, rescored)
        copy = {
            "customer_id": cid[double],
            "partner_score": tenths_text(rescored),
            "partner_segment": np.array(PARTNER_SEGMENTS, dtype=object)[_segment_of(rescored)],
        }
        columns = {c: np.concatenate([v, v[exact], copy[c]]) for c, v in cols.items()}
        idx = np.concatenate([np.arange(n), exact, double])
        dirt = {k: len(v) for k, v in sl.items() if k != "clean"}
        return Rows(columns, ext["file"][idx], ext["cust"][idx], dirt, sl["clean"])


def _segment_of(tenths: np.ndarray) -> np.ndarray:
    return np.where(tenths >= 7000, 0, np.where(tenths >= 4000, 1, 2))
