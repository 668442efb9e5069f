"""numpy values in results and stream items: scalars become Python numbers, arrays become the
array wire map; what has no exact form is refused naming what to return instead; the value
limits (depth, size) cover the converted value."""

from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc
from typing import Any

import msgpack
import numpy as np
import pytest

from limit_bridges import nest
from mlbridge_worker.arrays import DTYPES, from_wire, plain
from mlbridge_worker.output import OutputMixin
from mlbridge_worker.protocol import MAX_DEPTH, FrameTooLarge, decode_frames, decode_payload


class _Out(OutputMixin):
    """The output half of a Runtime, packing as runtime.py does: frames go to a list."""

    def __init__(self, out_max: int = 1 << 20):
        self.out_max = out_max
        self._pack = msgpack.Packer(use_bin_type=True).pack
        self.frames: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.frames.append(bytes(data))

    def result(self, value: Any) -> Any:
        """``value`` sent as the result of call 1, decoded as the host would; the error map
        when it was refused."""
        self.frames.clear()
        self.send_result(1, value)
        [m] = decode_frames(b"".join(self.frames), 1 << 30)
        return m["result"] if m["ok"] else m["error"]


def _ok(v: Any) -> Any:
    out = _Out().result(v)
    assert not (isinstance(out, dict) and out.get("category") == "serialization"), out
    return out


def _refused(v: Any, out_max: int = 1 << 20) -> dict:
    err = _Out(out_max).result(v)
    assert err["category"] == "serialization", err
    return err


# ------------------------------------------------------------------------------ scalars

INTS = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]


@pytest.mark.parametrize("dtype", INTS)
def test_integer_scalars_become_ints_at_both_extremes(dtype: str):
    info = np.iinfo(dtype)
    for x in (info.min, info.max, 0):
        got = _ok(np.dtype(dtype).type(x))
        assert type(got) is int and got == int(x)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_float_scalars_become_exact_floats(dtype: str):
    for x in (np.dtype(dtype).type(0.1), np.finfo(dtype).max, np.dtype(dtype).type("inf")):
        got = _ok(x)
        assert type(got) is float and got == float(x)  # float(0.1 as float32), not 0.1
    assert np.isnan(_ok(np.dtype(dtype).type("nan")))


def test_bool_scalars_become_bools():
    assert _ok(np.bool_(True)) is True and _ok(np.bool_(False)) is False
    assert _ok([np.True_, np.False_]) == [True, False]


def test_numpy_str_and_bytes_scalars_pass_as_they_are():
    # subclasses of str and bytes: msgpack packs them itself, no conversion involved
    assert _ok({"s": np.str_("héllo"), "b": np.bytes_(b"\x00x")}) == {"s": "héllo", "b": b"\x00x"}


def test_numpy_str_labels_beside_values_that_need_conversion():
    # dict(zip(clf.classes_, probabilities)): np.str_ keys and values next to np.float32 ones,
    # so the whole value is converted; the strings must pass, not be refused as numpy scalars
    got = _ok({np.str_("cat"): np.float32(0.5), "label": np.str_("cat"), "raw": np.bytes_(b"x")})
    assert got == {"cat": 0.5, "label": "cat", "raw": b"x"}
    assert type(next(iter(got))) is str and type(got["label"]) is str


_INEXACT: list[tuple[Any, str]] = [
    (np.datetime64("2024-05-01T12:00"), "astype"),
    (np.timedelta64(3, "s"), "astype"),
    (np.complex128(1 + 2j), "real"),
    (np.void(b"\x00\x01"), "item"),
]
if np.dtype(np.longdouble).itemsize > 8:  # x86-64 Linux: 80-bit; elsewhere it is a double
    _INEXACT.append((np.longdouble(1) / 3, "float"))


@pytest.mark.parametrize("v,hint", _INEXACT)
def test_scalars_without_exact_form_are_refused_with_a_hint(v: Any, hint: str):
    err = _refused({"x": v})
    assert err["type"] == "TypeError"
    assert str(v.dtype) in err["message"] and hint in err["message"]
    assert err["message"].startswith("the result cannot be encoded as msgpack")


# ------------------------------------------------------------------------------ arrays


def _roundtrip(a: np.ndarray) -> np.ndarray:
    w = _ok(a)
    assert set(w) == {"dtype", "shape", "data"} and type(w["data"]) is bytes
    return from_wire(w, "result")


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_arrays_of_every_wire_dtype_become_array_maps(dtype: str):
    a = (np.arange(12) % 2 == 0) if dtype == "bool" else np.arange(12).astype(dtype)
    a = a.reshape(3, 4)
    w = _ok(a)
    assert w["dtype"] == dtype and w["shape"] == [3, 4]
    assert w["data"] == a.astype(DTYPES[dtype]).tobytes()
    b = from_wire(w, "result")
    assert b.dtype == a.dtype
    np.testing.assert_array_equal(b, a)


def test_zero_d_and_empty_arrays():
    w = _ok(np.array(2.5, dtype=np.float32))
    assert w == {"dtype": "float32", "shape": [], "data": np.float32(2.5).tobytes()}
    assert from_wire(w, "r") == np.float32(2.5)
    w = _ok(np.zeros((0, 3), dtype=np.int32))
    assert w == {"dtype": "int32", "shape": [0, 3], "data": b""}


def test_non_contiguous_arrays_travel_in_c_order():
    base = np.arange(24, dtype=np.float64).reshape(4, 6)
    for a in (base.T, base[::2, 1::3], base[:, 2], np.asfortranarray(base)):
        assert not a.flags.c_contiguous or a is base
        np.testing.assert_array_equal(_roundtrip(a), a)


def test_big_endian_arrays_travel_little_endian():
    a = np.array([[1, -2], [258, 2**30]], dtype=">i4")
    w = _ok(a)
    assert w["dtype"] == "int32"
    assert w["data"][:8] == bytes([1, 0, 0, 0, 0xFE, 0xFF, 0xFF, 0xFF])
    np.testing.assert_array_equal(from_wire(w, "r"), a)
    np.testing.assert_array_equal(_roundtrip(np.array([1.5, -0.0], dtype=">f8")[::-1]), [-0.0, 1.5])


def test_numpy_values_nested_in_containers():
    value = {
        "scores": [np.float32(0.5), np.float64(0.25), 3],
        "meta": {"n": np.int64(2), "ok": np.bool_(False), "t": (np.uint16(7), "x")},
        np.int32(5): "numpy key",
        "rows": [{"v": np.arange(3, dtype=np.uint8)}],
        "plain": [1.5] * 40,
    }
    got = _ok(value)
    assert got["scores"] == [0.5, 0.25, 3] and got["meta"] == {"n": 2, "ok": False, "t": [7, "x"]}
    assert got[5] == "numpy key"
    assert got["rows"][0]["v"] == {"dtype": "uint8", "shape": [3], "data": b"\x00\x01\x02"}
    assert got["plain"] == [1.5] * 40


def test_plain_leaves_containers_without_numpy_untouched():
    inner = [1, "a", {"b": 2.0}]
    v = {"inner": inner, "long": list(range(100)), "t": (1, 2)}
    assert plain(v) is v  # nothing copied when there is nothing to convert
    out = plain({"inner": inner, "x": np.int8(1)})
    assert out["inner"] is inner and out["x"] == 1
    ext = msgpack.ExtType(3, b"ab")  # a tuple subclass msgpack packs itself
    assert plain([ext, np.int8(1)])[0] is ext


def test_array_data_is_not_copied_before_packing():
    a = np.arange(1000, dtype="<f8")
    w = plain(a)
    assert isinstance(w["data"], memoryview) and np.shares_memory(np.asarray(w["data"]), a)


@pytest.mark.parametrize("a,dtype_text", [
    (np.array(["a", "bc"]), "<U2"),
    (np.array([b"a"]), "|S1"),
    (np.array([{"x": 1}, None], dtype=object), "object"),
])
def test_string_and_object_arrays_are_refused_pointing_at_tolist(a: np.ndarray, dtype_text: str):
    err = _refused({"labels": a})
    assert err["type"] == "TypeError"
    assert dtype_text in err["message"] and "a.tolist()" in err["message"]


@pytest.mark.parametrize("a,hint", [
    (np.array(["2024-01-01", "2024-01-02"], dtype="datetime64[D]"), "astype(str)"),
    (np.array([1, 2], dtype="timedelta64[s]"), "astype('int64')"),
    (np.array([1.0], dtype=np.float16), "astype(np.float32)"),
    (np.array([1j]), "a.imag"),
    (np.ma.masked_array([1.0, 2.0], mask=[False, True]), "filled"),
])
def test_arrays_go_cannot_read_are_refused_with_a_hint(a: np.ndarray, hint: str):
    err = _refused([a])
    assert hint in err["message"], err["message"]


def test_arrays_past_the_wire_rank_are_refused():
    # numpy 2 makes 33-d arrays; an argument of more than 32 dimensions is refused
    # (test_arrays.py), so a result of that many could not be sent back
    err = _refused({"a": np.zeros((1,) * 33)})
    assert err["type"] == "TypeError" and "33 dimensions" in err["message"], err
    assert _ok(np.zeros((1,) * 32))["shape"] == [1] * 32


# ------------------------------------------------------------------------------ stream items


def test_stream_chunks_convert_numpy_items():
    out = _Out()
    payload = out._pack_chunk(4, {"step": np.int64(3), "x": np.ones((2, 2), dtype=np.float32)})
    m = decode_payload(payload)
    assert m["t"] == "chunk" and m["id"] == 4 and m["data"]["step"] == 3
    np.testing.assert_array_equal(from_wire(m["data"]["x"], "x"), np.ones((2, 2)))
    with pytest.raises(TypeError, match="<U1"):
        out._pack_chunk(5, np.array(["a"]))


# ------------------------------------------------------------------------------ value limits


def test_depth_limit_covers_the_array_map():
    # an array map is two levels (the map, its shape list): inside MAX_DEPTH - 2 lists it fits
    w = _ok(nest(MAX_DEPTH - 2, np.zeros(1)))
    for _ in range(MAX_DEPTH - 2):
        [w] = w
    assert w["dtype"] == "float64"
    err = _refused(nest(MAX_DEPTH - 1, np.zeros(1)))
    assert err["type"] == "ValueTooDeep"
    # a numpy scalar is a scalar: no extra level
    assert _ok(nest(MAX_DEPTH, np.int8(1))) == nest(MAX_DEPTH, 1)


def test_array_over_the_frame_is_refused_before_any_copy():
    big = np.zeros((2048, 2048), dtype=np.float32).T  # 16 MiB, Fortran order: would need a copy
    out = _Out(4 << 20)
    tracemalloc.start()
    try:
        out.send_result(1, {"x": big})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 256 << 10, f"refusing cost {peak} bytes"
    [m] = decode_frames(b"".join(out.frames), 1 << 30)
    assert m["error"]["type"] == "FrameTooLarge" and str(4 << 20) in m["error"]["message"]


def test_size_limit_counts_the_converted_bytes():
    # 300 arrays of 4 KiB each: under the frame as objects, over it once converted
    err = _refused([np.zeros(512) for _ in range(300)], out_max=1 << 20)
    assert err["type"] == "FrameTooLarge"
    with pytest.raises(FrameTooLarge):
        plain(np.zeros(1000), room=100, limit=100)


# ------------------------------------------------------------------------------ without numpy


def test_the_output_path_never_imports_numpy():
    """A worker that never imported numpy packs results without it, and an unknown type keeps
    msgpack's own error (numpy blocked: importing it would fail)."""
    code = """
import sys
sys.modules["numpy"] = None  # an import of numpy now raises ImportError
import msgpack
from mlbridge_worker.output import OutputMixin
from mlbridge_worker.protocol import decode_frames
class Out(OutputMixin):
    out_max = 1 << 20
    _pack = staticmethod(msgpack.Packer(use_bin_type=True).pack)
    frames = []
    def write(self, data): self.frames.append(bytes(data))
o = Out()
o.send_result(1, {"a": [1, 2.5, "x"]})
o.send_result(2, object())
ok, bad = decode_frames(b"".join(o.frames))
assert ok["result"] == {"a": [1, 2.5, "x"]}, ok
assert "can not serialize 'object'" in bad["error"]["message"], bad
assert sys.modules["numpy"] is None
print("ok")
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
