#!/usr/bin/env python3
"""Legacy entry point: ``python python/dspy_bridge.py [--mode standalone|pool-worker] [--worker-id ID]``.

Existing deployments start the DSPy bridge with this command; it still works and runs the very
same worker as ``python -m mlbridge_worker --bridge mlbridge_worker.frameworks.dspy_bridge:DSPyBridge``.
Both modes serve the mlbridge protocol on stdin/stdout; a pool worker must say which one it is
(``--worker-id``), and the id prefixes its log lines. Options of ``python -m mlbridge_worker``
(``--threads``, ``--max-frame``, ``--spin-us``) pass through.
"""

from __future__ import annotations

import argparse
import os
import sys

DSPY_BRIDGE = "mlbridge_worker.frameworks.dspy_bridge:DSPyBridge"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="dspy_bridge.py", description="mlbridge DSPy worker (legacy entry point)")
    p.add_argument("--mode", choices=("standalone", "pool-worker"), default="standalone")
    p.add_argument("--worker-id", default=None, help="this worker's name in a pool (required in pool-worker mode)")
    args, rest = p.parse_known_args(argv)
    if args.mode == "pool-worker" and not args.worker_id:
        p.error("--worker-id is required in pool-worker mode")
    if args.worker_id:
        os.environ["MLBRIDGE_WORKER_ID"] = args.worker_id
    # Run from a checkout without installing: the package sits next to this file.
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from mlbridge_worker.__main__ import main as worker_main

    worker_main(["--bridge", DSPY_BRIDGE, *rest])


if __name__ == "__main__":
    main()
