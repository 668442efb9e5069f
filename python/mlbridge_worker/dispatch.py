"""Request dispatch: every message after the handshake, every ``req`` to its handler, and the
bookkeeping that ends a request (answered, aborted, expired, its task done).

* ``async``     -- the coroutine is stepped eagerly in the read callback; if it finishes without
  suspending (a no-op, a cache hit) the answer goes out at once, with no task. Otherwise it
  continues in a task (see :mod:`.eager`).
* ``sync``, ``sync_gen`` -- the thread pool (:mod:`.sync_calls`).
* ``async_gen`` -- a task iterating the generator (:mod:`.streams`).

Deadlines and cancels answer at once (``timeout`` / ``cancelled``); tasks are cancelled, threads
are abandoned.
"""

from __future__ import annotations

import asyncio
import time

from . import tracing
from .eager import Continuation
from .log import log
from .protocol import HOST_TO_WORKER, ProtocolError, check_req, validate
from .request import Request, _request_var
from .stats import OpStats

_perf_ns = time.perf_counter_ns
# a cancel this close to the request's deadline (seconds) is the host's ctx timing out
_DEADLINE_SLACK = 0.005


class DispatchMixin:
    """The :class:`~.runtime.Runtime`'s request handling."""

    def on_other(self, msg: dict) -> None:
        try:
            t = validate(msg, HOST_TO_WORKER)
        except ProtocolError as e:
            log(f"dropped message ({e.kind}): {e}")
            if e.id is not None and e.t in ("req", "breq"):
                self.send_error(e.id, "protocol", "ProtocolError", str(e))
            return
        if t == "ping":
            self.send({"t": "pong", "seq": msg["seq"]})
        elif t == "cancel":
            req = self.inflight.get(msg["id"])
            if req is None:
                pass
            elif req.timer is not None and req.timer.when() - self.loop.time() <= _DEADLINE_SLACK:
                # the host's ctx reached the same deadline first (ours is rounded up to the ms)
                # and cancelled: it is a timeout, for the stats and the host
                req.timer.cancel()
                self._expire(req)
            else:
                self.abort(req, "cancelled", "CancelledError", "cancelled by the host")
        elif t == "hres":
            self.on_hres(msg)
        elif t == "breq":
            self.on_breq(msg)
        elif t == "shutdown":
            grace = msg.get("grace")
            self.request_shutdown(2000 if grace is None else grace)
        elif t == "req":  # not reached: on_data routes reqs to on_req
            self.on_req(msg)
        elif t == "hello":
            log("ignored a second hello")
        # pong: we never ping, nothing to do

    def on_req(self, msg: dict) -> None:
        """A request. The common case (a plain ``{t, id, op[, args]}`` for an ``async`` handler
        that finishes without suspending) is handled inline, and so is the same request traced
        (:meth:`_traced_fast`); everything else goes through :meth:`dispatch`."""
        get = msg.get
        id = get("id")
        op = get("op")
        args = get("args")
        if (
            type(id) is int and id >= 0 and type(op) is str
            # exactly t, id, op (+ args): no deadline, no stream, nothing unusual
            and (len(msg) == 3 if args is None else (len(msg) == 4 and type(args) is dict))
        ):
            entry = self.table.get(op)
            if entry is not None and entry[1] == "async" and not self.closing and id not in self.inflight:
                check = entry[4]
                if check is not None and (problem := check(args)) is not None:
                    self._refuse_args(id, entry[2], problem)
                    return
                ctx = self._base_ctx.copy()
                ctx.run(_request_var.set, (id, op, None))
                self._start_async(id, op, entry[2], entry[0], args, ctx, None)
                return
        elif "traceparent" in msg and self._traced_fast(msg, id, op, args):
            return
        self.dispatch(msg)

    def _traced_fast(self, msg: dict, id, op, args) -> bool:
        """The fast path for a traced request that is otherwise plain (``{t, id, op[, args],
        traceparent[, tracestate]}`` for an ``async`` handler), in the host's handler span.
        False: not such a request, :meth:`dispatch` takes it."""
        tp = msg["traceparent"]
        ts = msg.get("tracestate")
        if not (
            type(id) is int and id >= 0 and type(op) is str and type(tp) is str
            and (ts is None or type(ts) is str) and (args is None or type(args) is dict)
            and len(msg) == 4 + (args is not None) + ("tracestate" in msg)
        ):
            return False
        entry = self.table.get(op)
        if entry is None or entry[1] != "async" or self.closing or id in self.inflight:
            return False
        check = entry[4]
        if check is not None and (problem := check(args)) is not None:
            self._refuse_args(id, entry[2], problem)
            return True
        ctx = self._base_ctx.copy()
        ctx.run(_request_var.set, (id, op, None))
        tracing.start(tp, ts, ctx)
        self._start_async(id, op, entry[2], entry[0], args, ctx, None)
        return True

    def refuse_bad_request(self, what: str, e: ProtocolError) -> None:
        """A ``req`` or ``breq`` that fails validation: logged, and answered when its id is known."""
        log(f"bad {what} ({e.kind}): {e}")
        if e.id is not None:
            self.send_error(e.id, "protocol", "ProtocolError", str(e))

    def refused_now(self, id: int) -> bool:
        """Refuse (and answer) a request this worker cannot take whatever its op: it is
        shutting down, or the id is already in flight. Shared by ``req`` and ``breq``."""
        if self.closing:
            self.send_error(id, "unavailable", "Unavailable", "the worker is shutting down")
            return True
        if id in self.inflight:
            self.send_error(id, "protocol", "ProtocolError", f"request id {id} is already in flight")
            return True
        return False

    def dispatch(self, msg: dict) -> None:
        """The general request path: full validation, every kind, deadlines, streams."""
        try:
            id, op, args, deadline, stream = check_req(msg)
        except ProtocolError as e:
            self.refuse_bad_request("request", e)
            return
        entry = self.table.get(op)
        if entry is None:
            self.send_error(id, "unknown_op", "UnknownOp", f"no handler named {op!r}")
            return
        if self.refused_now(id):
            return
        fn, kind, st, is_gen, check = entry
        if stream is not is_gen:
            if stream:
                self.send_error(id, "invalid_argument", "InvalidArgument",
                                f"{op!r} is a {kind} handler: it cannot be streamed (stream: true needs a generator)")
            else:
                self.send_error(id, "invalid_argument", "InvalidArgument",
                                f"{op!r} is a {kind} handler: call it with stream: true")
            return
        if check is not None and (problem := check(args)) is not None:
            self._refuse_args(id, st, problem)  # on the loop: a refused sync call takes no thread
            return
        ctx = self._base_ctx.copy()
        ctx.run(_request_var.set, (id, op, deadline))
        if "traceparent" in msg:  # the host's handler span, current in ctx
            tracing.start(msg["traceparent"], msg.get("tracestate"), ctx)
        timeout = None
        if deadline is not None:
            timeout = deadline / 1000.0 - time.time()
            if timeout <= 0:
                st.record(0, False)
                self.send_error(id, "timeout", "DeadlineExceeded", f"deadline of {op!r} passed before it started")
                return
        t0 = _perf_ns()

        if kind == "async":
            self._start_async(id, op, st, fn, args, ctx, timeout)
            return
        elif kind == "sync":
            req = Request(id, op, st, t0, False, True)
            self.executor.submit(ctx.run, self._run_sync, req, fn, args)
        elif kind == "async_gen":
            try:
                agen = fn(**args)
            except BaseException as e:
                self._call_failed(id, st, t0, e)
                return
            req = Request(id, op, st, t0, True, False)
            req.task = task = self.loop.create_task(self._run_agen(req, agen), context=ctx)
            task.add_done_callback(lambda t, req=req: self._task_done(req, t))
        else:  # sync_gen
            req = Request(id, op, st, t0, True, True)
            self.executor.submit(ctx.run, self._run_sync_gen, req, fn, args)

        self.inflight[id] = req
        st.in_flight += 1
        if timeout is not None:
            req.timer = self.loop.call_later(timeout, self._expire, req)

    def _start_async(self, id, op, st, fn, args, ctx, timeout) -> None:
        """Run an async handler's first step inline (see :mod:`.eager`): most finish without
        suspending and are answered at once, with no task; the rest continue in one."""
        t0 = _perf_ns()
        try:
            coro = fn(**args) if args is not None else fn()
        except BaseException as e:
            self._call_failed(id, st, t0, e)
            return
        try:
            first = ctx.run(coro.send, None)
        except StopIteration as done:
            # st.record(dt, True), inlined: this is the path most calls take
            st.calls += 1
            st.buckets[((_perf_ns() - t0) // 1000).bit_length()] += 1
            self.send_result(id, done.value, st)
            return
        except BaseException as e:
            st.record(_perf_ns() - t0, False)
            self.send_error_exc(id, e)
            return
        self._continue_async(id, op, st, t0, coro, first, ctx, timeout)

    def _continue_async(self, id, op, st, t0, coro, first, ctx, timeout) -> None:
        """An async handler suspended in its eager first step: continue it in a task, so that
        the code after its first await has a current task (``asyncio.timeout``, sniffio and
        anyio need one)."""
        req = Request(id, op, st, t0, False, False)
        req.task = task = self.loop.create_task(Continuation(coro, first), context=ctx)
        task.add_done_callback(lambda t, req=req: self._task_done(req, t))
        self.inflight[id] = req
        st.in_flight += 1
        if timeout is not None:
            req.timer = self.loop.call_later(timeout, self._expire, req)

    def _refuse_args(self, id: int, st: OpStats, problem: str) -> None:
        """The arguments do not fit the handler's annotations (:mod:`.argcheck`): nothing ran."""
        st.record(0, False)
        self.send_error(id, "invalid_argument", "InvalidArgument", problem)

    def _call_failed(self, id: int, st: OpStats, t0: int, e: BaseException) -> None:
        """Calling the handler function raised (before any await)."""
        st.record(_perf_ns() - t0, False)
        if not isinstance(e, TypeError):
            self.send_error_exc(id, e)
        elif e.__traceback__ is not None and e.__traceback__.tb_next is None:
            # raised by binding the arguments, before any handler code ran
            self.send_error(id, "invalid_argument", "TypeError", str(e))
        else:
            self.send_error_exc(id, e)

    def _finish(self, req: Request, ok: bool) -> bool:
        """Mark the request answered. False if it was already (timeout/cancel won)."""
        if req.done:
            return False
        req.done = True
        self.inflight.pop(req.id, None)
        if req.timer is not None:
            req.timer.cancel()
        st = req.st
        st.in_flight -= 1
        st.record(_perf_ns() - req.t0, ok)
        if self.closing and not self.inflight and self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        return True

    def abort(self, req: Request, category: str, type_: str, message: str) -> None:
        """Answer now with an error and stop the work: cancel a task, abandon a thread."""
        if req.done:
            return
        if not self._finish(req, False):
            return
        req.stop = True
        self.send_error(req.id, category, type_, message)
        if req.sync:
            req.abandoned = True
            self.stats.abandoned += 1
            if self.hcalls:
                self._cancel_hcalls_of(req.id)  # a thread blocked in host.call_sync wakes
        elif req.task is not None:
            req.task.cancel()

    def _expire(self, req: Request) -> None:
        req.timer = None
        self.abort(req, "timeout", "DeadlineExceeded", f"deadline of {req.op!r} passed")

    def _task_done(self, req: Request, task: asyncio.Task) -> None:
        if req.done:
            if not task.cancelled():
                task.exception()  # retrieved: no "exception was never retrieved" noise
            return
        if task.cancelled():
            # cancelled by handler code itself (we answer cancels/timeouts before cancelling)
            if self._finish(req, False):
                self.send_error(req.id, "cancelled", "CancelledError", "the handler was cancelled")
            return
        exc = task.exception()
        if exc is not None:
            if self._finish(req, False):
                self.send_error_exc(req.id, exc)
            return
        if req.stream:
            if self._finish(req, True):
                self.send({"t": "end", "id": req.id})
        elif self._finish(req, True):
            if req.batch:
                self.send_bres(req, task.result())
            else:
                self.send_result(req.id, task.result(), req.st)
