"""The worker's own log lines, on stderr (the host forwards them)."""

from __future__ import annotations

import os
import sys


def log(msg: str) -> None:
    # A worker named by its host (the legacy --worker-id) says so in every line.
    name = os.environ.get("MLBRIDGE_WORKER_ID")
    who = f"{os.getpid()} {name}" if name else str(os.getpid())
    try:
        sys.stderr.write(f"mlbridge-worker[{who}]: {msg}\n")
        sys.stderr.flush()
    except Exception:
        pass
