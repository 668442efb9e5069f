"""mlbridge lifeline guardian: ``guardian.py WORKER_PID LIFELINE_FD [poll]``.

The Go host (internal/worker/lifeline.go) embeds this file and runs it with the worker's own
interpreter as ``python -I -S -c <this file> PID 3``, placed in the worker's process group, with
the read end of the host's lifeline pipe as descriptor 3. Only the host holds the write end and
nothing is ever written to it, so the read end reports EOF exactly when the host process is
gone, whatever killed it (SIGKILL included).

The guardian waits for the first of:

* EOF on the lifeline: the host died;
* the worker's exit (host alive): its leftovers go with it, as the host would do;

then SIGKILLs its whole process group, itself included: the worker, and everything the worker
started that stayed in its group (subprocesses, multiprocessing children, a model server).

It shares nothing with the worker but the group: a worker whose interpreter is stuck (the GIL
held by C code, a stopped process) is cleaned up all the same. Standard library only, run
without site-packages (``-S``) or environment (``-I``): it starts in milliseconds and needs
nothing from the worker's installation. It ignores SIGTERM, SIGINT and SIGHUP, so the SIGTERM a
graceful stop sends to the group does not remove the guard while the worker finishes.
``poll`` (tests) watches the worker with kill(pid, 0) instead of a pidfd, as on macOS.
"""

import os
import select
import signal
import sys

POLL_S = 0.25  # how often the worker is checked without a pidfd (macOS, old kernels)


def main(argv: list[str]) -> int:
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    worker, lifeline = int(argv[1]), int(argv[2])
    poll = len(argv) > 3 and argv[3] == "poll"
    if os.getpgrp() != worker:  # never kill a group that is not the worker's
        sys.stderr.write(f"mlbridge guardian: not in worker {worker}'s process group\n")
        return 2
    wait(worker, lifeline, poll)
    os.killpg(worker, signal.SIGKILL)
    return 0


def wait(worker: int, lifeline: int, poll: bool) -> None:
    """Return once the host or the worker is gone."""
    exited = None  # a pidfd: readable once the worker has exited, even before it is reaped
    if not poll and hasattr(os, "pidfd_open"):
        try:
            exited = os.pidfd_open(worker)
        except ProcessLookupError:
            return
        except OSError:  # no pidfd in this kernel: poll
            pass
    watch = [lifeline] if exited is None else [lifeline, exited]
    while True:
        ready, _, _ = select.select(watch, [], [], POLL_S if exited is None else None)
        if exited is not None and exited in ready:
            return
        if lifeline in ready and not os.read(lifeline, 512):
            return  # EOF; the host never writes, bytes from anyone else are ignored
        if exited is None and not alive(worker):
            return


def alive(pid: int) -> bool:
    # The worker leads the group this guardian is in, so its pid cannot be reused while the
    # guardian runs: no such process means the worker is gone (or is a zombie awaiting its
    # parent, which reaps it at once).
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


if __name__ == "__main__":
    sys.exit(main(sys.argv))
