"""Take the protocol's file descriptors away from user code.

Any byte a library prints to stdout would corrupt a stdout protocol, and any library reading
stdin would steal protocol bytes. So, before the bridge module is imported:

* the protocol output moves to a private duplicate of fd 1, and fd 1 becomes a copy of fd 2
  (``print`` and C libraries writing to fd 1 end up on stderr);
* the protocol input moves to a private duplicate of fd 0, and fd 0 reads /dev/null.
"""

from __future__ import annotations

import io
import os
import sys


def redirect() -> tuple[int, int]:
    """Return ``(proto_in, proto_out)``: private fds for the protocol."""
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except Exception:
            pass

    proto_out = os.dup(1)
    os.dup2(2, 1)
    proto_in = os.dup(0)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    for fd in (proto_in, proto_out):
        os.set_inheritable(fd, False)  # subprocesses of user code must not hold the pipes

    # sys.stdout keeps writing to fd 1 (stderr now); line-buffered so logs interleave sanely.
    sys.stdout = io.TextIOWrapper(
        io.FileIO(1, "w", closefd=False),
        encoding="utf-8",
        errors="backslashreplace",
        line_buffering=True,
        write_through=False,
    )
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
    return proto_in, proto_out
