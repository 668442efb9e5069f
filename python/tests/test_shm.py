"""Shared-memory segments (mlbridge_worker.shm) over a real socketpair: what the host sends, the
worker maps without a copy; what the worker returns, the host receives as a descriptor."""

from __future__ import annotations

import gc
import mmap
import os
import socket
import struct

import msgpack
import numpy as np
import pytest

from mlbridge_worker.arrays import DTYPES, from_wire, plain
from mlbridge_worker.errors import InvalidArgument
from mlbridge_worker.shm import EXT_SHARED, MissingSegment, SharedMemory

pytestmark = pytest.mark.skipif(not hasattr(socket, "send_fds"), reason="no SCM_RIGHTS here")


@pytest.fixture
def pair():
    host, worker = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    shm = SharedMemory(worker.detach(), min_bytes=1024)
    yield host, shm
    host.close()
    shm.sock.close()


def host_segment(host: socket.socket, id: int, data: bytes) -> None:
    """What the Go host does for a request: a segment holding data, sent under id."""
    fd = os.memfd_create("t") if hasattr(os, "memfd_create") else _tmp()
    os.ftruncate(fd, len(data))
    with mmap.mmap(fd, len(data)) as mm:
        mm[:] = data
    socket.send_fds(host, [struct.pack(">Q", id)], [fd])
    os.close(fd)


def _tmp() -> int:
    import tempfile

    fd, path = tempfile.mkstemp()
    os.unlink(path)
    return fd


def ref(id: int, off: int, n: int) -> msgpack.ExtType:
    return msgpack.ExtType(EXT_SHARED, struct.pack(">QQQ", id, off, n))


def decode(shm: SharedMemory, value) -> object:
    return msgpack.unpackb(msgpack.packb(value), ext_hook=shm.ext_hook, raw=False)


def test_request_array_is_a_read_only_view_of_the_segment(pair):
    host, shm = pair
    a = np.arange(1000, dtype="<f8")
    host_segment(host, 7, b"\0" * 16 + a.tobytes())  # at an offset, as a slice of a larger array
    msg = decode(shm, {"dtype": "float64", "shape": [10, 100], "data": ref(7, 16, a.nbytes)})
    x = from_wire(msg, "x")
    assert x.shape == (10, 100) and np.array_equal(x.ravel(), a)
    assert not x.flags.writeable
    base = x
    while getattr(base, "base", None) is not None:
        base = base.base
    assert isinstance(base.obj, mmap.mmap)  # no copy: numpy reads the mapping


def test_segments_may_arrive_before_their_turn(pair):
    host, shm = pair
    host_segment(host, 1, b"\1" * 8)
    host_segment(host, 2, b"\2" * 8)
    two = decode(shm, ref(2, 0, 8))
    one = decode(shm, ref(1, 0, 8))
    assert bytes(two) == b"\2" * 8 and bytes(one) == b"\1" * 8


def test_bad_references_fail_the_argument_not_the_stream(pair):
    host, shm = pair
    host_segment(host, 3, b"\0" * 8)
    bad = decode(shm, ref(3, 0, 64))  # past its end
    assert isinstance(bad, MissingSegment)
    with pytest.raises(InvalidArgument, match="shared memory"):
        from_wire({"dtype": "uint8", "shape": [64], "data": bad}, "x")
    assert isinstance(decode(shm, msgpack.ExtType(EXT_SHARED, b"short")), MissingSegment)
    assert decode(shm, msgpack.ExtType(5, b"x")) == msgpack.ExtType(5, b"x")  # not ours: untouched


def test_missing_segment_times_out(pair, monkeypatch):
    _, shm = pair
    shm.sock.settimeout(0.05)
    assert isinstance(decode(shm, ref(9, 0, 8)), MissingSegment)


def receive(host: socket.socket) -> tuple[int, int]:
    msg, fds, _, _ = socket.recv_fds(host, 8, 1)
    return struct.unpack(">Q", msg)[0], fds[0]


def test_result_arrays_go_to_a_new_segment(pair):
    host, shm = pair
    a = np.arange(4096, dtype=">i4").reshape(64, 64)  # big-endian: sent little-endian
    ids: list[int] = []
    v = plain({"out": a, "small": np.arange(3)}, shared=(shm, ids))
    assert len(ids) == 1 and v["small"]["data"].nbytes == 24  # under min_bytes: inline
    id, fd = receive(host)
    assert id == ids[0]
    ext = v["out"]["data"]
    rid, off, n = struct.unpack(">QQQ", ext.data)
    assert (rid, off, n) == (id, 0, a.nbytes)
    with mmap.mmap(fd, 0, prot=mmap.PROT_READ) as mm:
        got = np.frombuffer(mm, dtype="<i4").copy()
    os.close(fd)
    assert np.array_equal(got.reshape(64, 64), a)


def test_a_received_array_goes_back_without_a_copy(pair):
    host, shm = pair
    a = np.arange(512, dtype="<f8")
    host_segment(host, 4, a.tobytes())
    x = from_wire(decode(shm, {"dtype": "float64", "shape": [512], "data": ref(4, 0, a.nbytes)}), "x")
    ids: list[int] = []
    v = plain(x[256:], shared=(shm, ids))  # a slice: the same segment, at an offset
    _, _, n = struct.unpack(">QQQ", v["data"].data)
    rid, off, _ = struct.unpack(">QQQ", v["data"].data)
    assert off == 256 * 8 and n == 256 * 8
    id, fd = receive(host)
    assert id == rid
    with mmap.mmap(fd, 0, prot=mmap.PROT_READ) as mm:
        assert np.array_equal(np.frombuffer(mm, "<f8")[256:], a[256:])
    os.close(fd)


def test_the_descriptor_goes_with_the_last_view(pair):
    host, shm = pair
    host_segment(host, 5, b"\0" * 4096)
    fds = lambda: len(os.listdir("/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"))  # noqa: E731
    before = fds()
    x = from_wire(decode(shm, {"dtype": "uint8", "shape": [4096], "data": ref(5, 0, 4096)}), "x")
    # kept while a view may go back (CPython's mmap holds a duplicate of its own, too)
    assert len(shm._mapped) == 1 and fds() > before
    del x
    gc.collect()
    assert not shm._mapped and fds() == before  # closed with the mapping


def test_dtypes_round_trip_through_segments(pair):
    host, shm = pair
    for name, dt in DTYPES.items():
        a = (np.arange(2048) % 2).astype(dt) if name == "bool" else (np.arange(2048) % 100).astype(dt)
        ids: list[int] = []
        v = plain(a, shared=(shm, ids))
        id, fd = receive(host)
        host_segment(host, 100 + id, os.pread(fd, a.nbytes, 0))
        os.close(fd)
        back = from_wire(decode(shm, {**v, "data": ref(100 + id, 0, a.nbytes)}), name)
        assert back.dtype == dt and np.array_equal(back, a), name


def test_at_most_max_segments_per_frame_the_rest_inline(pair):
    # every segment of a frame is queued before it, and the host drains them only when it reads
    # the frame: past the cap they could not all fit in the socket's buffer
    from mlbridge_worker.shm import MAX_SEGMENTS_PER_FRAME

    host, shm = pair
    arrays = [np.full(128, float(i)) for i in range(MAX_SEGMENTS_PER_FRAME + 8)]  # 1 KiB each
    ids: list[int] = []
    v = plain(arrays, shared=(shm, ids))
    assert len(ids) == MAX_SEGMENTS_PER_FRAME
    for i, m in enumerate(v):
        shared = isinstance(m["data"], msgpack.ExtType)
        assert shared == (i < MAX_SEGMENTS_PER_FRAME)
        if not shared:
            assert np.array_equal(np.frombuffer(m["data"], "<f8"), arrays[i])
    for want in ids:
        id, fd = receive(host)
        os.close(fd)
        assert id == want
