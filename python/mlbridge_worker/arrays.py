"""The binary array wire format shared by all array-carrying bridges.

An array travels as a msgpack map ``{"dtype": str, "shape": [int, ...], "data": bin}``: the
elements in C order, little-endian. Never a list of numbers: a float64 costs 8 bytes on the wire
instead of ~9 plus per-element decoding, and numpy reads it without copying (``np.frombuffer``).
The Go side is ``mlbridge.Array``.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import msgpack
import numpy as np

from .errors import InvalidArgument
from .protocol import FrameTooLarge
from .shm import MAX_SEGMENTS_PER_FRAME, MissingSegment

#: the dtypes both sides know (Go: dtypeSizes in array.go)
DTYPES: dict[str, np.dtype] = {
    name: np.dtype(name).newbyteorder("<")
    for name in ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                 "float32", "float64")
}
#: every byte order of those dtypes -> (little-endian dtype, wire name); a dict keyed by dtype,
#: because dtype.name costs ~1.5 µs per call and to_wire/plain look it up per array
_WIRE: dict[np.dtype, tuple[np.dtype, str]] = {
    d: (le, name) for name, le in DTYPES.items() for d in (le, le.newbyteorder(">"), le.newbyteorder("="))
}
_KEYS = frozenset(("dtype", "shape", "data"))
_MAX_DIMS = 32  # numpy's limit before 2.0; a bound Go can rely on
_NUMERIC = "biuf"  # bool, int, uint, float


def to_wire(a: np.ndarray) -> dict:
    """The wire map of ``a`` (copied to little-endian C order when it is not already)."""
    a = np.asarray(a)
    _check_rank(a)
    le, name = _wire_dtype(a)
    a = a.astype(le, copy=False)  # no copy on a little-endian host
    return {"dtype": name, "shape": list(a.shape), "data": a.tobytes(order="C")}


def _wire_dtype(a: np.ndarray) -> tuple[np.dtype, str]:
    """The little-endian dtype ``a`` travels as, and its name; TypeError (saying what to do
    instead) when Go has no such dtype. A bridge bug (it returned strings, objects, float16...),
    not the caller's."""
    found = _WIRE.get(a.dtype)
    if found is not None:
        return found
    kind = a.dtype.kind
    if kind in "USO":
        hint = "strings or objects have no binary form: return a.tolist() for a list"
    elif kind in "Mm":
        hint = "return a.astype(str).tolist(), or a.astype('int64') for counts of its unit since the epoch"
    elif kind == "f":
        hint = "return a.astype(np.float32) or a.astype(np.float64)"
    elif kind == "c":
        hint = "return a.real and a.imag as two arrays"
    else:
        hint = "return a.tolist()"
    raise TypeError(f"a numpy array of dtype {a.dtype} cannot travel on the wire ({hint}); "
                    f"array dtypes are {', '.join(DTYPES)}")


def _check_rank(a: np.ndarray) -> None:
    """TypeError for an array of more dimensions than the wire carries: numpy 2 makes up to 64,
    but no side accepts one past _MAX_DIMS as an argument, so it could not be sent back."""
    if a.ndim > _MAX_DIMS:
        raise TypeError(f"a numpy array of {a.ndim} dimensions cannot travel on the wire (at most {_MAX_DIMS}): "
                        "reshape it, or return its shape and a.ravel() apart")


# ------------------------------------------------------------------------------------------
# numpy values in results and stream items (output.py calls plain() when msgpack refuses one)

_NoneType = type(None)
_LEAVES = frozenset((_NoneType, bool, int, float, str, bytes, bytearray, memoryview))
_SMALL = 16
#: the usual scalar types straight to their converter: one dict lookup instead of isinstance
#: checks (others take the general path in _scalar)
_SCALAR_TYPES: dict[type, Any] = {
    **{t: int for t in (np.byte, np.ubyte, np.short, np.ushort, np.intc, np.uintc, np.int_, np.uint,
                        np.longlong, np.ulonglong)},
    np.bool_: bool, np.half: float, np.single: float, np.double: float,
}


def plain(v: Any, room: int = sys.maxsize, limit: int | None = None, shared: Any = None) -> Any:
    """``v`` with numpy values made msgpack-ready: scalars become Python bool/int/float, arrays
    their wire map (data a read-only view, not a copy, when ``a`` is little-endian C-ordered).
    Containers (dict, list, tuple) are rebuilt only when something in them changed.

    The caller measures the result (depth and size): an array map is two levels deep, which the
    original value did not show. ``room`` only refuses an array bigger than the frame before it is
    copied to C order (FrameTooLarge naming ``limit``). ``shared``, when given, is ``(shm, ids)``:
    an array of at least ``shm.min_bytes`` goes to a shared segment instead (:mod:`.shm`), its
    id appended to ``ids``, and the frame's size is no limit for it (up to MAX_SEGMENTS_PER_FRAME
    arrays; the others are inline). A value numpy cannot hand over exactly
    (datetime64, complex, strings in an array...) raises TypeError saying what to return instead.
    """
    return _plain(v, room, sys.maxsize if limit is None else limit, shared)


def _plain(v: Any, room: int, limit: int, shared: Any = None) -> Any:
    t = type(v)
    if t in _LEAVES:
        return v
    conv = _SCALAR_TYPES.get(t)
    if conv is not None:
        return conv(v)
    if isinstance(v, (str, bytes)):  # np.str_ / np.bytes_ (e.g. a classifier's labels): exact as they are
        return str(v) if isinstance(v, str) else bytes(v)
    if isinstance(v, np.generic):
        return _scalar(v)
    if isinstance(v, np.ndarray):
        return _array(v, room, limit, shared)
    if isinstance(v, dict):
        out = {k if type(k) is str else _plain(k, room, limit, shared): _plain(x, room, limit, shared)
               for k, x in v.items()}
        same = (len(out) == len(v) and all(a is b for a, b in zip(v, out))
                and all(a is b for a, b in zip(v.values(), out.values())))
        return v if same else out
    if isinstance(v, list) or (isinstance(v, tuple) and not isinstance(v, msgpack.ExtType)):
        if len(v) > _SMALL and _LEAVES.issuperset(map(type, v)):
            return v  # classified in C: a long list of plain numbers needs no Python loop
        items = [_plain(x, room, limit, shared) for x in v]
        return v if all(a is b for a, b in zip(v, items)) else items
    return v  # msgpack decides (an ExtType, a Timestamp, or a type it refuses by name)


def _scalar(v: np.generic) -> bool | int | float:
    kind = v.dtype.kind
    if kind == "b":
        return bool(v)
    if kind in "iu":
        return int(v)
    if kind == "f" and v.dtype.itemsize <= 8:  # float16/32/64: exact as a Python float
        return float(v)
    if kind in "Mm":
        hint = "return str(v), or v.astype('int64') for a count of its unit since the epoch"
    elif kind == "c":
        hint = "return v.real and v.imag"
    elif kind == "f":
        hint = "return float(v) if losing its extra precision is fine"
    else:
        hint = "return v.item() or str(v)"
    raise TypeError(f"a numpy {v.dtype} scalar has no exact msgpack form ({hint})")


def _array(a: np.ndarray, room: int, limit: int, shared: Any = None) -> dict:
    ma = sys.modules.get("numpy.ma")  # not imported: no masked array exists
    if ma is not None and isinstance(a, ma.MaskedArray):  # np.asarray would drop the mask silently
        raise TypeError("a numpy masked array cannot travel on the wire: return a.filled(value), or the data "
                        "and np.ma.getmaskarray(a) as two arrays")
    _check_rank(a)
    le, name = _wire_dtype(a)
    if shared is not None and a.nbytes >= shared[0].min_bytes and len(shared[1]) < MAX_SEGMENTS_PER_FRAME:
        shm, ids = shared
        return {"dtype": name, "shape": list(a.shape), "data": shm.put(a, le, ids)}
    if a.nbytes >= room:  # before a copy to C order: refusing costs nothing
        raise FrameTooLarge(a.nbytes + 1, limit)
    # a view of the bytes when a is already little-endian C-ordered, else one copy; cast("B"):
    # a flat byte view, which every msgpack packer (the pure-Python one too) writes as one bin
    data = memoryview(np.ascontiguousarray(a, dtype=le)).cast("B") if a.size else memoryview(b"")
    return {"dtype": name, "shape": list(a.shape), "data": data}


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
    if isinstance(data, MissingSegment):
        raise InvalidArgument(f"{name}: its data was sent in shared memory, but {data.reason}")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidArgument(f"{name}: data must be bytes, not {type(data).__name__}")
    got = memoryview(data).nbytes
    if got != want:
        raise InvalidArgument(f"{name}: {dtype} array of shape {list(shape)} needs {want} bytes, data has {got}")
    if dtype == "bool" and got and np.frombuffer(data, np.uint8).max() > 1:
        raise InvalidArgument(f"{name}: bool data must be bytes 0 or 1")
    a = np.frombuffer(data, dtype=dt).reshape(shape)
    return a if a.dtype.isnative else a.astype(dt.newbyteorder("="))  # big-endian hosts only
