"""Calls from Python into Go: the functions the host registered (``mlbridge.Func``).

A handler calls them through :data:`host` (or ``current_request().host``)::

    from mlbridge_worker.host import host

    @handler
    async def plan(city: str) -> dict:
        return await host.call("weather", {"city": city})

    @handler
    def plan_sync(city: str) -> dict:      # a sync handler, on a thread
        return host.call_sync("weather", {"city": city})

A call travels as an ``hcall`` frame on the same pipe as everything else, with its own id and
the id of the request it is made for (``parent``): the Go function runs with that request's
deadline, cancellation and trace context. The answer (``hres``) resolves the call; a Go error
arrives as the :mod:`.errors` exception of its category (``NotFound``, ``InvalidArgument``...),
which, if the handler lets it go, reaches Go with that category again.

Cancellation: a cancelled async handler's pending call raises ``CancelledError`` and tells the
host (``hcancel``), which cancels the Go function's ctx; a sync handler's call raises
:class:`HostCallCancelled` as soon as its request is cancelled or times out.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import TYPE_CHECKING, Any

from .errors import (
    BridgeError,
    InvalidArgument,
    InvalidConfiguration,
    ModelError,
    NotFound,
    RateLimit,
    Timeout,
    Unavailable,
    Unknown,
)
from .output import _numpy_plain
from .protocol import check_depth, pack_header
from .request import _request_var

if TYPE_CHECKING:
    from .runtime import Runtime

__all__ = ["host", "Host", "HostCallError", "HostCallCancelled", "CallbackDepthExceeded"]


class HostCallError(BridgeError):
    """A host call failed with a category that has no exception class of its own
    (``internal``, ``serialization``, ``protocol``...): the category is kept per instance."""

    def __init__(self, message: str, *, category: str, type_name: str, traceback: str | None = None):
        super().__init__(message, type_name=type_name)
        self.category = category
        self.remote_traceback = traceback


class HostCallCancelled(BridgeError):
    """The host call was cancelled: its request was, or the Go function's ctx was."""

    category = "cancelled"


class CallbackDepthExceeded(InvalidArgument):
    """Host calls nested deeper than the host allows (``Config.MaxCallbackDepth``)."""


_BY_CATEGORY: dict[str, type[BridgeError]] = {
    "invalid_argument": InvalidArgument,
    "not_found": NotFound,
    "invalid_configuration": InvalidConfiguration,
    "model_error": ModelError,
    "rate_limit": RateLimit,
    "unavailable": Unavailable,
    "timeout": Timeout,
    "unknown": Unknown,
    "cancelled": HostCallCancelled,
}


def error_from(err: dict) -> BridgeError:
    """The exception an ``hres`` error raises in the caller."""
    category, type_name, message = err.get("category", "internal"), err.get("type", "HostError"), err.get("message", "")
    if type_name == "CallbackDepthExceeded":
        return CallbackDepthExceeded(message, type_name=type_name)
    cls = _BY_CATEGORY.get(category)
    if cls is None:
        return HostCallError(message, category=category, type_name=type_name, traceback=err.get("traceback"))
    return cls(message, type_name=type_name)


class HostCallMixin:
    """The :class:`~.runtime.Runtime`'s side of host calls: ids, pending calls, answers."""

    def on_hres(self, msg: dict) -> None:
        """An answer; one for a call no longer waited for (cancelled) is dropped."""
        entry = self.hcalls.pop(msg["id"], None)
        if entry is None:
            return
        fut = entry[0]
        if msg["ok"]:
            value, exc = msg.get("result"), None
        else:
            value, exc = None, error_from(msg["error"])
        if isinstance(fut, asyncio.Future):
            if not fut.done():
                if exc is None:
                    fut.set_result(value)
                else:
                    fut.set_exception(exc)
        elif not fut.done():  # a sync handler's thread waits on it
            if exc is None:
                fut.set_result(value)
            else:
                fut.set_exception(exc)

    def _start_hcall(self, fut, parent: int, name: str, args: dict | None) -> int:
        """On the loop: send the call. Raises before anything is registered if args cannot be sent."""
        self._hcall_seq += 1
        id = self._hcall_seq
        msg = {"t": "hcall", "id": id, "fn": name, "parent": parent}
        if args:
            msg["args"] = args
        try:
            if args:
                check_depth(msg)  # the host would refuse it (too_deep)
            try:
                payload = self._pack(msg)
            except TypeError:
                # numpy values travel as in a result (scalars as numbers, arrays as array
                # maps), inline: a host call has no shared-memory path
                np_plain = _numpy_plain()
                if np_plain is None or not args:
                    raise
                msg["args"] = np_plain(args, self.out_max, self.out_max)
                check_depth(msg)  # an array map is two levels deeper than the array
                payload = self._pack(msg)
        except Exception as e:
            raise InvalidArgument(f"host function {name!r}: the arguments cannot be sent: {e}") from e
        if len(payload) > self.out_max:
            # never sent: a frame over the host's max would break the stream
            raise InvalidArgument(f"host function {name!r}: the arguments take {len(payload)} bytes, "
                                  f"more than the host's max frame ({self.out_max})")
        self.write(pack_header(len(payload)) + payload)
        self.hcalls[id] = (fut, parent)
        return id

    def _hcall_abandon(self, id: int) -> None:
        """The caller stopped waiting: tell the host, which cancels the Go function's ctx."""
        if self.hcalls.pop(id, None) is not None and not self.exiting:
            self.send({"t": "hcancel", "id": id})

    def _cancel_hcalls_of(self, parent: int) -> None:
        """A sync request was cancelled or timed out: its thread, blocked in a host call, gets
        :class:`HostCallCancelled` now (a thread cannot be interrupted otherwise)."""
        for id, (fut, p) in list(self.hcalls.items()):
            if p == parent and not isinstance(fut, asyncio.Future):
                self._hcall_abandon(id)
                if not fut.done():
                    fut.set_exception(HostCallCancelled(f"request {parent} was cancelled"))


class Host:
    """The host functions, as seen by the handler serving a request. :data:`host` is the one to
    use: it finds the request the calling handler serves (a context variable)."""

    __slots__ = ("_parent",)

    def __init__(self, parent: int | None = None):
        self._parent = parent

    def functions(self) -> dict[str, dict]:
        """The registered functions: ``{name: {"description": str, "schema": JSON Schema}}``."""
        rt = _runtime
        return dict(rt.host_funcs) if rt is not None else {}

    def named(self, names: Any, user: str) -> dict[str, dict]:
        """The registered functions ``names`` (a non-empty list of names) lists, in its order,
        for ``user`` (a module that takes tools: ReAct, a tool_agent); InvalidArgument naming
        what is missing and what is registered."""
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise InvalidArgument(f"{user} needs tools: a non-empty list of host function names "
                                  "(Go functions registered with mlbridge.Func)")
        funcs = self.functions()
        missing = [n for n in names if n not in funcs]
        if missing:
            raise InvalidArgument(f"{user}: no host function named {', '.join(map(repr, missing))} "
                                  f"(registered: {', '.join(sorted(funcs)) or 'none'})")
        return {n: funcs[n] for n in names}

    def _context(self, name: str, args: Any) -> tuple[Runtime, int]:
        rt = _runtime
        if rt is None or rt.loop is None:
            raise InvalidConfiguration("host calls need a running worker")
        parent = self._parent
        if parent is None:
            t = _request_var.get()
            if t is None:
                raise InvalidConfiguration(f"host.call({name!r}) outside a request: only handlers can call the host")
            parent = t[0]
        if type(name) is not str:
            raise InvalidArgument(f"a host function name is a string, not {type(name).__name__}")
        if args is not None and (type(args) is not dict or not all(type(k) is str for k in args)):
            raise InvalidArgument(f"host function {name!r}: arguments are a dict with str keys")
        return rt, parent

    async def call(self, name: str, args: dict[str, Any] | None = None) -> Any:
        """Call the Go function ``name`` with ``args`` and return its result (from an async
        handler, on the worker's event loop)."""
        rt, parent = self._context(name, args)
        if asyncio.get_running_loop() is not rt.loop:
            raise InvalidConfiguration(f"host.call({name!r}) outside the worker's event loop: use host.call_sync "
                                       "from a thread")
        fut = rt.loop.create_future()
        id = rt._start_hcall(fut, parent, name, args)
        try:
            return await fut
        except asyncio.CancelledError:
            rt._hcall_abandon(id)
            raise

    def call_sync(self, name: str, args: dict[str, Any] | None = None) -> Any:
        """Call the Go function ``name`` and wait for its result, from a sync handler's thread.
        Raises :class:`HostCallCancelled` if the request is cancelled meanwhile."""
        rt, parent = self._context(name, args)
        if threading.get_ident() == rt.loop_thread:
            raise InvalidConfiguration(f"host.call_sync({name!r}) on the event loop would block it: use await host.call")
        fut: concurrent.futures.Future = concurrent.futures.Future()

        def start() -> None:
            # arguments that cannot be sent fail the call: the thread waits on fut alone, one
            # hand-off from the loop instead of two (sent, then answered)
            try:
                rt._start_hcall(fut, parent, name, args)
            except BaseException as e:
                fut.set_exception(e)

        rt.loop.call_soon_threadsafe(start)
        return fut.result()

    def __repr__(self) -> str:
        return f"Host(parent={self._parent})"


#: the host functions of the request being served (the calling handler's)
host = Host()

# the worker's runtime: one per process, set when its bridge is attached
_runtime: Runtime | None = None
