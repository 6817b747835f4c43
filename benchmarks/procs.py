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
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


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


def _proc_table() -> dict[int, tuple[int, str, int]]:
    """pid -> (ppid, comm, rss bytes) for every process visible in /proc."""
    table: dict[int, tuple[int, str, int]] = {}
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
        except (OSError, ValueError, IndexError):
            continue
        table[pid] = (ppid, comm, rss_pages * PAGE_SIZE)
    return table


def tree_rss(root: int) -> dict[str, int]:
    """RSS of `root` and all its descendants, keyed `<comm>:<pid>`."""
    if os.path.isdir("/proc"):
        table = _proc_table()
        children: dict[int, list[int]] = {}
        for pid, (ppid, _, _) in table.items():
            children.setdefault(ppid, []).append(pid)
        out: dict[str, int] = {}
        stack = [root]
        while stack:
            pid = stack.pop()
            if pid in table:
                _, comm, rss = table[pid]
                out[f"{comm}:{pid}"] = rss
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
            out[f"{p.name()}:{p.pid}"] = p.memory_info().rss
        except psutil.Error:
            pass
    return out


class _Sampler(threading.Thread):
    def __init__(self, pid: int, interval: float):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak, self.at_peak, self.samples = 0, {}, 0
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        rss = tree_rss(self.pid)
        self.samples += 1
        total = sum(rss.values())
        if total > self.peak:
            self.peak, self.at_peak = total, rss

    def stop(self) -> None:
        self._stop.set()
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
        proc = subprocess.Popen(
            list(argv), cwd=str(cwd), env=dict(env), stdout=out, stderr=err, start_new_session=True
        )
        sampler = _Sampler(proc.pid, interval)
        sampler.start()
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _stop_group(proc)
        except BaseException:
            _stop_group(proc)
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
        samples=sampler.samples,
        timed_out=timed_out,
        stdout=str(out_path),
        stderr=str(err_path),
    )
    if check and (timed_out or proc.returncode != 0):
        why = f"timed out after {timeout:.0f} s" if timed_out else f"exited with {proc.returncode}"
        raise ContenderError(f"{name} {why}: {' '.join(argv)}\n{result.tail()}")
    return result


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the child's own process group (the child and what it started), then SIGKILL."""
    try:
        pgid = os.getpgid(proc.pid)
    except ProcessLookupError:
        return
    for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue
