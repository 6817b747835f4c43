"""What happened inside a run, after the fact: Dagster's event log, Spark's event log, phases.

- `dagster_runs(home)`: every run in a DAGSTER_HOME, with each step's start, end and status from
  the run's event log (STEP_START / STEP_SUCCESS / STEP_FAILURE; `DagsterInstance.from_config`,
  `instance.all_logs(run_id)`), and how many events the run stored.
- `spark_jobs(eventlog_dir)`: every Spark job of the application(s) that logged there
  (`spark.eventLog.enabled`), with submission and completion time, SQL execution id, completed
  stages and tasks, executor run time and bytes read, shuffled and written.
- `attribute(...)`: places the Spark jobs and the phase timers of `benchmarks.platform_child`
  inside the Dagster steps (all wall-clock instants; the in-process executor runs steps one at a
  time), so each step gets its time split by phase and its job count by phase.
"""

from __future__ import annotations

import glob
import json
import os
from collections import defaultdict
from pathlib import Path

STEP_EVENTS = {"STEP_START", "STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED"}
LEAF_PHASES = (
    "io.load_input",
    "compute.forced",
    "pandera.validate",
    "validation.unmatched",
    "metadata.record",
    "metadata.reconcile",
    "metadata.feature_stats",
    "metadata.label_counts",
    "io.write",
)
PHASE_CLASS = {
    "pandera.validate": "validation",
    "validation.unmatched": "validation",
    "metadata.record": "metadata",
    "metadata.reconcile": "metadata",
    "metadata.feature_stats": "metadata",
    "metadata.label_counts": "metadata",
}


def dagster_runs(home: str | Path) -> list[dict]:
    """Runs of the instance in `home`, oldest first, with their steps' times."""
    import warnings

    import dagster as dg

    warnings.filterwarnings("ignore")
    instance = dg.DagsterInstance.from_config(str(home))
    runs = []
    try:
        for run in reversed(instance.get_runs()):
            steps: dict[str, dict] = {}
            run_start = run_end = None
            counts: dict[str, int] = defaultdict(int)
            entries = instance.all_logs(run.run_id)
            for entry in entries:
                event = entry.dagster_event
                if event is None:
                    counts["(log message)"] += 1
                    continue
                kind = event.event_type_value
                counts[kind] += 1
                # Dagster still stores run events under their legacy PIPELINE_* names.
                if kind in ("RUN_START", "PIPELINE_START"):
                    run_start = entry.timestamp
                elif kind in (
                    "RUN_SUCCESS",
                    "RUN_FAILURE",
                    "RUN_CANCELED",
                    "PIPELINE_SUCCESS",
                    "PIPELINE_FAILURE",
                    "PIPELINE_CANCELED",
                ):
                    run_end = entry.timestamp
                elif kind in STEP_EVENTS and entry.step_key:
                    step = steps.setdefault(entry.step_key, {"step": entry.step_key})
                    if kind == "STEP_START":
                        step["start"] = entry.timestamp
                    else:
                        step["end"] = entry.timestamp
                        step["status"] = kind.removeprefix("STEP_").lower()
            for step in steps.values():
                if "start" in step and "end" in step:
                    step["seconds"] = step["end"] - step["start"]
            runs.append(
                {
                    "run_id": run.run_id,
                    "status": str(run.status.value),
                    "tags": {k: v for k, v in run.tags.items() if "partition" in k},
                    "start": run_start,
                    "end": run_end,
                    "seconds": (run_end - run_start) if run_start and run_end else None,
                    "events": len(entries),
                    "event_counts": dict(sorted(counts.items(), key=lambda kv: -kv[1])),
                    "steps": sorted(steps.values(), key=lambda s: s.get("start") or 0),
                }
            )
    finally:
        instance.dispose()
    return runs


def _metric(accumulables: list[dict], name: str) -> int:
    for item in accumulables:
        if item.get("Name") == name:
            try:
                return int(item.get("Value") or 0)
            except (TypeError, ValueError):
                return 0
    return 0


def spark_jobs(eventlog_dir: str | Path) -> list[dict]:
    """Jobs of every Spark application that wrote an event log under `eventlog_dir`."""
    files = [
        f
        for f in glob.glob(os.path.join(str(eventlog_dir), "**", "*"), recursive=True)
        if os.path.isfile(f) and not os.path.basename(f).startswith(("appstatus", "."))
    ]
    jobs: dict[tuple[str, int], dict] = {}
    stage_job: dict[tuple[str, int], tuple[str, int]] = {}
    for path in sorted(files):
        app = Path(path).parent.name if Path(path).parent != Path(eventlog_dir) else Path(path).name
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a log cut short by a killed process
                kind = event.get("Event")
                if kind == "SparkListenerJobStart":
                    key = (app, event["Job ID"])
                    props = event.get("Properties") or {}
                    jobs[key] = {
                        "app": app,
                        "job": event["Job ID"],
                        "submit": event["Submission Time"] / 1000.0,
                        "execution_id": props.get("spark.sql.execution.id"),
                        "call_site": props.get("callSite.short")
                        or (event.get("Stage Infos") or [{}])[0].get("Stage Name"),
                        "stages": 0,
                        "tasks": 0,
                        "executor_run_ms": 0,
                        "input_bytes": 0,
                        "shuffle_write_bytes": 0,
                        "output_bytes": 0,
                    }
                    for stage_id in event.get("Stage IDs", []):
                        stage_job[(app, stage_id)] = key
                elif kind == "SparkListenerJobEnd":
                    job = jobs.get((app, event["Job ID"]))
                    if job is not None:
                        job["complete"] = event["Completion Time"] / 1000.0
                        job["result"] = (event.get("Job Result") or {}).get("Result")
                elif kind == "SparkListenerStageCompleted":
                    info = event["Stage Info"]
                    job = jobs.get(stage_job.get((app, info["Stage ID"])))
                    if job is None:
                        continue
                    acc = info.get("Accumulables") or []
                    job["stages"] += 1
                    job["tasks"] += int(info.get("Number of Tasks") or 0)
                    job["executor_run_ms"] += _metric(acc, "internal.metrics.executorRunTime")
                    job["input_bytes"] += _metric(acc, "internal.metrics.input.bytesRead")
                    job["shuffle_write_bytes"] += _metric(acc, "internal.metrics.shuffle.write.bytesWritten")
                    job["output_bytes"] += _metric(acc, "internal.metrics.output.bytesWritten")
    return sorted(jobs.values(), key=lambda j: j["submit"])


def _innermost(intervals: list[dict], moment: float) -> dict | None:
    best = None
    for item in intervals:
        if item["start"] <= moment <= item["end"] and (
            best is None or (item["end"] - item["start"]) < (best["end"] - best["start"])
        ):
            best = item
    return best


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def attribute(run: dict, phases: list[dict], jobs: list[dict]) -> dict:
    """Per step: seconds by phase and Spark jobs by phase; and run-wide totals.

    A step's time is split into the leaf phases inside it, the rest of `handle_output` (the
    per-quarter row count) and `body` (the asset's own code, Dagster's bookkeeping, and — in
    check steps — the asset checks). Jobs go to the innermost phase that was open when they
    were submitted.
    """
    steps = [s for s in run["steps"] if "start" in s and "end" in s]
    per_step: list[dict] = []
    totals: dict[str, float] = defaultdict(float)
    job_totals: dict[str, int] = defaultdict(int)
    for step in steps:
        s0, s1 = step["start"], step["end"]
        inside = [p for p in phases if _overlap(p["start"], p["end"], s0, s1) > 0]
        seconds: dict[str, float] = defaultdict(float)
        for p in inside:
            if p["phase"] in LEAF_PHASES:
                seconds[p["phase"]] += _overlap(p["start"], p["end"], s0, s1)
        handled = [p for p in inside if p["phase"] == "io.handle_output"]
        for h in handled:
            nested = sum(
                _overlap(p["start"], p["end"], h["start"], h["end"])
                for p in inside
                if p["phase"] in LEAF_PHASES and p is not h
            )
            seconds["io.handle_output.other"] += max(0.0, (h["end"] - h["start"]) - nested)
        kind = "check" if _is_check(step["step"]) else "asset"
        body = (s1 - s0) - sum(seconds.values())
        seconds["checks" if kind == "check" else "body"] += max(0.0, body)
        step_jobs: dict[str, int] = defaultdict(int)
        for job in jobs:
            if s0 <= job["submit"] <= s1:
                phase = _innermost(inside, job["submit"])
                name = phase["phase"] if phase else ("checks" if kind == "check" else "body")
                if name == "io.handle_output":
                    name = "io.handle_output.other"
                step_jobs[name] += 1
        for name, value in seconds.items():
            totals[name] += value
        for name, value in step_jobs.items():
            job_totals[name] += value
        per_step.append(
            {
                "step": step["step"],
                "kind": kind,
                "seconds": round(s1 - s0, 3),
                "phases": {k: round(v, 3) for k, v in sorted(seconds.items(), key=lambda kv: -kv[1]) if v > 0.0005},
                "spark_jobs": sum(step_jobs.values()),
                "jobs_by_phase": dict(sorted(step_jobs.items(), key=lambda kv: -kv[1])),
            }
        )
    classes: dict[str, float] = defaultdict(float)
    for name, value in totals.items():
        classes[PHASE_CLASS.get(name, "checks" if name == "checks" else "compute+io")] += value
    return {
        "steps": per_step,
        "phase_seconds": {k: round(v, 3) for k, v in sorted(totals.items(), key=lambda kv: -kv[1])},
        "phase_jobs": dict(sorted(job_totals.items(), key=lambda kv: -kv[1])),
        "class_seconds": {k: round(v, 3) for k, v in sorted(classes.items(), key=lambda kv: -kv[1])},
        "jobs_in_steps": sum(job_totals.values()),
    }


def _is_check(step_key: str) -> bool:
    # Asset-check steps: `silver__<table>_checks` (one step per table's checks since the
    # multi-asset check); older runs named one step per check (`…_reconciliation`, …).
    return any(step_key.endswith(suffix) for suffix in CHECK_SUFFIXES)


CHECK_SUFFIXES: tuple[str, ...] = ("_checks", "reconciliation", "no_null_keys", "no_duplicate_keys", "quarantine_rate")


def run_ids(home: str | Path) -> set[str]:
    """Ids of the runs already in the instance of `home` (creates its storage if new)."""
    import warnings

    import dagster as dg

    warnings.filterwarnings("ignore")
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        return {run.run_id for run in instance.get_runs()}
    finally:
        instance.dispose()


def io_seconds(home: str | Path, run_id: str) -> dict:
    """The IO manager's own phase timings (`io_seconds/<phase>` output metadata) of a run.

    In a multi-quarter run the output's metadata is repeated on every quarter's materialisation;
    each (step, asset) is counted once. Returns per-phase totals and the per-output figures; empty
    when the platform records no such metadata.
    """
    import warnings

    import dagster as dg

    warnings.filterwarnings("ignore")
    instance = dg.DagsterInstance.from_config(str(home))
    outputs: dict[str, dict[str, float]] = {}
    try:
        for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
            materialization = entry.dagster_event.event_specific_data.materialization
            key = f"{entry.step_key}:{materialization.asset_key.to_user_string()}"
            if key in outputs:
                continue
            phases = {
                name.split("/", 1)[1]: float(value.value)
                for name, value in materialization.metadata.items()
                if name.startswith("io_seconds/")
            }
            if phases:
                outputs[key] = phases
    finally:
        instance.dispose()
    totals: dict[str, float] = defaultdict(float)
    for phases in outputs.values():
        for name, value in phases.items():
            totals[name] += value
    return {"totals": {k: round(v, 3) for k, v in totals.items()}, "outputs": outputs}


def job_summary(jobs: list[dict]) -> dict:
    """Totals over a process's Spark jobs (none when the event log is off)."""
    return {
        "jobs": len(jobs),
        "sql_executions": len({(j["app"], j["execution_id"]) for j in jobs if j.get("execution_id") is not None}),
        "stages": sum(j["stages"] for j in jobs),
        "tasks": sum(j["tasks"] for j in jobs),
        "executor_run_s": round(sum(j["executor_run_ms"] for j in jobs) / 1000.0, 3),
        "input_bytes": sum(j["input_bytes"] for j in jobs),
        "shuffle_write_bytes": sum(j["shuffle_write_bytes"] for j in jobs),
        "output_bytes": sum(j["output_bytes"] for j in jobs),
    }
