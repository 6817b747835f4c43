"""`stop_process_group(s)`: the one stopper of the tests' fixtures and the benchmark runner."""

import os
import subprocess
import sys
import time

import pytest

from batch_platform_tests.procs import stop_process_group, stop_process_groups

STUBBORN_TREE = (
    "import subprocess, sys, time\n"
    "code = 'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(1, flush=True); "
    "time.sleep(600)'\n"
    "child = subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE)\n"
    "child.stdout.readline()\n"
    "print(child.pid, flush=True)\n"
    "time.sleep(600)\n"
)


def _alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def test_the_whole_group_is_stopped_even_a_child_that_ignores_sigterm():
    leader = subprocess.Popen(
        [sys.executable, "-c", STUBBORN_TREE], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        grandchild = int(leader.stdout.readline())
        assert os.getpgid(grandchild) == leader.pid
        stop_process_group(leader, term_grace=1, kill_grace=5)
        assert leader.returncode is not None
        assert not _alive(leader.pid)
    finally:
        if _alive(leader.pid):
            os.killpg(leader.pid, 9)
            leader.wait()


def test_several_groups_are_stopped_side_by_side():
    leaders = [
        subprocess.Popen(
            [sys.executable, "-c", STUBBORN_TREE], stdout=subprocess.PIPE, text=True, start_new_session=True
        )
        for _ in range(2)
    ]
    try:
        grandchildren = [int(leader.stdout.readline()) for leader in leaders]
        assert [os.getpgid(g) for g in grandchildren] == [leader.pid for leader in leaders]
        stop_process_groups(leaders, term_grace=1, kill_grace=5)
        assert all(leader.returncode is not None for leader in leaders)
        assert not [leader.pid for leader in leaders if _alive(leader.pid)]
    finally:
        for leader in leaders:
            if _alive(leader.pid):
                os.killpg(leader.pid, 9)
                leader.wait()


def test_a_child_in_our_own_group_is_refused_and_left_alone():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        with pytest.raises(ValueError, match="start_new_session=True"):
            stop_process_group(child)
        time.sleep(0.2)
        assert child.poll() is None
    finally:
        child.kill()
        child.wait()
