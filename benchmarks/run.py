"""`make bench SIZE=XS|S|M|L|real|long`: the platform against plain PySpark and DuckDB, on the same landing data.

    python -m benchmarks.run --size S [--only backfill,plain] [--with-ablation] [--keep] [--timeout 1800]

Cases: XS, S, M, L are generated landing zones (8 quarters, `generate_landing`); `real` is the
CDNOW transaction log (`benchmarks.cdnow`: 69,659 purchases as 546 daily files, 6 quarters of
1997–1998); `long` is the same landing over the whole partition range, 1997-Q1 to the last
complete quarter (~30 years, data in 6 quarters).

One run of the harness:

1. generates the landing zone under `benchmarks/data/<SIZE>/landing` (fixed seed; reused when a
   manifest with the same parameters is there — the generator is deterministic) or, for `real` and
   `long`, writes the CDNOW files under `benchmarks/data/real/landing`;
2. runs each contender as its own child process, with its own config file, lake, DAGSTER_HOME
   and Spark event log, measuring wall time and the peak RSS of its whole process tree, each
   after reading the landing files, the virtualenv and the JDK once (`warm_file_cache`), so no
   contender pays a cold file cache for the others:
   - `backfill`: the platform, bronze → silver → gold (`--select group:bronze … group:gold`;
     `--with-ml` adds the ML group) of every quarter in ONE Dagster run (`batch-platform
     materialize --from F --to L`, through `benchmarks.platform_child`, which adds phase timers;
     `--no-instrument` runs the plain `batch-platform` instead);
   - `single`: then the last quarter on its own, in the same lake (its lookback exists), as a
     scheduled run would;
   - `data` (`long` only): the platform over only the quarters with data, in a fresh lake;
   - `eight`: the same quarters as one run each, in order, in a fresh lake (skipped beyond 12);
   - `plain`: `benchmarks.plain_pyspark` — an independent, straightforward PySpark script of
     SPEC.md (nothing imported from the platform) building the same tables;
   - `plain_single`: the same script for the last quarter alone, in its own lake (lookback there);
   - `plain_delta`, `plain_delta_single` (opt-in, `--only`): the same two runs of the same script
     writing Delta tables as the platform commits them (`--delta`), in a lake of their own: what the
     table format costs a straightforward script, beside the Parquet yardstick;
   - `duckdb`: `benchmarks.duckdb_gold` — an independent SQL implementation of the gold tables;
   - `ablation` (opt-in, `--with-ablation`): the backfill again with the IO manager's Pandera
     validation and metadata replaced by no-ops in the child (`BENCH_ABLATE`, see
     `benchmarks.platform_child`; the platform has no switch for either);
   - `import`: `python -c "import batch_platform.definitions"`, best of 3;
   - `plain_ml` (with `--with-ml`): `benchmarks.plain_ml` — an independent, straightforward MLlib +
     MLflow script (nothing imported from the platform) doing the work of `ml/churn_model` and
     `ml/churn_scores` on the backfill's lake, read-only (its MLflow store and scores in its own
     folder), right after the backfill; its champions, AUC-PRs and scores are compared with the
     platform's model card and scores (`compare_ml`);
3. compares the gold figures of every contender with the backfill's (row counts, sums and means
   per column, label and split counts, per quarter; `benchmarks.figures`) and, for the generated
   sizes, the silver row counts of the platform and DuckDB with the generator's manifest;
4. reads the Dagster event log (step times, the IO manager's `io_seconds/*`), the Spark event log
   (jobs per step and phase) and the phase timers, and writes `benchmarks/results/latest-<SIZE>.md`
   and `.json`, with platform ÷ plain for the whole range and for one quarter, and (`long`) the
   whole range ÷ the quarters with data.

Exit status: 0 when every contender ran and all agree; 1 when gold figures disagree (or silver
counts differ from the manifest); 2 when a contender failed or timed out.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import platform as _platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import yaml

from batch_platform.session import loopback_env
from benchmarks import figures as fig
from benchmarks import report, runlog
from benchmarks.procs import ContenderError, run_measured

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
DATA = BENCH / "data"
RESULTS = BENCH / "results"
PYTHON = sys.executable

SIZES = {
    # operational rows (logs are 1.5x, as the generator makes them), customers
    "XS": (20_000, 400),
    "S": (100_000, 2_000),
    "M": (1_000_000, 20_000),
    "L": (5_000_000, 100_000),
}
REAL_CASES = ("real", "long")
"""`real`: the CDNOW transaction log (`benchmarks.cdnow`) over its 6 quarters; `long`: the same
landing over the whole partition range from 1997-Q1 to the last complete quarter (~30 years, data
in 6 quarters), with the platform's run over only the quarters with data (`data`) beside it."""
TIMEOUTS = {"XS": 900, "S": 1800, "M": 3 * 3600, "L": 8 * 3600, "real": 1800, "long": 3600}
CONTENDERS = (
    "backfill",
    "data",
    "single",
    "eight",
    "plain",
    "plain_single",
    "plain_delta",
    "plain_delta_single",
    "duckdb",
    "import",
    "plain_ml",
)
DEFAULT_CONTENDERS = {
    "real": ("backfill", "single", "plain", "plain_single", "duckdb"),
    "long": ("backfill", "data", "single", "plain", "plain_single", "duckdb"),
}
LAKE_GROUPS = ("group:bronze", "group:silver", "group:gold")
"""What the platform contenders materialise: bronze → gold, the tables the plain script builds
(`--with-ml` adds the ML group)."""
SEED = 7


# ------------------------------------------------------------------------------------- setup
def base_config() -> dict:
    """The project's config file (or `$BATCH_PLATFORM_CONFIG`'s) as raw YAML: the shipped settings."""
    path = Path(os.environ.get("BATCH_PLATFORM_CONFIG") or ROOT / "config" / "config.yaml")
    return yaml.safe_load(path.read_text()) or {}


def _generator_digest() -> str:
    """SHA-256 of the generator's source: a landing written by another version of it is written again
    (a change to its files, such as a new kind of dirt, keeps the same parameters and rows)."""
    import batch_platform.sample_data as sample_data

    digest = hashlib.sha256()
    for path in sorted(Path(sample_data.__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def landing_for(
    size: str, rows: int, customers: int, first: str, last: str, seed: int, regenerate: bool, daily: bool = False
) -> tuple[Path, dict, float | None]:
    """The landing zone of a size: generated, or reused when its manifest has the same parameters and
    the declared sources (a landing written before a source was added is written again) and the
    generator's source is the one that wrote it (its digest in `landing.generator` beside the landing)."""
    from batch_platform.sample_data import MANIFEST_NAME, generate_landing
    from batch_platform.schemas.bronze import BRONZE_TABLES

    landing = DATA / size / ("landing-daily" if daily else "landing")
    manifest_path = landing / MANIFEST_NAME
    digest_path = landing.with_name(landing.name + ".generator")
    generator = _generator_digest()
    if manifest_path.exists() and not regenerate:
        manifest = json.loads(manifest_path.read_text())
        same = (
            manifest.get("seed") == seed
            and manifest.get("customers") == customers
            and manifest.get("operational_rows_requested") == rows
            and manifest.get("first_quarter") == first
            and manifest.get("last_quarter") == last
            and bool(manifest.get("daily")) == daily
            and list(manifest.get("rows_by_source", {})) == list(BRONZE_TABLES)
            and digest_path.exists()
            and digest_path.read_text().strip() == generator
        )
        if same:
            print(f"landing: reusing {landing} (same generator and parameters, deterministic)", flush=True)
            return landing, manifest, None
    print(
        f"landing: generating {rows:,} operational rows, {customers:,} customers, {first}..{last}, seed {seed} "
        f"-> {landing}",
        flush=True,
    )
    began = time.perf_counter()
    digest_path.unlink(missing_ok=True)
    manifest = generate_landing(
        landing,
        first_quarter=first,
        last_quarter=last,
        customers=customers,
        operational_rows=rows,
        seed=seed,
        daily=daily,
    )
    digest_path.write_text(generator + "\n")
    return landing, manifest, time.perf_counter() - began


class Contender:
    """One contender's folder: config file, lake, DAGSTER_HOME, Spark event log, reports."""

    def __init__(
        self,
        work: Path,
        name: str,
        landing: Path,
        base: dict,
        eventlog: bool,
        spark_overrides: dict,
        batch_overrides: dict | None = None,
    ):
        self.name = name
        self.batch_overrides = batch_overrides or {}
        self.dir = work / name
        self.lake = self.dir / "lake"
        self.home = self.dir / "dagster_home"
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        self.landing, self.base, self.eventlog, self.spark_overrides = landing, base, eventlog, spark_overrides
        self.configs = 0

    def config(self, tag: str) -> tuple[Path, Path]:
        """A config file for one child process (each gets its own Spark event log folder)."""
        raw = copy.deepcopy(self.base)
        raw.setdefault("storage", {}).update(landing_root=str(self.landing), lake_root=str(self.lake))
        raw.setdefault("batch", {}).update(self.batch_overrides)
        spark = raw.setdefault("spark", {})
        conf = dict(spark.get("conf") or {})
        conf.update(self.spark_overrides.get("conf", {}))
        spark.update({k: v for k, v in self.spark_overrides.items() if k != "conf"})
        events = self.dir / f"spark-events-{tag}"
        if self.eventlog:
            events.mkdir(parents=True, exist_ok=True)
            conf.update(
                {
                    "spark.eventLog.enabled": True,
                    "spark.eventLog.dir": events.as_uri(),
                    "spark.eventLog.compress": False,
                }
            )
        spark["conf"] = conf
        path = self.dir / f"config-{tag}.yaml"
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        return path, events

    def env(self, config: Path, **extra: str) -> dict[str, str]:
        """The child's environment. A local master's JVM listens on loopback only, the plain scripts'
        too: they build their own sessions (`batch_platform.session.loopback_env`)."""
        master = self.spark_overrides.get("master") or (self.base.get("spark") or {}).get("master", "local[*]")
        env = {
            **loopback_env(str(master)),
            **{k: v for k, v in os.environ.items() if k not in ("BATCH_PLATFORM_CONFIG", "DAGSTER_HOME")},
        }
        env.update(
            BATCH_PLATFORM_CONFIG=str(config), DAGSTER_HOME=str(self.home), TZ="UTC", PYTHONUNBUFFERED="1", **extra
        )
        return env


def source_fingerprint() -> str:
    """A hash of the platform's source: other people edit it while benchmarks run."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted((ROOT / "batch_platform").rglob("*.py")):
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


# ------------------------------------------------------------------------------ contenders
def warm_file_cache(*roots: Path) -> float:
    """Read every file under `roots` once; returns the seconds it took.

    On this machine the file cache forgets within minutes: read cold, the landing files, the
    virtualenv (Spark's jars in it) and the JDK took 20 s, warm 1.3 s (measured), and
    whichever contender happened to run first paid it (its bronze steps, where the JVM loads most
    classes, were 6–27 s slower than the ablated backfill's in all four M runs with one). Every
    contender therefore starts after this, outside its timed window.
    """
    began = time.perf_counter()
    for root in roots:
        for path in Path(root).rglob("*"):
            try:
                if path.is_file() and not path.is_symlink():
                    with open(path, "rb") as handle:
                        while handle.read(1 << 22):
                            pass
            except OSError:
                continue
    return time.perf_counter() - began


def platform_run(
    c: Contender,
    tag: str,
    first: str,
    last: str,
    *,
    timeout: float,
    logs: Path,
    instrument: bool,
    extra_env: dict | None = None,
    select: tuple[str, ...] = LAKE_GROUPS,
) -> dict:
    """One `batch-platform materialize` child; its process figures, Dagster run and Spark jobs."""
    config, events = c.config(tag)
    phases_path = c.dir / f"phases-{tag}.json"
    env = c.env(config, BENCH_PHASES_OUT=str(phases_path), **(extra_env or {}))
    if instrument:
        argv = [PYTHON, "-m", "benchmarks.platform_child", "materialize", "--from", first, "--to", last]
    else:
        argv = [str(Path(PYTHON).parent / "batch-platform"), "materialize", "--from", first, "--to", last]
    for group in select:
        argv += ["--select", group]
    known = runlog.run_ids(c.home)
    load_before = os.getloadavg()
    proc = run_measured(f"{c.name}-{tag}", argv, env=env, cwd=ROOT, timeout=timeout, log_dir=logs)
    runs = [r for r in runlog.dagster_runs(c.home) if r["run_id"] not in known]
    if len(runs) != 1:
        raise ContenderError(f"{c.name}-{tag}: expected one new Dagster run in {c.home}, found {len(runs)}")
    run = runs[0]
    if run["status"] != "SUCCESS":
        raise ContenderError(f"{c.name}-{tag}: Dagster run {run['run_id']} ended {run['status']}\n{proc.tail()}")
    phases = (
        json.loads(phases_path.read_text())
        if phases_path.exists()
        else {"phases": [], "hooks": [], "missing_hooks": []}
    )
    jobs = runlog.spark_jobs(events) if c.eventlog else []
    return {
        "process": proc.as_dict(),
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "run": run,
        "io_seconds": runlog.io_seconds(c.home, run["run_id"]),
        "attribution": runlog.attribute(run, phases["phases"], jobs),
        "hooks": phases.get("hooks", []),
        "missing_hooks": phases.get("missing_hooks", []),
        "spark": runlog.job_summary(jobs),
    }


def plain_run(c: Contender, first: str, last: str, *, timeout: float, logs: Path, tag: str = "plain") -> dict:
    """The plain script over `first` … `last`; the `plain_delta*` contenders write Delta (`--delta`)."""
    config, events = c.config(tag)
    report_path = c.dir / f"{tag}-report.json"
    load_before = os.getloadavg()
    proc = run_measured(
        f"{c.name}-{tag}",
        [PYTHON, "-m", "benchmarks.plain_pyspark", "--from", first, "--to", last, "--report", str(report_path)]
        + (["--delta"] if tag.startswith("plain_delta") else []),
        env=c.env(config),
        cwd=ROOT,
        timeout=timeout,
        log_dir=logs,
    )
    inner = json.loads(report_path.read_text())
    jobs = runlog.spark_jobs(events) if c.eventlog else []
    return {
        "process": proc.as_dict(),
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "phases": [{"phase": p["phase"], "seconds": round(p["end"] - p["start"], 3)} for p in inner["phases"]],
        "spark": runlog.job_summary(jobs),
    }


def plain_ml_run(c: Contender, first: str, last: str, *, timeout: float, logs: Path) -> dict:
    """`benchmarks.plain_ml` on `c.lake` (the backfill's, read only); its store and scores in `c.dir`."""
    config, events = c.config("plain_ml")
    report_path = c.dir / "plain_ml-report.json"
    load_before = os.getloadavg()
    argv = [PYTHON, "-m", "benchmarks.plain_ml", "--from", first, "--to", last]
    argv += ["--output", str(c.dir / "output"), "--report", str(report_path)]
    proc = run_measured(f"{c.name}-plain_ml", argv, env=c.env(config), cwd=ROOT, timeout=timeout, log_dir=logs)
    inner = json.loads(report_path.read_text())
    jobs = runlog.spark_jobs(events) if c.eventlog else []
    return {
        "process": proc.as_dict(),
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "phases": [{"phase": p["phase"], "seconds": round(p["end"] - p["start"], 3)} for p in inner["phases"]],
        "models": inner["models"],
        "spark": runlog.job_summary(jobs),
    }


def _delta_frame(folder: Path):
    import pandas as pd

    files = fig.table_files(folder)
    if not files:
        return pd.DataFrame()
    frames = []
    for file in files:
        part = pd.read_parquet(file)
        quarter = next((p.split("=", 1)[1] for p in file.parts if p.startswith("quarter=")), None)
        frames.append(part.assign(quarter=quarter))
    return pd.concat(frames, ignore_index=True)


def compare_ml(lake: Path, models: list[dict], scores: Path, tolerance: float = 1e-9) -> dict:
    """The plain script's figures against the platform's model card (`ml/churn_model`) and scores
    (`ml/churn_scores`) in `lake`: per quarter, each candidate's and the baseline's eval AUC-PR, the
    best candidate, whether it was promoted and the champion's version; the largest difference of a
    customer's churn probability. `mismatches`: every disagreement, as the harness lists them."""
    import pandas as pd

    card = _delta_frame(lake / "ml" / "churn_model")
    mine_scores = (
        pd.read_parquet(scores)
        if scores.is_dir()
        else pd.DataFrame(columns=["quarter", "customer_id", "churn_probability"])
    )
    theirs_scores = _delta_frame(lake / "ml" / "churn_scores")
    quarters, mismatches = [], []

    def differ(quarter: str, what: str, platform, plain) -> None:
        mismatches.append(
            {"table": "ml/churn_model", "quarter": quarter, "figure": what, "backfill": platform, "plain_ml": plain}
        )

    for model in models:
        q = model["quarter"]
        rows = card[card["quarter"] == q] if len(card) else card
        entry: dict = {"quarter": q, "trained": model["trained"]}
        if not model["trained"] or rows.empty:
            if model["trained"] != (not rows.empty):
                differ(q, "trained", not rows.empty, model["trained"])
            quarters.append(entry)
            continue
        by_name = {r["candidate"]: r for r in rows.to_dict("records")}
        figures = {
            **{n: c["auc_pr"] for n, c in model["candidates"].items()},
            "recency_baseline": model["recency_baseline"]["auc_pr"],
        }
        if model.get("previous_champion"):
            figures["previous_champion"] = model["previous_champion"]["auc_pr"]
        entry["auc_pr"] = {}
        for name, plain in figures.items():
            platform = by_name.get(name, {}).get("auc_pr")
            entry["auc_pr"][name] = {"platform": platform, "plain": plain}
            if platform is None or abs(platform - plain) > tolerance:
                differ(q, f"auc_pr {name}", platform, plain)
        champion_row = next((r for r in by_name.values() if r["champion"]), None)
        platform_best = max(
            (r for n, r in by_name.items() if n not in ("recency_baseline", "previous_champion")),
            key=lambda r: r["auc_pr"],
        )["candidate"]
        platform_promoted = champion_row is not None and champion_row["candidate"] not in ("previous_champion",)
        platform_version = None if champion_row is None else int(champion_row["model_version"])
        entry |= {
            "best": {"platform": platform_best, "plain": model["best"]},
            "promoted": {"platform": platform_promoted, "plain": model["gate"]["promoted"]},
            "champion_version": {"platform": platform_version, "plain": model["champion_version"]},
        }
        for what in ("best", "promoted", "champion_version"):
            platform, plain = entry[what]["platform"], entry[what]["plain"]
            if what == "champion_version":
                platform, plain = (None if v is None else int(v) for v in (platform, plain))
            if platform != plain:
                differ(q, what, platform, plain)
        quarters.append(entry)
    largest = None
    if len(mine_scores) and len(theirs_scores):
        mine_scores["quarter"] = mine_scores["quarter"].astype(str)
        both = theirs_scores.merge(
            mine_scores, on=["quarter", "customer_id"], how="outer", suffixes=("_platform", "_plain"), indicator=True
        )
        unmatched = int((both["_merge"] != "both").sum())
        if unmatched:
            mismatches.append(
                {
                    "table": "ml/churn_scores",
                    "quarter": "all",
                    "figure": "customers scored by one only",
                    "backfill": 0,
                    "plain_ml": unmatched,
                }
            )
        matched = both[both["_merge"] == "both"]
        largest = float((matched["churn_probability_platform"] - matched["churn_probability_plain"]).abs().max())
        if largest > 1e-9:
            mismatches.append(
                {
                    "table": "ml/churn_scores",
                    "quarter": "all",
                    "figure": "largest churn_probability difference",
                    "backfill": 0.0,
                    "plain_ml": largest,
                }
            )
    return {"quarters": quarters, "largest_score_difference": largest, "mismatches": mismatches}


def duckdb_run(c: Contender, first: str, last: str, settings: dict, *, timeout: float, logs: Path) -> dict:
    report_path = c.dir / "duckdb-report.json"
    batch = settings.get("batch", {})
    argv = [
        PYTHON,
        "-m",
        "benchmarks.duckdb_gold",
        "--landing",
        str(c.landing),
        "--lake",
        str(c.lake),
        "--from",
        first,
        "--to",
        last,
        "--first-quarter",
        str(batch.get("first_quarter", first)),
        "--lookback",
        str(batch.get("lookback_quarters", 4)),
        "--window-days",
        str(batch.get("prediction_window_days", 90)),
        "--eval-fraction",
        str(batch.get("eval_fraction", 0.2)),
        "--system-priority",
        ",".join((settings.get("customers") or {}).get("system_priority") or ("store", "online")),
        "--report",
        str(report_path),
    ]
    load_before = os.getloadavg()
    config, _ = c.config("duckdb")
    proc = run_measured(c.name, argv, env=c.env(config), cwd=ROOT, timeout=timeout, log_dir=logs)
    inner = json.loads(report_path.read_text())
    return {
        "process": proc.as_dict(),
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "steps": {k: v for k, v in inner["steps"].items() if k != "silver_rows"},
        "silver_rows": inner["steps"].get("silver_rows", {}),
    }


def import_time(c: Contender, *, repeats: int = 3, timeout: float = 300, logs: Path) -> dict:
    config, _ = c.config("import")
    times = []
    for i in range(repeats):
        proc = run_measured(
            f"import-{i}",
            [PYTHON, "-c", "import batch_platform.definitions"],
            env=c.env(config),
            cwd=ROOT,
            timeout=timeout,
            log_dir=logs,
        )
        times.append(proc.wall_s)
    return {"seconds": times, "best": min(times)}


# --------------------------------------------------------------------------------- checks
def silver_counts(lake: Path, quarters: list[str]) -> dict[str, dict[str, int]]:
    """Rows per quarter of the platform's silver tables, read from the lake."""
    import duckdb

    names = {
        "operational": "operational_events",
        "logs": "interaction_logs",
        "external": "partner_scores",
        "customers": "customer_profiles",
    }
    out: dict[str, dict[str, int]] = {}
    con = duckdb.connect()
    try:
        for source, table in names.items():
            out[source] = {}
            for quarter in quarters:
                files = [str(p) for p in fig.table_files(lake / "silver" / table, quarter)]
                out[source][quarter] = (
                    con.execute(f"SELECT count(*) FROM read_parquet({files!r})").fetchone()[0] if files else None
                )
    finally:
        con.close()
    return out


def manifest_problems(manifest: dict, counts: dict, who: str) -> list[dict]:
    problems = []
    for source, quarters in manifest["expected_silver"].items():
        for quarter, expected in quarters.items():
            got = counts.get(source, {}).get(quarter)
            if got is not None and got != expected["silver"]:
                problems.append(
                    {
                        "contender": who,
                        "table": f"silver/{source}",
                        "quarter": quarter,
                        "figure": "rows",
                        "manifest": expected["silver"],
                        who: got,
                    }
                )
    return problems


def file_counts(lake: Path) -> dict[str, dict]:
    """Parquet files and bytes per lake table, of the latest version (small-file explosions show here)."""
    out = {}
    for layer in ("bronze", "silver", "gold"):
        for table in sorted(p for p in (lake / layer).glob("*") if p.is_dir()):
            files = fig.table_files(table)
            out[f"{layer}/{table.name}"] = {"files": len(files), "bytes": sum(f.stat().st_size for f in files)}
    return out


# ----------------------------------------------------------------------------------- main
def environment() -> dict:
    def version(module: str) -> str:
        try:
            from importlib.metadata import version as v

            return v(module)
        except Exception:  # noqa: BLE001
            return "?"

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.count("\n")
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "?", 0
    mem = 0
    try:
        with open("/proc/meminfo") as handle:
            mem = int(handle.readline().split()[1]) * 1024
    except OSError:
        pass
    return {
        "python": _platform.python_version(),
        "machine": _platform.machine(),
        "cpus": os.cpu_count(),
        "memory_bytes": mem,
        "git_commit": commit,
        "git_uncommitted_files": dirty,
        "versions": {m: version(m) for m in ("dagster", "pyspark", "pandera", "duckdb", "pandas", "pyarrow")},
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--size",
        default="S",
        choices=[*SIZES, *REAL_CASES],
        help="generated XS, S, M, L; `real` (the CDNOW log, 6 quarters) or `long` (the same over ~30 years)",
    )
    parser.add_argument("--operational-rows", type=int, help="override the size's operational rows")
    parser.add_argument("--customers", type=int, help="override the size's customers")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--from", dest="first", help="first quarter (default 2024-Q1; real/long: 1997-Q1)")
    parser.add_argument(
        "--to", dest="last", help="last quarter (default 2025-Q4; real: 1998-Q2; long: the last complete)"
    )
    parser.add_argument(
        "--daily",
        action="store_true",
        help="generated sizes: the production shape, a landing file every day (results latest-<SIZE>-daily)",
    )
    parser.add_argument("--with-ml", action="store_true", help="the platform contenders also run the ML group")
    parser.add_argument(
        "--only", help=f"comma-separated subset of {','.join(CONTENDERS)} (backfill is the reference and always runs)"
    )
    parser.add_argument(
        "--with-ablation",
        action="store_true",
        help="also run the backfill without the IO manager's validation and metadata",
    )
    parser.add_argument(
        "--no-instrument", action="store_true", help="run the real batch-platform script (no phase timers)"
    )
    parser.add_argument("--no-eventlog", action="store_true", help="do not enable Spark's event log")
    parser.add_argument("--spark-master", help="override spark.master for every Spark contender")
    parser.add_argument(
        "--shuffle-partitions", type=int, help="override spark.shuffle_partitions for every Spark contender"
    )
    parser.add_argument("--timeout", type=float, help="seconds per child process (default by size)")
    parser.add_argument("--regenerate", action="store_true", help="regenerate the landing data even if present")
    parser.add_argument("--keep", action="store_true", help="keep the contenders' lakes and homes")
    parser.add_argument("--results", default=str(RESULTS), help="where latest-<SIZE>.md/.json go")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    real = args.size in REAL_CASES
    timeout = args.timeout or TIMEOUTS[args.size]
    default = DEFAULT_CONTENDERS.get(args.size, [c for c in CONTENDERS if not c.startswith("plain_delta")])
    selected = set(default if not args.only else [c.strip() for c in args.only.split(",") if c.strip()])
    unknown = selected - set(CONTENDERS)
    if unknown:
        print(f"unknown contender(s) {sorted(unknown)}; choose from {', '.join(CONTENDERS)}", file=sys.stderr)
        return 2
    selected.add("backfill")

    from batch_platform.partitions import quarter_range, to_label

    batch_overrides: dict = {}
    if real:
        from benchmarks import cdnow

        first = args.first or cdnow.FIRST_QUARTER
        if args.last:
            last = args.last
        elif args.size == "long":
            last = to_label(last_complete_quarter(first))
        else:
            last = cdnow.LAST_QUARTER
        batch_overrides["first_quarter"] = cdnow.FIRST_QUARTER
        landing = DATA / "real" / "landing"
        gen_began = time.perf_counter()
        manifest = cdnow.write_landing(landing)
        gen_seconds = time.perf_counter() - gen_began
        rows, customers = manifest["transactions"], manifest["customers"]
        data_quarters = [q for q, n in manifest["rows_by_source_quarter"]["operational"].items() if n]
    else:
        rows, customers = SIZES[args.size]
        rows, customers = args.operational_rows or rows, args.customers or customers
        first, last = args.first or "2024-Q1", args.last or "2025-Q4"
        landing, manifest, gen_seconds = landing_for(
            args.size, rows, customers, first, last, args.seed, args.regenerate, args.daily
        )
        data_quarters = quarter_range(first, last)
    quarters = quarter_range(first, last)
    if "eight" in selected and len(quarters) > 12:
        selected.discard("eight")
        print(f"eight: skipped ({len(quarters)} quarters, one run each)", flush=True)
    by_source = manifest["rows_by_source_quarter"]
    landing_rows = sum(sum(by_source[s].get(q, 0) for q in quarters) for s in by_source)
    last_rows = sum(by_source[s].get(quarters[-1], 0) for s in by_source)

    base = base_config()
    overrides: dict = {}
    if args.spark_master:
        overrides["master"] = args.spark_master
    if args.shuffle_partitions:
        overrides["shuffle_partitions"] = args.shuffle_partitions
    logs = DATA / args.size / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    DATA.mkdir(parents=True, exist_ok=True)
    (DATA / args.size).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="work-", dir=DATA / args.size))
    results: dict = {
        "size": args.size,
        "daily": args.daily,
        "operational_rows": rows,
        "customers": customers,
        "seed": args.seed,
        "quarters": quarters,
        "landing_rows": landing_rows,
        "last_quarter_rows": last_rows,
        "landing_rows_by_source": {s: sum(v.get(q, 0) for q in quarters) for s, v in by_source.items()},
        "data_quarters": data_quarters,
        "generation_seconds": gen_seconds,
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "environment": environment(),
        "spark_settings": base.get("spark", {}) | overrides,
        "eventlog": not args.no_eventlog,
        "instrumented": not args.no_instrument,
        "contenders": {},
        "failures": [],
        "mismatches": [],
        "platform_source": {},
    }
    eventlog = not args.no_eventlog
    status = 0

    def contender(name: str) -> Contender:
        return Contender(work, name, landing, base, eventlog, overrides, batch_overrides)

    java_home = Path(os.path.realpath(shutil.which("java") or "java")).parent.parent
    warm_roots = [landing, Path(sys.prefix), java_home]

    def attempt(name: str, fn):
        warmed = warm_file_cache(*warm_roots)
        print(f"[{time.strftime('%H:%M:%S')}] {name} ... (file cache warmed in {warmed:.1f} s)", flush=True)
        before = source_fingerprint()
        results["platform_source"].setdefault(before, []).append(name)
        try:
            value = fn()
        except ContenderError as exc:
            results["failures"].append({"contender": name, "error": str(exc)[-4000:]})
            print(f"  FAILED: {str(exc)[:2000]}", flush=True)
            return None
        except Exception:  # noqa: BLE001 - a harness bug in one contender must not lose the others
            error = traceback.format_exc()
            results["failures"].append({"contender": name, "error": error[-4000:]})
            print(f"  FAILED (harness error):\n{error}", flush=True)
            return None
        after = source_fingerprint()
        if after != before:
            results["platform_source"].setdefault(after, []).append(f"{name} (changed while it ran)")
        if isinstance(value, dict):
            value["platform_source"] = before if after == before else f"{before}->{after}"
        wall = value.get("process", {}).get("wall_s") if isinstance(value, dict) else None
        print(f"  done{f' in {wall:.1f} s' if wall else ''}", flush=True)
        return value

    def measure(contender_name: str, label: str, fn) -> None:
        """`attempt` one contender and file its result under `contender_name` if it finished."""
        result = attempt(label, fn)
        if result:
            results["contenders"][contender_name] = result

    state: dict = {"reference": None}
    instrument = not args.no_instrument
    select = () if args.with_ml else LAKE_GROUPS

    def check_manifest(counts: dict, who: str) -> list[dict]:
        return [] if real else manifest_problems(manifest, counts, who)

    def compare_with_reference(name: str, lake: Path, only: list[str] | None = None) -> None:
        if state["reference"] is not None:
            mine = fig.gold_figures(lake, only)
            results["mismatches"] += _tag(fig.compare(state["reference"], mine, "backfill", name, only), name)

    def do_backfill(c: Contender) -> dict:
        result = platform_run(
            c, "backfill", quarters[0], quarters[-1], timeout=timeout, logs=logs, instrument=instrument, select=select
        )
        result["files"] = file_counts(c.lake)
        state["reference"] = fig.gold_figures(c.lake)
        result["gold"] = fig.summary(state["reference"])
        result["silver_rows"] = silver_counts(c.lake, quarters)
        results["mismatches"] += check_manifest(result["silver_rows"], "backfill")
        return result

    def do_single(c: Contender) -> dict:
        result = platform_run(
            c, "single", quarters[-1], quarters[-1], timeout=timeout, logs=logs, instrument=instrument, select=select
        )
        compare_with_reference("single", c.lake, [quarters[-1]])
        return result

    def do_data(c: Contender) -> dict:
        """The platform over only the quarters with data (the `long` case's yardstick)."""
        result = platform_run(
            c,
            "data",
            data_quarters[0],
            data_quarters[-1],
            timeout=timeout,
            logs=logs,
            instrument=instrument,
            select=select,
        )
        compare_with_reference("data", c.lake, data_quarters)
        return result

    def do_plain_single(c: Contender, tag: str = "plain_single") -> dict:
        """Plain PySpark for the last quarter alone, in the lake of its own full run (lookback there)."""
        result = plain_run(c, quarters[-1], quarters[-1], timeout=timeout, logs=logs, tag=tag)
        compare_with_reference(tag, c.lake, [quarters[-1]])
        return result

    def do_plain(c: Contender, tag: str = "plain") -> dict:
        result = plain_run(c, quarters[0], quarters[-1], timeout=timeout, logs=logs, tag=tag)
        result["files"] = file_counts(c.lake)
        compare_with_reference(tag, c.lake)
        return result

    def do_duckdb(c: Contender) -> dict:
        settings = {**base, "batch": {**(base.get("batch") or {}), **batch_overrides}}
        result = duckdb_run(c, quarters[0], quarters[-1], settings, timeout=timeout, logs=logs)
        results["mismatches"] += check_manifest(result["silver_rows"], "duckdb")
        compare_with_reference("duckdb", c.lake)
        return result

    def do_plain_ml(c: Contender) -> dict:
        """Plain MLlib + MLflow on the backfill's lake (read only), compared with the platform's ML tables."""
        result = plain_ml_run(c, quarters[0], quarters[-1], timeout=timeout, logs=logs)
        agreement = compare_ml(c.lake, result["models"], c.dir / "output" / "ml" / "churn_scores")
        result["agreement"] = agreement
        results["mismatches"] += _tag(agreement["mismatches"], "plain_ml")
        return result

    def do_ablation(c: Contender) -> dict:
        result = platform_run(
            c,
            "ablation",
            quarters[0],
            quarters[-1],
            timeout=timeout,
            logs=logs,
            instrument=True,
            extra_env={"BENCH_ABLATE": "checks,record"},
            select=select,
        )
        compare_with_reference("ablation", c.lake)
        return result

    try:
        # The backfill is the reference; plain PySpark and DuckDB run right after it, so that the
        # ratio that matters most is measured under the most similar machine load.
        back = contender("backfill")
        measure("backfill", "backfill (one run, all quarters)", lambda: do_backfill(back))
        if "plain_ml" in selected and args.with_ml and "backfill" in results["contenders"]:
            plain_ml = contender("plain_ml")
            plain_ml.lake = back.lake  # read only: its MLflow store and scores go to its own folder
            measure("plain_ml", "plain MLlib + MLflow (on the backfill's lake)", lambda: do_plain_ml(plain_ml))
        if "plain" in selected:
            plain = contender("plain")
            measure("plain", "plain PySpark", lambda: do_plain(plain))
        if "plain_delta" in selected:
            plain_delta = contender("plain_delta")
            measure("plain_delta", "plain PySpark writing Delta", lambda: do_plain(plain_delta, "plain_delta"))
        if "duckdb" in selected:
            duck = contender("duckdb")
            measure("duckdb", "DuckDB", lambda: do_duckdb(duck))
        if "single" in selected and state["reference"] is not None:
            measure("single", f"single ({quarters[-1]} after the backfill, same lake)", lambda: do_single(back))
        if "plain_single" in selected and "plain" in results["contenders"]:
            measure("plain_single", f"plain PySpark, {quarters[-1]} alone (same lake)", lambda: do_plain_single(plain))
        if "plain_delta_single" in selected and "plain_delta" in results["contenders"]:
            measure(
                "plain_delta_single",
                f"plain PySpark writing Delta, {quarters[-1]} alone (same lake)",
                lambda: do_plain_single(plain_delta, "plain_delta_single"),
            )
        if "data" in selected:
            data = contender("data")
            measure(
                "data",
                f"backfill of the quarters with data ({data_quarters[0]}…{data_quarters[-1]})",
                lambda: do_data(data),
            )
        if "eight" in selected:
            eight = contender("eight")
            per_run = []
            for quarter in quarters:
                result = attempt(
                    f"eight: {quarter}",
                    lambda q=quarter: platform_run(
                        eight, f"run-{q}", q, q, timeout=timeout, logs=logs, instrument=instrument, select=select
                    ),
                )
                if result is None:
                    per_run = None
                    break
                per_run.append(result)
            if per_run:
                results["contenders"]["eight"] = {
                    "runs": per_run,
                    "process": {
                        "wall_s": sum(r["process"]["wall_s"] for r in per_run),
                        "peak_rss_bytes": max(r["process"]["peak_rss_bytes"] for r in per_run),
                        "cpu_s": round(sum(r["process"].get("cpu_s", 0.0) for r in per_run), 2),
                    },
                    "files": file_counts(eight.lake),
                }
                attempt("eight: compare gold", lambda: compare_with_reference("eight", eight.lake))
        if args.with_ablation:
            abl = contender("ablation")
            measure("ablation", "ablation (backfill, no Pandera, no IO-manager metadata)", lambda: do_ablation(abl))
        if "import" in selected:
            imp = contender("import")
            measure("import", "import batch_platform.definitions (best of 3)", lambda: import_time(imp, logs=logs))
    finally:
        if args.keep:
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    results["ratios"] = report.ratios(results)
    if results["failures"]:
        status = 2
    elif results["mismatches"]:
        status = 1
    results["exit_status"] = status
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    results["command"] = _command(args)
    md = report.markdown(results, command=results["command"])
    case = f"{args.size}-daily" if args.daily else args.size
    (out / f"latest-{case}.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    (out / f"latest-{case}.md").write_text(md)
    print()
    print(md)
    print(f"written: {out / f'latest-{case}.md'} and .json; contender logs in {logs}")
    return status


def last_complete_quarter(first: str) -> str:
    """The end of the platform's partitions definition: the last complete quarter."""
    from batch_platform.partitions import quarterly_partitions

    return quarterly_partitions(first).get_last_partition_key()


def _tag(problems: list[dict], who: str) -> list[dict]:
    return [{"contender": who, **p} for p in problems]


def _command(args: argparse.Namespace) -> str:
    if not any(
        [
            args.only,
            args.with_ablation,
            args.no_instrument,
            args.no_eventlog,
            args.spark_master,
            args.shuffle_partitions,
            args.operational_rows,
            args.customers,
            args.daily,
        ]
    ):
        return f"make bench SIZE={args.size}"
    return "python -m benchmarks.run " + " ".join(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
