"""Benchmarks of batch_platform: `make bench SIZE=S|M|L` (see `benchmarks/run.py`).

Nothing here is imported by the platform or by its tests; the harness only drives the platform
from the outside (subprocesses with their own config, lake and DAGSTER_HOME) and measures.
"""
