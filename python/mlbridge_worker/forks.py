"""Ending the copies of the worker that a handler's ``os.fork()`` leaves, when the handler
returned in both processes (the copy's protocol descriptors already point at /dev/null:
``Runtime.detach_forked_copy``)."""

from __future__ import annotations

import logging
import os

from .log import log

EXIT_OK = 0


def end_forked_copy() -> None:
    """End this process, a copy of the worker a handler forked and returned in."""
    log(f"a handler forked the worker and returned in the child (pid {os.getpid()}); the child exits",
        logging.WARNING)
    os._exit(EXIT_OK)


def end_if_forked_copy(worker_pid: int) -> None:
    """After a sync handler returned, on its thread: if this process is not the worker
    (``worker_pid``) but a copy the handler forked, end it. Its thread would otherwise go back
    to waiting on the executor's queue for ever, holding a copy of the worker's memory."""
    if os.getpid() != worker_pid:
        end_forked_copy()
