"""Batched handlers (:func:`~.base_bridge.batched`): a ``breq`` runs one handler invocation for
all its items and is answered by one ``bres``, item by item (spec/protocol.md, "Batches").

A batch is one request on the worker: one id in ``inflight``, one thread (``sync``) or task
(``async``); its deadline, a ``cancel`` of its id and shutdown end it as a whole, answered
with one ``res`` error that the host hands to every item. An item's own failure is an
exception instance in the handler's result list: only that item's ``bres`` entry is an error.

A plain ``req`` to a batched op is served as a batch of one (:func:`single_call`), so hosts
that never batch, and pools that turn batching off, keep working.
"""

from __future__ import annotations

import functools
import time
from typing import Any, Callable

from . import tracing
from .errors import InvalidConfiguration, error_map, exception_to_error
from .protocol import FrameTooLarge, ProtocolError, check_breq
from .request import Request, _request_var

_perf_ns = time.perf_counter_ns
# {"t": "bres", "id": <id>, "results": [...]} around its two values
_BRES_HEAD = b"\x83\xa1t\xa4bres\xa2id"
_BRES_MID = b"\xa7results"
_ITEM_OK = b"\x82\xa2ok\xc3\xa6result"  # {"ok": true, "result": <value>}


def single_call(fn: Callable, kind: str, op: str) -> Callable:
    """The handler of a plain ``req`` to a batched op: a batch of one, unwrapped."""
    if kind == "async":
        async def one(**args: Any) -> Any:
            return _only(await fn([args]), op)
    else:
        def one(**args: Any) -> Any:
            return _only(fn([args]), op)
    return one


def _only(results: Any, op: str) -> Any:
    check_results(results, 1, op)
    r = results[0]
    if isinstance(r, BaseException):
        raise r
    return r


def check_results(results: Any, n: int, op: str) -> None:
    if type(results) is not list or len(results) != n:
        got = f"{len(results)} results" if type(results) is list else f"a {type(results).__name__}"
        raise InvalidConfiguration(f"batched handler {op!r} returned {got} for a batch of {n}: it must "
                                   "return a list with one result (or exception) per item, in order")


class BatchMixin:
    """The :class:`~.runtime.Runtime`'s ``breq`` handling."""

    def on_breq(self, msg: dict) -> None:
        try:
            id, op, items, deadline = check_breq(msg)
        except ProtocolError as e:
            self.refuse_bad_request("batch request", e)
            return
        entry = self.batch_table.get(op)
        if entry is None:
            if op in self.table:
                self.send_error(id, "invalid_argument", "InvalidArgument", f"{op!r} is not a batched handler")
            else:
                self.send_error(id, "unknown_op", "UnknownOp", f"no handler named {op!r}")
            return
        if self.refused_now(id):
            return
        fn, kind, st, max_size = entry
        if not items or len(items) > max_size:
            self.send_error(id, "invalid_argument", "InvalidArgument",
                            f"a batch of {len(items)} for {op!r}, which takes 1 to {max_size} items")
            return
        timeout = None
        if deadline is not None:
            timeout = deadline / 1000.0 - time.time()
            if timeout <= 0:
                st.record(0, False)
                self.send_error(id, "timeout", "DeadlineExceeded", f"deadline of {op!r} passed before it started")
                return
        ctx = self._base_ctx.copy()
        ctx.run(_request_var.set, (id, op, deadline))
        if "traceparent" in msg:  # the host's span for the batch, current in ctx
            tracing.start(msg["traceparent"], msg.get("tracestate"), ctx)
        call = functools.partial(fn, items)
        if kind == "sync":
            req = Request(id, op, st, _perf_ns(), False, True)
            req.batch = len(items)
            self.executor.submit(ctx.run, self._run_sync, req, call, {})
        else:
            req = Request(id, op, st, _perf_ns(), False, False)
            req.batch = len(items)
            try:
                coro = call()
            except BaseException as e:
                self._call_failed(id, st, req.t0, e)
                return
            req.task = task = self.loop.create_task(coro, context=ctx)
            task.add_done_callback(lambda t, req=req: self._task_done(req, t))
        self.inflight[id] = req
        st.in_flight += 1
        if timeout is not None:
            req.timer = self.loop.call_later(timeout, self._expire, req)

    def send_bres(self, req: Request, results: Any) -> None:
        """Answer a batch: each item's result or error. A result that cannot be sent (not
        encodable, too deep, or no room left for it in the batch's frame) fails its item only;
        a wrong count fails the batch."""
        try:
            check_results(results, req.batch, req.op)
        except InvalidConfiguration as e:
            req.st.errors += 1
            self.send_error_exc(req.id, e)
            return
        head = _BRES_HEAD + self._pack(req.id) + _BRES_MID
        parts = [self._pack_array_header(len(results))]
        size = len(head) + len(parts[0])
        for r in results:
            if isinstance(r, BaseException):
                part = self._pack({"ok": False, "error": exception_to_error(r)})
            else:
                try:
                    # measured against what the items before it took: one that does not fit
                    # is refused alone, and the items after it may still fit
                    part = _ITEM_OK + self._pack_value(r, size + len(_ITEM_OK))
                except FrameTooLarge as e:
                    part = self._pack({"ok": False, "error": _no_room(e, size, self.out_max)})
                except Exception as e:
                    part = self._pack({"ok": False, "error": _item_refusal(e)})
            parts.append(part)
            size += len(part)
        if size > self.out_max:
            size = self._shed(parts, size)
        if size > self.out_max:  # only if the items' errors alone are too big
            req.st.errors += 1
            e = FrameTooLarge(size, self.out_max)
            self.send_error(req.id, "serialization", type(e).__name__,
                            f"the batch's results {e}: send smaller batches (max_size)")
            return
        self._write_frame(head, b"".join(parts))

    def _shed(self, parts: list[bytes], size: int) -> int:
        """Make an answer that passes the max frame fit, when it can: the largest items (the
        items' errors added after the results can tip it over) are replaced by a short error
        of their own, until the rest fits. Returns the new size."""
        for i in sorted(range(1, len(parts)), key=lambda i: len(parts[i]), reverse=True):
            if size <= self.out_max:
                break
            msg = (f"the result ({len(parts[i])} bytes) did not fit in its batch's answer, "
                   f"bounded by the max frame size {self.out_max}: send smaller batches (max_size)")
            small = self._pack({"ok": False, "error": error_map("serialization", "FrameTooLarge", msg)})
            if len(small) < len(parts[i]):
                size += len(small) - len(parts[i])
                parts[i] = small
        return size

    def _pack_array_header(self, n: int) -> bytes:
        if n < 16:
            return bytes((0x90 | n,))
        if n < 1 << 16:
            return b"\xdc" + n.to_bytes(2, "big")
        return b"\xdd" + n.to_bytes(4, "big")


def _no_room(e: FrameTooLarge, before: int, limit: int) -> dict:
    msg = f"the result {e}"
    if before > 64:  # not the envelope alone: the other items took the room
        msg += (f" once the batch's other answers ({before} bytes) are counted: it does not fit "
                f"in its batch's answer (max frame size {limit}); send smaller batches (max_size)")
    return error_map("serialization", type(e).__name__, msg)


def _item_refusal(e: Exception) -> dict:
    from .output import _refusal

    return error_map("serialization", *_refusal("the result", e))


