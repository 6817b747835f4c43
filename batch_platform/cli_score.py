"""`batch-platform score`: a registered churn model scores raw landing files at a cutoff, written as
Parquet (`batch_platform.inference`; docs/inference.md). `batch_platform.cli` has checked the request
(`args.config`, the cutoff, the model URI, the landing and output paths) and imports this module,
with Spark and MLflow, only to run it.
"""

from __future__ import annotations

import argparse
import sys

import dagster as dg

from batch_platform.inference import ScoringError, describe, run_scoring


def cmd_score(args: argparse.Namespace) -> int:
    """Score, then print what was scored, read and quarantined. A request the data or the store
    cannot satisfy (no such model, no landing file in the lookback, a quarantine rate the silver
    check fails) and a landing file bronze cannot read end with the message on stderr and exit 1."""
    try:
        run = run_scoring(
            args.model, args.landing, args.as_of, output=args.output, overwrite=args.overwrite, config=args.config
        )
    except ScoringError as exc:
        print(f"batch-platform score: {exc}", file=sys.stderr)
        return 1
    except (
        dg.Failure
    ) as exc:  # the bronze step's own errors: a file that cannot be read, a landing root that cannot be listed
        print(f"batch-platform score: {exc.description}", file=sys.stderr)
        return 1
    for line in describe(run):
        print(line)
    return 0
