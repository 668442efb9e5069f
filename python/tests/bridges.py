"""Bridges used by the tests (imported by worker subprocesses: tests/ is put on PYTHONPATH)."""

from __future__ import annotations

import sys

from mlbridge_worker import BaseBridge, handler
from mlbridge_worker.echo import EchoBridge


class FailingBridge(BaseBridge):
    """Its framework cannot initialize: the worker must answer a hello with an error."""

    def _initialize_framework(self) -> None:
        raise RuntimeError("framework exploded during init")


class StdinBridge(EchoBridge):
    @handler
    def read_stdin(self):
        # user code reading stdin must see /dev/null, never protocol bytes
        return sys.stdin.read()

    @handler
    async def stream_bad_item(self):
        yield 1
        yield object()
        yield 3


class NotABridge:
    pass


class MisdeclaredBridge(EchoBridge):
    @handler
    def returns_coroutine(self):  # a def that returns a coroutine: a bridge bug
        return self.noop()
