"""Eager start of ``async def`` handlers.

Most calls to an async handler finish without ever suspending (or suspend once, late). Running
the coroutine's first step inline, in the frame reader, answers those with no task at all.
When the first step does suspend, :class:`Continuation` hands the already-started coroutine to
a task, as if the task had run that first step itself.

After its first suspension a handler always runs in that task, so ``asyncio.current_task()``,
``asyncio.timeout``, sniffio and anyio (httpx, the OpenAI and LiteLLM clients) work there.
(Resuming a handler suspended on ``await host.call`` inline, with no task, was tried and
removed: it broke exactly that code, e.g. a Go tool call followed by an LM call.)

The first step itself -- the handler's code up to its first suspension -- runs before any
task exists: ``asyncio.current_task()`` is None, ``asyncio.timeout`` raises RuntimeError and
httpx fails (sniffio finds no async library; told ``"asyncio"`` through its context variable,
anyio fails next, since its cancel scopes are keyed by the current task and one entered with no
task would be left in the continuation's task). Creating the task up front would cost every
call a task and three loop turns, which is what eager start avoids. A handler whose first
await needs a task (``asyncio.timeout``, an httpx client such as ``openai.AsyncOpenAI`` called
directly) starts with ``await asyncio.sleep(0)``: that suspends the first step, and the rest
runs in the task. (LangChain's ``ainvoke`` and LiteLLM's ``acompletion`` suspend before their
HTTP request, so they reach httpx in the task already.)

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
