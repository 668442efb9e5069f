"""The worker runtime: one long-lived asyncio loop per process.

:class:`Runtime` holds the state; its methods come from one module per job:

* :mod:`.transport`  -- the protocol pipes: frames in (``on_data``, ``--spin-us``), EOF, flushing.
* :mod:`.dispatch`   -- every message; each ``req`` to its handler (``async`` eagerly, see
  :mod:`.eager`); deadlines, cancels, completion.
* :mod:`.sync_calls` -- ``sync`` and ``sync_gen`` handlers on a ThreadPoolExecutor.
* :mod:`.streams`    -- ``chunk`` frames and ``async_gen`` handlers.
* :mod:`.output`     -- results and errors.
* :mod:`.startup`    -- the handshake, loading the bridge, the loop choice, the parent watch.

This module keeps the state and the shutdown. ``ping`` is answered in the read callback. The
process always ends with ``os._exit`` so a hung thread cannot keep it alive.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import msgpack

from . import tracing
from .forks import end_forked_copy
from .base_bridge import BaseBridge
from .batching import BatchMixin, single_call
from .dispatch import DispatchMixin
from . import host as _host
from .errors import error_map
from .host import HostCallMixin
from .log import log
from .output import OutputMixin
from .protocol import DEFAULT_MAX_FRAME, FrameDecoder, ProtocolError
from .request import Request, RequestInfo, current_request  # noqa: F401 - current_request is public here
from .shm import SharedMemory
from .stats import Stats
from .streams import StreamMixin
from .sync_calls import SyncCallMixin
from .transport import SMALL_FRAME, TransportMixin

EXIT_OK = 0
EXIT_START_FAILED = 1
EXIT_PROTOCOL = 3


class Runtime(TransportMixin, DispatchMixin, OutputMixin, StreamMixin, SyncCallMixin, HostCallMixin, BatchMixin):
    """One worker's state. The mixins only add methods; every attribute they use is set here."""

    def __init__(self, proto_in: int, proto_out: int, *, threads: int = 8, max_frame: int = DEFAULT_MAX_FRAME,
                 spin_us: int = 0, shm: SharedMemory | None = None):
        self.proto_in = proto_in
        self.proto_out = proto_out
        self.pid = os.getpid()  # the worker's: a handler's forked copy is another process
        self.detached = False  # set in a forked copy by detach_forked_copy
        self.threads = threads
        self.spin_ns = spin_us * 1000
        self.max_frame = max_frame  # what we accept
        self.out_max = DEFAULT_MAX_FRAME  # what the host accepts (its hello may say)
        self._fast_max = min(SMALL_FRAME, max_frame)
        self.decoder = FrameDecoder(max_frame)
        self._pack = msgpack.Packer(use_bin_type=True).pack
        # large arrays through shared memory (shm.py); None: everything through the pipe
        self.shm = shm
        self._unpack = msgpack.unpackb
        if shm is not None:
            from .protocol import use_ext_hook

            use_ext_hook(shm.ext_hook)
            self._unpack = functools.partial(msgpack.unpackb, ext_hook=shm.ext_hook)
        self.stats = Stats(threads)
        self.inflight: dict[int, Request] = {}
        self.stats.inflight_map = self.inflight
        self.table: dict[str, tuple] = {}  # op -> (fn, kind, OpStats, streams?, argument check | None)
        self.batch_table: dict[str, tuple] = {}  # batched op -> (fn, kind, OpStats, max_size)
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
        # host calls (host.py): pending ones by their id -> (future, parent request id)
        self.hcalls: dict[int, tuple] = {}
        self._hcall_seq = 0
        self.host_funcs: dict = {}  # from the host's hello: {name: {description, schema}}
        self.loop_thread: int | None = None


    # ------------------------------------------------------------------ lifecycle

    def attach(self, bridge: BaseBridge) -> None:
        self.bridge = bridge
        bridge._runtime = self
        _host._runtime = self
        self.table = {}
        self.batch_table = {}
        self.stats.builtin = bridge.plumbing_ops
        for name, h in bridge.handlers.items():
            self.rebind(name, h)

    def rebind(self, op: str, h) -> None:
        """Serve ``op`` with handler ``h`` from the next request on (a switched implementation).
        Called on the loop, or from a handler thread: the table entry is replaced whole."""
        st = self.stats.op(op, h.kind)
        if h.batch is not None:  # a plain req is a batch of one; a breq goes to batch_table
            self.batch_table[op] = (h.fn, h.kind, st, h.batch[0])
            self.table[op] = (single_call(h.fn, h.kind, op), h.kind, st, False, None)
            return
        self.batch_table.pop(op, None)
        self.table[op] = (h.fn, h.kind, st, h.kind in ("sync_gen", "async_gen"), h.check)

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

    async def fail_start(self, category: str, type_: str, message: str, tb: str | None = None) -> None:
        # The hello error carries the message and the traceback to the host, which returns
        # them in Start's error: printing them here too would show the user each twice.
        self.exiting = True
        try:
            self.send({"t": "hello", "pid": os.getpid(), "error": error_map(category, type_, message, tb)})
        except Exception:
            log(f"cannot start: {message}", logging.ERROR, tb)  # no hello: stderr is all there is
        await self.flush_and_close()
        self.hard_exit(EXIT_START_FAILED)

    def fatal_protocol(self, e: ProtocolError) -> None:
        log(f"protocol error on input ({e.kind}): {e}; the stream cannot be trusted, exiting", logging.ERROR)
        self.hard_exit(EXIT_PROTOCOL)

    def detach_forked_copy(self) -> None:
        """In a child forked from this worker (``os.register_at_fork``): let go of the
        protocol. The child's descriptors for the protocol pipes and the segment channel now
        point at /dev/null, so nothing it does reads the worker's requests or writes an answer
        in its name, and it does not keep the pipes open after the worker dies. A copy of the
        event loop itself (the fork ran on the loop's thread, and the handler returned in both
        processes) exits as soon as the handler hands it back to the loop: asyncio no longer
        sees a running loop there, so it could run nothing anyway. A child that execs or runs
        a multiprocessing target never comes back to the loop; a copy made by a sync handler
        ends when that handler returns (:func:`.forks.end_if_forked_copy`).

        Once per lineage: in a child of a child the descriptors may have been reused for
        something else (a daemon that closed them all), so they are left alone."""
        if self.detached:
            return
        self.detached = True
        fds = [self.proto_in, self.proto_out]
        if self.shm is not None:
            fds.append(self.shm.sock.fileno())
        null = os.open(os.devnull, os.O_RDWR)
        try:
            for fd in fds:
                if fd >= 0:
                    os.dup2(null, fd, inheritable=False)
        finally:
            os.close(null)
        if self.loop is not None and threading.get_ident() == self.loop_thread:
            self.loop.call_soon(end_forked_copy)

    def hard_exit(self, code: int) -> None:
        self.exiting = True
        tracing.flush()  # os._exit runs no atexit hook: send buffered spans now
        for f in (sys.stdout, sys.stderr):
            try:
                f.flush()
            except Exception:
                pass
        os._exit(code)


_STARTUP_NAMES = frozenset({"load_bridge", "main", "run", "loop_factory", "LOOP_ENV", "LOOP_NAME"})


def __getattr__(name: str):
    # these used to live here; imported lazily because startup imports this module
    if name in _STARTUP_NAMES:
        from . import startup

        return getattr(startup, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
