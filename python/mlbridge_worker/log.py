"""The worker's own log lines, on stderr (the host forwards them)."""

from __future__ import annotations

import os
import sys


def log(msg: str) -> None:
    try:
        sys.stderr.write(f"mlbridge-worker[{os.getpid()}]: {msg}\n")
        sys.stderr.flush()
    except Exception:
        pass
