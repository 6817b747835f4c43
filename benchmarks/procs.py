"""Run one contender as a child process: wall time, peak memory of its whole process tree, logs.

Every contender (the Dagster run, the plain PySpark script, DuckDB) runs as its own child process
so that each starts its interpreter and, where it uses Spark, its own JVM the same way. Memory is
the summed RSS of the child and all its descendants (the Python driver *and* the JVM that PySpark
launches through `spark-submit`), sampled every `interval` seconds from `/proc` (psutil when
/proc is not there). RSS double-counts pages shared between processes (shared libraries), so the
figure is a slight over-estimate: the conservative side for a "peak memory under N GiB" target.

The child gets its own session (process group), so a timeout can stop it and everything it
started — and nothing else — by that group id.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from batch_platform_tests.procs import stop_process_group

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class ContenderError(RuntimeError):
    """A contender failed or timed out; the message names it and points at its logs."""


@dataclass
class ProcResult:
    name: str
    argv: list[str]
    returncode: int | None
    wall_s: float
    peak_rss_bytes: int
    peak_by_process: dict[str, int] = field(default_factory=dict)
    """RSS per process (`<comm>:<pid>`) at the moment the tree's total peaked."""
    cpu_s: float = 0.0
    """User + system CPU seconds of the tree (each process's last sample): less sensitive than wall
    time to other work on a shared machine."""
    cpu_by_process: dict[str, float] = field(default_factory=dict)
    samples: int = 0
    timed_out: bool = False
    stdout: str = ""
    stderr: str = ""

    def as_dict(self) -> dict:
        return asdict(self)

    def tail(self, chars: int = 3000) -> str:
        out = []
        for path in (self.stdout, self.stderr):
            if path and Path(path).exists():
                text = Path(path).read_text(errors="replace")
                out.append(f"--- {path} (last {chars} chars)\n{text[-chars:]}")
        return "\n".join(out)


def _proc_table() -> dict[int, tuple[int, str, int, tuple, float]]:
    """pid -> (ppid, comm, rss bytes, memory identity, cpu seconds) for every process in /proc.

    The identity (the address-space layout) tells a child that shares its parent's memory apart:
    the JVM starts helpers (Hadoop's `chmod`, …) with vfork/posix_spawn, and until the exec such a
    child reports the JVM's whole RSS as its own; counting it would double the JVM. A child forked
    without exec (PySpark's daemon workers) has the same layout and shares its pages copy-on-write,
    so it is skipped too; an exec'ed child (the JVM under the driver) has its own layout and counts.
    """
    table: dict[int, tuple[int, str, int, tuple, float]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            with open(f"/proc/{pid}/stat", "rb") as handle:
                stat = handle.read().decode(errors="replace")
            # comm may hold spaces and parentheses: it ends at the *last* ')'.
            comm = stat[stat.index("(") + 1 : stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2 :].split()
            ppid = int(fields[1])
            rss_pages = int(fields[21])
            # start_code, end_code, start_stack, start_data, env_start: fixed for the life of an
            # address space (unlike vsize and rss, which move between two reads of /proc).
            identity = (fields[22], fields[23], fields[25], fields[41], fields[45])
            cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        except (OSError, ValueError, IndexError):
            continue
        table[pid] = (ppid, comm, rss_pages * PAGE_SIZE, identity, cpu)
    return table


def tree_usage(root: int) -> dict[str, tuple[int, float]]:
    """(RSS bytes, CPU seconds) of `root` and all its descendants, keyed `<comm>:<pid>`."""
    if os.path.isdir("/proc"):
        table = _proc_table()
        children: dict[int, list[int]] = {}
        for pid, (ppid, *_) in table.items():
            children.setdefault(ppid, []).append(pid)
        out: dict[str, tuple[int, float]] = {}
        stack = [root]
        while stack:
            pid = stack.pop()
            if pid in table:
                ppid, comm, rss, identity, cpu = table[pid]
                parent = table.get(ppid)
                if pid == root or parent is None or parent[3] != identity:
                    out[f"{comm}:{pid}"] = (rss, cpu)
            stack.extend(children.get(pid, ()))
        return out
    try:  # pragma: no cover - only where /proc is missing (macOS)
        import psutil
    except ImportError:  # pragma: no cover
        return {}
    try:  # pragma: no cover
        proc = psutil.Process(root)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:  # pragma: no cover
        return {}
    out = {}
    for p in procs:  # pragma: no cover
        try:
            times = p.cpu_times()
            out[f"{p.name()}:{p.pid}"] = (p.memory_info().rss, times.user + times.system)
        except psutil.Error:
            pass
    return out


class _Sampler(threading.Thread):
    def __init__(self, pid: int, interval: float):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak, self.at_peak, self.samples = 0, {}, 0
        self.cpu: dict[str, float] = {}
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.interval)

    def sample(self) -> None:
        usage = tree_usage(self.pid)
        self.samples += 1
        total = sum(rss for rss, _ in usage.values())
        for key, (_, cpu) in usage.items():
            self.cpu[key] = cpu
        if total > self.peak:
            self.peak, self.at_peak = total, {key: rss for key, (rss, _) in usage.items()}

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


def run_measured(
    name: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: str | Path,
    timeout: float,
    log_dir: Path,
    interval: float = 0.2,
    check: bool = True,
) -> ProcResult:
    """Run `argv` to completion (or `timeout` seconds), measuring wall time and peak tree RSS.

    stdout/stderr go to `<log_dir>/<name>.out|.err` (a Spark run's log can be large; it is never
    held in memory). With `check`, a non-zero exit or a timeout raises `ContenderError` with the
    tail of both logs.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    out_path, err_path = log_dir / f"{name}.out", log_dir / f"{name}.err"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        began = time.perf_counter()
        proc = subprocess.Popen(list(argv), cwd=str(cwd), env=dict(env), stdout=out, stderr=err, start_new_session=True)
        sampler = _Sampler(proc.pid, interval)
        sampler.start()
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            stop_process_group(proc, term_grace=15, kill_grace=5)
        except BaseException:
            stop_process_group(proc, term_grace=15, kill_grace=5)
            raise
        finally:
            wall = time.perf_counter() - began
            sampler.stop()
    result = ProcResult(
        name=name,
        argv=list(argv),
        returncode=proc.returncode,
        wall_s=wall,
        peak_rss_bytes=sampler.peak,
        peak_by_process=dict(sorted(sampler.at_peak.items(), key=lambda kv: -kv[1])),
        cpu_s=round(sum(sampler.cpu.values()), 2),
        cpu_by_process={k: round(v, 2) for k, v in sorted(sampler.cpu.items(), key=lambda kv: -kv[1]) if v >= 0.05},
        samples=sampler.samples,
        timed_out=timed_out,
        stdout=str(out_path),
        stderr=str(err_path),
    )
    if check and (timed_out or proc.returncode != 0):
        why = f"timed out after {timeout:.0f} s" if timed_out else f"exited with {proc.returncode}"
        raise ContenderError(f"{name} {why}: {' '.join(argv)}\n{result.tail()}")
    return result
