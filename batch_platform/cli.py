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
    batch-platform score --model models:/batch_platform_churn@champion --landing PATH --as-of 2026-01-01 --output PATH
                                                     score raw landing files with a registered model, as Parquet

Each command reads the config file (`$BATCH_PLATFORM_CONFIG`, else `config/config.yaml`) once.
`materialize` launches one Dagster run (a single-run backfill of the whole range) on the instance
in `$DAGSTER_HOME`, so the run shows up in `make ui`; `dagster asset materialize` and
`dagster job execute` remain available with start-date keys (docs/operations.md, "Command line").

What a command cannot do it refuses before any work (no Spark, no Dagster run), with one line on
stderr naming the problem and what is valid, and exit code 2: a quarter outside the partitions
(`batch.first_quarter` to the last complete quarter), a range that runs backwards, a `--select`
that matches no asset. `sample-data` writes arrival folders, not partitions: it takes any forward
range that has ended, also before `batch.first_quarter`, never a quarter still to come.

Start-up time: this module imports only the light modules (config, partitions, the arguments) and
checks a command's quarters here; then `main` imports the module that runs the command (`resolve`
below: the one place the command line imports lazily), and that module imports Dagster, Spark,
the table declarations or the API it needs. So `batch-platform --help` and every refusal answer in
well under a second, and no command loads what another needs.

Where the commands run: `quarters` and `mlflow-ui` here; `sample-data`, `materialize` and `serve`
in `batch_platform.cli_run`; `report` and `history` in `batch_platform.cli_reports`; `ml-report` in
`batch_platform.cli_ml`; `monitor` in `batch_platform.cli_monitor`; `score` in
`batch_platform.cli_score` (its request checked here by `batch_platform.score_request`). The
arguments every command shares and `UsageError` are in `batch_platform.cli_args`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from batch_platform.cli_args import UsageError, forward_range, partition_range, positive_arg, range_args
from batch_platform.config import LOCAL_UI_PORT, ConfigError, load_config, shown_uri
from batch_platform.layout import DeltaReadError
from batch_platform.partitions import last_complete_quarter, parse_quarter, quarterly_partitions, to_label
from batch_platform.score_request import ScoringError, landing_root, output_path, parse_model_uri, scored_quarter


def cmd_quarters(args: argparse.Namespace) -> int:
    for key in quarterly_partitions(load_config().batch.first_quarter).get_partition_keys():
        print(f"{to_label(key)}  {key}")
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


def partitions_of(args: argparse.Namespace) -> None:
    """The check of a command that reads or writes partitions: `args.config` (the config file, read
    once) and `args.quarters`, each a partition of it, else `UsageError`."""
    args.config = load_config()
    args.quarters = partition_range(args, args.config)


def ended_quarters(args: argparse.Namespace) -> None:
    """The check of `sample-data`: the landing zone is a record of arrivals, dated by folder, so any
    range that has ended is fine, also quarters before `batch.first_quarter` (bronze reads only the
    partitions), but not a quarter still in progress or to come, whose folders would be dated after
    today (`args.quarters`)."""
    quarters = forward_range(args)
    ended = last_complete_quarter()
    if parse_quarter(quarters[-1]) > parse_quarter(ended):
        raise UsageError(
            f"{quarters[-1]} has not ended: sample data is dated by arrival, up to the last complete quarter, {ended}"
        )
    args.quarters = quarters


def scoring_request(args: argparse.Namespace) -> None:
    """The check of `score`: the config file (`--config`, else as every command reads it; `args.config`),
    a cutoff the platform can score at, a registered model's URI, a landing folder that exists and
    an output that does not (unless `--overwrite`); else `UsageError`. The model's existence needs
    MLflow and is checked when the command runs, before Spark starts."""
    args.config = load_config(args.config_file)
    try:
        scored_quarter(args.as_of, args.config.batch.first_quarter)
        parse_model_uri(args.model)
        landing_root(args.landing)
        output_path(args.output, args.overwrite)
    except ScoringError as exc:
        raise UsageError(str(exc)) from None


def resolve(command: str) -> Callable[[argparse.Namespace], int]:
    """The function that runs a command, `module:function`, its module imported now: the one place the
    command line imports lazily (start-up time, module docstring)."""
    module, _, function = command.partition(":")
    return getattr(importlib.import_module(module), function)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="batch-platform", description=__doc__.split("\n\n")[0])
    parser.set_defaults(check=None)
    commands = parser.add_subparsers(dest="command", required=True)

    quarters = commands.add_parser("quarters", help="list quarters with their Dagster partition keys")
    quarters.set_defaults(run="batch_platform.cli:cmd_quarters")

    sample = commands.add_parser("sample-data", help="generate a sample landing zone")
    range_args(sample)
    sample.add_argument("--customers", type=int, default=2000)
    sample.add_argument("--operational-rows", type=int, default=None)
    sample.add_argument("--seed", type=int, default=7)
    sample.add_argument(
        "--daily",
        action="store_true",
        help="a file every day, as a production feed drops them (default: 3-6 a quarter)",
    )
    sample.add_argument("--landing", help="landing root (default: the config's storage.landing_root)")
    sample.set_defaults(run="batch_platform.cli_run:cmd_sample_data", check=ended_quarters)

    materialize = commands.add_parser("materialize", help="materialise quarters in one Dagster run")
    range_args(materialize)
    materialize.add_argument(
        "--select", action="append", help="asset selection, e.g. 'group:silver' or 'key:\"silver/*\"' (repeatable)"
    )
    materialize.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    materialize.set_defaults(run="batch_platform.cli_run:cmd_materialize", check=partitions_of)

    report = commands.add_parser("report", help="rows per table per quarter in the lake")
    range_args(report)
    report.set_defaults(run="batch_platform.cli_reports:cmd_report", check=partitions_of)

    history = commands.add_parser("history", help="a lake table's commits: version, time, run id, quarters, rows")
    history.add_argument("table", help="<layer>/<table>, e.g. gold/training_set")
    history.add_argument("--limit", type=positive_arg, default=None, help="the newest N commits only")
    history.set_defaults(run="batch_platform.cli_reports:cmd_history")

    api = commands.add_parser("serve", help="serve the lake's datasets over HTTP (SPEC.md, 'Delivery')")
    api.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    api.add_argument("--port", type=int, default=8000)
    api.add_argument("--url-ttl", type=int, default=900, help="seconds a file url stays valid (default 900)")
    api.add_argument(
        "--public-url",
        help="what file urls start with, the address clients reach the API at, e.g. https://data.example.com "
        "(default: the config's api.public_url, else http://<host>:<port>)",
    )
    api.set_defaults(run="batch_platform.cli_run:cmd_serve")

    ml_report = commands.add_parser("ml-report", help="champion, eval and out-of-time AUC-PR per quarter")
    range_args(ml_report)
    ml_report.set_defaults(run="batch_platform.cli_ml:cmd_ml_report", check=partitions_of)

    monitor = commands.add_parser("monitor", help="the monitoring checks' latest results per quarter (warnings named)")
    range_args(monitor)
    monitor.set_defaults(run="batch_platform.cli_monitor:cmd_monitor", check=partitions_of)

    score = commands.add_parser(
        "score", help="score raw landing files at a cutoff with a registered model, as Parquet (docs/inference.md)"
    )
    score.add_argument("--model", required=True, help="models:/<name>@<alias> or models:/<name>/<version>")
    score.add_argument("--landing", required=True, help="a landing root: <source>/<YYYY-MM-DD>/<file>")
    score.add_argument(
        "--as-of", required=True, help="the cutoff C, a quarter's first day (2026-01-01, or 2026-Q1): events before it"
    )
    score.add_argument("--output", required=True, help="where the Parquet scores go (a folder, as Spark writes it)")
    score.add_argument("--overwrite", action="store_true", help="replace --output when it exists")
    score.add_argument(
        "--config",
        dest="config_file",
        help="the config file (default: $BATCH_PLATFORM_CONFIG, else config/config.yaml)",
    )
    score.set_defaults(run="batch_platform.cli_score:cmd_score", check=scoring_request)

    ui = commands.add_parser("mlflow-ui", help="the MLflow UI of the configured store, on 127.0.0.1")
    ui.add_argument("--port", type=int, default=LOCAL_UI_PORT)
    ui.set_defaults(run="batch_platform.cli:cmd_mlflow_ui")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command, its quarters checked first (`check`); a refusal (`UsageError`) or a bad config
    file is reported on stderr with exit code 2, never as a traceback."""
    args = build_parser().parse_args(argv)
    try:
        if args.check is not None:
            args.check(args)
        return resolve(args.run)(args)
    except (UsageError, ConfigError) as exc:
        print(f"batch-platform {args.command}: {exc}", file=sys.stderr)
        return 2
    except DeltaReadError as exc:  # a lake table that cannot be read: say which and why, no traceback
        print(f"batch-platform {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
