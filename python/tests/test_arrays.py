"""The binary array wire format: round trips, byte order, and refusal of bad maps."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

from mlbridge_worker.arrays import DTYPES, from_wire, to_wire
from mlbridge_worker.errors import InvalidArgument

SHAPES = [(), (0,), (5,), (2, 3), (0, 4), (2, 0, 3), (2, 3, 4)]


def sample(dtype: str, shape: tuple) -> np.ndarray:
    rng = np.random.default_rng(0)
    if dtype == "bool":
        return rng.integers(0, 2, shape).astype(bool)
    if dtype.startswith("float"):
        return rng.standard_normal(shape).astype(dtype)
    info = np.iinfo(dtype)  # the extremes too: sign and width must survive
    a = rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    if a.size >= 2:
        a.flat[0], a.flat[1] = info.min, info.max
    return a


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", list(DTYPES))
def test_round_trip_every_dtype_and_shape(dtype, shape):
    a = sample(dtype, shape)
    w = to_wire(a)
    assert w == {"dtype": dtype, "shape": list(shape), "data": w["data"]}
    assert type(w["data"]) is bytes and len(w["data"]) == a.size * a.itemsize
    # through msgpack exactly as the protocol encodes and decodes frames
    w = msgpack.unpackb(msgpack.packb(w, use_bin_type=True), raw=False)
    b = from_wire(w, "X")
    assert b.dtype == np.dtype(dtype) and b.shape == shape
    np.testing.assert_array_equal(a, b)


def test_from_wire_is_a_zero_copy_read_only_view():
    data = np.arange(6, dtype="<f8").tobytes()
    a = from_wire({"dtype": "float64", "shape": [2, 3], "data": data}, "X")
    assert not a.flags.owndata and not a.flags.writeable
    assert a.tolist() == [[0, 1, 2], [3, 4, 5]]


def test_to_wire_writes_little_endian_c_order():
    a = np.arange(6, dtype=">i4").reshape(2, 3).T  # big-endian and Fortran-ordered
    w = to_wire(a)
    assert w["dtype"] == "int32" and w["shape"] == [3, 2]
    assert w["data"] == np.ascontiguousarray(a, dtype="<i4").tobytes()
    assert w["data"][:8] == bytes([0, 0, 0, 0, 3, 0, 0, 0])
    np.testing.assert_array_equal(from_wire(w, "X"), a)


def test_to_wire_refuses_types_go_cannot_read():
    for a in (np.array(["a"]), np.array([1.0], dtype=np.float16), np.array([None])):
        with pytest.raises(TypeError, match="cannot travel"):
            to_wire(a)


def test_go_nil_slices_are_accepted():
    # vmihailenco/msgpack encodes nil []int / []byte as nil
    assert from_wire({"dtype": "int64", "shape": [0, 3], "data": None}, "X").shape == (0, 3)
    a = from_wire({"dtype": "int64", "shape": None, "data": (7).to_bytes(8, "little")}, "X")
    assert a.shape == () and a == 7


GOOD = {"dtype": "float64", "shape": [2], "data": bytes(16)}
BAD = [
    ({**GOOD, "data": bytes(15)}, "needs 16 bytes, data has 15"),
    ({**GOOD, "data": bytes(24)}, "needs 16 bytes"),
    ({**GOOD, "dtype": "float16"}, "unknown dtype"),
    ({**GOOD, "dtype": "object"}, "unknown dtype"),
    ({**GOOD, "dtype": "<f8"}, "unknown dtype"),
    ({**GOOD, "dtype": 8}, "unknown dtype"),
    ({**GOOD, "shape": [-2]}, "non-negative"),
    ({**GOOD, "shape": [2.0]}, "non-negative integers"),
    ({**GOOD, "shape": [True, 2]}, "non-negative integers"),
    ({**GOOD, "shape": ["2"]}, "non-negative integers"),
    ({**GOOD, "shape": 2}, "non-negative integers"),
    ({**GOOD, "shape": [1] * 33}, "at most 32"),
    ({**GOOD, "data": "\x00" * 16}, "data must be bytes"),
    ({**GOOD, "data": None}, "data must be bytes"),
    ({"dtype": "float64", "shape": [2]}, "exactly the keys"),
    ({**GOOD, "extra": 1}, "exactly the keys"),
    ({}, "exactly the keys"),
    ({"dtype": "bool", "shape": [2], "data": b"\x01\x02"}, "bool data"),
    ({"dtype": "int64", "shape": [2**40, 2**40], "data": b""}, "needs"),
    ("1,2,3", "array map"),
    (3, "array map"),
    (None, "array map"),
    (b"\x00" * 8, "array map"),
    ([[1, 2], [3]], "rectangular"),
    (["a", "b"], "numbers"),
    ([1, None], "numbers"),
    ([2**70], "numbers|rectangular"),
]


@pytest.mark.parametrize("value,message", BAD, ids=range(len(BAD)))
def test_bad_wire_arrays_are_invalid_arguments_naming_the_argument(value, message):
    with pytest.raises(InvalidArgument, match=message) as e:
        from_wire(value, "features")
    assert e.value.message.startswith("features")


def test_lists_of_numbers_are_accepted():
    a = from_wire([[1, 2], [3, 4.5]], "X")
    assert a.dtype == np.float64 and a.shape == (2, 2)
    assert from_wire([1, 2, 3], "y").dtype == np.int64
    assert from_wire([True, False], "y").dtype == np.bool_
    assert from_wire([], "X").shape == (0,)
