"""The `batch-platform` commands that write or run — `sample-data`, `materialize`, `serve` — apart from
those that report (`batch_platform.cli_reports`, `batch_platform.cli_ml`). `batch_platform.cli`
checks their quarters (`args.quarters`, and `args.config` for a range of partitions) and imports this
module only to run one of them.
"""

from __future__ import annotations

import argparse
import operator
import os
import sys
from collections.abc import Sequence
from functools import reduce

import dagster as dg

from batch_platform.api import TOKEN_ENV, serve
from batch_platform.cli_args import UsageError
from batch_platform.config import load_config, public_base_url
from batch_platform.definitions import build_definitions
from batch_platform.jobs import ALL_ASSETS_JOB, SELECTION_JOB, release_abandoned_pools
from batch_platform.lake_files import Lake
from batch_platform.partitions import to_key
from batch_platform.sample_data import generate_landing


def cmd_sample_data(args: argparse.Namespace) -> int:
    """A sample landing zone for `args.quarters` (any range that has ended: `cli.ended_quarters`)."""
    landing = args.landing or load_config().landing_root
    manifest = generate_landing(
        landing,
        first_quarter=args.quarters[0],
        last_quarter=args.quarters[-1],
        customers=args.customers,
        operational_rows=args.operational_rows,
        seed=args.seed,
        daily=args.daily,
    )
    print(f"landing zone written to {landing}")
    for source, counts in manifest["rows_by_source_quarter"].items():
        print(f"  {source:<12} {sum(counts.values()):>10,} rows in {len(counts)} quarters")
    return 0


def cmd_materialize(args: argparse.Namespace) -> int:
    first, last = args.quarters[0], args.quarters[-1]
    defs = build_definitions(args.config)
    if args.select:
        job = dg.define_asset_job(SELECTION_JOB, selection=_selection(defs, args.select))
        job_def = dg.Definitions.merge(defs, dg.Definitions(jobs=[job])).resolve_job_def(job.name)
    else:
        job_def = defs.resolve_job_def(ALL_ASSETS_JOB)
    instance = dg.DagsterInstance.get() if _has_dagster_home() else dg.DagsterInstance.ephemeral()
    for line in release_abandoned_pools(instance):
        print(f"released a dead run's pool slots: {line}", file=sys.stderr)
    tags = {
        "dagster/asset_partition_range_start": to_key(first),
        "dagster/asset_partition_range_end": to_key(last),
    }
    print(f"materialising {first}...{last} ({to_key(first)}...{to_key(last)}) in one run")
    result = job_def.execute_in_process(
        instance=instance,
        tags=tags,
        raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": args.log_level}}}},
    )
    print(f"run {result.run_id}: {'succeeded' if result.success else 'FAILED'}")
    if not result.success:
        for event in result.all_events:
            if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
                print(
                    f"  step {event.step_key} failed: {event.step_failure_data.error.message.strip()}", file=sys.stderr
                )
    return 0 if result.success else 1


def _selection(defs: dg.Definitions, texts: Sequence[str]) -> dg.AssetSelection:
    """The union of the `--select` expressions, each resolved first against the asset graph of `defs`:
    one that does not parse or matches no asset is refused, naming it and the valid groups."""
    graph = defs.resolve_asset_graph()
    group_of = {spec.key: spec.group_name for spec in defs.resolve_all_asset_specs()}
    groups = ", ".join(dict.fromkeys(group_of[key] for key in graph.toposorted_asset_keys if key in group_of))
    valid = f'groups are {groups} (e.g. group:silver); select keys as key:silver/operational_events or key:"silver/*"'
    selected = []
    for text in texts:
        try:
            selection = dg.AssetSelection.from_string(text)
        except dg.DagsterError:
            raise UsageError(f"--select {text!r} is not an asset selection: {valid}") from None
        try:
            matched = selection.resolve(graph)
        except dg.DagsterError:  # a key that does not exist
            matched = set()
        if not matched:
            raise UsageError(f"--select {text!r} matches no asset: {valid}")
        selected.append(selection)
    return reduce(operator.or_, selected)


def _has_dagster_home() -> bool:
    return bool(os.environ.get("DAGSTER_HOME"))


def cmd_serve(args: argparse.Namespace) -> int:
    if not os.environ.get(TOKEN_ENV):
        print(f"set {TOKEN_ENV} to the token clients must send (Authorization: Bearer <token>)", file=sys.stderr)
        return 2
    config = load_config()
    try:
        public_url = public_base_url(args.public_url) if args.public_url else config.api.public_url
    except ValueError as exc:
        raise UsageError(f"--public-url: {exc}") from None
    if not public_url and args.host in ("0.0.0.0", "::"):
        print(
            f"file urls will name http://{args.host}:{args.port}, which no client reaches: set api.public_url "
            "or --public-url to the address clients use",
            file=sys.stderr,
        )
    serve(Lake.from_config(config), args.host, args.port, args.url_ttl, public_url)
    return 0
