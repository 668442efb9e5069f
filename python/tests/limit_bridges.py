"""A bridge whose results break the protocol's value limits (tests of the depth and size limits,
from Python and from Go; tests/ is put on PYTHONPATH)."""

from __future__ import annotations

from mlbridge_worker import handler
from mlbridge_worker.echo import EchoBridge


def nest(depth: int, leaf=1):
    """``leaf`` inside ``depth`` single-element lists."""
    v = leaf
    for _ in range(depth):
        v = [v]
    return v


class LimitBridge(EchoBridge):
    @handler
    async def nest(self, depth: int):
        return nest(depth)

    @handler
    def sync_nest(self, depth: int):
        return nest(depth)

    @handler
    async def nest_stream(self, depth: int):
        yield 1
        yield nest(depth)
        yield 3

    @handler
    async def cyclic(self):
        v: list = []
        v.append(v)
        return v

    @handler
    async def floats(self, n: int):
        return [0.5] * n

    @handler
    async def shared(self, n: int, times: int):
        """One bytes object referenced ``times`` times: small in memory, n*times on the wire."""
        return [bytes(n)] * times

    @handler
    async def big_stream(self, n: int):
        yield b"x"
        yield bytes(n)

    @handler
    def fail_empty(self, type: str = "ValueError"):
        raise {"ValueError": ValueError, "RuntimeError": RuntimeError, "KeyError": KeyError}[type]()
