"""Write a coroutine function once; call it from async handlers and from sync handler code.

    @dual
    async def embed(text: str) -> list[float]: ...

    async def handler_a(self, text):   vec = await embed(text)       # async code: await it
    def handler_b(self, text):         vec = embed.sync(text)        # a sync handler's thread

(`run_sync(coro, timeout=...)` bounds the wait.) `.sync` submits the coroutine to the worker's one event loop — never a new loop per call — and
blocks the calling thread until it is done. It is explicit: calling `.sync` on the loop itself
raises instead of deadlocking, and nothing is guessed or cached from one call to the next.
Exceptions, cancellation and contextvars behave as when awaited: the coroutine runs in a copy of
the caller's context (current_request() included), its exception is raised in the caller, and
if the caller stops waiting (timeout) the coroutine is cancelled.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Generic, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

# The worker's event loop, set in the context every handler runs in (startup.py): found through
# the caller's context, so nothing module-global is consulted.
loop_var: contextvars.ContextVar[asyncio.AbstractEventLoop | None] = contextvars.ContextVar(
    "mlbridge_loop", default=None)


class DualFunction(Generic[P, T]):
    """A coroutine function that sync code can call through :meth:`sync`."""

    def __init__(self, fn: Callable[P, Coroutine[Any, Any, T]]):
        functools.update_wrapper(self, fn)
        self._fn = fn

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, T]:
        return self._fn(*args, **kwargs)

    def sync(self, *args: P.args, **kwargs: P.kwargs) -> T:
        return run_sync(self._fn(*args, **kwargs))

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        # As a method decorator: bind the instance, like a function would.
        return self if obj is None else DualFunction(functools.partial(self._fn, obj))


def dual(fn: Callable[P, Coroutine[Any, Any, T]]) -> DualFunction[P, T]:
    if not asyncio.iscoroutinefunction(fn):
        raise TypeError(f"@dual needs an async def, not {fn!r}")
    return DualFunction(fn)


def run_sync(coro: Awaitable[T], timeout: float | None = None) -> T:
    """Run `coro` on the worker's event loop from a thread that is not the loop's, and wait."""
    loop = loop_var.get()
    if loop is None:
        _close(coro)
        raise RuntimeError("run_sync is for handler code inside an mlbridge worker (no worker loop in this context)")
    if _on_loop_thread(loop):
        _close(coro)
        raise RuntimeError("run_sync was called on the worker's event loop: await the coroutine instead")
    ctx = contextvars.copy_context()
    done: concurrent.futures.Future = concurrent.futures.Future()

    def start() -> None:
        task = loop.create_task(_as_coro(coro), context=ctx)
        done.add_done_callback(lambda f: f.cancelled() and loop.call_soon_threadsafe(task.cancel))

        def finish(t: asyncio.Task) -> None:
            if done.done():
                return
            if t.cancelled():
                done.cancel()
            elif t.exception() is not None:
                done.set_exception(t.exception())
            else:
                done.set_result(t.result())

        task.add_done_callback(finish)

    loop.call_soon_threadsafe(start)
    try:
        return done.result(timeout)
    except concurrent.futures.TimeoutError:
        done.cancel()  # cancels the task on the loop
        raise TimeoutError(f"the coroutine did not finish within {timeout} s") from None
    except concurrent.futures.CancelledError:
        raise asyncio.CancelledError() from None


async def _as_coro(aw: Awaitable[T]) -> T:
    return await aw


def _on_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _close(coro: Awaitable[Any]) -> None:
    close = getattr(coro, "close", None)
    if close is not None:
        close()  # no "coroutine was never awaited" warning for a refused call


__all__ = ["dual", "DualFunction", "run_sync", "loop_var"]
