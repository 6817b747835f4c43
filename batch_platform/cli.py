"""`batch-platform`: the commands a person types, with quarters written `2025-Q4`.

    batch-platform quarters                          list partitions: label and Dagster key
    batch-platform sample-data --from 2024-Q1 --to 2025-Q4 --customers 2000
    batch-platform materialize --from 2024-Q1 --to 2025-Q4 [--select 'key:"silver/*"' ...]
    batch-platform report --from 2024-Q1 --to 2025-Q4          rows per table per quarter (Delta logs)
    batch-platform history gold/training_set         a table's commits: version, time, run id, quarters, rows
    batch-platform serve [--host 127.0.0.1 --port 8000 --public-url URL]   the datasets API (BATCH_PLATFORM_API_TOKEN)
    batch-platform ml-report --from 2024-Q1 --to 2025-Q4   champion, eval and out-of-time AUC-PR per quarter
    batch-platform monitor --from 2024-Q1 --to 2025-Q4     the monitoring checks' warnings per quarter
    batch-platform mlflow-ui [--port 5000]           the MLflow UI of the configured store, on 127.0.0.1

Each command reads the config file (`$BATCH_PLATFORM_CONFIG`, else `config/config.yaml`) once.
`materialize` launches one Dagster run (a single-run backfill of the whole range) on the instance
in `$DAGSTER_HOME`, so the run shows up in `make ui`; `dagster asset materialize` and
`dagster job execute` remain available with start-date keys (docs/operations.md, "Command line").

What a command cannot do it refuses before any work (no Spark, no Dagster run), with one line on
stderr naming the problem and what is valid, and exit code 2: a quarter outside the partitions
(`batch.first_quarter` to the last complete quarter), a range that runs backwards, a `--select`
that matches no asset. `sample-data` writes arrival folders, not partitions: it takes any forward
range that has ended, also before `batch.first_quarter`, never a quarter still to come.

Start-up time: this module imports only the light modules (config, partitions, the Delta log
readers); each command imports Dagster, Spark, the table declarations or the API it needs when it
runs, so `batch-platform --help` and every refusal answer in well under a second.

The commands that read the lake and report (`report`, `history`, `ml-report`, `monitor`) are in
`batch_platform.cli_reports`; the arguments every command shares and `UsageError`, in
`batch_platform.cli_args`.
"""

from __future__ import annotations

import argparse
import operator
import os
import sys
from collections.abc import Sequence
from functools import reduce
from typing import TYPE_CHECKING

from batch_platform import delta
from batch_platform.cli_args import UsageError, forward_range, partition_range, positive_arg, range_args
from batch_platform.cli_reports import cmd_history, cmd_ml_report, cmd_monitor, cmd_report
from batch_platform.config import LOCAL_UI_PORT, ConfigError, load_config, public_base_url, shown_uri
from batch_platform.partitions import last_complete_quarter, parse_quarter, quarterly_partitions, to_key, to_label

if TYPE_CHECKING:  # pragma: no cover - typing only
    import dagster as dg


def cmd_quarters(args: argparse.Namespace) -> int:
    for key in quarterly_partitions(load_config().batch.first_quarter).get_partition_keys():
        print(f"{to_label(key)}  {key}")
    return 0


def cmd_sample_data(args: argparse.Namespace) -> int:
    """The landing zone is a record of arrivals, dated by folder: any range that has ended is fine,
    also quarters before `batch.first_quarter` (bronze reads only the partitions), but not a quarter
    still in progress or to come, whose folders would be dated after today."""
    quarters = forward_range(args)
    ended = last_complete_quarter()
    if parse_quarter(quarters[-1]) > parse_quarter(ended):
        raise UsageError(
            f"{quarters[-1]} has not ended: sample data is dated by arrival, up to the last complete quarter, {ended}"
        )
    from batch_platform.sample_data import generate_landing  # start-up time

    landing = args.landing or load_config().landing_root
    manifest = generate_landing(
        landing,
        first_quarter=quarters[0],
        last_quarter=quarters[-1],
        customers=args.customers,
        operational_rows=args.operational_rows,
        seed=args.seed,
    )
    print(f"landing zone written to {landing}")
    for source, counts in manifest["rows_by_source_quarter"].items():
        print(f"  {source:<12} {sum(counts.values()):>10,} rows in {len(counts)} quarters")
    return 0


def cmd_materialize(args: argparse.Namespace) -> int:
    config = load_config()
    quarters = partition_range(args, config)
    first, last = quarters[0], quarters[-1]

    import dagster as dg  # start-up time: Dagster and the definitions load once the range is valid

    from batch_platform.definitions import build_definitions  # start-up time (module docstring)
    from batch_platform.jobs import ALL_ASSETS_JOB, SELECTION_JOB, release_abandoned_pools

    defs = build_definitions(config)
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
    import dagster as dg  # start-up time (see the module docstring)

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


def cmd_serve(args: argparse.Namespace) -> int:
    from batch_platform.api import TOKEN_ENV, serve  # start-up time: FastAPI, Arrow, the table declarations
    from batch_platform.lake_files import Lake  # start-up time (module docstring)

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


def cmd_mlflow_ui(args: argparse.Namespace) -> int:
    """The MLflow UI of the configured store, bound to 127.0.0.1 (a server store has its own UI)."""
    uri = load_config().mlflow_tracking_uri
    if uri.startswith(("http://", "https://")):
        print(f"the MLflow store is a server: open {shown_uri(uri)}")
        return 0
    print(f"MLflow UI of {uri} on http://127.0.0.1:{args.port} (Ctrl-C stops it)")
    mlflow = os.path.join(os.path.dirname(sys.executable), "mlflow")
    os.execv(mlflow, [mlflow, "ui", "--backend-store-uri", uri, "--host", "127.0.0.1", "--port", str(args.port)])


def _has_dagster_home() -> bool:
    return bool(os.environ.get("DAGSTER_HOME"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="batch-platform", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("quarters", help="list quarters with their Dagster partition keys").set_defaults(
        func=cmd_quarters
    )

    sample = commands.add_parser("sample-data", help="generate a sample landing zone")
    range_args(sample)
    sample.add_argument("--customers", type=int, default=2000)
    sample.add_argument("--operational-rows", type=int, default=None)
    sample.add_argument("--seed", type=int, default=7)
    sample.add_argument("--landing", help="landing root (default: the config's storage.landing_root)")
    sample.set_defaults(func=cmd_sample_data)

    run = commands.add_parser("materialize", help="materialise quarters in one Dagster run")
    range_args(run)
    run.add_argument(
        "--select", action="append", help="asset selection, e.g. 'group:silver' or 'key:\"silver/*\"' (repeatable)"
    )
    run.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    run.set_defaults(func=cmd_materialize)

    report = commands.add_parser("report", help="rows per table per quarter in the lake")
    range_args(report)
    report.set_defaults(func=cmd_report)

    history = commands.add_parser("history", help="a lake table's commits: version, time, run id, quarters, rows")
    history.add_argument("table", help="<layer>/<table>, e.g. gold/training_set")
    history.add_argument("--limit", type=positive_arg, default=None, help="the newest N commits only")
    history.set_defaults(func=cmd_history)

    api = commands.add_parser("serve", help="serve the lake's datasets over HTTP (SPEC.md, 'Delivery')")
    api.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    api.add_argument("--port", type=int, default=8000)
    api.add_argument("--url-ttl", type=int, default=900, help="seconds a file url stays valid (default 900)")
    api.add_argument(
        "--public-url",
        help="what file urls start with, the address clients reach the API at, e.g. https://data.example.com "
        "(default: the config's api.public_url, else http://<host>:<port>)",
    )
    api.set_defaults(func=cmd_serve)

    ml_report = commands.add_parser("ml-report", help="champion, eval and out-of-time AUC-PR per quarter")
    range_args(ml_report)
    ml_report.set_defaults(func=cmd_ml_report)

    monitor = commands.add_parser("monitor", help="the monitoring checks' latest results per quarter (warnings named)")
    range_args(monitor)
    monitor.set_defaults(func=cmd_monitor)

    ui = commands.add_parser("mlflow-ui", help="the MLflow UI of the configured store, on 127.0.0.1")
    ui.add_argument("--port", type=int, default=LOCAL_UI_PORT)
    ui.set_defaults(func=cmd_mlflow_ui)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a refusal (`UsageError`) or a bad config file is reported on stderr with
    exit code 2, never as a traceback."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (UsageError, ConfigError) as exc:
        print(f"batch-platform {args.command}: {exc}", file=sys.stderr)
        return 2
    except delta.DeltaReadError as exc:  # a lake table that cannot be read: say which and why, no traceback
        print(f"batch-platform {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
