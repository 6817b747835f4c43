"""`batch-platform`: the commands a person types, with quarters written `2025-Q4`.

    batch-platform quarters                          list partitions: label and Dagster key
    batch-platform sample-data --from 2024-Q1 --to 2025-Q4 --customers 2000
    batch-platform materialize --from 2024-Q1 --to 2025-Q4 [--select 'silver/*' ...]
    batch-platform report --from 2024-Q1 --to 2025-Q4
    batch-platform serve [--host 127.0.0.1 --port 8000]   the datasets API (BATCH_PLATFORM_API_TOKEN)
    batch-platform ml-report --from 2024-Q1 --to 2025-Q4   champion, eval and out-of-time AUC-PR per quarter
    batch-platform mlflow-ui [--port 5000]           the MLflow UI of the configured store, on 127.0.0.1

Each command reads the config file (`$BATCH_PLATFORM_CONFIG`, else `config/config.yaml`) once.
`materialize` launches one Dagster run (a single-run backfill of the whole range) on the instance
in `$DAGSTER_HOME`, so the run shows up in `make ui`; `dagster asset materialize` and
`dagster job execute` remain available with start-date keys (README, "Command line").
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from batch_platform.partitions import QuarterError, quarter_range, to_key, to_label


def _quarter(text: str) -> str:
    try:
        return to_label(text)
    except QuarterError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _range_args(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--from", dest="first", type=_quarter, required=required, help="first quarter, e.g. 2024-Q1")
    parser.add_argument("--to", dest="last", type=_quarter, help="last quarter (default: --from)")


def cmd_quarters(args: argparse.Namespace) -> int:
    from batch_platform.config import load_config

    for key in load_config().partitions().get_partition_keys():
        print(f"{to_label(key)}  {key}")
    return 0


def cmd_sample_data(args: argparse.Namespace) -> int:
    from batch_platform.config import load_config
    from batch_platform.sample_data import generate_landing

    landing = args.landing or load_config().landing_root
    manifest = generate_landing(
        landing,
        first_quarter=args.first,
        last_quarter=args.last or args.first,
        customers=args.customers,
        operational_rows=args.operational_rows,
        seed=args.seed,
    )
    print(f"landing zone written to {landing}")
    for source, quarters in manifest["rows_by_source_quarter"].items():
        print(f"  {source:<12} {sum(quarters.values()):>10,} rows in {len(quarters)} quarters")
    return 0


def cmd_materialize(args: argparse.Namespace) -> int:
    import dagster as dg

    from batch_platform.config import load_config
    from batch_platform.definitions import build_definitions
    from batch_platform.jobs import ALL_ASSETS_JOB

    defs = build_definitions(load_config())
    first, last = args.first, args.last or args.first
    quarter_range(first, last)
    instance = dg.DagsterInstance.get() if _has_dagster_home() else dg.DagsterInstance.ephemeral()
    if args.select:
        job = dg.define_asset_job(
            "cli_selection_job", selection=dg.AssetSelection.from_string(" or ".join(args.select))
        )
        job_def = dg.Definitions.merge(defs, dg.Definitions(jobs=[job])).resolve_job_def(job.name)
    else:
        job_def = defs.resolve_job_def(ALL_ASSETS_JOB)
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


def cmd_report(args: argparse.Namespace) -> int:
    from batch_platform import storage
    from batch_platform.config import load_config
    from batch_platform.tables import TABLES

    config = load_config()
    lake = config.lake_root.rstrip("/")
    quarters = quarter_range(args.first, args.last or args.first)
    tables = [table.name for table in TABLES.values()]
    width = max([len(t) for t in tables] + [10])
    print(f"lake: {lake}")
    print(f"{'table':<{width}}  " + "  ".join(f"{q:>8}" for q in quarters))
    for table in tables:
        counts = [storage.count_rows(f"{lake}/{table}/quarter={quarter}", config.storage.s3) for quarter in quarters]
        print(f"{table:<{width}}  " + "  ".join(f"{'-' if n is None else f'{n:,}':>8}" for n in counts))
    print("\ntraining sets:")
    for quarter in quarters:
        print(f"  {lake}/gold/training_set/quarter={quarter}")
    example = f'import batch_platform; print(batch_platform.load_training_set("{quarters[-1]}"))'
    print(f"\nread one:  python -c '{example}'")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from batch_platform.api import TOKEN_ENV, serve
    from batch_platform.config import load_config
    from batch_platform.lake_files import Lake

    if not os.environ.get(TOKEN_ENV):
        print(f"set {TOKEN_ENV} to the token clients must send (Authorization: Bearer <token>)", file=sys.stderr)
        return 2
    serve(Lake.from_config(load_config()), args.host, args.port, args.url_ttl)
    return 0


def cmd_ml_report(args: argparse.Namespace) -> int:
    """Per quarter: the champion, its version and eval AUC-PR (from ml/churn_model in the lake), the
    baseline's, and the out-of-time AUC-PR (the latest `out_of_time_performance` check result)."""
    from batch_platform.config import load_config, shown_uri
    from batch_platform.consume import PartitionNotMaterialised, load_model_card

    config = load_config()
    quarters = quarter_range(args.first, args.last or args.first)
    realised = _out_of_time(quarters)
    print(
        f"{'quarter':<8}  {'champion':<20}  {'version':>7}  {'eval AUC-PR':>11}  {'baseline':>8}  "
        f"{'out-of-time AUC-PR':>18}"
    )
    for quarter in quarters:
        try:
            card = load_model_card(quarter, config=config)
        except PartitionNotMaterialised:
            print(f"{quarter:<8}  {'(not materialised)':<20}")
            continue
        baseline = card.loc[card["candidate"] == "recency_baseline", "auc_pr"]
        champion = card[card["champion"]]
        if champion.empty:
            cells = f"{'-':>7}  {'-':>11}  {'-':>8}  {realised.get(quarter, '-'):>18}"
            print(f"{quarter:<8}  {'(not trained)':<20}  {cells}")
            continue
        row = champion.iloc[0]
        print(
            f"{quarter:<8}  {row['candidate']:<20}  {int(row['model_version']):>7}  {row['auc_pr']:>11.4f}  "
            f"{baseline.iloc[0]:>8.4f}  {realised.get(quarter, '-'):>18}"
        )
    model = config.mlflow.registered_model_name
    print(f"\nMLflow store: {shown_uri(config.mlflow_tracking_uri)} (registered model '{model}')")
    print("open its UI:  make mlflow-ui   (then http://127.0.0.1:5000)")
    return 0


def _out_of_time(quarters: Sequence[str]) -> dict[str, str]:
    """Quarter → the latest out-of-time AUC-PR recorded in the Dagster instance (`pending` until the
    labels of the next quarter exist, `-` without scores); empty without `$DAGSTER_HOME`."""
    import dagster as dg

    if not _has_dagster_home():
        return {}
    check = dg.AssetCheckKey(dg.AssetKey(["ml", "churn_scores"]), "out_of_time_performance")
    found: dict[str, str] = {}
    for record in dg.DagsterInstance.get().event_log_storage.get_asset_check_execution_history(check, limit=1000):
        event = record.event.dagster_event if record.event else None
        evaluation = event.event_specific_data if event else None
        if record.partition is None or evaluation is None or to_label(record.partition) in found:
            continue
        value = evaluation.metadata.get("out_of_time/auc_pr")
        pending = (evaluation.description or "").startswith("pending")
        shown = f"{value.value:.4f}" if value is not None else ("pending" if pending else "-")
        found[to_label(record.partition)] = shown
    return {q: found[q] for q in quarters if q in found}


def cmd_mlflow_ui(args: argparse.Namespace) -> int:
    """The MLflow UI of the configured store, bound to 127.0.0.1 (a server store has its own UI)."""
    import os

    from batch_platform.config import load_config

    uri = load_config().mlflow_tracking_uri
    if uri.startswith(("http://", "https://")):
        from batch_platform.config import shown_uri

        print(f"the MLflow store is a server: open {shown_uri(uri)}")
        return 0
    print(f"MLflow UI of {uri} on http://127.0.0.1:{args.port} (Ctrl-C stops it)")
    mlflow = os.path.join(os.path.dirname(sys.executable), "mlflow")
    os.execv(mlflow, [mlflow, "ui", "--backend-store-uri", uri, "--host", "127.0.0.1", "--port", str(args.port)])


def _has_dagster_home() -> bool:
    import os

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
    run.add_argument("--select", action="append", help="asset selection, e.g. 'key:\"silver/*\"' (repeatable)")
    run.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    run.set_defaults(func=cmd_materialize)

    report = commands.add_parser("report", help="rows per table per quarter in the lake")
    _range_args(report)
    report.set_defaults(func=cmd_report)

    api = commands.add_parser("serve", help="serve the lake's datasets over HTTP (SPEC.md, 'Delivery')")
    api.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    api.add_argument("--port", type=int, default=8000)
    api.add_argument("--url-ttl", type=int, default=900, help="seconds a file url stays valid (default 900)")
    api.set_defaults(func=cmd_serve)

    ml_report = commands.add_parser("ml-report", help="champion, eval and out-of-time AUC-PR per quarter")
    _range_args(ml_report)
    ml_report.set_defaults(func=cmd_ml_report)

    ui = commands.add_parser("mlflow-ui", help="the MLflow UI of the configured store, on 127.0.0.1")
    ui.add_argument("--port", type=int, default=5000)
    ui.set_defaults(func=cmd_mlflow_ui)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
