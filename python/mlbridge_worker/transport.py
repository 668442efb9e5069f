"""The protocol pipes: connecting them, reading frames in, the blocking fallbacks, and closing
the output.

Reading: ``loop.connect_read_pipe`` with a callback protocol feeding a :class:`FrameDecoder`;
``on_data`` handles the common one-whole-frame chunk without the decoder. Writing:
``loop.connect_write_pipe``; one ``transport.write(header + payload)`` per frame (two for a
large result, see :mod:`.output`).

A frame that is whole but whose message cannot be decoded (a value nested deeper than
``MAX_DEPTH``) does not break the stream: its request is answered ``invalid_argument`` when its
id can be read, and the next frame is read as usual.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import traceback
from typing import TYPE_CHECKING

import msgpack

from .log import log
from .protocol import MAX_DEPTH, ProtocolError, ValueTooDeep, _unpack_header, check_depth

if TYPE_CHECKING:
    from .runtime import Runtime

_perf_ns = time.perf_counter_ns
_unpackb = msgpack.unpackb

SMALL_FRAME = 64 * 1024  # on_data's single-frame fast path copies payloads up to this size
READ_SIZE = 64 * 1024
SPIN_YIELD_NS = 2_000_000  # a spinning reader hands the loop back at least this often
FLUSH_TIMEOUT_S = 2.0


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


def _discard(data) -> None:
    pass


class TransportMixin:
    """The :class:`~.runtime.Runtime`'s input and output pipes."""

    async def connect(self) -> None:
        loop = self.loop = asyncio.get_running_loop()
        self.loop_thread = threading.get_ident()  # host.call_sync refuses to block it
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

    def on_data(self, data) -> None:
        # Fast path: the chunk is exactly one whole small frame and nothing is buffered (the
        # usual case for request/response traffic). Anything else, and every error, goes
        # through the general decoder, which classifies it.
        n = len(data)
        if self.ready and n > 4 and not self.decoder._buf:
            size = _unpack_header(data, 0)[0]
            if size + 4 == n and size <= self._fast_max:
                try:
                    msg = self._unpack(data[4:])
                    # a payload no longer than MAX_DEPTH cannot nest deeper than it
                    if size > MAX_DEPTH and type(msg) is dict:
                        check_depth(msg)
                except Exception:  # ValueTooDeep too: the decoder answers it
                    msg = None
                if type(msg) is dict:
                    self._route(msg)
                    return
        try:
            msgs = self.decoder.feed(data)
        except ProtocolError as e:
            self.fatal_protocol(e)
            return
        if not self.ready:
            for msg in msgs:
                if type(msg) is dict:
                    self._early.append(msg)
                else:  # nothing may be answered before our hello: the frame is dropped
                    log(f"dropped a frame during the handshake ({msg.kind}): {msg}")
            w = self._hello_waiter
            if self._early and w is not None and not w.done():
                w.set_result(None)
            return
        for msg in msgs:
            if type(msg) is dict:
                self._route(msg)
            else:
                self._undecodable(msg)

    def _undecodable(self, e: ProtocolError) -> None:
        """A whole frame whose message could not be decoded (``too_deep``): the stream is still
        in sync. A request whose id could be read is answered; anything else is dropped."""
        if e.t in ("req", "breq") and e.id is not None:
            log(f"refused request {e.id} ({e.kind}): {e}")
            if e.kind == "too_deep":  # the caller's arguments are the problem
                self.send_error(e.id, "invalid_argument", ValueTooDeep.__name__, str(e))
            else:
                self.send_error(e.id, "protocol", "ProtocolError", str(e))
        else:
            log(f"dropped a frame ({e.kind}): {e}")

    def _route(self, msg: dict) -> None:
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
