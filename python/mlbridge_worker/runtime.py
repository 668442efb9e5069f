"""The worker runtime: one long-lived asyncio loop per process.

Reading: ``loop.connect_read_pipe`` with a callback protocol feeding a :class:`FrameDecoder`.
Writing: ``loop.connect_write_pipe``; one ``transport.write(header + payload)`` per frame.

Dispatch (every ``req``):

* ``async``     -- the coroutine is stepped eagerly in the read callback; if it finishes without
  suspending (a no-op, a cache hit) the answer goes out at once, with no task. Otherwise it
  continues in a task (see :mod:`.eager`).
* ``sync``      -- a bounded ThreadPoolExecutor, run inside the request's context
  (``contextvars``), the answer posted back with ``call_soon_threadsafe``.
* ``async_gen`` -- a task iterating the generator, one ``chunk`` per item, then ``end``.
* ``sync_gen``  -- one executor job iterating the generator, posting each item to the loop.

Deadlines and cancels answer at once (``timeout`` / ``cancelled``); tasks are cancelled, threads
are abandoned (counted in ``abandoned`` until they return). ``ping`` is answered in the read
callback. The process always ends with ``os._exit`` so a hung thread cannot keep it alive.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import importlib
import inspect
import os
import sys
import threading
import time
import traceback
import types
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgpack

from . import __version__
from .base_bridge import BaseBridge
from .eager import Continuation
from .errors import InvalidConfiguration, error_map, exception_to_error
from .protocol import (
    DEFAULT_MAX_FRAME,
    HOST_TO_WORKER,
    PARENT_PID_ENV,
    VERSIONS,
    FrameDecoder,
    ProtocolError,
    check_req,
    pack_header,
    validate,
)
from .protocol import _unpack_header
from .stats import OpStats, Stats

_pack_header = pack_header

_perf_ns = time.perf_counter_ns
_CoroutineType = types.CoroutineType

EXIT_OK = 0
EXIT_START_FAILED = 1
EXIT_PROTOCOL = 3

LOOP_ENV = "MLBRIDGE_LOOP"
LOOP_NAME = "asyncio"  # set by loop_factory
PARENT_POLL_S = 0.5
SMALL_FRAME = 64 * 1024  # on_data's single-frame fast path copies payloads up to this size

# {"t": "res", "id": <id>, "ok": true, "result": <result>} encoded around its two values
_RES_OK_HEAD = b"\x84\xa1t\xa3res\xa2id"
_RES_OK_MID = b"\xa2ok\xc3\xa6result"
_unpackb = msgpack.unpackb
_NO_ARGS: dict = {}
READ_SIZE = 64 * 1024
SPIN_YIELD_NS = 2_000_000  # a spinning reader hands the loop back at least this often
FLUSH_TIMEOUT_S = 2.0


class RequestInfo:
    """What a handler can learn about the request it serves: :func:`current_request`."""

    __slots__ = ("id", "op", "deadline")

    def __init__(self, id: int, op: str, deadline: int | None):
        self.id = id
        self.op = op
        self.deadline = deadline  # unix ms or None

    def __repr__(self) -> str:
        return f"RequestInfo(id={self.id}, op={self.op!r}, deadline={self.deadline})"


# holds (id, op, deadline): a tuple is the cheapest thing to build per request
_request_var: contextvars.ContextVar[tuple | None] = contextvars.ContextVar(
    "mlbridge_request", default=None
)


def current_request() -> RequestInfo | None:
    """The request being served by the calling handler (sync or async), or None."""
    t = _request_var.get()
    return None if t is None else RequestInfo(*t)


def log(msg: str) -> None:
    try:
        sys.stderr.write(f"mlbridge-worker[{os.getpid()}]: {msg}\n")
        sys.stderr.flush()
    except Exception:
        pass


class Request:
    __slots__ = ("id", "op", "st", "t0", "stream", "task", "timer", "done", "abandoned", "stop", "sync")

    def __init__(self, id, op, st, t0, stream, sync):
        self.id = id
        self.op = op
        self.st = st
        self.t0 = t0
        self.stream = stream
        self.sync = sync  # runs on a thread: abandoned, not cancelled
        self.task = None
        self.timer = None
        self.done = False  # the terminal frame was sent
        self.abandoned = False
        self.stop = False  # tells a sync generator thread to stop between items


class _ReadProtocol(asyncio.Protocol):
    def __init__(self, rt: "Runtime"):
        # bound straight through: one call less per chunk
        self.data_received = rt.on_data_spin if rt.spin_ns else rt.on_data
        self._rt = rt

    def eof_received(self):
        self._rt.on_eof()
        return False

    def connection_lost(self, exc):
        self._rt.on_eof()


class _WriteProtocol(asyncio.BaseProtocol):
    def __init__(self, rt: "Runtime"):
        self._rt = rt

    def pause_writing(self):
        self._rt.paused = True
        self._rt.writable.clear()

    def resume_writing(self):
        rt = self._rt
        rt.paused = False
        rt.writable.set()
        waiters, rt.resume_waiters = rt.resume_waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

    def connection_lost(self, exc):
        self._rt.on_writer_lost(exc)


class _BlockingWriter:
    """Fallback write 'transport' for an fd that is not a pipe/socket (a regular file)."""

    def __init__(self, fd: int):
        self.fd = fd

    def write(self, data) -> None:
        mv = memoryview(data)
        while mv:
            n = os.write(self.fd, mv)
            mv = mv[n:]

    def get_write_buffer_size(self) -> int:
        return 0

    def close(self) -> None:
        pass

    def is_closing(self) -> bool:
        return False


class Runtime:
    def __init__(self, proto_in: int, proto_out: int, *, threads: int = 8, max_frame: int = DEFAULT_MAX_FRAME,
                 spin_us: int = 0):
        self.proto_in = proto_in
        self.proto_out = proto_out
        self.threads = threads
        self.spin_ns = spin_us * 1000
        self.max_frame = max_frame  # what we accept
        self.out_max = DEFAULT_MAX_FRAME  # what the host accepts (its hello may say)
        self._fast_max = min(SMALL_FRAME, max_frame)
        self.decoder = FrameDecoder(max_frame)
        self._pack = msgpack.Packer(use_bin_type=True).pack
        self.stats = Stats(threads)
        self.inflight: dict[int, Request] = {}
        self.stats.inflight_map = self.inflight
        self.table: dict[str, tuple] = {}
        self.bridge: BaseBridge | None = None
        self.executor: ThreadPoolExecutor | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.transport = None
        self.write = None
        self.paused = False
        self.writable = threading.Event()
        self.writable.set()
        self.resume_waiters: list = []
        self.ready = False
        self.closing = False
        self.exiting = False
        self._early: list = []
        self._hello_waiter: asyncio.Future | None = None
        self._eof = False
        self._drained: asyncio.Future | None = None
        self._writer_lost: asyncio.Future | None = None
        self._base_ctx: contextvars.Context | None = None

    # ------------------------------------------------------------------ plumbing

    async def connect(self) -> None:
        loop = self.loop = asyncio.get_running_loop()
        self._writer_lost = loop.create_future()
        self._hello_waiter = loop.create_future()
        out = os.fdopen(self.proto_out, "wb", buffering=0)
        try:
            self.transport, _ = await loop.connect_write_pipe(lambda: _WriteProtocol(self), out)
        except ValueError:  # not a pipe/socket/char device: plain blocking writes
            self.transport = _BlockingWriter(self.proto_out)
        self.write = self.transport.write
        inp = os.fdopen(self.proto_in, "rb", buffering=0)
        try:
            rtr, _ = await loop.connect_read_pipe(lambda: _ReadProtocol(self), inp)
            # asyncio reads 256 KiB at a time: an allocation that big is an mmap + mremap +
            # munmap per read, which costs more than a whole small round trip. 64 KiB stays
            # on the heap.
            if hasattr(rtr, "max_size"):  # the selector loop's transport (uvloop reads 64 KiB)
                rtr.max_size = READ_SIZE
        except ValueError:
            threading.Thread(target=self._blocking_reader, name="mlbridge-reader", daemon=True).start()

    def _blocking_reader(self) -> None:
        loop = self.loop
        while True:
            try:
                data = os.read(self.proto_in, 1 << 18)
            except OSError:
                data = b""
            if not data:
                loop.call_soon_threadsafe(self.on_eof)
                return
            loop.call_soon_threadsafe(self.on_data, data)

    def send(self, msg: dict) -> None:
        payload = self._pack(msg)
        self.write(pack_header(len(payload)) + payload)

    def fatal_protocol(self, e: ProtocolError) -> None:
        log(f"protocol error on input ({e.kind}): {e}; the stream cannot be trusted, exiting")
        self.hard_exit(EXIT_PROTOCOL)

    def hard_exit(self, code: int) -> None:
        self.exiting = True
        for f in (sys.stdout, sys.stderr):
            try:
                f.flush()
            except Exception:
                pass
        os._exit(code)

    # ------------------------------------------------------------------ input

    def on_data(self, data) -> None:
        # Fast path: the chunk is exactly one whole small frame and nothing is buffered (the
        # usual case for request/response traffic). Anything else, and every error, goes
        # through the general decoder, which classifies it.
        n = len(data)
        if self.ready and n > 4 and not self.decoder._buf:
            size = _unpack_header(data, 0)[0]
            if size + 4 == n and size <= self._fast_max:
                try:
                    msg = _unpackb(data[4:])
                except Exception:
                    msg = None
                if type(msg) is dict:
                    try:
                        if msg.get("t") == "req":
                            self.on_req(msg)
                        else:
                            self.on_other(msg)
                    except Exception as e:  # a bug of ours: keep serving
                        log("internal error handling a message:\n" + "".join(traceback.format_exception(e)))
                    return
        try:
            msgs = self.decoder.feed(data)
        except ProtocolError as e:
            self.fatal_protocol(e)
            return
        if not self.ready:
            self._early.extend(msgs)
            w = self._hello_waiter
            if msgs and w is not None and not w.done():
                w.set_result(None)
            return
        for msg in msgs:
            try:
                if msg.get("t") == "req":
                    self.on_req(msg)
                else:
                    self.on_other(msg)
            except Exception as e:  # a bug of ours: keep serving
                log("internal error handling a message:\n" + "".join(traceback.format_exception(e)))

    def on_data_spin(self, data) -> None:
        """``on_data``, then, while nothing is in flight, keep reading the input without
        blocking for up to ``spin_ns`` for the next request (``--spin-us``).

        A worker that blocks in epoll between requests pays a wake-up and runs its next
        request on cold caches; spinning briefly trades CPU for that latency. The loop gets
        its turn back as soon as anything is in flight (tasks, threads, timers need it) and
        at least every SPIN_YIELD_NS."""
        self.on_data(data)
        if not self.ready:
            return
        fd = self.proto_in
        spin = self.spin_ns
        now = _perf_ns()
        end = now + spin
        yield_at = now + SPIN_YIELD_NS
        while not self.inflight and not self.closing:
            try:
                data = os.read(fd, READ_SIZE)
            except BlockingIOError:
                now = _perf_ns()
                if now >= end or now >= yield_at:
                    return
                continue
            except OSError:
                return
            if not data:
                self.on_eof()
                return
            self.on_data(data)
            now = _perf_ns()
            if now >= yield_at:
                return
            end = now + spin

    def on_eof(self) -> None:
        if self._eof:
            return
        self._eof = True
        try:
            self.decoder.close()
        except ProtocolError as e:
            self.fatal_protocol(e)
            return
        if not self.ready:
            # the handshake decides (main): answer a hello that came before EOF, then exit
            w = self._hello_waiter
            if w is not None and not w.done():
                w.set_result(None)
            return
        self.request_shutdown(0)

    def on_writer_lost(self, exc) -> None:
        self.write = _discard  # nobody reads our answers any more; some transports raise
        w = self._writer_lost
        if w is not None and not w.done():
            w.set_result(None)
        if not self.exiting and not self.closing:
            log(f"protocol output closed ({exc or 'eof'}); shutting down")
            self.request_shutdown(0)

    def on_other(self, msg: dict) -> None:
        try:
            t = validate(msg, HOST_TO_WORKER)
        except ProtocolError as e:
            log(f"dropped message ({e.kind}): {e}")
            if e.id is not None and e.t == "req":
                self.send_error(e.id, "protocol", "ProtocolError", str(e))
            return
        if t == "ping":
            self.send({"t": "pong", "seq": msg["seq"]})
        elif t == "cancel":
            req = self.inflight.get(msg["id"])
            if req is not None:
                self.abort(req, "cancelled", "CancelledError", "cancelled by the host")
        elif t == "shutdown":
            grace = msg.get("grace")
            self.request_shutdown(2000 if grace is None else grace)
        elif t == "req":  # not reached: on_data routes reqs to on_req
            self.on_req(msg)
        elif t == "hello":
            log("ignored a second hello")
        # pong: we never ping, nothing to do

    # ------------------------------------------------------------------ requests

    def on_req(self, msg: dict) -> None:
        """A request. The common case (a plain ``{t, id, op[, args]}`` for an ``async`` handler
        that finishes without suspending) is handled inline; everything else goes through
        :meth:`dispatch`."""
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
                fn = entry[0]
                st = entry[2]
                ctx = self._base_ctx.copy()
                ctx.run(_request_var.set, (id, op, None))
                t0 = _perf_ns()
                try:
                    coro = fn(**args) if args is not None else fn()
                except BaseException as e:
                    self._call_failed(id, st, t0, e)
                    return
                try:
                    first = ctx.run(coro.send, None)
                except StopIteration as done:
                    # finished without suspending: answer now, no task
                    st.buckets[((_perf_ns() - t0) // 1000).bit_length()] += 1
                    st.calls += 1
                    result = done.value
                    try:
                        payload = (_RES_OK_HEAD + self._pack(id) + _RES_OK_MID
                                   + (b"\xc0" if result is None else self._pack(result)))
                    except Exception:
                        self.send_result(id, result, st)  # reports the serialization error
                        return
                    n = len(payload)
                    if n > self.out_max:
                        self.send_result(id, result, st)
                        return
                    self.write(_pack_header(n) + payload)
                    return
                except BaseException as e:
                    st.record(_perf_ns() - t0, False)
                    self.send_error_exc(id, e)
                    return
                self._continue_async(id, op, st, t0, coro, first, ctx, None)
                return
        self.dispatch(msg)

    def dispatch(self, msg: dict) -> None:
        """The general request path: full validation, every kind, deadlines, streams."""
        try:
            id, op, args, deadline, stream = check_req(msg)
        except ProtocolError as e:
            log(f"bad request ({e.kind}): {e}")
            if e.id is not None:
                self.send_error(e.id, "protocol", "ProtocolError", str(e))
            return
        entry = self.table.get(op)
        if entry is None:
            self.send_error(id, "unknown_op", "UnknownOp", f"no handler named {op!r}")
            return
        if self.closing:
            self.send_error(id, "unavailable", "Unavailable", "the worker is shutting down")
            return
        if id in self.inflight:
            self.send_error(id, "protocol", "ProtocolError", f"request id {id} is already in flight")
            return
        fn, kind, st, is_gen = entry
        if stream is not is_gen:
            if stream:
                self.send_error(id, "invalid_argument", "InvalidArgument",
                                f"{op!r} is a {kind} handler: it cannot be streamed (stream: true needs a generator)")
            else:
                self.send_error(id, "invalid_argument", "InvalidArgument",
                                f"{op!r} is a {kind} handler: call it with stream: true")
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
        t0 = _perf_ns()

        if kind == "async":
            try:
                coro = fn(**args)
            except BaseException as e:
                self._call_failed(id, st, t0, e)
                return
            try:
                first = ctx.run(coro.send, None)
            except StopIteration as done:
                st.record(_perf_ns() - t0, True)
                self.send_result(id, done.value, st)
                return
            except BaseException as e:
                st.record(_perf_ns() - t0, False)
                self.send_error_exc(id, e)
                return
            self._continue_async(id, op, st, t0, coro, first, ctx, timeout)
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

    def _continue_async(self, id, op, st, t0, coro, first, ctx, timeout) -> None:
        """An async handler suspended in its eager first step: continue it in a task."""
        req = Request(id, op, st, t0, False, False)
        req.task = task = self.loop.create_task(Continuation(coro, first), context=ctx)
        task.add_done_callback(lambda t, req=req: self._task_done(req, t))
        self.inflight[id] = req
        st.in_flight += 1
        if timeout is not None:
            req.timer = self.loop.call_later(timeout, self._expire, req)

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
        if not self._finish(req, False):
            return
        req.stop = True
        self.send_error(req.id, category, type_, message)
        if req.sync:
            req.abandoned = True
            self.stats.abandoned += 1
        elif req.task is not None:
            req.task.cancel()

    def _expire(self, req: Request) -> None:
        req.timer = None
        self.abort(req, "timeout", "DeadlineExceeded", f"deadline of {req.op!r} passed")

    # async ---------------------------------------------------------------

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
        else:
            if self._finish(req, True):
                self.send_result(req.id, task.result(), req.st)

    async def _run_agen(self, req: Request, agen) -> None:
        try:
            async for item in agen:
                if req.done or not self._emit_chunk(req, item):
                    return
                if self.paused:
                    w = self.loop.create_future()
                    self.resume_waiters.append(w)
                    await w
        finally:
            await agen.aclose()

    def _emit_chunk(self, req: Request, item: Any) -> bool:
        """Send one chunk; on an encoding failure answer the stream with an error. Loop only."""
        if req.done:
            return False
        try:
            payload = self._pack({"t": "chunk", "id": req.id, "data": item})
        except Exception as e:
            self._serialization_failed(req, e, "an item")
            return False
        n = len(payload)
        if n > self.out_max:
            self._too_large(req, n, "an item")
            return False
        self.write(pack_header(n) + payload)
        return True

    # sync ----------------------------------------------------------------

    def _run_sync(self, req: Request, fn, args: dict) -> None:
        """Runs on an executor thread, inside the request's context."""
        try:
            if req.stop:  # cancelled or timed out while queued: don't start
                ok, value = False, None
            else:
                value = fn(**args)
                ok = True
                if type(value) is _CoroutineType:
                    value.close()
                    raise InvalidConfiguration(
                        f"sync handler {req.op!r} returned a coroutine: declare it `async def` "
                        "or mark it @handler(kind='async')"
                    )
        except BaseException as e:
            ok, value = False, e
        try:
            self.loop.call_soon_threadsafe(self._sync_done, req, ok, value)
        except RuntimeError:  # loop closed: the process is exiting
            pass

    def _sync_done(self, req: Request, ok: bool, value) -> None:
        if req.abandoned:
            req.abandoned = False
            self.stats.abandoned -= 1
            return
        if req.done:
            return
        if ok:
            if self._finish(req, True):
                self.send_result(req.id, value, req.st)
        elif value is None:
            pass  # never started (stop was set, which means it was answered already)
        else:
            if self._finish(req, False):
                if isinstance(value, TypeError) and _binding_error(value):
                    self.send_error(req.id, "invalid_argument", "TypeError", str(value))
                else:
                    self.send_error_exc(req.id, value)

    def _run_sync_gen(self, req: Request, fn, args: dict) -> None:
        """Runs on an executor thread: iterates the generator, posting items to the loop."""
        post = self.loop.call_soon_threadsafe
        if req.stop:
            post(self._sync_done, req, False, None)
            return
        gen = None
        try:
            gen = fn(**args)
            for item in gen:
                if req.stop:
                    break
                post(self._sync_chunk, req, item)
                while self.paused and not req.stop:
                    self.writable.wait(0.1)
                if req.stop:
                    break
        except BaseException as e:
            try:
                post(self._sync_done, req, False, e)
            except RuntimeError:
                pass
            return
        finally:
            if gen is not None:
                try:
                    gen.close()
                except BaseException:
                    pass
        try:
            post(self._sync_gen_end, req)
        except RuntimeError:
            pass

    def _sync_chunk(self, req: Request, item) -> None:
        if not req.done and not self._emit_chunk(req, item):
            req.stop = True

    def _sync_gen_end(self, req: Request) -> None:
        if req.abandoned:
            req.abandoned = False
            self.stats.abandoned -= 1
            return
        if self._finish(req, True):
            self.send({"t": "end", "id": req.id})

    # output ---------------------------------------------------------------

    def send_result(self, id: int, result: Any, st: OpStats | None = None) -> None:
        try:
            payload = _RES_OK_HEAD + self._pack(id) + _RES_OK_MID + self._pack(result)
        except Exception as e:
            if st is not None:
                st.errors += 1
            self.send_error(
                id, "serialization", type(e).__name__,
                f"the result cannot be encoded as msgpack: {e}",
            )
            return
        n = len(payload)
        if n > self.out_max:
            if st is not None:
                st.errors += 1
            self.send_error(
                id, "serialization", "FrameTooLarge",
                f"the result encodes to {n} bytes, more than the max frame size {self.out_max}",
            )
            return
        self.write(pack_header(n) + payload)

    def _serialization_failed(self, req: Request, e: Exception, what: str) -> None:
        if self._finish(req, False):
            req.stop = True
            self.send_error(req.id, "serialization", type(e).__name__,
                            f"{what} of the stream cannot be encoded as msgpack: {e}")
            if req.task is not None:
                req.task.cancel()

    def _too_large(self, req: Request, n: int, what: str) -> None:
        if self._finish(req, False):
            req.stop = True
            self.send_error(req.id, "serialization", "FrameTooLarge",
                            f"{what} of the stream encodes to {n} bytes, more than the max frame size {self.out_max}")
            if req.task is not None:
                req.task.cancel()

    def send_error(self, id: int, category: str, type_: str, message: str, tb: str | None = None) -> None:
        self._send_error_map(id, error_map(category, type_, message, tb))

    def send_error_exc(self, id: int, exc: BaseException) -> None:
        self._send_error_map(id, exception_to_error(exc))

    def _send_error_map(self, id: int, err: dict) -> None:
        msg = {"t": "res", "id": id, "ok": False, "error": err}
        try:
            self.send(msg)
        except Exception:  # e.g. lone surrogates in a message: make it encodable
            for k, v in list(err.items()):
                if isinstance(v, str):
                    err[k] = v.encode("utf-8", "backslashreplace").decode("utf-8")
            self.send(msg)

    # ------------------------------------------------------------------ lifecycle

    def attach(self, bridge: BaseBridge) -> None:
        self.bridge = bridge
        bridge._runtime = self
        self.table = {}
        for name, h in bridge.handlers.items():
            st = self.stats.op(name, h.kind)
            self.table[name] = (h.fn, h.kind, st, h.kind in ("sync_gen", "async_gen"))

    def request_shutdown(self, grace_ms: int, after_answer: bool = False) -> None:
        """Stop taking requests; let in-flight ones finish for up to ``grace_ms``; exit 0.

        The drain starts on a later loop turn, so the answer of a ``shutdown`` request (the
        built-in op, ``after_answer``) is always written first."""
        if self.closing:
            return
        self.closing = True
        if self.loop is None:
            return
        self.loop.call_soon(lambda: self.loop.create_task(self._shutdown(grace_ms)))

    async def _shutdown(self, grace_ms: int) -> None:
        loop = self.loop
        if self.inflight and grace_ms > 0:
            self._drained = loop.create_future()
            try:
                await asyncio.wait_for(asyncio.shield(self._drained), grace_ms / 1000.0)
            except asyncio.TimeoutError:
                pass
        for req in list(self.inflight.values()):
            self.abort(req, "unavailable", "Unavailable", "the worker shut down before the request finished")
        await self.flush_and_close()
        self.hard_exit(EXIT_OK)

    async def flush_and_close(self) -> None:
        tr = self.transport
        if tr is None or isinstance(tr, _BlockingWriter):
            return
        if not tr.is_closing():
            tr.close()  # flushes what is buffered, then connection_lost
        w = self._writer_lost
        if w is not None and not w.done():
            try:
                await asyncio.wait_for(asyncio.shield(w), FLUSH_TIMEOUT_S)
            except asyncio.TimeoutError:
                log("could not flush the protocol output in time")

    async def fail_start(self, category: str, type_: str, message: str, tb: str | None = None) -> None:
        log(f"cannot start: {message}" + (f"\n{tb}" if tb else ""))
        self.exiting = True
        try:
            self.send({"t": "hello", "pid": os.getpid(), "error": error_map(category, type_, message, tb)})
        except Exception:
            pass
        await self.flush_and_close()
        self.hard_exit(EXIT_START_FAILED)

    async def watch_parent(self, expected: int) -> None:
        start_ppid = os.getppid()
        wrapped = start_ppid != expected  # started through a wrapper (uv run, a shell...)
        while True:
            if wrapped:
                gone = os.getppid() != start_ppid or not _pid_alive(expected)
            else:
                gone = os.getppid() != expected
            if gone:
                log(f"parent process {expected} is gone; exiting")
                self.request_shutdown(0)
                return
            await asyncio.sleep(PARENT_POLL_S)


def _discard(data) -> None:
    pass


def _binding_error(e: TypeError) -> bool:
    """True when a TypeError from ``fn(**args)`` in :meth:`Runtime._run_sync` was raised by the
    call binding (its traceback has no frame below the calling one)."""
    tb = e.__traceback__
    return tb is not None and tb.tb_next is None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def load_bridge(spec: str) -> BaseBridge:
    mod_name, sep, qual = spec.partition(":")
    if not sep or not mod_name or not qual:
        raise ValueError(f"--bridge must look like module:Class, not {spec!r}")
    obj: Any = importlib.import_module(mod_name)
    for part in qual.split("."):
        obj = getattr(obj, part)
    if not (inspect.isclass(obj) and issubclass(obj, BaseBridge)):
        raise TypeError(f"{spec} is not a BaseBridge subclass")
    return obj()


async def main(bridge_spec: str, proto_in: int, proto_out: int, threads: int = 8, max_frame: int = DEFAULT_MAX_FRAME,
               spin_us: int = 0) -> None:
    rt = Runtime(proto_in, proto_out, threads=threads, max_frame=max_frame, spin_us=spin_us)
    await rt.connect()

    parent = os.environ.get(PARENT_PID_ENV)
    if parent:
        try:
            asyncio.get_running_loop().create_task(rt.watch_parent(int(parent)))
        except ValueError:
            log(f"ignoring {PARENT_PID_ENV}={parent!r}: not a pid")

    # 1. the host's hello
    await rt._hello_waiter
    if not rt._early:  # EOF before any frame
        log("end of input before the host's hello; exiting")
        rt.hard_exit(EXIT_OK)
    hello = rt._early.pop(0)
    try:
        t = validate(hello, HOST_TO_WORKER)
        if t != "hello":
            raise ProtocolError("unknown_type", f"expected hello as the first frame, got {t!r}")
    except ProtocolError as e:
        await rt.fail_start("protocol", "ProtocolError", str(e))
        return
    common = set(hello["versions"]) & set(VERSIONS)
    if not common:
        await rt.fail_start(
            "protocol", "ProtocolError",
            f"no common protocol version: host speaks {hello['versions']}, worker speaks {list(VERSIONS)}",
        )
        return
    version = max(common)
    if hello.get("max_frame") is not None:
        rt.out_max = hello["max_frame"]

    # 2. the bridge (may take seconds: framework imports)
    try:
        bridge = load_bridge(bridge_spec)
        r = bridge._initialize_framework()
        if inspect.isawaitable(r):
            await r
        info = bridge.get_framework_info()
        kinds = bridge.handler_kinds()
    except BaseException as e:
        await rt.fail_start(
            "invalid_configuration", type(e).__name__,
            f"cannot load bridge {bridge_spec}: {e}", "".join(traceback.format_exception(e)),
        )
        return

    # Everything alive now (the framework's modules and objects) lives as long as the process:
    # move it out of the collector's generations so full collections stop rescanning it.
    gc.collect()
    gc.freeze()

    rt.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="mlbridge-sync")
    rt.attach(bridge)
    rt._base_ctx = contextvars.copy_context()  # what _initialize_framework set is visible to all

    # 3. our hello
    caps = ["cancel", "deadline", "streaming", "ping"]
    for c in info.get("capabilities", ()):
        if c not in caps:
            caps.append(c)
    rt.send({
        "t": "hello",
        "version": version,
        "pid": os.getpid(),
        "framework": {"name": str(info.get("name", "")), "version": str(info.get("version", ""))},
        "capabilities": caps,
        "handlers": kinds,
        "max_frame": max_frame,
        "runtime": {
            "python": sys.version.split()[0],
            "implementation": sys.implementation.name,
            "threads": threads,
            "loop": LOOP_NAME,
            "spin_us": spin_us,
            "worker": __version__,
            "bridge": bridge_spec,
        },
    })

    # 4. serve: whatever arrived early, then everything from the read callback
    rt.ready = True
    early, rt._early = rt._early, []
    for msg in early:
        if msg.get("t") == "req":
            rt.on_req(msg)
        else:
            rt.on_other(msg)
    if rt._eof:  # input ended during the handshake: serve what came, then exit
        rt.request_shutdown(0)
    await asyncio.Event().wait()  # the process ends through hard_exit


def loop_factory():
    """The event loop implementation: uvloop when installed (its per-event overhead is a few
    times lower than the pure-Python selector loop's, which dominates a small round trip),
    else asyncio's default. ``MLBRIDGE_LOOP=asyncio`` forces the default, ``=uvloop`` requires
    uvloop."""
    global LOOP_NAME
    choice = os.environ.get(LOOP_ENV, "auto").strip().lower() or "auto"
    if choice not in ("auto", "uvloop", "asyncio"):
        log(f"ignoring {LOOP_ENV}={choice!r} (want auto, uvloop or asyncio)")
        choice = "auto"
    if choice != "asyncio":
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise
        else:
            LOOP_NAME = "uvloop"
            return uvloop.new_event_loop
    LOOP_NAME = "asyncio"
    return None


def run(bridge_spec: str, proto_in: int, proto_out: int, threads: int = 8, max_frame: int = DEFAULT_MAX_FRAME,
        spin_us: int = 0) -> None:
    try:
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            runner.run(main(bridge_spec, proto_in, proto_out, threads, max_frame, spin_us))
    except BaseException as e:
        log("runtime failed:\n" + "".join(traceback.format_exception(e)))
        for f in (sys.stdout, sys.stderr):
            try:
                f.flush()
            except Exception:
                pass
        os._exit(EXIT_START_FAILED)
    os._exit(EXIT_OK)
