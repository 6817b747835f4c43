"""The `customers` source: the online shop's and the stores' records of each customer.

Each row is one system's whole record of a customer at `updated_at`. The two systems disagree the
way real ones do: most customers are known to the shop, fewer to the stores, some to one system
only; the store often does not know the e-mail or the sign-up date; a change reaches the second
system days later, sometimes with its own monthly charge, and a few records of both systems carry
the same `updated_at`; records are re-sent unchanged (nothing golden changes). Contracts and
payment methods change over time, and they carry a churn signal: a customer who will stop soon
is more likely to pay by electronic check and, in the months before it stops, often moves to a
month-to-month contract.
"""

from __future__ import annotations

import numpy as np

from batch_platform.sample_data.dirt import Rows, allocate, bad_timestamps, category_variant, customer_ids, cycle
from batch_platform.sample_data.population import DAY_S, US, Schedule, World
from batch_platform.sample_data.source import SourceGenerator
from batch_platform.sample_data.spelling import STYLE, cents_text, render_ts, snap, styles

SYSTEMS = ("online", "store")
CONTRACTS = ("month-to-month", "one-year", "two-year")
PAYMENT_METHODS = ("electronic check", "credit card", "bank transfer", "mailed check")
COUNTRIES = ("DE", "FR", "GB", "NL", "US")
_BASE_CHARGES = (7000, 6000, 5000)
"""Monthly charges in cents around which each contract's customers pay."""
_UNKNOWN = -1
_BAD_SYSTEMS = ("web", "POS", "crm")
_BAD_CONTRACTS = ("monthly", "3-year", "none")
_BAD_CHARGES = ("abc", "12,50", "n/a")
_BAD_SIGNUPS = ("yesterday", "2023-02-30", "31/12/2022")


class Customers(SourceGenerator):
    source = "customers"
    columns = (
        "customer_id",
        "source_system",
        "updated_at",
        "email",
        "country",
        "signup_date",
        "contract",
        "payment_method",
        "monthly_charges",
    )
    dirt_rates = {
        "blank_customer_id": 0.005,
        "padded_customer_id": 0.01,
        "bad_timestamp": 0.005,
        "future_timestamp": 0.003,
        "unknown_source_system": 0.004,
        "unknown_contract": 0.004,
        "bad_charges": 0.004,
        "negative_charges": 0.003,
        "bad_signup_date": 0.004,
        "exact_duplicate": 0.008,
        "category_variant": 0.03,
    }
    quarantined = (
        "blank_customer_id",
        "bad_timestamp",
        "future_timestamp",
        "unknown_source_system",
        "unknown_contract",
        "bad_charges",
        "negative_charges",
        "bad_signup_date",
    )
    duplicates = ("exact_duplicate",)

    def draw(self, rng: np.random.Generator, world: World, schedule: Schedule) -> dict[str, np.ndarray]:
        """Every record of both systems over the history (module docstring), one entry per record."""
        pop, cal = world.pop, world.cal
        n = len(pop.ids)
        first_s, last_s = int(cal.bounds_s[0]), int(cal.bounds_s[-1])
        q_len = (cal.bounds_s[1:] - cal.bounds_s[:-1]).astype(float)
        start_s = cal.bounds_s[pop.start_q] + (pop.start_u * q_len[pop.start_q]).astype(np.int64)
        end_q = np.minimum(pop.end_q, cal.n - 1)
        stops = pop.end_q < cal.n
        end_s = np.where(stops, cal.bounds_s[end_q] + (pop.end_u * q_len[end_q]).astype(np.int64), last_s)
        short = (pop.end_q - pop.start_q) < 4

        online = rng.random(n) < 0.85
        store = rng.random(n) < 0.55
        store |= ~online
        contract = np.where(short, rng.choice(3, size=n, p=[0.7, 0.2, 0.1]), rng.choice(3, size=n, p=[0.3, 0.35, 0.35]))
        payment = np.where(
            rng.random(n) < np.where(short, 0.65, 0.15), 0, rng.choice([1, 2, 3], size=n, p=[0.45, 0.35, 0.2])
        )
        charges = np.array(_BASE_CHARGES)[contract] + rng.integers(-1500, 2500, n)
        country = rng.choice(len(COUNTRIES), size=n, p=[0.35, 0.2, 0.2, 0.15, 0.1])
        existing = pop.start_q == 0
        signup_s = np.where(existing, first_s - rng.integers(30, 1800, n) * DAY_S, start_s)
        store_knows_email = rng.random(n) < 0.5
        store_knows_signup = rng.random(n) < 0.6

        out: dict[str, list[int]] = {k: [] for k in ("cust", "t_s", "system", "contract", "payment", "cents")}
        out.update(country=[], signup_day=[], email=[])

        def record(i: int, t: int, system: int, state: tuple[int, int, int, int]) -> None:
            if not first_s <= t < last_s:
                return
            c, p, cents, email = state
            out["cust"].append(i)
            out["t_s"].append(t)
            out["system"].append(system)
            out["contract"].append(c)
            out["payment"].append(p)
            out["cents"].append(cents)
            out["country"].append(country[i])
            known_signup = system == 0 or store_knows_signup[i]
            out["signup_day"].append(int(signup_s[i] // DAY_S) if known_signup else _UNKNOWN)
            out["email"].append(email if system == 0 or store_knows_email[i] else _UNKNOWN)

        days = rng.integers(0, 40, size=(n, 8)) * DAY_S + rng.integers(0, DAY_S, size=(n, 8))
        coin = rng.random((n, 6))
        touch = rng.random((n, 8, 2))
        for i in range(n):
            state = (int(contract[i]), int(payment[i]), int(charges[i]), 0)
            begin = max(int(start_s[i]), first_s)
            changes: list[tuple[int, tuple[int, int, int, int]]] = []
            if stops[i] and coin[i, 0] < 0.8 and state[0] != 0:  # moves to month-to-month before it stops
                lead = 20 * DAY_S + int(days[i, 0]) * 2
                changes.append((int(end_s[i]) - lead, (0, state[1], state[2] + 1000, 0)))
            if coin[i, 1] < 0.25:  # a contract or payment change at any time
                t = begin + int(coin[i, 2] * max(int(end_s[i]) - begin, DAY_S))
                new = (min(state[0] + 1, 2), state[1], state[2] - 500, 0) if coin[i, 3] < 0.6 else None
                new = new or (state[0], (state[1] + 1) % len(PAYMENT_METHODS), state[2], 0)
                changes.append((t, new))
            if coin[i, 4] < 0.1:  # a new e-mail address
                changes.append((begin + int(coin[i, 5] * max(int(end_s[i]) - begin, DAY_S)), None))
            systems = [s for s, known in ((0, online[i]), (1, store[i])) if known]
            held: dict[int, list[tuple[int, tuple[int, int, int, int]]]] = {}
            for s in systems:
                held[s] = [(begin + int(days[i, 1 + s]), state)]
            for k, (t, new) in enumerate(sorted(changes, key=lambda change: change[0])):
                t = max(t, begin + int(days[i, 1]) + DAY_S)
                state = (state[0], state[1], state[2], state[3] + 1) if new is None else (*new[:3], state[3])
                first, *others = systems if coin[i, k] < 0.7 else systems[::-1]
                held[first].append((t, state))
                for s in others:
                    lag = 0 if coin[i, 5] < 0.15 else int(days[i, 3 + k])  # same updated_at in both systems
                    local = state if coin[i, 2] < 0.7 else (*state[:2], state[2] + 150, state[3])
                    held[s].append((t + lag, local))
            for q in range(int(pop.start_q[i]), int(end_q[i]) + 1):  # records re-sent unchanged
                for s in systems:
                    if touch[i, q % 8, s] < 0.3:
                        t = int(cal.bounds_s[q]) + int(touch[i, q % 8, s] / 0.3 * q_len[q])
                        before = max((e for e in held[s] if e[0] < t), default=None, key=lambda e: e[0])
                        if before is not None and t < end_s[i]:
                            held[s].append((t, before[1]))
            for s in systems:
                for t, kept in held[s]:
                    record(i, t, s, kept)
        arrays = {k: np.asarray(v, dtype=np.int64) for k, v in out.items()}
        arrays["t_s"] = _distinct_seconds(arrays["cust"], arrays["system"], arrays["t_s"])
        return arrays

    def rows(
        self, rng: np.random.Generator, world: World, qi: int, records: dict[str, np.ndarray], extra_on: bool
    ) -> Rows:
        """Dirty the records arriving in quarter `qi` and render them as text."""
        r = records
        n = len(r["cust"])
        sl = allocate(rng, n, self.dirt_rates)
        style = styles(rng, n)
        style[style == STYLE["date_only"]] = STYLE["space"]  # a record's time is never a bare date
        t_us = snap(rng, r["t_s"] * US, style)
        future = sl["future_timestamp"]
        t_us[future] = (int(world.cal.bounds_s[qi + 1]) + rng.integers(3600, 90 * DAY_S, len(future))) * US
        updated = render_ts(t_us, style)
        updated[sl["bad_timestamp"]] = bad_timestamps(t_us[sl["bad_timestamp"]])
        system = np.array(SYSTEMS, dtype=object)[r["system"]]
        system[sl["unknown_source_system"]] = cycle(_BAD_SYSTEMS, len(sl["unknown_source_system"]))
        contract = np.array(CONTRACTS, dtype=object)[r["contract"]]
        contract[sl["unknown_contract"]] = cycle(_BAD_CONTRACTS, len(sl["unknown_contract"]))
        charges = cents_text(r["cents"])
        charges[sl["bad_charges"]] = cycle(_BAD_CHARGES, len(sl["bad_charges"]))
        charges[sl["negative_charges"]] = cents_text(-r["cents"][sl["negative_charges"]])
        signup = np.where(
            r["signup_day"] == _UNKNOWN, "", np.datetime_as_string(r["signup_day"].astype("datetime64[D]"))
        ).astype(object)
        signup[sl["bad_signup_date"]] = cycle(_BAD_SIGNUPS, len(sl["bad_signup_date"]))
        ids = world.pop.ids[r["cust"]]
        email = np.where(r["email"] == _UNKNOWN, "", _emails(ids, r["email"])).astype(object)
        payment = np.array(PAYMENT_METHODS, dtype=object)[r["payment"]]
        variant = sl["category_variant"]
        kinds = np.arange(len(variant))
        contract[variant] = category_variant(contract[variant], kinds)
        payment[variant] = category_variant(payment[variant], kinds + 1)
        cols = {
            "customer_id": customer_ids(world.pop, r["cust"], sl),
            "source_system": system,
            "updated_at": updated,
            "email": email,
            "country": np.array(COUNTRIES, dtype=object)[r["country"]],
            "signup_date": signup,
            "contract": contract,
            "payment_method": payment,
            "monthly_charges": charges,
        }
        exact = sl["exact_duplicate"]
        columns = {c: np.concatenate([v, v[exact]]) for c, v in cols.items()}
        idx = np.concatenate([np.arange(n), exact])
        dirt = {k: len(v) for k, v in sl.items() if k != "clean"}
        return Rows(columns, r["file"][idx], r["t_s"][idx], dirt, sl["clean"])


def _distinct_seconds(cust: np.ndarray, system: np.ndarray, t_s: np.ndarray) -> np.ndarray:
    """Times moved on by a second where one system would otherwise hold two records of a customer
    at the same second: every clean record is its own silver key."""
    t_s = t_s.copy()
    for _ in range(20):
        order = np.lexsort((t_s, system, cust))
        same = np.zeros(len(t_s), dtype=bool)
        a, b = order[:-1], order[1:]
        same[b] = (cust[a] == cust[b]) & (system[a] == system[b]) & (t_s[a] == t_s[b])
        if not same.any():
            break
        t_s[same] += 1
    return t_s


def _emails(ids: np.ndarray, version: np.ndarray) -> np.ndarray:
    base = np.char.lower(ids.astype(str))
    suffix = np.where(version > 0, np.char.add(".", version.astype(str)), "")
    return np.char.add(np.char.add(base, suffix), "@example.com")
