"""Bridges with annotated handlers, for the argument-check tests (a worker imports this module:
tests/ is on its PYTHONPATH)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from mlbridge_worker import alternative, handler
from mlbridge_worker.echo import EchoBridge

if TYPE_CHECKING:  # never imported at run time: an annotation naming it cannot be resolved
    from decimal import Decimal


class TypedBridge(EchoBridge):
    """One typed handler per kind, plus the cases the check must leave alone."""

    @handler
    def label(self, text: str, times: int = 1, weight: float = 1.0) -> str:
        return f"{text * times}:{weight}"

    @handler
    async def scale(self, values: list[float], factor: float, mode: Literal["mul", "add"] = "mul") -> list[float]:
        return [v * factor if mode == "mul" else v + factor for v in values]

    @handler
    def words(self, text: str, limit: int | None = None):
        yield from text.split()[:limit]

    @handler
    async def keys(self, table: dict[str, int]):
        for k in table:
            yield k

    @handler
    def blob_size(self, data: bytes) -> int:
        return len(data)

    @handler
    def unresolvable(self, amount: Decimal) -> str:
        return type(amount).__name__  # never checked: the annotation names a TYPE_CHECKING import

    @handler
    def switchable(self, n: int) -> str:
        return "sync"

    @alternative("switchable")
    async def switchable_async(self, n: str) -> str:  # another annotation: each implementation is checked by its own
        return "async"
