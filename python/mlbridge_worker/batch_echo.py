"""BatchEchoBridge: the echo bridge with batched ops, for the batching tests (Go and Python).

``double`` (sync) and ``adouble`` (async) answer each item ``{"x": n}`` with ``{"y": 2n, ...}``
and the size of the batch it came in; an item with ``"fail": true`` fails alone; an item with
``"sleep": s`` holds the whole batch ``s`` seconds (a batch in flight, for cancel and kill
tests); an item with ``"pad": k`` gets ``k`` bytes of padding in its result (answers too big
for one frame); an item with ``"ids": true`` gets the trace and span ids current in the
handler (the batch's span, when traced). ``batch_sizes`` reports every batch size this worker
served.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from .base_bridge import batched, handler
from .echo import EchoBridge, _trace_ids
from .errors import InvalidArgument

MAX_SIZE = 8
MAX_WAIT_MS = 20


class BatchEchoBridge(EchoBridge):
    def __init__(self) -> None:
        super().__init__()
        self._sizes: list[int] = []

    def _answer(self, items: list[dict]) -> list[Any]:
        self._sizes.append(len(items))
        out: list[Any] = []
        for it in items:
            x = it.get("x")
            if it.get("fail"):
                out.append(InvalidArgument(f"item x={x!r} asked to fail"))
            elif type(x) is not int:
                out.append(InvalidArgument(f"x must be an int, not {type(x).__name__}"))
            else:
                r: dict[str, Any] = {"y": 2 * x, "batch": len(items), "pid": os.getpid()}
                if it.get("pad"):
                    r["pad"] = b"p" * int(it["pad"])
                if it.get("ids"):
                    r.update(_trace_ids("double"))
                out.append(r)
        return out

    @handler
    @batched(max_size=MAX_SIZE, max_wait_ms=MAX_WAIT_MS)
    def double(self, items: list[dict]) -> list[Any]:
        pause = max((float(it.get("sleep") or 0) for it in items), default=0.0)
        if pause:
            time.sleep(pause)
        return self._answer(items)

    @batched(max_size=MAX_SIZE, max_wait_ms=MAX_WAIT_MS)
    @handler
    async def adouble(self, items: list[dict]) -> list[Any]:
        pause = max((float(it.get("sleep") or 0) for it in items), default=0.0)
        if pause:
            await asyncio.sleep(pause)
        return self._answer(items)

    @handler
    @batched(max_size=4, max_wait_ms=0)
    def miscount(self, items: list[dict]) -> list[Any]:
        return [None] * (len(items) + 1)  # a bridge bug: one result too many

    @handler
    async def batch_sizes(self) -> list[int]:
        return list(self._sizes)


class BadBatchBridge(EchoBridge):
    """A batched op declared with max_size 0: the bridge cannot be constructed (a test of the
    start error)."""

    @handler
    @batched(max_size=0, max_wait_ms=5)
    def double(self, items: list[dict]) -> list[Any]:
        return items
