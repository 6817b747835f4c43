"""The benchmark's real-data case: the CDNOW transaction log as a landing zone of daily files.

CDNOW_master.txt (69,659 purchases by 23,570 customers of the online CD shop CDNOW, January 1997 to
June 1998; Fader & Hardie) is shipped by the `lifetimes` package on PyPI (`lifetimes/datasets/`),
which the `bench` extra installs; the file is read from the installed package, never downloaded.
Its lines are `customer_id  YYYYMMDD  number_of_cds  dollar_value`.

`write_landing` writes one CSV per day with purchases, `<landing>/operational/<YYYY-MM-DD>/cdnow_<YYYYMMDD>.csv`
(546 files, 6 quarters), with the contract columns `customer_id`, `event_time` (the date,
`YYYY-MM-DD`), `amount` (the dollar value), `currency` (`usd`) and the extra column
`number_of_cds` (kept in bronze, ignored after it); no `channel` column (a missing optional
column is NULL), no logs and no partner files. Nothing else about the data is changed: a customer
with two purchases of the same value on the same day is one event in silver, as SPEC.md's dedup
key says.
"""

from __future__ import annotations

import importlib.util
import json
from collections import defaultdict
from pathlib import Path

FIRST_QUARTER, LAST_QUARTER = "1997-Q1", "1998-Q2"
MARKER = "_cdnow.json"


def master_file() -> Path:
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or spec.origin is None:
        raise SystemExit(
            "the real-data case reads CDNOW_master.txt from the `lifetimes` package: pip install -e '.[bench]'"
        )
    path = Path(spec.origin).parent / "datasets" / "CDNOW_master.txt"
    if not path.is_file():
        raise SystemExit(f"{path} is missing from the installed `lifetimes` package")
    return path


def write_landing(landing: Path) -> dict:
    """The daily landing files (rewritten only when missing); a summary like the generator's manifest."""
    marker = landing / MARKER
    if marker.exists():
        return json.loads(marker.read_text())
    by_day: dict[str, list[str]] = defaultdict(list)
    customers: set[str] = set()
    for line in master_file().read_text().splitlines()[1:]:
        parts = line.split()
        if len(parts) != 4:
            continue
        customer, day, cds, value = parts
        iso = f"{day[:4]}-{day[4:6]}-{day[6:]}"
        by_day[iso].append(f"{customer},{iso},{value},usd,{cds}")
        customers.add(customer)
    rows_by_quarter: dict[str, int] = defaultdict(int)
    for iso, rows in sorted(by_day.items()):
        folder = landing / "operational" / iso
        folder.mkdir(parents=True, exist_ok=True)
        text = "customer_id,event_time,amount,currency,number_of_cds\n" + "\n".join(rows) + "\n"
        (folder / f"cdnow_{iso.replace('-', '')}.csv").write_text(text, encoding="utf-8")
        rows_by_quarter[f"{iso[:4]}-Q{(int(iso[5:7]) - 1) // 3 + 1}"] += len(rows)
    summary = {
        "source": "CDNOW_master.txt from the lifetimes package",
        "transactions": sum(rows_by_quarter.values()),
        "customers": len(customers),
        "files": len(by_day),
        "rows_by_source_quarter": {"operational": dict(sorted(rows_by_quarter.items())), "logs": {}, "external": {}},
    }
    marker.write_text(json.dumps(summary, indent=1) + "\n")
    return summary
