"""mlbridge wire protocol, version 1 (spec/protocol.md).

Frame = uint32 big-endian payload length N + N bytes holding exactly one msgpack map.

This module holds:

* :func:`encode_frame` / :class:`FrameEncoder` -- message -> frame bytes;
* :class:`FrameDecoder` -- incremental frame parser (feed bytes, get decoded maps); frame-level
  errors raise :class:`ProtocolError`; a frame that is whole but holds a value nested too deep
  (``too_deep``) yields its ProtocolError in the message's place, the stream stays in sync;
* :func:`value_size` -- the depth limit (:data:`MAX_DEPTH`) and a lower bound of a value's encoded
  size, checked before encoding so that a refusal costs no copy;
* :func:`validate` -- the message table of the spec, per direction; message-level errors raise
  :class:`ProtocolError` (``unknown_type``, ``missing_field``, ``bad_field``).

Frame-level kinds mean the byte stream can no longer be trusted; message-level kinds leave it
in sync (see :data:`FRAME_KINDS` / :data:`MESSAGE_KINDS`).
"""

from __future__ import annotations

import struct
import sys
from typing import Any, Callable

import msgpack

from .errors import exc_text

VERSIONS = (1,)  # protocol versions this worker speaks
DEFAULT_MAX_FRAME = 64 * 1024 * 1024  # 67,108,864 bytes
#: The deepest nesting of arrays/maps in a value: args, result, data, any field of a message (the
#: envelope map itself not counted). A scalar is depth 0, an array or map one more than its deepest
#: element (an empty one is 1). The Go host uses the same number (wire.MaxDepth).
MAX_DEPTH = 256
MAGIC_ENV = "MLBRIDGE_MAGIC"
MAGIC = "mlbridge-worker-v1"
PARENT_PID_ENV = "MLBRIDGE_PARENT_PID"

HOST_TO_WORKER = "host_to_worker"
WORKER_TO_HOST = "worker_to_host"

KINDS = ("sync", "async", "sync_gen", "async_gen")

FRAME_KINDS = frozenset(
    {"empty_frame", "frame_too_large", "truncated", "not_a_map", "trailing_bytes", "malformed"}
)
MESSAGE_KINDS = frozenset({"unknown_type", "missing_field", "bad_field", "too_deep"})
ERROR_KINDS = FRAME_KINDS | MESSAGE_KINDS

_HEADER = struct.Struct(">I")
_unpack_header = _HEADER.unpack_from
pack_header = _HEADER.pack


class ProtocolError(Exception):
    """A frame or message that breaks the protocol. ``kind`` is one of :data:`ERROR_KINDS`."""

    def __init__(self, kind: str, message: str, *, id: int | None = None, t: str | None = None):
        assert kind in ERROR_KINDS, kind
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        #: the request id when the message was a ``req`` whose id was readable, else None
        self.id = id
        #: the message type when it was readable
        self.t = t

    @property
    def frame_level(self) -> bool:
        return self.kind in FRAME_KINDS


# --------------------------------------------------------------------------------------------
# encoding


def new_packer() -> msgpack.Packer:
    return msgpack.Packer(use_bin_type=True)


def encode_payload(msg: dict) -> bytes:
    return msgpack.packb(msg, use_bin_type=True)


def encode_frame(msg: dict) -> bytes:
    """One whole frame: length prefix + msgpack map."""
    payload = msgpack.packb(msg, use_bin_type=True)
    return pack_header(len(payload)) + payload


# --------------------------------------------------------------------------------------------
# value limits: depth and size, known before encoding


class ValueRefused(ValueError):
    """A value the protocol cannot carry. ``str()`` completes "the result ...": it says why."""


class ValueTooDeep(ValueRefused):
    def __init__(self) -> None:
        super().__init__(f"nests more than {MAX_DEPTH} arrays/maps deep (the protocol's limit)")


class FrameTooLarge(ValueRefused):
    def __init__(self, at_least: int, limit: int) -> None:
        super().__init__(f"encodes to at least {at_least} bytes, more than the max frame size {limit}")
        self.at_least = at_least


class _Over(Exception):
    """The size bound passed the room (internal: becomes FrameTooLarge)."""


_NoneType = type(None)
_SCALARS = frozenset((_NoneType, bool, int, float))
_FLOATS = frozenset((float,))
_STRS = frozenset((str,))
_SMALL = 16  # containers up to this many elements are walked element by element


def value_size(v: Any, room: int = sys.maxsize, limit: int | None = None) -> int:
    """A lower bound of the msgpack size of ``v``, found without encoding it.

    Raises :class:`ValueTooDeep` when ``v`` nests more than :data:`MAX_DEPTH` arrays/maps (a
    cyclic value too), and :class:`FrameTooLarge` once the bound passes ``room``: the walk stops
    at the end of the first container that passes it (the walk allocates nothing: refusing a value
    costs no copy of it). ``limit`` is the max frame size named in that error (default ``room``).

    The bound counts what is cheap to know exactly: the length of every str/bin/ext, 9 bytes per
    float, 1 per other scalar (an int may take up to 9) and per container header. A list of
    scalars is classified in C (``set(map(type, ...))``), never element by element in Python.
    """
    try:
        return _size(v, 0, room)
    except _Over as e:
        raise FrameTooLarge(e.args[0], room if limit is None else limit) from None


def check_depth(msg: dict) -> None:
    """Raise :class:`ValueTooDeep` when a field of a decoded message nests too deep."""
    _depth(msg, -1)  # the envelope map is not counted: its fields are at depth 0


_CONTAINERS = (dict, list, tuple)
_CONTAINER_SET = frozenset(_CONTAINERS)


def _depth(v: dict | list | tuple, depth: int) -> None:
    """Depth only, for a decoded message (builtin types only: no size to bound)."""
    if depth >= MAX_DEPTH:
        raise ValueTooDeep()
    depth += 1
    if type(v) is dict:
        for k, x in v.items():
            if isinstance(x, _CONTAINERS):
                _depth(x, depth)
            if isinstance(k, tuple):  # an array key
                _depth(k, depth)
        return
    if len(v) > _SMALL:  # classified in C first: most long arrays hold no container
        try:
            sum(v)  # fastest, and succeeds only when every element is a number
            return
        except TypeError:
            if _CONTAINER_SET.isdisjoint(map(type, v)):
                return
    for x in v:
        if isinstance(x, _CONTAINERS):
            _depth(x, depth)


def _size(v: Any, depth: int, room: int) -> int:
    """``v`` is enclosed by ``depth`` containers; returns its size bound (at most ``room``)."""
    t = type(v)
    if t is dict:
        return _dict(v, depth, room)
    if t is list or t is tuple:
        return _list(v, depth, room)
    if t is str or t is bytes or t is bytearray:
        n = len(v) + 1
    elif t in _SCALARS:
        n = 9 if t is float else 1
    elif isinstance(v, msgpack.ExtType):  # a tuple subclass: before the tuple check
        n = len(v.data) + 2
    elif isinstance(v, dict):
        return _dict(v, depth, room)
    elif isinstance(v, (list, tuple)):
        return _list(v, depth, room)
    elif isinstance(v, (str, bytes, bytearray)):
        n = len(v) + 1
    elif isinstance(v, memoryview):
        n = v.nbytes + 1
    else:
        n = 1  # the packer decides (a Timestamp, or a type it refuses)
    if n > room:
        raise _Over(n)
    return n


# The walk checks the room once per container, not per element: it allocates nothing, so
# finishing a container before stopping costs time, never memory.


def _dict(v: dict, depth: int, room: int) -> int:
    if depth >= MAX_DEPTH:
        raise ValueTooDeep()
    depth += 1
    n = 1 + 2 * len(v)  # its header, and at least 1 byte per key and per value
    try:
        for k, x in v.items():
            t = type(k)
            if t is str:
                n += len(k)
            elif t not in _SCALARS:
                n += _size(k, depth, room - n) - 1
            t = type(x)
            if t is str or t is bytes:
                n += len(x)
            elif t is float:
                n += 8
            elif t not in _SCALARS:
                n += _size(x, depth, room - n) - 1
    except _Over as e:  # an element passed what was left: the bound of the whole so far
        raise _Over(n - 1 + e.args[0]) from None
    if n > room:
        raise _Over(n)
    return n


def _list(v: list | tuple, depth: int, room: int) -> int:
    if depth >= MAX_DEPTH:
        raise ValueTooDeep()
    depth += 1
    n = len(v) + 1  # its header, and at least 1 byte per element
    if n > room:
        raise _Over(n)
    if len(v) > _SMALL:
        # classified in C: a long list of scalars (or of strings) needs no Python loop
        types = set(map(type, v))
        if types <= _SCALARS:
            if types == _FLOATS:
                n += 8 * len(v)
            if n > room:
                raise _Over(n)
            return n
        if types == _STRS:
            n += sum(map(len, v))
            if n > room:
                raise _Over(n)
            return n
    try:
        for x in v:
            t = type(x)
            if t is str or t is bytes:
                n += len(x)
            elif t is float:
                n += 8
            elif t is dict:  # records: straight to the dict walk
                n += _dict(x, depth, room - n) - 1
            elif t not in _SCALARS:
                n += _size(x, depth, room - n) - 1
    except _Over as e:
        raise _Over(n - 1 + e.args[0]) from None
    if n > room:
        raise _Over(n)
    return n


# --------------------------------------------------------------------------------------------
# decoding


_UNPACK_OPTS = {"raw": False, "strict_map_key": False, "unicode_errors": "surrogateescape"}
#: what decode_payload unpacks with: _UNPACK_OPTS, plus the shared-memory ext_hook once the
#: worker has a segment channel (use_ext_hook)
_decode_opts = dict(_UNPACK_OPTS)


def use_ext_hook(hook) -> None:
    """Resolve msgpack extensions in decoded frames with ``hook`` (:mod:`.shm`)."""
    _decode_opts["ext_hook"] = hook


def decode_payload(payload) -> dict:
    """Decode one frame payload (bytes-like) into its map, or raise a ProtocolError: frame-level,
    or ``too_deep`` (message-level: the frame was whole, the stream is still in sync) with the
    ``id`` and ``t`` when they could be read."""
    if not len(payload):
        raise ProtocolError("empty_frame", "frame length is 0")
    try:
        # Maps inside values may have keys of any type; strings that are not valid UTF-8
        # decode with surrogates instead of failing the stream (the envelope's own strings
        # are checked by validate). Both as the Go side decodes.
        msg = msgpack.unpackb(payload, **_decode_opts)
    except msgpack.ExtraData:
        raise ProtocolError("trailing_bytes", "bytes after the msgpack value in the frame") from None
    except msgpack.StackError:
        # Deeper than msgpack-python decodes (1,024 levels): a value too deep, not a broken
        # stream. The envelope fields before it can still be read.
        t, id = _read_envelope(payload)
        raise ProtocolError(
            "too_deep", f"a value nests more than {MAX_DEPTH} arrays/maps deep (the protocol's limit)", id=id, t=t
        ) from None
    except (ValueError, TypeError, msgpack.UnpackException) as e:
        # FormatError/incomplete input/invalid UTF-8/non-string map key ...
        raise ProtocolError("malformed", f"invalid msgpack: {exc_text(e)}") from None
    if type(msg) is not dict:
        raise ProtocolError("not_a_map", f"frame holds a msgpack {_type_name(msg)}, not a map")
    if len(payload) > MAX_DEPTH:  # a shorter payload cannot hold a value nested too deep
        try:
            check_depth(msg)
        except ValueTooDeep as e:
            t, id = msg.get("t"), msg.get("id")
            raise ProtocolError(
                "too_deep", f"a value {e}", id=id if is_uint(id) else None, t=t if is_str(t) else None
            ) from None
    return msg


def _read_envelope(payload: bytes | memoryview) -> tuple[str | None, int | None]:
    """``t`` and ``id`` of a payload too deep to decode whole: its top-level fields one at a time,
    until the one that is too deep (the host writes ``t``, ``id``, ``op`` before ``args``)."""
    t = id = None
    up = msgpack.Unpacker(**_UNPACK_OPTS)
    up.feed(payload)
    try:
        for _ in range(up.read_map_header()):
            key = up.unpack()
            if key == "t" or key == "id":
                v = up.unpack()
                if key == "t" and is_str(v):
                    t = v
                elif key == "id" and is_uint(v):
                    id = v
            else:
                up.skip()
    except Exception:  # the value too deep (or damage after it): what was read is all there is
        pass
    return t, id


class FrameDecoder:
    """Incremental frame parser.

    ``feed(data)`` returns the list of maps completed by ``data`` (possibly empty); a whole frame
    whose map cannot be decoded (``too_deep``) is its :class:`ProtocolError` in that list. The length
    prefix is checked against ``max_frame`` as soon as its 4 bytes are known, before any of the
    payload is buffered. ``close()`` signals end of stream: a partial frame left is ``truncated``.
    After a ProtocolError the decoder is unusable (the stream cannot be trusted).
    """

    __slots__ = ("max_frame", "_buf", "_need", "_broken")

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME):
        self.max_frame = max_frame
        self._buf = bytearray()
        self._need = 0  # payload length of the frame being assembled, 0 while reading the header
        self._broken = False

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data) -> list:
        if self._broken:
            raise ProtocolError("malformed", "decoder already failed")
        buf = self._buf
        if not buf and len(data) >= 4:
            # fast path: parse straight from the chunk we were handed, no copy
            out, rest = self._parse(data)
            if rest:
                buf += rest
            return out
        buf += data
        out, rest = self._parse(buf)
        if rest is not buf:
            # keep only the unconsumed tail
            self._buf = rest if type(rest) is bytearray else bytearray(rest)
        return out

    def _parse(self, data):
        """Parse complete frames from ``data``; return (messages, unconsumed tail)."""
        out = []
        n = len(data)
        pos = 0
        max_frame = self.max_frame
        mv = None
        while n - pos >= 4:
            (size,) = _unpack_header(data, pos)
            if size > max_frame:
                self._broken = True
                raise ProtocolError(
                    "frame_too_large", f"frame of {size} bytes exceeds the max frame size {max_frame}"
                )
            if size == 0:
                self._broken = True
                raise ProtocolError("empty_frame", "frame length is 0")
            end = pos + 4 + size
            if end > n:
                self._need = size
                break
            if mv is None:
                mv = memoryview(data)
            try:
                out.append(decode_payload(mv[pos + 4 : end]))
            except ProtocolError as e:
                if e.frame_level:
                    self._broken = True
                    raise
                out.append(e)  # whole but undecodable (too_deep): the next frame is still in sync
            pos = end
        if mv is not None:
            mv.release()
        if pos == 0:
            return out, data
        if pos == n:
            return out, b""
        return out, data[pos:]

    def close(self) -> None:
        """End of stream. Raises ``truncated`` if a partial frame is buffered."""
        if self._buf:
            n = len(self._buf)
            self._buf = bytearray()
            if n < 4:
                raise ProtocolError("truncated", f"stream ended inside a frame header ({n} of 4 bytes)")
            raise ProtocolError(
                "truncated", f"stream ended inside a frame ({n - 4} of {self._need} payload bytes)"
            )


def decode_frames(data: bytes, max_frame: int = DEFAULT_MAX_FRAME) -> list:
    """Decode a complete byte stream of frames (feed + close); the first error raises."""
    dec = FrameDecoder(max_frame)
    out = dec.feed(data)
    dec.close()
    for m in out:
        if type(m) is not dict:
            raise m
    return out


# --------------------------------------------------------------------------------------------
# message validation (the table of spec/protocol.md)


def _type_name(v: Any) -> str:
    if v is None:
        return "nil"
    t = type(v)
    if t is bool:
        return "bool"
    if t is int:
        return "int"
    if t is float:
        return "float"
    if t is str:
        return "str" if is_str(v) else "a str that is not valid UTF-8"
    if t is bytes:
        return "bin"
    if t is list or t is tuple:
        return "array"
    if t is dict:
        return "map"
    return t.__name__


def is_uint(v: Any) -> bool:
    return type(v) is int and v >= 0


def is_str(v: Any) -> bool:
    """A msgpack str holding valid UTF-8 (decoding maps invalid bytes to lone surrogates)."""
    if type(v) is not str:
        return False
    if v.isascii():
        return True
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _bad(t: str, field: str, want: str, v: Any, id: int | None = None) -> ProtocolError:
    return ProtocolError(
        "bad_field", f"{t}.{field} must be {want}, got {_type_name(v)}", id=id, t=t
    )


def _missing(t: str, field: str, id: int | None = None) -> ProtocolError:
    return ProtocolError("missing_field", f"{t} without required field {field!r}", id=id, t=t)


def _req_uint(msg: dict, t: str, field: str, id: int | None = None) -> int:
    try:
        v = msg[field]
    except KeyError:
        raise _missing(t, field, id) from None
    if type(v) is not int or v < 0:
        raise _bad(t, field, "an unsigned integer", v, id)
    return v


def _opt(msg: dict, field: str):
    # optional fields: absent and nil mean the same (the default)
    return msg.get(field)


def _check_id(msg: dict, t: str) -> int:
    return _req_uint(msg, t, "id")


def _check_error(v: Any, t: str, field: str = "error", id: int | None = None) -> None:
    if type(v) is not dict:
        raise _bad(t, field, "an Error map", v, id)
    for k in ("category", "type", "message"):
        if k not in v:
            raise _missing(t, f"{field}.{k}", id)
        if not is_str(v[k]):
            raise _bad(t, f"{field}.{k}", "a string", v[k], id)
    tb = v.get("traceback")
    if tb is not None and not is_str(tb):
        raise _bad(t, f"{field}.traceback", "a string", tb, id)


def _v_hello_h2w(msg: dict) -> None:
    if "versions" not in msg:
        raise _missing("hello", "versions")
    vs = msg["versions"]
    if type(vs) is not list or not all(type(x) is int and x >= 0 for x in vs):
        raise _bad("hello", "versions", "an array of unsigned integers", vs)
    mf = _opt(msg, "max_frame")
    if mf is not None and not is_uint(mf):
        raise _bad("hello", "max_frame", "an unsigned integer", mf)
    hf = _opt(msg, "host_funcs")
    if hf is not None and type(hf) is not dict:
        raise _bad("hello", "host_funcs", "a map", hf)


def _v_hello_w2h(msg: dict) -> None:
    err = _opt(msg, "error")
    if err is not None:
        _check_error(err, "hello")
        return
    _req_uint(msg, "hello", "version")
    _req_uint(msg, "hello", "pid")
    if "framework" not in msg:
        raise _missing("hello", "framework")
    fw = msg["framework"]
    if type(fw) is not dict:
        raise _bad("hello", "framework", "a map", fw)
    for k in ("name", "version"):
        if k not in fw:
            raise _missing("hello", f"framework.{k}")
        if not is_str(fw[k]):
            raise _bad("hello", f"framework.{k}", "a string", fw[k])
    if "capabilities" not in msg:
        raise _missing("hello", "capabilities")
    caps = msg["capabilities"]
    if type(caps) is not list or not all(is_str(c) for c in caps):
        raise _bad("hello", "capabilities", "an array of strings", caps)
    if "handlers" not in msg:
        raise _missing("hello", "handlers")
    hs = msg["handlers"]
    if type(hs) is not dict or not all(is_str(k) and is_str(v) for k, v in hs.items()):
        raise _bad("hello", "handlers", "a map of string to string", hs)
    mf = _opt(msg, "max_frame")
    if mf is not None and not is_uint(mf):
        raise _bad("hello", "max_frame", "an unsigned integer", mf)
    rt = _opt(msg, "runtime")
    if rt is not None and type(rt) is not dict:
        raise _bad("hello", "runtime", "a map", rt)
    bt = _opt(msg, "batched")
    if bt is not None and type(bt) is not dict:
        raise _bad("hello", "batched", "a map", bt)


def check_req(msg: dict):
    """Validate a ``req``; return (id, op, args, deadline, stream) with defaults applied."""
    try:
        id = msg["id"]
    except KeyError:
        raise _missing("req", "id") from None
    if type(id) is not int or id < 0:
        raise _bad("req", "id", "an unsigned integer", id)
    try:
        op = msg["op"]
    except KeyError:
        raise _missing("req", "op", id) from None
    if not is_str(op):
        raise _bad("req", "op", "a string", op, id)
    _check_keys(msg, "req", id)
    args = msg.get("args")
    if args is None:
        args = {}
    elif type(args) is not dict:
        raise _bad("req", "args", "a map", args, id)
    deadline = msg.get("deadline")
    if deadline is not None and (type(deadline) is not int or deadline < 0):
        raise _bad("req", "deadline", "an unsigned integer (unix ms)", deadline, id)
    stream = msg.get("stream")
    if stream is None:
        stream = False
    elif type(stream) is not bool:
        raise _bad("req", "stream", "a bool", stream, id)
    _check_trace(msg, "req", id)
    return id, op, args, deadline, stream


def _check_trace(msg: dict, t: str, id: int) -> None:
    for key in ("traceparent", "tracestate"):  # carried, not parsed: tracing.py reads them
        v = msg.get(key)
        if v is not None and not is_str(v):
            raise _bad(t, key, "a string", v, id)


def _check_keys(msg: dict, t: str, id: int | None = None) -> None:
    for k in msg:
        if not is_str(k):
            raise ProtocolError("bad_field", f"{t}: a map key is not a string ({_type_name(k)})", id=id, t=t)


def _v_req(msg: dict) -> None:
    check_req(msg)


def check_breq(msg: dict):
    """Validate a ``breq`` (a batch of calls to one op); return (id, op, items, deadline)."""
    id = _check_id(msg, "breq")
    if "op" not in msg:
        raise _missing("breq", "op", id)
    op = msg["op"]
    if not is_str(op):
        raise _bad("breq", "op", "a string", op, id)
    _check_keys(msg, "breq", id)
    if "items" not in msg:
        raise _missing("breq", "items", id)
    items = msg["items"]
    if type(items) is not list or not all(type(it) is dict for it in items):
        raise _bad("breq", "items", "an array of maps", items, id)
    deadline = msg.get("deadline")
    if deadline is not None and not is_uint(deadline):
        raise _bad("breq", "deadline", "an unsigned integer (unix ms)", deadline, id)
    _check_trace(msg, "breq", id)
    return id, op, items, deadline


def _v_breq(msg: dict) -> None:
    check_breq(msg)


def _v_bres(msg: dict) -> None:
    id = _check_id(msg, "bres")
    if "results" not in msg:
        raise _missing("bres", "results", id)
    results = msg["results"]
    if type(results) is not list:
        raise _bad("bres", "results", "an array", results, id)
    for r in results:
        if type(r) is not dict:
            raise _bad("bres", "results", "an array of maps", r, id)
        if "ok" not in r:
            raise _missing("bres", "results.ok", id)
        if type(r["ok"]) is not bool:
            raise _bad("bres", "results.ok", "a bool", r["ok"], id)
        if r.get("error") is not None:
            _check_error(r["error"], "bres", "results.error", id)
        elif not r["ok"]:
            raise _missing("bres", "results.error", id)


def _check_result(msg: dict, t: str) -> None:
    """A res (to a request) or an hres (to a host call): ok, and the error when not ok."""
    id = _check_id(msg, t)
    if "ok" not in msg:
        raise _missing(t, "ok", id)
    ok = msg["ok"]
    if type(ok) is not bool:
        raise _bad(t, "ok", "a bool", ok, id)
    if not ok:
        if msg.get("error") is None:
            raise _missing(t, "error", id)
        _check_error(msg["error"], t, id=id)


def _v_res(msg: dict) -> None:
    _check_result(msg, "res")
    ids = _opt(msg, "shm")  # the shared-memory segments the result refers to (shm.py)
    if ids is not None and (type(ids) is not list or not all(type(x) is int and x >= 0 for x in ids)):
        raise _bad("res", "shm", "an array of unsigned integers", ids, msg["id"])


def _v_chunk(msg: dict) -> None:
    id = _check_id(msg, "chunk")
    if "data" not in msg:
        raise _missing("chunk", "data", id)


def _v_end(msg: dict) -> None:
    _check_id(msg, "end")


def _v_cancel(msg: dict) -> None:
    _check_id(msg, "cancel")


def _v_hcall(msg: dict) -> None:
    id = _check_id(msg, "hcall")
    if "fn" not in msg:
        raise _missing("hcall", "fn", id)
    if not is_str(msg["fn"]):
        raise _bad("hcall", "fn", "a string", msg["fn"], id)
    args = _opt(msg, "args")
    if args is not None and type(args) is not dict:
        raise _bad("hcall", "args", "a map", args, id)
    _req_uint(msg, "hcall", "parent", id)


def _v_hres(msg: dict) -> None:
    _check_result(msg, "hres")


def _v_hcancel(msg: dict) -> None:
    _check_id(msg, "hcancel")


def _v_ping(msg: dict) -> None:
    _req_uint(msg, "ping", "seq")


def _v_pong(msg: dict) -> None:
    _req_uint(msg, "pong", "seq")


def _v_shutdown(msg: dict) -> None:
    g = _opt(msg, "grace")
    if g is not None and not is_uint(g):
        raise _bad("shutdown", "grace", "an unsigned integer (ms)", g)


VALIDATORS: dict[str, dict[str, Callable[[dict], None]]] = {
    HOST_TO_WORKER: {
        "hello": _v_hello_h2w,
        "req": _v_req,
        "cancel": _v_cancel,
        "ping": _v_ping,
        "pong": _v_pong,
        "shutdown": _v_shutdown,
        "hres": _v_hres,
        "breq": _v_breq,
    },
    WORKER_TO_HOST: {
        "hello": _v_hello_w2h,
        "res": _v_res,
        "chunk": _v_chunk,
        "end": _v_end,
        "ping": _v_ping,
        "pong": _v_pong,
        "hcall": _v_hcall,
        "hcancel": _v_hcancel,
        "bres": _v_bres,
    },
}


def validate(msg: dict, direction: str) -> str:
    """Check a decoded map against the message table for ``direction``; return its type ``t``.

    A type that exists in the protocol but not in this direction (a ``res`` sent to a worker)
    is ``unknown_type`` too: the receiver has no meaning for it.
    """
    if isinstance(msg, ProtocolError):  # FrameDecoder.feed's place holder for an undecodable frame
        raise msg
    table = VALIDATORS[direction]
    _check_keys(msg, "message")
    if "t" not in msg:
        raise ProtocolError("missing_field", "message without type field 't'")
    t = msg["t"]
    if not is_str(t):
        raise _bad("message", "t", "a string", t)
    v = table.get(t)
    if v is None:
        # keep a readable id for diagnostics, never for an answer
        raise ProtocolError("unknown_type", f"unknown message type {t!r} ({direction})", t=t)
    v(msg)
    return t


def decode_message(frame: bytes, direction: str, max_frame: int = DEFAULT_MAX_FRAME) -> dict:
    """Decode exactly one whole frame and validate it. Raises ProtocolError."""
    msgs = decode_frames(frame, max_frame)
    if len(msgs) != 1:
        raise ProtocolError("trailing_bytes", f"expected one frame, got {len(msgs)}")
    validate(msgs[0], direction)
    return msgs[0]
