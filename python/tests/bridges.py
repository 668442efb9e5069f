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


# ---------------------------------------------------------------- dual functions (dual.py)

import asyncio  # noqa: E402
import threading  # noqa: E402

from mlbridge_worker.request import current_request  # noqa: E402
from mlbridge_worker.dual import dual  # noqa: E402


@dual
async def where(x: int) -> dict:
    await asyncio.sleep(0)
    req = current_request()
    return {"x": x, "op": req.op if req else None, "thread": threading.current_thread().name}


@dual
async def explode() -> None:
    await asyncio.sleep(0)
    raise ValueError("from the coroutine")


class DualBridge(EchoBridge):
    cancelled = 0

    @dual
    async def slow(self) -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            DualBridge.cancelled += 1
            raise

    @handler
    def sync_where(self, x: int) -> dict:
        return {**where.sync(x), "caller": threading.current_thread().name}

    @handler
    async def async_where(self, x: int) -> dict:
        return {**await where(x), "caller": threading.current_thread().name}

    @handler
    def sync_explode(self) -> None:
        explode.sync()

    @handler
    async def sync_on_loop(self) -> str:
        try:
            where.sync(1)
        except RuntimeError as e:
            return str(e)
        return "no error"

    @handler
    def sync_timeout(self) -> int:
        try:
            from mlbridge_worker.dual import run_sync

            run_sync(self.slow(), timeout=0.05)
        except TimeoutError:
            pass
        return 0

    @handler
    async def cancellations(self) -> int:
        await asyncio.sleep(0.05)
        return DualBridge.cancelled


# ---------------------------------------------------------------- per-op sync/async switch

from mlbridge_worker import alternative  # noqa: E402


class MigratingBridge(EchoBridge):
    """`summarize` is being converted: the sync original and its async replacement."""

    @handler
    def summarize(self, text: str, seconds: float = 0.0) -> dict:
        import time

        time.sleep(seconds)
        return {"impl": "sync", "thread": threading.current_thread().name, "summary": text[:5],
                "op": current_request().op}

    @alternative("summarize")
    async def summarize_async(self, text: str, seconds: float = 0.0) -> dict:
        await asyncio.sleep(seconds)
        return {"impl": "async", "thread": threading.current_thread().name, "summary": text[:5],
                "op": current_request().op}
