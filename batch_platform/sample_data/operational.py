"""The `operational` source: customers' transactions, with an amount in their currency."""

from __future__ import annotations

import numpy as np
import pandas as pd

from batch_platform.sample_data.events import EventSource
from batch_platform.sample_data.population import CURRENCIES, Schedule, World
from batch_platform.sample_data.spelling import cents_text, respelled_cents

CHANNELS = ("web", "app", "store")
DEVICES = ("ios", "android", "desktop")


class Operational(EventSource):
    source = "operational"
    columns = ("customer_id", "event_time", "amount", "currency", "channel")
    time_column = "event_time"
    key = "cents"
    categories = ("currency", "channel")
    extra_column = "device"
    dirt_rates = {
        "blank_customer_id": 0.004,
        "padded_customer_id": 0.01,
        "bad_amount": 0.004,
        "bad_timestamp": 0.004,
        "future_timestamp": 0.003,
        "exact_duplicate": 0.008,
        "respelled_duplicate": 0.008,
        "category_variant": 0.03,
    }
    quarantined = ("blank_customer_id", "bad_amount", "bad_timestamp", "future_timestamp")

    def draw(self, rng: np.random.Generator, world: World, schedule: Schedule) -> dict[str, np.ndarray]:
        """Amounts are a per-customer spend level times noise, 30% of them round to a half unit and
        3% are refunds; the currency is the customer's own."""
        pop = world.pop
        cust, t_s = world.cells.events(rng, world.density)
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

    def columns_of(self, records: dict[str, np.ndarray], sl: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Amounts in cents written as decimals; a bad amount is `abc`, a decimal comma or empty."""
        amount = cents_text(records["cents"])
        bad = sl["bad_amount"]
        comma = pd.Series(amount[bad], dtype=object).str.replace(".", ",", regex=False).to_numpy()
        amount[bad] = np.where(np.arange(len(bad)) % 3 == 0, "abc", np.where(np.arange(len(bad)) % 3 == 1, comma, ""))
        return {
            "amount": amount,
            "currency": np.array(CURRENCIES, dtype=object)[records["currency"]],
            "channel": np.array(CHANNELS, dtype=object)[records["channel"]],
        }

    def respelled(self, records: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
        return {"amount": respelled_cents(records["cents"][rows])}

    def extra(self, records: dict[str, np.ndarray]) -> np.ndarray:
        return np.array(DEVICES, dtype=object)[records["device"]]
