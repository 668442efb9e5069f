"""Pre-forking zygote: import once, fork workers on demand.

Every worker of a pool otherwise pays the interpreter start and the framework import (seconds
for DSPy) on its own. The zygote does both once, then forks a worker for each request from the
host, so N workers are ready in about the time of one.

Control channel (fd given by ``--zygote-fd``, an AF_UNIX SOCK_SEQPACKET socket):

* host → zygote: a packet ``spawn`` carrying three fds (the worker's stdin, stdout, stderr),
  or four: the fourth is the worker's shared-memory segment channel (it becomes its fd 3);
* zygote → host: ``{"spawned": pid}`` answering each spawn, in order, and
  ``{"exited": pid, "code": int | None, "signal": int | None}`` when a worker ends.

The zygote never starts an event loop or a thread, so forking it is safe. A forked worker
gets its own process group and dies with the zygote (PR_SET_PDEATHSIG), which dies with the
host; it then runs exactly as a worker started directly. Each group (the zygote's, each
worker's) also holds a lifeline guardian started by the host (internal/worker/guardian.py), which
kills the group when the host dies, so what a worker starts dies with the host on any system.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import select
import signal
import socket
import sys

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: stdin EOF and the parent watch remain
        pass


def serve(bridge_spec: str, ctrl_fd: int, worker_main) -> None:
    """Preload ``bridge_spec``'s module, then fork a worker per spawn request until the host
    closes the control socket. ``worker_main(shm_fd)`` runs in each child and never returns
    (``shm_fd`` is 3, or None when the host sent no segment channel)."""
    os.dup2(2, 1)  # the zygote has no protocol: anything printed at import goes to stderr
    module = bridge_spec.partition(":")[0]
    try:
        # The worker's own runtime (and its event loop library), then the bridge's framework.
        importlib.import_module("mlbridge_worker.startup")
        try:
            importlib.import_module("uvloop")
        except ImportError:
            pass
        importlib.import_module(module)
    except Exception as e:  # the first worker reports it properly in its hello
        sys.stderr.write(f"mlbridge zygote: preloading {module!r} failed: {e!r}\n")
    sock = socket.socket(fileno=ctrl_fd)
    me = os.getpid()

    def send(msg: dict) -> None:
        sock.send(json.dumps(msg).encode())

    while True:
        _reap(send)
        ready, _, _ = select.select([sock], [], [], 0.2)
        if not ready:
            continue
        try:
            msg, fds, _, _ = socket.recv_fds(sock, 64, 4)
        except OSError:
            msg, fds = b"", []
        if not msg:  # the host is gone or done: our workers die with us (PDEATHSIG)
            os._exit(0)
        if msg != b"spawn" or len(fds) not in (3, 4):
            for fd in fds:
                os.close(fd)
            send({"error": f"bad request {msg[:32]!r} with {len(fds)} fds"})
            continue
        pid = os.fork()
        if pid == 0:
            try:
                sock.close()
                os.setpgid(0, 0)
                _die_with_parent()
                if os.getppid() != me:  # the zygote died between fork and prctl
                    os._exit(1)
                for target, fd in enumerate(fds):
                    os.dup2(fd, target)
                    os.close(fd)
                os.environ["MLBRIDGE_PARENT_PID"] = str(me)
                worker_main(3 if len(fds) == 4 else None)
            finally:
                os._exit(1)
        try:
            # The child does this too; doing it here as well means the group exists before
            # the host hears the pid, and the host puts the worker's guardian in it.
            os.setpgid(pid, pid)
        except OSError:  # the child already died: the host sees its exit next
            pass
        for fd in fds:
            os.close(fd)
        send({"spawned": pid})


def _reap(send) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if os.WIFSIGNALED(status):
            send({"exited": pid, "code": None, "signal": os.WTERMSIG(status)})
        else:
            send({"exited": pid, "code": os.waitstatus_to_exitcode(status), "signal": None})
