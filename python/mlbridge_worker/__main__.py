"""``python -m mlbridge_worker --bridge module:Class [--threads N] [--max-frame BYTES] [--spin-us N]``

Started by an mlbridge host, which sets ``MLBRIDGE_MAGIC`` and speaks the protocol of
spec/protocol.md on the worker's stdin/stdout. Exit codes: 0 after shutdown or end of input,
1 when the worker cannot start (it answered a hello with an error), 2 on a bad command line or
when started by hand, 3 after a frame-level protocol error on its input.
"""

from __future__ import annotations

import argparse
import os
import sys

from .protocol import DEFAULT_MAX_FRAME, MAGIC, MAGIC_ENV


def _positive(v: str) -> int:
    n = int(v)
    if n <= 0:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return n


def main(argv: list[str] | None = None) -> None:
    if os.environ.get(MAGIC_ENV) != MAGIC:
        sys.stderr.write(
            "mlbridge-worker: this program is started by an mlbridge host, not by hand.\n"
            "It speaks a binary protocol on stdin/stdout (see spec/protocol.md); the host sets\n"
            f"{MAGIC_ENV}={MAGIC} when it starts a worker.\n"
        )
        sys.exit(2)

    p = argparse.ArgumentParser(prog="python -m mlbridge_worker", description="mlbridge Python worker")
    p.add_argument("--bridge", required=True, help="the bridge class, as module:Class")
    p.add_argument("--threads", type=_positive, default=8, help="thread pool size for sync handlers (default 8)")
    p.add_argument(
        "--max-frame", type=_positive, default=DEFAULT_MAX_FRAME,
        help=f"largest frame accepted, in bytes (default {DEFAULT_MAX_FRAME})",
    )
    p.add_argument(
        "--spin-us", type=int, default=0, metavar="MICROSECONDS",
        help="after answering, while nothing is in flight, poll the input this long before "
             "sleeping: lower latency for back-to-back calls, paid in CPU (default 0: off)",
    )
    p.add_argument(
        "--shm-fd", type=int, default=None, metavar="FD",
        help="the segment channel: large arrays travel through shared memory (spec/protocol.md)",
    )
    p.add_argument(
        "--shm-min", type=_positive, default=256 << 10, metavar="BYTES",
        help="arrays of at least this many bytes are sent through shared memory (default 256 KiB)",
    )
    p.add_argument(
        "--zygote-fd", type=int, default=None, metavar="FD",
        help="run as a zygote: preload the bridge, then fork a worker per request on this control socket",
    )
    args = p.parse_args(argv)
    if args.spin_us < 0:
        p.error("--spin-us must be >= 0")

    # Before the bridge (or a zygote's preload) is imported: log records go to the host with
    # their level (log.py).
    from .log import install

    install()

    if args.zygote_fd is not None:
        from .zygote import serve

        serve(args.bridge, args.zygote_fd, lambda shm_fd: _worker(args, shm_fd))
        return
    _worker(args, args.shm_fd)


def _worker(args: argparse.Namespace, shm_fd: int | None) -> None:
    # Before anything imports the bridge: the protocol gets private fds, fd 1 goes to stderr,
    # fd 0 reads /dev/null.
    from .stdio import redirect

    proto_in, proto_out = redirect()

    from .startup import run

    shm = None
    if shm_fd is not None:
        from .shm import SharedMemory

        shm = SharedMemory(shm_fd, args.shm_min)
    run(args.bridge, proto_in, proto_out, threads=args.threads, max_frame=args.max_frame, spin_us=args.spin_us,
        shm=shm)


if __name__ == "__main__":
    main()
