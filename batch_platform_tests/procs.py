"""The child processes the tests and the benchmark runner start: a free loopback port for a server
to listen on, and stopping a child and everything it started, by its process group.

A child started with `start_new_session=True` leads a process group of its own (group id = its
PID); what it launches (a JVM, code servers, run workers) stays in that group. Signalling the group
stops exactly those processes and nothing else. The product never starts such children: this lives
with the tests, and the benchmark runner (`benchmarks/procs.py`) imports it from here.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now, for a server the tests start."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process_group(process: subprocess.Popen, term_grace: float = 30, kill_grace: float = 10) -> None:
    """SIGTERM the group of `process`, wait (bounded) for the leader and then for the rest of the
    group to exit; whatever is left after `term_grace` seconds gets SIGKILL. Returns once the group
    is empty or `kill_grace` seconds after the SIGKILL."""
    try:
        group = os.getpgid(process.pid)
    except ProcessLookupError:  # already reaped: a session leader's group id is its PID
        group = process.pid
    if group == os.getpgrp():
        raise ValueError(f"process {process.pid} shares our process group: start it with start_new_session=True")
    for sig, grace in ((signal.SIGTERM, term_grace), (signal.SIGKILL, kill_grace)):
        try:
            os.killpg(group, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
        # The leader is gone; give the rest of its group (a JVM, a code server) the same grace.
        while time.monotonic() < deadline:
            try:
                os.killpg(group, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)


def stop_process_groups(processes: Sequence[subprocess.Popen], term_grace: float = 30, kill_grace: float = 10) -> None:
    """`stop_process_group` for several groups side by side: each gets its SIGTERM at once, and
    the call waits as long as the slowest group, not the sum of them."""
    if not processes:
        return
    with ThreadPoolExecutor(max_workers=len(processes)) as pool:
        for done in [pool.submit(stop_process_group, p, term_grace, kill_grace) for p in processes]:
            done.result()
