"""`batch-platform <args>` with phase timers: the platform's run, measured from the inside.

    BENCH_PHASES_OUT=phases.json python -m benchmarks.platform_child materialize --from 2024-Q1 --to 2025-Q4

The platform logs no timings of its IO manager's phases, so this entry point wraps a few of its
functions with timers (in this process only; no platform file is touched) and then runs the real
command line, `batch_platform.cli.main`, exactly as the `batch-platform` script does:

| phase | wrapped | what it is |
| --- | --- | --- |
| `pandera.validate` | `io_manager.check_structure`, `check_table` | Pandera's structural checks; the unique key |
| `io.count_and_check` | `io_manager.count_and_check` | the one pass: computing the frame, rows and row checks per quarter |
| `validation.unmatched` | `gold.unmatched_customers` | training_set's features/labels consistency join |
| `metadata.record` | `LakeIOManager._record` | column schema + a 10-row preview per quarter (a Spark job each) |
| `metadata.reconcile` | `silver.reconcile` | silver's bronze/silver/quarantine/duplicates figures |
| `metadata.feature_stats` | `gold.feature_stats` | gold features' per-quarter statistics |
| `metadata.label_counts` | `gold.label_counts` | gold labels' / training set's per-quarter counts |
| `io.write` | `LakeIOManager._commit` | the one Delta commit of the run's quarters (data files, log entry) and reading its version |
| `io.load_input` | `LakeIOManager.load_input` | reading the Delta log (deltalake) and planning the Delta read |
| `io.handle_output` | `LakeIOManager.handle_output` | all of the above for one output, plus the per-quarter row count |
| `compute.forced` | see below | computing a persisted frame |

**Why `compute.forced`.** Silver persists its flagged frame and gold its features and labels, and
the *first* action on each is a metadata job (`reconcile`, `feature_stats`, `_label_counts`),
which therefore also computes the whole frame (reading bronze, parsing, dedup, the joins…).
Charging that to metadata would overstate it badly. So, before one of these receives a persisted
frame, the wrapper runs one `count()` on it and books that as `compute.forced`: the frame is
computed and cached once, as the platform would have done inside its first metadata job, and the
wrapped phase then measures only its own jobs over the cached frame. (The IO manager needs no such
help: `handle_output` computes the frame first, in the pass that counts rows and row checks per
quarter, and logs the phases itself as `io_seconds/*` metadata, which the harness reads from the
run's event log.) Set `BENCH_NO_FORCE=1` to turn forcing off.

**Ablation.** `BENCH_ABLATE=checks,record` makes the IO manager's validation find nothing to check
(`check_structure` and `check_table` return no violations, `schemas.validation.row_checks` no checks, so
the counting pass only counts) and `_record` a no-op, in this process only; with no figures recorded,
the silver reconciliation check has nothing to compare its recounts with, so it passes (it still
recounts: the check steps cost what they cost). The harness can then time
the same backfill without Pandera and without the IO manager's metadata (`--with-ablation`): what the
row checks add to the counting pass is the difference of `io_seconds/count_and_check` between the
two runs. It is a measurement device, not a platform feature:
the platform offers no switch for it (and Pandera's own `PANDERA_VALIDATION_ENABLED=False`
breaks its validation code, see FINDINGS.md).

The phases are written as JSON (wall-clock intervals, `time.time()`) to `$BENCH_PHASES_OUT`, so
the harness can place them inside the Dagster steps and match them to Spark jobs in the event log.
A function the platform no longer has is reported under `missing_hooks`, never an error.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from collections.abc import Callable

PHASES: list[dict] = []
HOOKS: list[str] = []
MISSING: list[str] = []
FORCE = os.environ.get("BENCH_NO_FORCE", "") not in ("1", "true", "True")


def _record(phase: str, began: float, ended: float, **extra) -> None:
    PHASES.append({"phase": phase, "start": began, "end": ended, **extra})


def _is_cached(obj) -> bool:
    return bool(getattr(obj, "is_cached", False))


def _force(frames, where: str) -> None:
    """Compute and cache every persisted frame among `frames` (see the module doc)."""
    if not FORCE:
        return
    for frame in frames:
        if _is_cached(frame):
            began = time.time()
            frame.count()
            _record("compute.forced", began, time.time(), where=where)


def _timed(phase: str, fn: Callable, *, force_args: tuple[int, ...] = (), describe=None) -> Callable:
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        _force([args[i] for i in force_args if i < len(args)], phase)
        extra = {}
        if describe is not None:
            try:
                extra = describe(*args, **kwargs)
            except Exception:  # noqa: BLE001 - a label must never break the run
                extra = {}
        began = time.time()
        try:
            return fn(*args, **kwargs)
        finally:
            _record(phase, began, time.time(), **extra)

    wrapper.__bench_wrapped__ = True
    return wrapper


def _patch(owner, name: str, phase: str, **kwargs) -> None:
    label = f"{getattr(owner, '__name__', owner)}.{name}"
    fn = getattr(owner, name, None)
    if fn is None or not callable(fn):
        MISSING.append(label)
        return
    if getattr(fn, "__bench_wrapped__", False):
        return
    setattr(owner, name, _timed(phase, fn, **kwargs))
    HOOKS.append(f"{label} -> {phase}")


def _output_label(self, context, *args, **kwargs) -> dict:
    return {"asset": context.asset_key.to_user_string(), "step": context.step_key}


def _reconciled(table, quarter, recount, rejects, reported) -> dict:
    return {"passed": True, "description": "ablated: no figures recorded", "metadata": {"quarter": quarter, **recount}}


def _ablate(io_manager, validation, checks) -> None:
    """`BENCH_ABLATE=checks,record`: validation finds nothing to check, `_record` does nothing and the
    reconciliation it feeds passes (measurement only)."""
    wanted = {name.strip() for name in os.environ.get("BENCH_ABLATE", "").split(",") if name.strip()}
    targets = {
        "checks": [
            (io_manager, "check_structure", lambda *a, **k: []),
            (io_manager, "check_table", lambda *a, **k: []),
            (validation, "row_checks", lambda *a, **k: []),
        ],
        "record": [
            (io_manager.LakeIOManager, "_record", lambda self, *a, **k: None),
            (checks, "reconciliation", _reconciled),
        ],
    }
    for name in sorted(wanted):
        if name not in targets:
            MISSING.append(f"ablate {name}")
            continue
        for owner, attr, stub in targets[name]:
            if not callable(getattr(owner, attr, None)):
                MISSING.append(f"ablate {attr}")
                continue
            setattr(owner, attr, stub)
            HOOKS.append(f"{owner.__name__}.{attr} -> no-op (ablation)")


def install() -> None:
    """Wrap the platform's phases with timers (import order: before the definitions load)."""
    from batch_platform import checks, io_manager
    from batch_platform.assets import gold, silver
    from batch_platform.schemas import validation

    manager = io_manager.LakeIOManager
    _ablate(io_manager, validation, checks)
    _patch(manager, "handle_output", "io.handle_output", describe=_output_label)
    _patch(manager, "load_input", "io.load_input", describe=_output_label)
    # No forcing for the IO manager's phases: handle_output computes the frame first itself (the
    # counting pass, logged as `io_seconds/count_and_check`).
    _patch(io_manager, "check_structure", "pandera.validate")
    _patch(io_manager, "count_and_check", "io.count_and_check")
    _patch(io_manager, "check_table", "pandera.validate")
    _patch(manager, "_commit", "io.write")
    _patch(manager, "_record", "metadata.record")
    _patch(silver, "reconcile", "metadata.reconcile", force_args=(0, 1))
    _patch(gold, "feature_stats", "metadata.feature_stats", force_args=(0,))
    _patch(gold, "label_counts", "metadata.label_counts", force_args=(0,))
    _patch(gold, "unmatched_customers", "validation.unmatched")


def _write_phases() -> None:
    target = os.environ.get("BENCH_PHASES_OUT")
    if not target:
        return
    with open(target, "w", encoding="utf-8") as handle:
        json.dump({"force": FORCE, "hooks": HOOKS, "missing_hooks": MISSING, "phases": PHASES}, handle)


def main(argv: list[str] | None = None) -> int:
    install()
    from batch_platform.cli import main as cli_main

    try:
        return cli_main(argv if argv is not None else sys.argv[1:])
    finally:
        _write_phases()


if __name__ == "__main__":
    sys.exit(main())
