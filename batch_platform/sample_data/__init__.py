"""A deterministic, deliberately dirty landing zone to develop and test the platform against.

`generate_landing` (run by `batch-platform sample-data`) writes
`<landing>/<folder>/<YYYY-MM-DD>/<name>.<csv|json|parquet>` exactly as SPEC.md ("Landing zone")
describes, for every source the bronze declarations name (`schemas.bronze.BRONZE_TABLES`: today
`operational`, `logs`, `external` and `customers`). The data behind it is a small customer population with a
start quarter, a per-customer activity level, dormant quarters and churn, so that the gold churn
label of SPEC.md is sometimes 1 and sometimes 0 and the features carry signal.

Every kind of dirt that the silver rules of SPEC.md handle is planted in small, fixed
proportions (each source's `dirt_rates`, with a floor per quarter so that every quarter holds
every kind even on a tiny population), and the returned manifest says how many of each were
planted and how many rows each bronze partition must hold. Two runs with the same arguments
write byte-identical files: everything is drawn from one seeded generator in a fixed order, and
the manifest holds no paths outside the landing root and no clock readings.

Everything is vectorised with numpy/pandas/pyarrow; no Spark session, so the generator runs
anywhere the package is installed and a million operational rows take a few seconds.

Modules, bottom up: `population` (calendar, arrival schedules, customers), `spelling` (valid
text spellings), `dirt` (which rows get which dirt, shared dirty spellings), `source` (what a
source's generator provides), `events` (timed event sources), one module per source
(`operational`, `logs`, `external`, `customers`), `files` (the landing layout and file formats), `manifest`
and `generate` (the run, and `GENERATORS`, the generator of each source).
"""

from batch_platform.sample_data.generate import GENERATORS, generate_landing, generators_for
from batch_platform.sample_data.manifest import MANIFEST_NAME

__all__ = ["GENERATORS", "MANIFEST_NAME", "generate_landing", "generators_for"]
