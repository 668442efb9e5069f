"""The lifeline guardian (internal/worker/guardian.py, embedded in the Go host), driven without a
Go host: the test holds the lifeline's write end and plays the host, as the guardian's parent."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

GUARDIAN = pathlib.Path(__file__).resolve().parents[2] / "internal" / "worker" / "guardian.py"
GONE_WITHIN = 2.0  # the stated bound
TIMEOUT = 30.0  # only keeps a broken guardian from hanging the test

# A stand-in worker: leads its own group, starts a child that stays in it, reports the child's
# pid, then waits (or exits when its stdin closes, with "exit").
WORKER = """
import os, subprocess, sys, time
child = subprocess.Popen(["sleep", "60"])
print(child.pid, flush=True)
if sys.argv[1] == "exit":
    sys.stdin.read()
    os._exit(0)
time.sleep(60)
"""


def alive(pid: int) -> bool:
    """Whether pid runs; a zombie counts as gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc (macOS): ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def wait_gone(pids: list[int], within: float = GONE_WITHIN) -> list[int]:
    deadline = time.monotonic() + within
    while True:
        left = [p for p in pids if alive(p)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.01)


class Group:
    """A stand-in worker leading its own group, its child, and their guardian."""

    def __init__(self, mode: str, watch: str):
        self.worker = subprocess.Popen(
            [sys.executable, "-c", WORKER, mode], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            process_group=0,  # as the Go host starts it (a group of its own, same session)
        )
        assert self.worker.stdout is not None
        self.child = int(self.worker.stdout.readline())
        read_end, self.write_end = os.pipe()
        args = [sys.executable, "-I", "-S", str(GUARDIAN), str(self.worker.pid), str(read_end)]
        if watch == "poll":
            args.append("poll")
        # As the Go host starts it: in the worker's group, the lifeline's read end inherited.
        self.guardian = subprocess.Popen(args, pass_fds=(read_end,), process_group=self.worker.pid,
                                         stderr=subprocess.PIPE, text=True)
        os.close(read_end)
        self.pids = [self.worker.pid, self.child, self.guardian.pid]

    def host_dies(self) -> None:
        """What the kernel does to the lifeline when the host process ends."""
        if self.write_end >= 0:
            os.close(self.write_end)
            self.write_end = -1

    def cleanup(self) -> None:
        self.host_dies()
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.worker.wait()
        self.guardian.wait()


@pytest.fixture
def group() -> Iterator[Callable[..., Group]]:
    made: list[Group] = []

    def make(mode: str = "wait", watch: str = "pidfd") -> Group:
        g = Group(mode, watch)
        made.append(g)
        return g

    yield make
    for g in made:
        g.cleanup()


def killed(p: subprocess.Popen) -> bool:
    return p.wait(timeout=TIMEOUT) == -signal.SIGKILL


@pytest.mark.parametrize("watch", ["pidfd", "poll"])
def test_host_gone_kills_the_group(group, watch):
    g = group(watch=watch)
    assert all(alive(p) for p in g.pids)
    g.host_dies()
    assert killed(g.worker) and killed(g.guardian)
    assert wait_gone(g.pids) == []


def test_stopped_worker_is_cleaned_up(group):
    """The guardian is a process of its own: a worker that can run no code is no obstacle."""
    g = group()
    os.kill(g.worker.pid, signal.SIGSTOP)
    g.host_dies()
    assert killed(g.worker)
    assert wait_gone(g.pids) == []


@pytest.mark.parametrize("watch", ["pidfd", "poll"])
def test_worker_exit_takes_leftovers_and_guardian(group, watch):
    """Host alive, worker exits on its own: its child goes, and the guardian does not linger."""
    g = group(mode="exit", watch=watch)
    assert g.worker.stdin is not None
    g.worker.stdin.close()
    assert g.worker.wait(timeout=TIMEOUT) == 0  # its own exit, not the guardian's kill
    assert killed(g.guardian)
    assert wait_gone([g.child, g.guardian.pid]) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_termination_signals_do_not_remove_the_guard(group):
    """A graceful stop sends SIGTERM to the whole group; the guardian must stay on duty."""
    g = group()
    wanted = [signal.SIGTERM, signal.SIGINT, signal.SIGHUP]
    deadline = time.monotonic() + TIMEOUT
    while not all(ignored(g.guardian.pid, sig) for sig in wanted):  # until its handlers are set
        assert time.monotonic() < deadline, "the guardian never ignored SIGTERM, SIGINT, SIGHUP"
        time.sleep(0.01)
    for sig in wanted:
        os.kill(g.guardian.pid, sig)
    g.host_dies()
    assert killed(g.worker) and killed(g.guardian)
    assert wait_gone(g.pids) == []


def ignored(pid: int, sig: int) -> bool:
    with open(f"/proc/{pid}/status") as f:
        mask = int(next(line for line in f if line.startswith("SigIgn:")).split()[1], 16)
    return bool(mask & (1 << (sig - 1)))


def test_refuses_a_group_not_the_workers():
    """Started outside the worker's group, it kills nothing and says why."""
    other = subprocess.Popen(["sleep", "60"], process_group=0)  # leads a group we are not in
    read_end, write_end = os.pipe()
    try:
        p = subprocess.run([sys.executable, "-I", "-S", str(GUARDIAN), str(other.pid), str(read_end)],
                           pass_fds=(read_end,), capture_output=True, text=True, timeout=TIMEOUT)
        assert alive(other.pid)
    finally:
        os.close(read_end)
        os.close(write_end)
        other.kill()
        other.wait()
    assert p.returncode == 2
    assert "not in worker" in p.stderr
