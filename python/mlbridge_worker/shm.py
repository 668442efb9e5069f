"""Large array data through shared memory instead of the protocol pipe.

The host passes a Unix socket (``--shm-fd``) on which each side sends the file descriptors of
shared-memory segments, one per message: the segment's id as 8 big-endian bytes, with the
descriptor attached (SCM_RIGHTS). In a frame, array data held in a segment is the msgpack
extension 2 whose 24 bytes are the segment id, the offset and the length (big-endian uint64s);
see spec/protocol.md, "Shared memory".

* In: the host sends a segment before the frame that names it. Decoding the frame resolves the
  extension (``ext_hook``) to a read-only memoryview of the mapped segment, so an array map's
  ``data`` is a buffer like any other and ``np.frombuffer`` reads it without a copy. The
  mapping (and its descriptor, closed with it) lives as long as the numpy arrays that view it.
* Out: a result array of at least ``min_bytes`` is copied once into a fresh segment (a memfd
  on Linux; elsewhere a temporary file unlinked at once), whose descriptor is sent before the
  answer; the answer lists the ids in its ``shm`` field (at most ``MAX_SEGMENTS_PER_FRAME``: the
  arrays past it travel inline). The worker keeps no reference. A result
  that *is* (a contiguous slice of) an array received in shared memory is not copied at all:
  the segment it lives in is sent back, with its offset.
"""

from __future__ import annotations

import mmap
import os
import socket
import struct
import tempfile
import threading
import weakref
from typing import Any

import msgpack

builtins_id = id  # the methods below name segment ids `id`

EXT_SHARED = 2
#: pre-fault every page when mapping (Linux): one call instead of a fault per page
_POPULATE = getattr(mmap, "MAP_POPULATE", 0)
_REF = struct.Struct(">QQQ")
_ID = struct.Struct(">Q")
RECEIVE_TIMEOUT_S = 5.0
#: at most this many segments per frame; the arrays past it travel inline (subject to the max
#: frame). A frame's segments are all queued on the channel before it and the host drains them
#: only when it reads that frame, so they must fit in the socket's buffer at once (Linux: 278
#: one-descriptor messages by default; macOS far fewer). Go: worker.MaxSegmentsPerFrame.
MAX_SEGMENTS_PER_FRAME = 32


class MissingSegment:
    """What a reference resolves to when its segment cannot be had: ``from_wire`` refuses it
    as the argument's error (the request fails, the stream goes on)."""

    __slots__ = ("reason",)

    def __init__(self, reason: str):
        self.reason = reason

    def __repr__(self) -> str:
        return f"MissingSegment({self.reason!r})"


class SharedMemory:
    """The worker's end of the segment channel."""

    def __init__(self, fd: int, min_bytes: int):
        self.sock = socket.socket(fileno=fd)
        self.sock.settimeout(RECEIVE_TIMEOUT_S)
        os.set_inheritable(fd, False)  # subprocesses of user code must not hold it
        self.min_bytes = min_bytes
        self._stash: dict[int, int] = {}  # id -> fd, read while looking for another id
        self._next = 0
        self._send_lock = threading.Lock()
        # received mappings still alive: id(mmap) -> (weak mmap, its descriptor), so that a
        # result viewing one goes back without a copy
        self._mapped: dict[int, tuple[weakref.ref, int]] = {}

    # ------------------------------------------------------------------ in

    def ext_hook(self, code: int, data: bytes) -> Any:
        if code != EXT_SHARED:
            return msgpack.ExtType(code, data)
        if len(data) != _REF.size:
            return MissingSegment(f"a shared-memory reference of {len(data)} bytes")
        id, off, n = _REF.unpack(data)
        try:
            fd = self._receive(id)
        except OSError as e:
            return MissingSegment(f"segment {id} did not arrive: {e}")
        try:
            mm = mmap.mmap(fd, 0, flags=mmap.MAP_SHARED | _POPULATE, prot=mmap.PROT_READ)
        except (OSError, ValueError) as e:
            os.close(fd)
            return MissingSegment(f"segment {id} cannot be mapped: {e}")
        if off + n > len(mm):
            size = len(mm)
            mm.close()
            os.close(fd)
            return MissingSegment(f"range [{off}, +{n}) outside segment {id} of {size} bytes")
        key = builtins_id(mm)
        self._mapped[key] = (weakref.ref(mm), fd)
        weakref.finalize(mm, self._unmapped, key)  # the descriptor goes with the mapping
        return memoryview(mm)[off : off + n]

    def _unmapped(self, key: int) -> None:
        entry = self._mapped.pop(key, None)
        if entry is not None:
            os.close(entry[1])

    def _receive(self, want: int) -> int:
        fd = self._stash.pop(want, None)
        if fd is not None:
            return fd
        while True:
            msg, fds, _, _ = socket.recv_fds(self.sock, _ID.size, 4)
            while fds and len(msg) < _ID.size:  # a short read of a stream socket
                more = self.sock.recv(_ID.size - len(msg))
                if not more:
                    break
                msg += more
            if not msg:
                for fd in fds:
                    os.close(fd)
                raise OSError("the segment channel closed")
            if len(fds) != 1 or len(msg) != _ID.size:
                for fd in fds:
                    os.close(fd)
                raise OSError(f"a segment message of {len(msg)} bytes with {len(fds)} descriptors")
            (id,) = _ID.unpack(msg)
            if id == want:
                return fds[0]
            old = self._stash.pop(id, None)
            if old is not None:
                os.close(old)
            self._stash[id] = fds[0]

    # ------------------------------------------------------------------ out

    def put(self, a, wire_dtype, ids: list[int]) -> msgpack.ExtType:
        """Send ``a`` (as ``wire_dtype``, C order) in a segment and return the reference to put
        in its array map; its id is appended to ``ids``. A view of a received segment is sent
        back as it is; anything else is copied once into a new segment."""
        import numpy as np

        n = a.nbytes
        back = self._received_view(a, wire_dtype)
        if back is not None:
            fd, off = back
            id = self._send(fd)
            ids.append(id)
            return msgpack.ExtType(EXT_SHARED, _REF.pack(id, off, n))
        fd = _new_file()
        try:
            os.ftruncate(fd, n)
            with mmap.mmap(fd, n, flags=mmap.MAP_SHARED | _POPULATE) as mm:
                dst = np.ndarray(a.shape, dtype=wire_dtype, buffer=mm)
                np.copyto(dst, a, casting="no" if a.dtype == wire_dtype else "equiv")
                del dst  # the mapping cannot close while a view of it exists
            id = self._send(fd)
        finally:
            os.close(fd)
        ids.append(id)
        return msgpack.ExtType(EXT_SHARED, _REF.pack(id, 0, n))

    def _send(self, fd: int) -> int:
        with self._send_lock:
            self._next += 1
            id = self._next
            socket.send_fds(self.sock, [_ID.pack(id)], [fd])
        return id

    def _received_view(self, a, wire_dtype) -> tuple[int, int] | None:
        """(descriptor, offset) when ``a`` is, as it would be sent, a contiguous range of a
        segment received in shared memory and still mapped."""
        if not self._mapped or a.dtype != wire_dtype or not a.flags.c_contiguous:
            return None
        base = a
        while isinstance(getattr(base, "base", None), (type(a), memoryview)):
            base = base.base
        if isinstance(base, memoryview):
            base = base.obj
        entry = self._mapped.get(builtins_id(base)) if isinstance(base, mmap.mmap) else None
        if entry is None or entry[0]() is not base:
            return None
        import numpy as np

        start = np.frombuffer(base, np.uint8).__array_interface__["data"][0]
        off = a.__array_interface__["data"][0] - start
        if off < 0 or off + a.nbytes > len(base):
            return None
        return entry[1], off


def _new_file() -> int:
    if hasattr(os, "memfd_create"):
        return os.memfd_create("mlbridge-array", os.MFD_CLOEXEC)
    fd, path = tempfile.mkstemp(prefix="mlbridge-array-")
    os.unlink(path)  # nameless from now on: it cannot outlive its last descriptor or mapping
    return fd
