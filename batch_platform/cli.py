"""`batch-platform`: the commands a person types, with quarters written `2025-Q4`.

    batch-platform quarters                          list partitions: label and Dagster key
    batch-platform sample-data --from 2024-Q1 --to 2025-Q4 --customers 2000
    batch-platform materialize --from 2024-Q1 --to 2025-Q4 [--select 'key:"silver/*"' ...]
    batch-platform report --from 2024-Q1 --to 2025-Q4          rows per table per quarter (Delta logs)
    batch-platform history gold/training_set         a table's commits: version, time, run id, quarters, rows
    batch-platform serve [--host 127.0.0.1 --port 8000 --public-url URL]   the datasets API (BATCH_PLATFORM_API_TOKEN)
    batch-platform ml-report --from 2024-Q1 --to 2025-Q4   champion, eval and out-of-time AUC-PR per quarter
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
"""

from __future__ import annotations

import argparse
import operator
import os
import sys
from collections.abc import Sequence
from functools import reduce
from typing import TYPE_CHECKING

from batch_platform import delta, delta_log
from batch_platform.config import (
    LOCAL_UI_PORT,
    ConfigError,
    PlatformConfig,
    load_config,
    public_base_url,
    shown_uri,
)
from batch_platform.consume import PartitionNotMaterialised, load_model_card, load_out_of_time_rows
from batch_platform.partitions import (
    NotAPartitionError,
    QuarterError,
    check_partition,
    last_complete_quarter,
    parse_quarter,
    quarter_range,
    quarterly_partitions,
    shift,
    to_key,
    to_label,
)

if TYPE_CHECKING:  # pragma: no cover - typing only
    import dagster as dg


class UsageError(Exception):
    """A request the command cannot carry out, refused before any work: one line on stderr, exit 2."""


def _quarter(text: str) -> str:
    try:
        return to_label(text)
    except QuarterError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def _range_args(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--from", dest="first", type=_quarter, required=required, help="first quarter, e.g. 2024-Q1")
    parser.add_argument("--to", dest="last", type=_quarter, help="last quarter (default: --from)")


def _forward_range(args: argparse.Namespace) -> list[str]:
    first, last = args.first, args.last or args.first
    if parse_quarter(last) < parse_quarter(first):
        raise UsageError(f"--to {last} comes before --from {first}: a range runs forwards, --from {last} --to {first}")
    return quarter_range(first, last)


def _partition_range(args: argparse.Namespace, config: PlatformConfig) -> list[str]:
    """The quarters of `--from`/`--to`, every one a partition of `config`, else `UsageError`."""
    quarters = _forward_range(args)
    try:
        for quarter in (quarters[0], quarters[-1]):
            check_partition(quarter, config.batch.first_quarter)
    except NotAPartitionError as exc:
        raise UsageError(str(exc)) from None
    return quarters


def cmd_quarters(args: argparse.Namespace) -> int:
    for key in quarterly_partitions(load_config().batch.first_quarter).get_partition_keys():
        print(f"{to_label(key)}  {key}")
    return 0


def cmd_sample_data(args: argparse.Namespace) -> int:
    """The landing zone is a record of arrivals, dated by folder: any range that has ended is fine,
    also quarters before `batch.first_quarter` (bronze reads only the partitions), but not a quarter
    still in progress or to come, whose folders would be dated after today."""
    quarters = _forward_range(args)
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
    quarters = _partition_range(args, config)
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


def cmd_report(args: argparse.Namespace) -> int:
    """Rows per table per quarter, counted from each Delta table's log (the file statistics of its
    latest version: no data read); `-` for a quarter never materialised, 0 for one materialised
    empty. Then the training sets that exist and how to read one."""
    config = load_config()
    quarters = _partition_range(args, config)

    from batch_platform.lake_files import Lake  # start-up time: Arrow and the table declarations
    from batch_platform.schemas.gold import TRAINING_SET  # start-up time (module docstring)
    from batch_platform.tables import TABLES  # start-up time (module docstring)

    training_set = TRAINING_SET.name
    lake = Lake.from_config(config)
    tables = [table.name for table in TABLES.values()]
    width = max([len(t) for t in tables] + [10])
    print(f"lake: {lake.root.rstrip('/')}")
    print(f"{'table':<{width}}  " + "  ".join(f"{q:>8}" for q in quarters) + "  version")
    counts, versions = {}, {}
    for table in tables:
        opened = lake.open(table)
        counts[table] = _quarter_rows(opened, quarters)
        versions[table] = opened.version if opened is not None else None
        cells = "  ".join(f"{'-' if n is None else f'{n:,}':>8}" for n in counts[table])
        print(f"{table:<{width}}  {cells}  {'-' if versions[table] is None else versions[table]:>7}")
    built = [(q, n) for q, n in zip(quarters, counts[training_set], strict=True) if n is not None]
    if not built:
        print(
            f"\nno training set of {quarters[0]}...{quarters[-1]} is in the lake: "
            f"batch-platform materialize --from {quarters[0]} --to {quarters[-1]}"
        )
        return 0
    print(f"\ntraining sets (Delta table {lake.table_uri(training_set)}, version {versions[training_set]}):")
    for quarter, rows in built:
        print(f"  {quarter}  {rows:,} rows")
    example = f'import batch_platform; print(batch_platform.load_training_set("{built[-1][0]}"))'
    print(f"\nread one:  python -c '{example}'")
    print(f"its commits:  batch-platform history {training_set}")
    return 0


def _quarter_rows(opened, quarters: Sequence[str]) -> list[int | None]:
    """The rows of each of `quarters` in a Delta table (`delta.LakeTable`), None for a quarter never
    materialised; the table's history is read only when a quarter has no rows (empty or never)."""
    if opened is None:
        return [None] * len(quarters)
    rows = delta.rows_per_quarter(opened)
    materialised = None
    counts: list[int | None] = []
    for quarter in quarters:
        if quarter not in rows and materialised is None:
            materialised = set(delta.materialised_quarters(opened))
        counts.append(rows.get(quarter, 0 if materialised and quarter in materialised else None))
    return counts


def cmd_history(args: argparse.Namespace) -> int:
    """A lake table's commits, newest first: version, time (UTC), operation, run id, the quarters it
    replaced and its rows (SPEC.md, "Lake": time travel). Read from the Delta log with delta-rs."""
    from batch_platform.lake_files import Lake  # start-up time: Arrow and the table declarations
    from batch_platform.schemas.gold import TRAINING_SET  # start-up time (module docstring)
    from batch_platform.tables import TABLES  # start-up time (module docstring)

    tables = [table.name for table in TABLES.values()]
    if args.table not in tables:
        raise UsageError(f"{args.table!r} is not a lake table; the tables are: {', '.join(tables)}")

    config = load_config()
    lake = Lake.from_config(config)
    opened = lake.open(args.table)
    if opened is None:
        print(
            f"batch-platform history: {args.table} is not in the lake yet (no Delta table at "
            f"{lake.table_uri(args.table)}): materialise it first, e.g. batch-platform materialize --from "
            f"{config.batch.first_quarter}",
            file=sys.stderr,
        )
        return 1
    commits = delta_log.history(opened, args.limit)
    print(
        f"{args.table}: Delta table {lake.table_uri(args.table)}, version {opened.version}; history kept "
        f"storage.delta.retention_days = {lake.retention_days} days"
    )
    print(
        f"{'version':>7}  {'time (UTC)':<19}  {'operation':<12}  {'run id':<36}  {'quarters replaced':<24}  {'rows':>10}"
    )
    for commit in commits:
        rows = "-" if commit.rows is None else f"{commit.rows:,}"
        print(
            f"{commit.version:>7}  {commit.time.strftime('%Y-%m-%d %H:%M:%S')}  {commit.operation:<12}  "
            f"{commit.run_id or '-':<36}  {_quarter_list(commit.quarters) or '-':<24}  {rows:>10}"
        )
    example = f'load_training_set("<quarter>", version={opened.version})'
    if args.table == TRAINING_SET.name:
        print(f'\nread a version:  batch_platform.{example}, or as_of="<UTC time>"')
    return 0


def _quarter_list(quarters: Sequence[str]) -> str:
    """`2024-Q1…2024-Q4, 2025-Q2`: runs of three or more consecutive quarters shortened."""
    runs: list[list[str]] = []
    for quarter in sorted(set(quarters), key=parse_quarter):
        if runs and shift(runs[-1][-1], 1) == quarter:
            runs[-1].append(quarter)
        else:
            runs.append([quarter])
    return ", ".join(f"{run[0]}…{run[-1]}" if len(run) > 2 else ", ".join(run) for run in runs)


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


def cmd_ml_report(args: argparse.Namespace) -> int:
    """Per quarter: the champion, its version, its eval AUC-PR and the baseline's (`ml/churn_model` in
    the lake), then the out-of-time AUC-PR of the scores and of the recency baseline against the
    labels of the next quarter, computed from the lake by `out_of_time_result`, the function of the
    `out_of_time_performance` check, on the rows the check reads (`load_out_of_time_rows`): the same
    figures with or without a Dagster instance, and `pending` until those labels exist."""
    config = load_config()
    quarters = _partition_range(args, config)

    from batch_platform.ml.out_of_time import out_of_time_result  # start-up time: Spark and the ML code
    from batch_platform.mlflow_store import build_mlflow_store  # start-up time (module docstring)

    print(f"{'':<39}  {'eval AUC-PR':^18}  {'out-of-time AUC-PR':^18}")
    print(
        f"{'quarter':<8}  {'champion':<20}  {'version':>7}  {'model':>8}  {'baseline':>8}  {'model':>8}  "
        f"{'baseline':>8}  status"
    )
    warnings = []
    for quarter in quarters:
        try:
            card = load_model_card(quarter, config=config)
        except PartitionNotMaterialised:
            card = None
        rows, labels_exist = load_out_of_time_rows(quarter, config=config)
        result = out_of_time_result(quarter, rows, labels_exist)
        status = _out_of_time_status(result, labels_exist)
        if status == "WARN":
            warnings.append(f"  {quarter}: {result['description']}")
        metadata = result["metadata"]
        realised = f"{_figure(metadata.get('out_of_time/auc_pr')):>8}  {_figure(metadata.get('baseline/auc_pr')):>8}"
        if card is None:
            print(f"{quarter:<8}  {'(not materialised)':<20}  {'-':>7}  {'-':>8}  {'-':>8}  {realised}  {status}")
            continue
        baseline = card.loc[card["candidate"] == "recency_baseline", "auc_pr"]
        eval_baseline = _figure(baseline.iloc[0] if len(baseline) else None)
        champion = card[card["champion"]]
        if champion.empty:
            print(f"{quarter:<8}  {'(not trained)':<20}  {'-':>7}  {'-':>8}  {eval_baseline:>8}  {realised}  {status}")
            continue
        row = champion.iloc[0]
        print(
            f"{quarter:<8}  {row['candidate']:<20}  {row['model_version']:>7}  {_figure(row['auc_pr']):>8}  "
            f"{eval_baseline:>8}  {realised}  {status}"
        )
    print("\nout of time: the scores of Q against gold/churn_labels Q+1, pending until those labels are in the lake;")
    print("WARN: the model's AUC-PR is below the recency baseline's, or the scored and labelled customers differ")
    for line in warnings:
        print(line)
    store = build_mlflow_store(config)
    print(f"\nregistered model '{store.registered_model_name}'; {store.ui_hint()}")
    return 0


def _out_of_time_status(result: dict, labels_exist: bool) -> str:
    metadata = result["metadata"]
    if not labels_exist:
        return "pending"
    if not metadata.get("evaluated"):
        return "no scores"
    if not result["passed"]:
        return "WARN"
    return "ok" if "out_of_time/auc_pr" in metadata else "one class"


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


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
    _range_args(sample)
    sample.add_argument("--customers", type=int, default=2000)
    sample.add_argument("--operational-rows", type=int, default=None)
    sample.add_argument("--seed", type=int, default=7)
    sample.add_argument("--landing", help="landing root (default: the config's storage.landing_root)")
    sample.set_defaults(func=cmd_sample_data)

    run = commands.add_parser("materialize", help="materialise quarters in one Dagster run")
    _range_args(run)
    run.add_argument(
        "--select", action="append", help="asset selection, e.g. 'group:silver' or 'key:\"silver/*\"' (repeatable)"
    )
    run.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    run.set_defaults(func=cmd_materialize)

    report = commands.add_parser("report", help="rows per table per quarter in the lake")
    _range_args(report)
    report.set_defaults(func=cmd_report)

    history = commands.add_parser("history", help="a lake table's commits: version, time, run id, quarters, rows")
    history.add_argument("table", help="<layer>/<table>, e.g. gold/training_set")
    history.add_argument("--limit", type=_positive, default=None, help="the newest N commits only")
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
    _range_args(ml_report)
    ml_report.set_defaults(func=cmd_ml_report)

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
