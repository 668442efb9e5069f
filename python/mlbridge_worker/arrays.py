"""The binary array wire format shared by all array-carrying bridges.

An array travels as a msgpack map ``{"dtype": str, "shape": [int, ...], "data": bin}``: the
elements in C order, little-endian. Never a list of numbers: a float64 costs 8 bytes on the wire
instead of ~9 plus per-element decoding, and numpy reads it without copying (``np.frombuffer``).
The Go side is ``mlbridge.Array``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .errors import InvalidArgument

#: the dtypes both sides know (Go: dtypeSizes in array.go)
DTYPES: dict[str, np.dtype] = {
    name: np.dtype(name).newbyteorder("<")
    for name in ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                 "float32", "float64")
}
_KEYS = frozenset(("dtype", "shape", "data"))
_MAX_DIMS = 32  # numpy's limit before 2.0; a bound Go can rely on
_NUMERIC = "biuf"  # bool, int, uint, float


def to_wire(a: np.ndarray) -> dict:
    """The wire map of ``a`` (copied to little-endian C order when it is not already)."""
    a = np.asarray(a)
    le = DTYPES.get(a.dtype.name)
    if le is None:
        # A bridge bug (it returned strings, objects, float16...), not the caller's.
        raise TypeError(f"arrays of dtype {a.dtype} cannot travel on the wire; use one of {', '.join(DTYPES)}")
    a = a.astype(le, copy=False)  # no copy on a little-endian host
    return {"dtype": a.dtype.name, "shape": list(a.shape), "data": a.tobytes(order="C")}


def from_wire(v: Any, name: str) -> np.ndarray:
    """The array argument ``name``: a wire map (read-only view of its bytes, no copy) or, for
    convenience, a (nested) list of numbers. Anything else is InvalidArgument naming ``name``."""
    if isinstance(v, dict):
        return _from_map(v, name)
    if isinstance(v, (list, np.ndarray)):
        try:
            a = np.asarray(v)
        except (ValueError, TypeError, OverflowError) as e:
            raise InvalidArgument(f"{name}: not a rectangular list of numbers ({e})") from e
        if a.dtype.kind not in _NUMERIC:
            raise InvalidArgument(f"{name}: must hold numbers, not {a.dtype} values")
        return a
    raise InvalidArgument(f"{name} must be an array map {{dtype, shape, data}} or a list of numbers, "
                          f"not {type(v).__name__}")


def _from_map(v: dict, name: str) -> np.ndarray:
    if v.keys() != _KEYS:
        raise InvalidArgument(f"{name}: an array map has exactly the keys dtype, shape, data; got {sorted(map(str, v))}")
    dtype, shape, data = v["dtype"], v["shape"], v["data"]
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise InvalidArgument(f"{name}: unknown dtype {dtype!r}; one of {', '.join(DTYPES)}")
    if shape is None:  # Go encodes a nil []int as nil: a 0-d array
        shape = []
    if (not isinstance(shape, (list, tuple)) or len(shape) > _MAX_DIMS
            or not all(type(d) is int and d >= 0 for d in shape)):
        raise InvalidArgument(f"{name}: shape must be a list of at most {_MAX_DIMS} non-negative integers, "
                              f"not {shape!r}")
    dt = DTYPES[dtype]
    want = math.prod(shape) * dt.itemsize  # Python ints: no overflow on absurd shapes
    if data is None and want == 0:  # Go encodes a nil []byte as nil
        data = b""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidArgument(f"{name}: data must be bytes, not {type(data).__name__}")
    got = memoryview(data).nbytes
    if got != want:
        raise InvalidArgument(f"{name}: {dtype} array of shape {list(shape)} needs {want} bytes, data has {got}")
    if dtype == "bool" and got and np.frombuffer(data, np.uint8).max() > 1:
        raise InvalidArgument(f"{name}: bool data must be bytes 0 or 1")
    a = np.frombuffer(data, dtype=dt).reshape(shape)
    return a if a.dtype.isnative else a.astype(dt.newbyteorder("="))  # big-endian hosts only
