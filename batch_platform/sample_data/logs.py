"""The `logs` source: customers' interactions (logins, page views, support tickets)."""

from __future__ import annotations

import numpy as np

from batch_platform.sample_data.events import EventSource
from batch_platform.sample_data.population import Schedule, World
from batch_platform.sample_data.spelling import session_ids

LOG_EVENT_TYPES = ("login", "page_view", "support_ticket")
LOGS_PER_OPERATIONAL = 1.5
"""Log events per operational event, on average."""


class Logs(EventSource):
    source = "logs"
    columns = ("customer_id", "log_event_type", "log_timestamp")
    time_column = "log_timestamp"
    key = "type"
    categories = ("log_event_type",)
    extra_column = "session_id"
    dirt_rates = {
        "blank_customer_id": 0.004,
        "padded_customer_id": 0.01,
        "bad_timestamp": 0.004,
        "future_timestamp": 0.003,
        "exact_duplicate": 0.008,
        "respelled_duplicate": 0.008,
        "category_variant": 0.03,
    }
    quarantined = ("blank_customer_id", "bad_timestamp", "future_timestamp")

    def draw(self, rng: np.random.Generator, world: World, schedule: Schedule) -> dict[str, np.ndarray]:
        cust, t_s = world.cells.events(rng, world.density * LOGS_PER_OPERATIONAL)
        n = len(cust)
        return {
            "cust": cust,
            "t_s": t_s,
            "type": rng.choice(len(LOG_EVENT_TYPES), size=n, p=[0.45, 0.45, 0.10]),
            "session": rng.integers(0, 10**9, n),
        }

    def columns_of(self, records: dict[str, np.ndarray], sl: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"log_event_type": np.array(LOG_EVENT_TYPES, dtype=object)[records["type"]]}

    def extra(self, records: dict[str, np.ndarray]) -> np.ndarray:
        return session_ids(records["session"])
