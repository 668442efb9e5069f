"""Eager start of ``async def`` handlers.

Most calls to an async handler finish without ever suspending (or suspend once, late). Running
the coroutine's first step inline, in the frame reader, answers those with no task at all.
When the first step does suspend, :class:`Continuation` hands the already-started coroutine to
a task, as if the task had run that first step itself.

A handler whose step stops on a host call's answer (``await host.call``) is not handed to a
task at all: it is *parked* on the call (``dispatch._suspend``) and the answer resumes it inline,
in the read callback that received it (``dispatch._resume``), until it returns or awaits
something else. A cancel or deadline throws ``CancelledError`` into it directly. Like the
eager first step, the code it runs then has no current task (``asyncio.current_task()`` is
None; ``asyncio.timeout`` needs a task: wrap such code in one).

Python 3.12 has eager task factories; on 3.11 this is the equivalent, written as a coroutine
object so that a cancel that arrives before the task's first step is still thrown *into the
handler* (where ``except CancelledError`` and ``finally`` run), not swallowed by a wrapper
that never started.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

_STARTED = object()


class Continuation(Coroutine):
    """A coroutine that resumes ``coro``, which is suspended on ``first`` (the value its
    first ``send(None)`` yielded)."""

    __slots__ = ("coro", "first")

    def __init__(self, coro: Coroutine, first: Any) -> None:
        self.coro = coro
        self.first = first

    def send(self, value: Any) -> Any:
        first = self.first
        if first is not _STARTED:
            # The task's first step: the handler already ran to its first await; give the
            # task what that await is waiting on.
            self.first = _STARTED
            return first
        return self.coro.send(value)

    def throw(self, typ, val=None, tb=None):  # noqa: D102 - the Coroutine protocol
        self.first = _STARTED
        if val is None and tb is None:
            return self.coro.throw(typ)
        return self.coro.throw(typ, val, tb)

    def close(self) -> None:
        self.coro.close()

    def __await__(self):
        return self

    def __iter__(self):
        return self

    def __next__(self):
        return self.send(None)
