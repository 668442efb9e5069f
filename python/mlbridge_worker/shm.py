"""Large array data through shared memory instead of the protocol pipe.

The host passes a Unix socket (``--shm-fd``) on which each side sends the file descriptors of
shared-memory segments, one per message: the segment's id as 8 big-endian bytes, with the
descriptor attached (SCM_RIGHTS). In a frame, array data held in a segment is the msgpack
extension 1 whose 24 bytes are the segment id, the offset and the length (big-endian uint64s);
see spec/protocol.md, "Shared memory".

* In: the host sends a segment before the frame that names it. Decoding the frame resolves the
  extension (``ext_hook``) to a read-only memoryview of the mapped segment, so an array map's
  ``data`` is a buffer like any other and ``np.frombuffer`` reads it without a copy. The
  descriptor is closed as soon as the segment is mapped: the mapping lives as long as the numpy
  arrays that view it, and nothing else holds the memory.
* Out: a result array of at least ``min_bytes`` is copied once into a fresh segment (a memfd
  on Linux; elsewhere a temporary file unlinked at once), whose descriptor is sent before the
  answer; the answer lists the ids in its ``shm`` field. The worker keeps no reference.
"""

from __future__ import annotations

import mmap
import os
import socket
import struct
import tempfile
import threading
from typing import Any

import msgpack

EXT_SHARED = 1
_REF = struct.Struct(">QQQ")
_ID = struct.Struct(">Q")
RECEIVE_TIMEOUT_S = 5.0


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
            mm = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
        except (OSError, ValueError) as e:
            return MissingSegment(f"segment {id} cannot be mapped: {e}")
        finally:
            os.close(fd)
        if off + n > len(mm):
            mm.close()
            return MissingSegment(f"range [{off}, +{n}) outside segment {id} of {len(mm)} bytes")
        return memoryview(mm)[off : off + n]

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
        """Copy ``a`` (as ``wire_dtype``, C order) into a new segment, send it, and return the
        reference to put in its array map; its id is appended to ``ids``."""
        import numpy as np

        n = a.nbytes
        fd = _new_file()
        try:
            os.ftruncate(fd, n)
            with mmap.mmap(fd, n) as mm:
                dst = np.ndarray(a.shape, dtype=wire_dtype, buffer=mm)
                np.copyto(dst, a, casting="no" if a.dtype == wire_dtype else "equiv")
                del dst  # the mapping cannot close while a view of it exists
            with self._send_lock:
                self._next += 1
                id = self._next
                socket.send_fds(self.sock, [_ID.pack(id)], [fd])
        finally:
            os.close(fd)
        ids.append(id)
        return msgpack.ExtType(EXT_SHARED, _REF.pack(id, 0, n))


def _new_file() -> int:
    if hasattr(os, "memfd_create"):
        return os.memfd_create("mlbridge-array", os.MFD_CLOEXEC)
    fd, path = tempfile.mkstemp(prefix="mlbridge-array-")
    os.unlink(path)  # nameless from now on: it cannot outlive its last descriptor or mapping
    return fd
