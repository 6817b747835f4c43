"""Ratios against the targets of issue 6, and the Markdown report of one harness run.

Validation + metadata share — how it is measured (in this order of preference):
- the IO manager's own timings, `io_seconds/validate` (structure, unique key) and
  `io_seconds/metadata`, which it records on every materialisation (read back from the run's
  Dagster event log); its row checks ride the pass that computes and counts the frame
  (`io_seconds/count_and_check`): their cost is that pass's time minus the same pass in the ablated
  run (`--with-ablation`), or the whole pass when there is no ablated run;
- the asset bodies' metadata jobs (silver `reconcile`, gold `feature_stats` and `_label_counts`)
  and training_set's consistency join (`unmatched_customers`), timed by the wrappers of
  `benchmarks.platform_child` (after forcing the persisted frame, so computing the table is not
  charged to them);
- the asset-check steps (silver reconciliation, null keys, duplicate keys, quarantine rate),
  from their STEP_START/STEP_SUCCESS times. Not Pandera and not metadata, so shown apart.
The share is over the backfill's wall time (the whole child process: interpreter, imports, JVM,
run). With `--with-ablation`, the difference to a backfill whose IO manager skips validation and
metadata is shown too (noisy on a shared machine: a cross-check, not the measurement).
"""

from __future__ import annotations

GIB = 1024**3
TARGETS = {
    "backfill_vs_plain": 1.3,
    "single_vs_plain_single": 1.5,
    "range_vs_data_quarters": 1.5,
    "backfill_vs_eight": 0.5,
    "validation_metadata_share": 0.10,
    "peak_memory_gib": 4.0,
    "import_seconds": 2.0,
    "ml_vs_plain_ml": 1.3,
    "plain_ml_peak_memory_gib": 4.0,
    "monitoring_share": 0.10,
}
ASSET_METADATA = ("metadata.reconcile", "metadata.feature_stats", "metadata.label_counts")


def _wall(results: dict, name: str) -> float | None:
    c = results["contenders"].get(name)
    return None if c is None else c["process"]["wall_s"]


def _cpu(results: dict, name: str) -> float | None:
    c = results["contenders"].get(name)
    return None if c is None else c["process"].get("cpu_s") or None


def _div(a, b):
    return None if a is None or not b else a / b


def validation_metadata(backfill: dict, ablation: dict | None = None) -> dict:
    """Seconds of Pandera, IO-manager metadata, asset metadata, consistency checks and asset checks.

    The row checks run inside the IO manager's counting pass (`io_seconds/count_and_check`, which
    also computes the frame and counts its rows per quarter), so no timer holds them alone: with an
    ablated run (same backfill, nothing to check) they are the difference of that pass between the
    two runs; without one, the whole pass is charged to Pandera (an upper bound).
    """
    io = backfill.get("io_seconds", {}).get("totals", {})
    phases = backfill.get("attribution", {}).get("phase_seconds", {})
    source = "io_seconds" if io else "wrappers"
    structure = io.get("validate") if io else phases.get("pandera.validate", 0.0)
    counting = io.get("count_and_check", 0.0)
    ablated = (ablation or {}).get("io_seconds", {}).get("totals", {}).get("count_and_check")
    if ablated is not None:
        row_checks, basis = max(0.0, counting - ablated), "counting pass minus the ablated run's"
    else:
        row_checks, basis = counting, "the whole counting pass (upper bound; run with --with-ablation)"
    pandera = (structure or 0.0) + row_checks
    io_meta = io.get("metadata") if io else phases.get("metadata.record", 0.0)
    asset_meta = sum(phases.get(p, 0.0) for p in ASSET_METADATA)
    unmatched = phases.get("validation.unmatched", 0.0)
    checks = sum(s["seconds"] for s in backfill.get("attribution", {}).get("steps", []) if s["kind"] == "check")
    return {
        "source": source,
        "pandera": round(pandera, 3),
        "pandera_structure_and_key": round(structure or 0.0, 3),
        "pandera_row_checks": round(row_checks, 3),
        "row_checks_basis": basis,
        "io_metadata": round(io_meta or 0.0, 3),
        "asset_metadata": round(asset_meta, 3),
        "consistency_join": round(unmatched, 3),
        "asset_checks": round(checks, 3),
        "pandera_plus_metadata": round(pandera + (io_meta or 0.0) + asset_meta + unmatched, 3),
        "io_count_and_check": counting,
        "io_count_and_check_ablated": ablated,
        "io_write": io.get("write"),
        "wrapper_pandera": phases.get("pandera.validate"),
        "wrapper_io_metadata": phases.get("metadata.record"),
    }


def ratios(results: dict) -> dict:
    backfill = results["contenders"].get("backfill")
    out: dict = {}
    b = _wall(results, "backfill")
    out["backfill_vs_plain"] = _div(b, _wall(results, "plain"))
    out["backfill_vs_eight"] = _div(b, _wall(results, "eight"))
    # The same two ratios in CPU seconds of the process trees: far less sensitive than wall time to
    # what else runs on a shared machine (it still moves with cache and memory contention).
    out["backfill_vs_plain_cpu"] = _div(_cpu(results, "backfill"), _cpu(results, "plain"))
    out["backfill_vs_eight_cpu"] = _div(_cpu(results, "backfill"), _cpu(results, "eight"))
    out["backfill_vs_duckdb"] = _div(b, _wall(results, "duckdb"))
    out["plain_vs_duckdb"] = _div(_wall(results, "plain"), _wall(results, "duckdb"))
    out["single_vs_backfill_per_quarter"] = _div(_wall(results, "single"), _div(b, len(results["quarters"])))
    # Issue 16: one quarter alone against plain PySpark's run of that quarter (both with the lookback
    # in their lake), and a long partition range against the same landing's quarters with data.
    out["single_vs_plain_single"] = _div(_wall(results, "single"), _wall(results, "plain_single"))
    out["single_vs_plain_single_cpu"] = _div(_cpu(results, "single"), _cpu(results, "plain_single"))
    # What the table format costs: the platform against the same script writing Delta (no target).
    out["backfill_vs_plain_delta"] = _div(b, _wall(results, "plain_delta"))
    out["single_vs_plain_delta_single"] = _div(_wall(results, "single"), _wall(results, "plain_delta_single"))
    out["plain_delta_vs_plain"] = _div(_wall(results, "plain_delta"), _wall(results, "plain"))
    out["range_vs_data_quarters"] = _div(b, _wall(results, "data"))
    out["range_vs_data_quarters_cpu"] = _div(_cpu(results, "backfill"), _cpu(results, "data"))
    if backfill:
        vm = validation_metadata(backfill, results["contenders"].get("ablation"))
        out["validation_metadata"] = vm
        # Without an ablated run the row checks are charged the whole counting pass, which also computes
        # every output: an upper bound, shown in the breakdown, not a measurement of the target.
        measured = vm["io_count_and_check_ablated"] is not None
        out["validation_metadata_share"] = _div(vm["pandera_plus_metadata"], b) if measured else None
        out["with_asset_checks_share"] = _div(vm["pandera_plus_metadata"] + vm["asset_checks"], b)
        out["peak_memory_gib"] = backfill["process"]["peak_rss_bytes"] / GIB
        # The ML line (issue 13): training, scoring and the out-of-time check are the `ml__*` steps
        # of the same one-run backfill; the target compares them with the rest of it.
        steps = backfill.get("attribution", {}).get("steps", [])
        # Monitoring (issue 26): the drift-check steps; bronze's arrival check runs inside the bronze step
        # and reads only the instance. The ML line leaves the score-drift step to the monitoring line.
        drift = sum(step["seconds"] for step in steps if "drift" in step["step"])
        ml = sum(step["seconds"] for step in steps if step["step"].startswith("ml__") and "drift" not in step["step"])
        out["ml_seconds"] = round(ml, 3) if steps else None
        out["ml_share"] = _div(ml, b - ml) if ml and b else None
        # Issue 25 point 6: the ML steps against an independent plain MLlib + MLflow script doing the same
        # work (`benchmarks.plain_ml`, on the backfill's lake): its work is its phases but the Spark
        # session's start and stop, which the platform's ML steps do not pay either (they run in the
        # backfill's JVM). The gate's and the out-of-time check's steps are in `ml_seconds` (the plain
        # script has no checks), a fraction of a second each.
        plain_ml = results["contenders"].get("plain_ml")
        if plain_ml:
            work = sum(p["seconds"] for p in plain_ml["phases"] if p["phase"] not in ("spark_session", "spark_stop"))
            out["plain_ml_seconds"] = round(work, 3)
            out["ml_vs_plain_ml"] = _div(ml, work) if ml else None
            out["plain_ml_peak_memory_gib"] = plain_ml["process"]["peak_rss_bytes"] / GIB
        out["monitoring_seconds"] = round(drift, 3) if steps else None
        out["monitoring_share"] = _div(drift, b - drift) if drift and b else None
        run = backfill["run"]
        out["run_seconds"] = run.get("seconds")
        out["outside_run_seconds"] = None if run.get("seconds") is None else b - run["seconds"]
    peaks = [
        c["process"]["peak_rss_bytes"] for k, c in results["contenders"].items() if k != "import" and "process" in c
    ]
    out["max_peak_memory_gib"] = max(peaks) / GIB if peaks else None
    if "ablation" in results["contenders"] and backfill:
        a = _wall(results, "ablation")
        out["ablation_saving_share"] = _div(b - a, b) if b and a else None
        cpu_b = backfill["process"].get("cpu_s")
        cpu_a = results["contenders"]["ablation"]["process"].get("cpu_s")
        out["ablation_cpu_saving_share"] = _div(cpu_b - cpu_a, cpu_b) if cpu_b and cpu_a else None
    imp = results["contenders"].get("import")
    out["import_seconds"] = imp["best"] if imp else None
    out["targets"] = {
        name: {"limit": limit, "value": out.get(name), "met": None if out.get(name) is None else out[name] <= limit}
        for name, limit in TARGETS.items()
    }
    return out


# ------------------------------------------------------------------------------------ markdown
def _f(value, digits: int = 1, suffix: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}{suffix}"
    return f"{value:,}{suffix}"


def _pct(value) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def _jobs(c: dict) -> str:
    spark = c.get("spark") or {}
    return _f(spark.get("jobs")) if spark.get("jobs") else "–"


def markdown(results: dict, command: str) -> str:
    r = results["ratios"]
    env = results["environment"]
    c = results["contenders"]
    rows = results["landing_rows"]
    quarters = results["quarters"]
    lines = [
        f"## Performance — SIZE={results['size']}" + (" (daily files)" if results.get("daily") else ""),
        "",
        f"`{command}` — {results['operational_rows']:,} operational rows requested "
        f"({rows:,} landing rows in all: "
        + ", ".join(f"{k} {v:,}" for k, v in results["landing_rows_by_source"].items())
        + f"), {results['customers']:,} customers, {quarters[0]}…{quarters[-1]}, seed {results['seed']}"
        + ("; landing shape: a file every day (`--daily`)." if results.get("daily") else "."),
        f"Machine: {env['cpus']} CPUs, {env['memory_bytes'] / GIB:.0f} GiB, Python {env['python']}, "
        f"PySpark {env['versions']['pyspark']}, Dagster {env['versions']['dagster']}, Pandera {env['versions']['pandera']}, "
        f"DuckDB {env['versions']['duckdb']}; commit {env['git_commit']}"
        + (f" + {env['git_uncommitted_files']} uncommitted files" if env["git_uncommitted_files"] else "")
        + f"; {results['started']}. Spark: `{_spark(results)}`"
        + ("; Spark event log on for every Spark contender" if results["eventlog"] else "")
        + ".",
        "",
    ]
    sources = results.get("platform_source") or {}
    if len(sources) > 1:
        lines += [
            "**Warning: the platform's source changed during this benchmark** (others were editing it), so the "
            "contenders did not all run the same code: "
            + "; ".join(f"`{h}`: {', '.join(names)}" for h, names in sources.items())
            + ". Compare only contenders with the same fingerprint, or re-run.",
            "",
        ]
    lines += [
        "| contender | what | wall (s) | CPU (s) | landing rows/s | peak RSS, tree (GiB) | Spark jobs | load avg (1 min) before → after |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    described = {
        "backfill": ("platform, one-run backfill", f"{len(quarters)} quarters, 1 Dagster run", rows),
        "single": (
            "platform, one quarter",
            f"{quarters[-1]} after the backfill (lookback in the lake)",
            results.get("last_quarter_rows"),
        ),
        "eight": ("platform, one run per quarter", f"{len(quarters)} runs in order (sum; peak = max)", rows),
        "data": (
            "platform, quarters with data",
            f"{', '.join((results.get('data_quarters') or [])[:1] + (results.get('data_quarters') or [])[-1:])}, 1 run",
            rows,
        ),
        "plain": ("plain PySpark", "independent script of SPEC.md (`benchmarks/plain_pyspark.py`)", rows),
        "plain_single": (
            "plain PySpark, one quarter",
            f"{quarters[-1]} after its own full run (lookback in its lake)",
            results.get("last_quarter_rows"),
        ),
        "plain_delta": ("plain PySpark writing Delta", "the same script, every table a Delta table (`--delta`)", rows),
        "plain_delta_single": (
            "plain PySpark writing Delta, one quarter",
            f"{quarters[-1]} after its own full run (lookback in its lake)",
            results.get("last_quarter_rows"),
        ),
        "duckdb": ("DuckDB", "independent SQL, gold only", rows),
        "plain_ml": (
            "plain MLlib + MLflow",
            "independent script of SPEC.md 'ML' on the backfill's lake (`benchmarks/plain_ml.py`)",
            None,
        ),
        "ablation": ("platform backfill, ablated", "IO manager with nothing to check and no `_record`", rows),
    }
    for key, (name, what, n) in described.items():
        if key not in c:
            continue
        proc = c[key]["process"]
        wall = proc["wall_s"]
        load = _load(c[key])
        jobs = (
            _jobs(c[key])
            if key != "eight"
            else _f(sum((x.get("spark") or {}).get("jobs", 0) for x in c[key]["runs"]) or None)
        )
        lines.append(
            f"| {name} | {what} | {_f(wall)} | {_f(proc.get('cpu_s'))} | {_f(n / wall, 0) if n else '–'} | "
            f"{_f(proc['peak_rss_bytes'] / GIB, 2)} | "
            f"{jobs} | {load} |"
        )
    if "import" in c:
        lines.append(
            f'| import definitions | `python -c "import batch_platform.definitions"`, best of 3 | '
            f"{_f(c['import']['best'], 2)} | – | – | – | – | – |"
        )
    lines += [
        "",
        "### Targets (issues 6 and 16, on 2 cores)",
        "",
        "| target | measured (wall time) | same ratio in CPU time | |",
        "| --- | ---: | ---: | --- |",
    ]
    t = r["targets"]
    names = {
        "backfill_vs_plain": ("one-run backfill ≤ 1.3 × plain PySpark", lambda v: f"{v:.2f} ×"),
        "single_vs_plain_single": ("one quarter alone ≤ 1.5 × plain PySpark's run of it", lambda v: f"{v:.2f} ×"),
        "range_vs_data_quarters": (
            "whole partition range ≤ 1.5 × the run over the quarters with data",
            lambda v: f"{v:.2f} ×",
        ),
        "backfill_vs_eight": ("one-run backfill ≤ 0.5 × eight runs", lambda v: f"{v:.2f} ×"),
        "validation_metadata_share": (
            "Pandera + metadata < 10 % of the backfill (measured with `--with-ablation`)",
            lambda v: f"{100 * v:.1f} %",
        ),
        "peak_memory_gib": ("peak memory (backfill, driver + JVM) < 4 GiB", lambda v: f"{v:.2f} GiB"),
        "import_seconds": ("import definitions < 2 s (issue 24)", lambda v: f"{v:.2f} s"),
        "ml_vs_plain_ml": (
            "platform ML steps (train, score, checks) ≤ 1.3 × plain MLlib + MLflow (its work, Spark start/stop aside)",
            lambda v: f"{v:.2f} ×",
        ),
        "plain_ml_peak_memory_gib": ("peak memory (plain MLlib + MLflow) < 4 GiB", lambda v: f"{v:.2f} GiB"),
        "monitoring_share": (
            "monitoring (feature and score drift checks) adds ≤ 10 % to the backfill",
            lambda v: f"{100 * v:.1f} %",
        ),
    }
    for key, (label, fmt) in names.items():
        item = t.get(key)
        if item is None:  # a result recorded before the target existed
            continue
        status = "–" if item["met"] is None else ("met" if item["met"] else "**not met**")
        cpu = r.get(f"{key}_cpu")
        lines.append(
            f"| {label} | {fmt(item['value']) if item['value'] is not None else '–'} | "
            f"{fmt(cpu) if cpu is not None else ''} | {status} |"
        )
    lines += [""]
    if r.get("backfill_vs_duckdb"):
        lines.append(
            f"Context: backfill / DuckDB = {r['backfill_vs_duckdb']:.1f} ×, plain PySpark / DuckDB = "
            f"{_f(r.get('plain_vs_duckdb'), 1)} ×; the one-quarter run takes "
            f"{_f(r.get('single_vs_backfill_per_quarter'), 1)} × the backfill's time per quarter."
        )
    if r.get("plain_delta_vs_plain") is not None:
        lines.append(
            f"Table format: plain PySpark writing Delta takes {r['plain_delta_vs_plain']:.2f} × its Parquet run; "
            f"the backfill is {_f(r.get('backfill_vs_plain_delta'), 2)} × the Delta run, one quarter "
            f"{_f(r.get('single_vs_plain_delta_single'), 2)} × its Delta run of that quarter."
        )
    if r.get("ml_vs_plain_ml") is not None:
        lines.append(
            f"ML: the backfill's ML steps took {_f(r.get('ml_seconds'))} s ({_pct(r.get('ml_share'))} of the rest of "
            f"the backfill); plain MLlib + MLflow {_f(r.get('plain_ml_seconds'))} s of work ("
            + ", ".join(f"{p['phase']} {p['seconds']:.1f}" for p in c["plain_ml"]["phases"])
            + ")."
        )
        agreement = c["plain_ml"].get("agreement") or {}
        found = [q for q in agreement.get("quarters", []) if "best" in q]
        if found:
            lines.append(
                "Plain ML against the platform, per quarter (best candidate, promoted, champion version, best "
                "AUC-PR platform / plain): "
                + "; ".join(
                    f"{q['quarter']} {q['best']['platform']}/{q['best']['plain']}, "
                    f"{q['promoted']['platform']}/{q['promoted']['plain']}, "
                    f"v{q['champion_version']['platform']}/v{q['champion_version']['plain']}, "
                    f"{q['auc_pr'][q['best']['platform']]['platform']:.4f}/{q['auc_pr'][q['best']['plain']]['plain']:.4f}"
                    for q in found
                )
                + "; largest difference of a customer's churn probability "
                + (
                    "–"
                    if agreement.get("largest_score_difference") is None
                    else f"{agreement['largest_score_difference']:.1e}"
                )
                + "."
            )
    if "ablation_saving_share" in r:
        loads = f"load {c['backfill']['load_before'][0]:.1f} vs {c['ablation']['load_before'][0]:.1f}"
        lines.append(
            f"Ablation: without the IO manager's Pandera validation and metadata the backfill took "
            f"{_pct(r['ablation_saving_share'])} less wall time and {_pct(r.get('ablation_cpu_saving_share'))} "
            f"less CPU ({loads}; one sample each on a shared machine — a cross-check of the measured "
            "share, read the CPU figure)."
        )
    vm = r.get("validation_metadata")
    if vm:
        b = c["backfill"]["process"]["wall_s"]
        lines += [
            "",
            "### Where the backfill's time goes",
            "",
            f"Backfill wall {b:.1f} s = Dagster run {_f(r.get('run_seconds'))} s + {_f(r.get('outside_run_seconds'))} s "
            "outside it (interpreter, imports, definitions, JVM start, instance).",
            f"Validation and metadata are read from the run's own logs (`{vm['source']}`) and from the phase timers "
            "(see benchmarks/FINDINGS.md, 'Method').",
            "",
            "| part | seconds | share of backfill |",
            "| --- | ---: | ---: |",
            f"| Pandera: structure and unique key (IO manager, `io_seconds/validate`) | {_f(vm['pandera_structure_and_key'])} | {_pct(_div(vm['pandera_structure_and_key'], b))} |",
            f"| Pandera: row checks in the counting pass ({vm['row_checks_basis']}) | {_f(vm['pandera_row_checks'])} | {_pct(_div(vm['pandera_row_checks'], b))} |",
            f"| IO-manager metadata (column schema, per-quarter previews; `io_seconds/metadata`) | {_f(vm['io_metadata'])} | {_pct(_div(vm['io_metadata'], b))} |",
            f"| asset metadata (silver reconcile, gold feature stats and label counts) | {_f(vm['asset_metadata'])} | {_pct(_div(vm['asset_metadata'], b))} |",
            f"| training_set consistency join (`unmatched_customers`) | {_f(vm['consistency_join'])} | {_pct(_div(vm['consistency_join'], b))} |",
            f"| **Pandera + metadata (the < 10 % target)** | **{_f(vm['pandera_plus_metadata'])}** | **{_pct(_div(vm['pandera_plus_metadata'], b))}** |",
            f"| asset-check steps (silver checks) | {_f(vm['asset_checks'])} | {_pct(_div(vm['asset_checks'], b))} |",
            f"| IO-manager counting pass (compute, rows and row checks per quarter; `io_seconds/count_and_check`) | {_f(vm['io_count_and_check'])} | {_pct(_div(vm['io_count_and_check'], b))} |",
            f"| … the same pass in the ablated run (compute and rows only) | {_f(vm['io_count_and_check_ablated'])} | {_pct(_div(vm['io_count_and_check_ablated'], b))} |",
            f"| IO-manager write (one Delta commit per table; `io_seconds/write`) | {_f(vm['io_write'])} | {_pct(_div(vm['io_write'], b))} |",
        ]
        att = c["backfill"].get("attribution", {})
        if att.get("steps"):
            lines += [
                "",
                "Steps of the backfill (from the run's event log; Spark jobs from the Spark event log, "
                "placed by submission time):",
                "",
                "| step | seconds | Spark jobs | biggest parts (s) |",
                "| --- | ---: | ---: | --- |",
            ]
            for step in att["steps"]:
                parts = ", ".join(f"{k} {v:.1f}" for k, v in list(step["phases"].items())[:4])
                lines.append(f"| {step['step']} | {step['seconds']:.1f} | {step['spark_jobs'] or '–'} | {parts} |")
            if att.get("phase_jobs"):
                lines += [
                    "",
                    "Spark jobs of the backfill by phase: "
                    + ", ".join(f"{k} {v}" for k, v in att["phase_jobs"].items())
                    + f" (total in steps {att.get('jobs_in_steps')}, whole process "
                    f"{(c['backfill'].get('spark') or {}).get('jobs', '–')}).",
                ]
    lines += ["", "### Do the contenders agree?", ""]
    # Every contender that built a lake was compared with the backfill (`run.compare_with_reference`).
    compared = [k for k in c if k not in ("backfill", "import", "plain_ml")]
    if results["mismatches"]:
        lines.append(
            f"**No: {len(results['mismatches'])} figure(s) differ** (reference: the one-run backfill). First 40:"
        )
        lines += [
            "",
            "| contender | table | quarter | figure | reference | contender's |",
            "| --- | --- | --- | --- | ---: | ---: |",
        ]
        for m in results["mismatches"][:40]:
            ref = m.get("backfill", m.get("manifest"))
            other = m.get(m["contender"])
            lines.append(f"| {m['contender']} | {m['table']} | {m['quarter']} | {m['figure']} | {ref} | {other} |")
    else:
        lines.append(
            f"Yes: the gold tables of {', '.join(compared) or '(none)'} equal the one-run backfill's in every quarter — "
            "row counts, distinct customers and a checksum of the customer set, sum/mean/NULLs of every numeric column, "
            "min/max/mean of every timestamp, label and split counts (doubles within 1e-9 relative); the silver row counts "
            "of the backfill and of DuckDB equal the generator's manifest."
        )
        if "plain_ml" in c:
            lines.append(
                "plain_ml's best candidates, gate verdicts, champion versions, every eval AUC-PR (within 1e-9) and "
                "every customer's churn probability (within 1e-9) equal the platform's `ml/churn_model` and `ml/churn_scores`."
            )
    if results["failures"]:
        lines += ["", "### Failures", ""]
        for f in results["failures"]:
            lines.append(f"- **{f['contender']}**: {f['error'].splitlines()[0]}")
    gold = c.get("backfill", {}).get("gold")
    if gold:
        lines += [
            "",
            "Gold figures (training_set, backfill): "
            + "; ".join(
                f"{q} {v['customers']:,} customers, {v['churned']:,} churned, {v['eval']:,} eval"
                for q, v in gold.items()
                if v["customers"]
            )
            + ".",
        ]
    lines.append("")
    return "\n".join(lines)


def _load(c: dict) -> str:
    if "load_before" not in c:
        runs = c.get("runs") or []
        if not runs:
            return "–"
        return f"{runs[0]['load_before'][0]:.1f} → {runs[-1]['load_after'][0]:.1f}"
    return f"{c['load_before'][0]:.1f} → {c['load_after'][0]:.1f}"


def _spark(results: dict) -> str:
    s = results.get("spark_settings") or {}
    return f"master={s.get('master', 'local[*]')}, shuffle_partitions={s.get('shuffle_partitions', 8)}, ui_enabled={s.get('ui_enabled', True)}"


def main(argv: list[str] | None = None) -> int:
    """Re-render `latest-<SIZE>.md` from its JSON (after a change to this module)."""
    import argparse
    import json
    from pathlib import Path

    parser = argparse.ArgumentParser(prog="python -m benchmarks.report", description=main.__doc__)
    parser.add_argument("json", help="a results JSON written by benchmarks.run")
    parser.add_argument("--write", action="store_true", help="overwrite the .md next to it (default: print)")
    args = parser.parse_args(argv)
    path = Path(args.json)
    results = json.loads(path.read_text())
    results["ratios"] = ratios(results)
    text = markdown(results, command=results.get("command") or f"make bench SIZE={results['size']}")
    if args.write:
        path.with_suffix(".md").write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
