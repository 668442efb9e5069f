"""Rebuild spec/vectors/messages.json, the shared wire-protocol test vectors.

    /work/main/.venv/bin/python spec/vectors/generate.py

The file is a JSON array of cases:

    {"name": str,
     "direction": "host_to_worker" | "worker_to_host",
     "hex": str,                 # the whole frame (or byte stream), length prefix included
     "message": {...}            # the decoded map, when the case is valid
     | "error": kind,            # else the ProtocolError kind the receiver reports
     "max_frame": int}           # optional: the receiver's max frame size (default 67108864)

In "message", a msgpack bin value is written as {"$bin": "<hex>"}, an extension as
{"$ext": [type, "<hex of its data>"]}, and a value nested in n
single-element arrays as {"$nest": [n, <value>]} (the depth vectors would otherwise fill the
file with indentation); integers are exact (some
exceed 2^53: decode JSON numbers exactly, e.g. Go's json.Decoder.UseNumber); a msgpack float32
is written as the float64 of the same value. Frame bytes are built here by hand (not by the
implementation under test), so non-canonical but valid encodings can be covered too.
Regenerating is deterministic: the output depends on this file only.
"""

from __future__ import annotations

import json
import math
import pathlib
import struct

OUT = pathlib.Path(__file__).with_name("messages.json")
DEFAULT_MAX_FRAME = 64 * 1024 * 1024

H2W = "host_to_worker"
W2H = "worker_to_host"


# ----------------------------------------------------------------------------------------------
# a tiny msgpack encoder with exact control over the bytes


class Raw:
    """Pre-encoded msgpack bytes standing for ``value``."""

    def __init__(self, data: bytes, value):
        self.data = data
        self.value = value


class Ext:
    """A msgpack extension value."""

    def __init__(self, type: int, data: bytes):
        self.type, self.data = type, data


def shared_ref(id: int, offset: int, length: int) -> Ext:
    """A shared-memory reference (protocol.md, "Shared memory"): extension 2, 24 bytes."""
    return Ext(2, struct.pack(">QQQ", id, offset, length))


class Nest:
    """``leaf`` inside ``n`` single-element arrays; {"$nest": [n, leaf]} in a case's "message"."""

    def __init__(self, n: int, leaf):
        self.n = n
        self.leaf = leaf


def f32(x: float) -> Raw:
    data = b"\xca" + struct.pack(">f", x)
    return Raw(data, struct.unpack(">f", data[1:])[0])


def i64(x: int) -> Raw:
    return Raw(b"\xd3" + struct.pack(">q", x), x)


def u64(x: int) -> Raw:
    return Raw(b"\xcf" + struct.pack(">Q", x), x)


def map16(d: dict) -> Raw:
    body = b"".join(enc(k) + enc(v) for k, v in d.items())
    return Raw(b"\xde" + struct.pack(">H", len(d)) + body, {k: value(v) for k, v in d.items()})


def str8(s: str) -> Raw:
    b = s.encode()
    return Raw(b"\xd9" + bytes([len(b)]) + b, s)


def enc_int(v: int) -> bytes:
    if 0 <= v <= 0x7F:
        return bytes([v])
    if -32 <= v < 0:
        return struct.pack(">b", v)
    if v >= 0:
        for code, fmt, top in ((0xCC, ">B", 0xFF), (0xCD, ">H", 0xFFFF), (0xCE, ">I", 0xFFFFFFFF),
                               (0xCF, ">Q", 0xFFFFFFFFFFFFFFFF)):
            if v <= top:
                return bytes([code]) + struct.pack(fmt, v)
        raise OverflowError(v)
    for code, fmt, lo in ((0xD0, ">b", -0x80), (0xD1, ">h", -0x8000), (0xD2, ">i", -0x80000000),
                          (0xD3, ">q", -0x8000000000000000)):
        if v >= lo:
            return bytes([code]) + struct.pack(fmt, v)
    raise OverflowError(v)


def enc_len(n: int, fix: int | None, fixmax: int, c8: int | None, c16: int, c32: int) -> bytes:
    if fix is not None and n <= fixmax:
        return bytes([fix | n])
    if c8 is not None and n <= 0xFF:
        return bytes([c8, n])
    if n <= 0xFFFF:
        return bytes([c16]) + struct.pack(">H", n)
    return bytes([c32]) + struct.pack(">I", n)


def enc(v) -> bytes:
    if isinstance(v, Raw):
        return v.data
    if isinstance(v, Nest):
        return b"\x91" * v.n + enc(v.leaf)
    if isinstance(v, Ext):
        fixed = {1: 0xD4, 2: 0xD5, 4: 0xD6, 8: 0xD7, 16: 0xD8}
        n = len(v.data)
        head = bytes([fixed[n]]) if n in fixed else enc_len(n, None, 0, 0xC7, 0xC8, 0xC9)
        return head + struct.pack("b", v.type) + v.data
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        return enc_int(v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, str):
        b = v.encode("utf-8")
        return enc_len(len(b), 0xA0, 31, 0xD9, 0xDA, 0xDB) + b
    if isinstance(v, bytes):
        return enc_len(len(v), None, 0, 0xC4, 0xC5, 0xC6) + v
    if isinstance(v, list):
        return enc_len(len(v), 0x90, 15, None, 0xDC, 0xDD) + b"".join(enc(x) for x in v)
    if isinstance(v, dict):
        return enc_len(len(v), 0x80, 15, None, 0xDE, 0xDF) + b"".join(enc(k) + enc(x) for k, x in v.items())
    raise TypeError(type(v))


def value(v):
    """The decoded value of an encoder input."""
    if isinstance(v, Raw):
        return v.value
    if isinstance(v, list):
        return [value(x) for x in v]
    if isinstance(v, dict):
        return {value(k): value(x) for k, x in v.items()}
    return v


def frame(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


def to_json(v):
    if isinstance(v, bytes):
        return {"$bin": v.hex()}
    if isinstance(v, Ext):
        return {"$ext": [v.type, v.data.hex()]}
    if isinstance(v, Nest):
        return {"$nest": [v.n, to_json(value(v.leaf))]}
    if isinstance(v, list):
        return [to_json(x) for x in v]
    if isinstance(v, dict):
        return {k: to_json(x) for k, x in v.items()}
    if isinstance(v, float) and not math.isfinite(v):
        raise ValueError("no NaN/Inf in vectors: JSON cannot hold them")
    return v


# ----------------------------------------------------------------------------------------------
# cases

CASES: list[dict] = []
_names: set[str] = set()


def _add(case: dict) -> None:
    assert case["name"] not in _names, case["name"]
    _names.add(case["name"])
    CASES.append(case)


def ok(name: str, direction: str, msg, *, max_frame: int | None = None) -> None:
    """A valid frame holding ``msg`` (a dict of encoder inputs, or a Raw map)."""
    data = frame(enc(msg))
    case = {"name": name, "direction": direction, "hex": data.hex(), "message": to_json(value(msg))}
    if max_frame is not None:
        case["max_frame"] = max_frame
    _add(case)


def bad(name: str, direction: str, kind: str, *, msg=None, raw: bytes | None = None, payload: bytes | None = None,
        max_frame: int | None = None) -> None:
    """An invalid input: a message (encoded and framed), a payload (framed) or raw bytes."""
    if msg is not None:
        data = frame(enc(msg))
    elif payload is not None:
        data = frame(payload)
    else:
        data = raw
    case = {"name": name, "direction": direction, "hex": data.hex(), "error": kind}
    if max_frame is not None:
        case["max_frame"] = max_frame
    _add(case)


ERR = {"category": "invalid_argument", "type": "TypeError", "message": "missing 1 required positional argument: 'b'"}
ERR_TB = dict(ERR, traceback='Traceback (most recent call last):\n  File "bridge.py", line 3, in add\nTypeError: boom\n')

# --- host -> worker ---------------------------------------------------------------------------
ok("hello_host", H2W, {"t": "hello", "versions": [1]})
ok("hello_host_versions_and_max_frame", H2W, {"t": "hello", "versions": [1, 2], "max_frame": 1048576})
ok("hello_host_no_common_version_still_valid", H2W, {"t": "hello", "versions": [7]})
ok("req_minimal", H2W, {"t": "req", "id": 1, "op": "noop"})
ok("req_full", H2W, {"t": "req", "id": 42, "op": "predict", "args": {"question": "2+2?"},
                     "deadline": 1767225600000, "stream": True})
ok("req_stream_false", H2W, {"t": "req", "id": 2, "op": "echo", "args": {"value": 1}, "stream": False})
ok("req_empty_args", H2W, {"t": "req", "id": 3, "op": "noop", "args": {}})
ok("req_nil_args_means_absent", H2W, {"t": "req", "id": 4, "op": "noop", "args": None})
ok("req_nil_optionals_mean_absent", H2W, {"t": "req", "id": 5, "op": "noop", "deadline": None, "stream": None})
ok("req_id_zero", H2W, {"t": "req", "id": 0, "op": "noop"})
ok("req_id_max_uint64", H2W, {"t": "req", "id": 18446744073709551615, "op": "noop"})
ok("req_id_signed_format_positive_value", H2W, {"t": "req", "id": i64(7), "op": "noop"})
ok("req_id_uint64_format_small_value", H2W, {"t": "req", "id": u64(9), "op": "noop"})
ok("req_map16_header", H2W, map16({"t": "req", "id": 6, "op": "noop"}))
ok("req_str8_op", H2W, {"t": "req", "id": 7, "op": str8("noop")})
ok("req_unknown_keys_ignored", H2W, {"t": "req", "id": 8, "op": "noop", "trace": {"traceparent": "00-ab-cd-01"},
                                     "priority": 3})
ok("req_key_order_free", H2W, {"op": "noop", "id": 9, "t": "req"})
ok("req_args_nil_bool", H2W, {"t": "req", "id": 10, "op": "echo",
                              "args": {"nil": None, "yes": True, "no": False}})
ok("req_args_ints", H2W, {"t": "req", "id": 11, "op": "echo", "args": {"value": [
    0, 1, 127, 128, 255, 256, 65535, 65536, 4294967295, 4294967296,
    9223372036854775807, 9223372036854775808, 18446744073709551615,
    -1, -32, -33, -128, -129, -32768, -32769, -2147483648, -2147483649,
    -9223372036854775808,
]}})
ok("req_args_floats", H2W, {"t": "req", "id": 12, "op": "echo", "args": {
    "f64": [0.0, 1.0, -2.5, 3.141592653589793, 1e-300, 1.7976931348623157e308, 5e-324],
    "f32": [f32(1.5), f32(-0.25), f32(0.1), f32(3.4028234663852886e38)],
}})
ok("req_args_strings", H2W, {"t": "req", "id": 13, "op": "echo", "args": {
    "empty": "", "ascii": "hello", "non_ascii": "héllo wörld ✓ 日本語 🚀",
    "fixstr_max": "x" * 31, "str8": "y" * 32, "str16": "z" * 256,
    "escapes": "tab\tnewline\nquote\"backslash\\nul\u0000",
}})
ok("req_args_bin", H2W, {"t": "req", "id": 14, "op": "echo", "args": {
    "empty": b"", "bytes": bytes(range(0, 256, 15)), "zeros": bytes(4), "bin16": bytes(range(256)) + b"\xff",
}})
ok("req_args_containers", H2W, {"t": "req", "id": 15, "op": "echo", "args": {
    "empty_array": [], "empty_map": {},
    "array": [1, "two", 3.0, None, True, b"\x06"],
    "nested": {"a": [{"b": [[], {}]}, [1, [2, [3, [4]]]]], "c": {"d": {"e": {"f": "deep"}}}},
    "array16": list(range(16)), "map16": {f"k{i:02d}": i for i in range(16)},
}})
# W3C trace context (https://www.w3.org/TR/trace-context/) of the caller's span: strings the
# wire carries without parsing; the worker continues the trace when traceparent is valid and
# ignores it otherwise. The keys come last, in the order the Go host writes them.
TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
ok("req_traceparent", H2W, {"t": "req", "id": 16, "op": "predict", "traceparent": TP})
ok("req_traceparent_tracestate", H2W, {"t": "req", "id": 17, "op": "predict", "args": {"question": "2+2?"},
                                       "deadline": 1767225600000, "stream": True, "traceparent": TP,
                                       "tracestate": "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"})
ok("req_traceparent_not_sampled", H2W, {"t": "req", "id": 18, "op": "noop",
                                        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"})
ok("req_trace_nil_means_absent", H2W, {"t": "req", "id": 19, "op": "noop", "traceparent": None, "tracestate": None})
ok("req_traceparent_unparsable_still_valid", H2W, {"t": "req", "id": 20, "op": "noop", "traceparent": "not-a-traceparent"})
ok("req_tracestate_alone_still_valid", H2W, {"t": "req", "id": 21, "op": "noop", "tracestate": "rojo=00f067aa0ba902b7"})
ok("cancel", H2W, {"t": "cancel", "id": 42})
ok("ping_host", H2W, {"t": "ping", "seq": 1})
ok("pong_host", H2W, {"t": "pong", "seq": 77})
ok("shutdown", H2W, {"t": "shutdown"})
ok("shutdown_grace", H2W, {"t": "shutdown", "grace": 5000})
ok("shutdown_grace_zero", H2W, {"t": "shutdown", "grace": 0})

# --- worker -> host ---------------------------------------------------------------------------
ok("hello_worker", W2H, {
    "t": "hello", "version": 1, "pid": 12345,
    "framework": {"name": "dspy", "version": "2.6.0"},
    "capabilities": ["cancel", "deadline", "streaming"],
    "handlers": {"ping": "async", "predict": "sync", "stream_tokens": "async_gen", "batches": "sync_gen"},
    "max_frame": 67108864,
    "runtime": {"python": "3.11.7", "threads": 8},
})
ok("hello_worker_minimal", W2H, {"t": "hello", "version": 1, "pid": 1, "framework": {"name": "echo", "version": ""},
                                 "capabilities": [], "handlers": {}})
ok("hello_worker_error", W2H, {"t": "hello", "error": {
    "category": "invalid_configuration", "type": "ModuleNotFoundError",
    "message": "cannot load bridge nope:Bridge: No module named 'nope'",
    "traceback": "Traceback (most recent call last):\nModuleNotFoundError: No module named 'nope'\n"}})
ok("hello_worker_error_version", W2H, {"t": "hello", "pid": 99, "error": {
    "category": "protocol", "type": "ProtocolError",
    "message": "no common protocol version: host speaks [7], worker speaks [1]"}})
ok("res_ok", W2H, {"t": "res", "id": 1, "ok": True, "result": {"answer": "4", "score": 0.9}})
ok("res_ok_nil_result", W2H, {"t": "res", "id": 2, "ok": True, "result": None})
ok("res_ok_without_result", W2H, {"t": "res", "id": 3, "ok": True})
ok("res_ok_bin_result", W2H, {"t": "res", "id": 4, "ok": True, "result": b"\x00\x01\xfe\xff"})
# shared memory (protocol.md, "Shared memory"): array data by reference, the segments listed
ok("req_args_shared_array", H2W, {"t": "req", "id": 20, "op": "predict", "args": {
    "x": {"dtype": "float64", "shape": [1000, 64], "data": shared_ref(1, 0, 512000)}}})
ok("res_ok_shared_array", W2H, {"t": "res", "id": 20, "ok": True, "result": {
    "dtype": "float32", "shape": [1000], "data": shared_ref(7, 4096, 4000)}, "shm": [7]})
ok("res_error_shm_listed", W2H, {"t": "res", "id": 21, "ok": False, "error": ERR, "shm": [8, 9]})
bad("bad_field_res_shm_str", W2H, "bad_field", msg={"t": "res", "id": 22, "ok": True, "result": None, "shm": "7"})
ok("res_ok_scalar_result", W2H, {"t": "res", "id": 5, "ok": True, "result": -9223372036854775808})
ok("res_error", W2H, {"t": "res", "id": 6, "ok": False, "error": ERR})
ok("res_error_traceback", W2H, {"t": "res", "id": 7, "ok": False, "error": ERR_TB})
ok("res_error_timeout", W2H, {"t": "res", "id": 8, "ok": False, "error": {
    "category": "timeout", "type": "DeadlineExceeded", "message": "deadline of 'sleep' passed"}})
ok("chunk", W2H, {"t": "chunk", "id": 9, "data": "tok"})
ok("chunk_nil_data", W2H, {"t": "chunk", "id": 9, "data": None})
ok("chunk_map_data", W2H, {"t": "chunk", "id": 9, "data": {"i": 0, "bytes": b"\x01"}})
ok("end", W2H, {"t": "end", "id": 9})
ok("ping_worker", W2H, {"t": "ping", "seq": 3})
ok("pong_worker", W2H, {"t": "pong", "seq": 4294967296})

# --- frame-level errors -----------------------------------------------------------------------
bad("empty_frame", H2W, "empty_frame", raw=bytes(4))
bad("empty_frame_w2h", W2H, "empty_frame", raw=bytes(4))
bad("frame_too_large_small_max", H2W, "frame_too_large", raw=struct.pack(">I", 17) + b"\x80" * 17, max_frame=16)
bad("frame_too_large_header_only", H2W, "frame_too_large", raw=struct.pack(">I", 1 << 20), max_frame=1024)
bad("frame_too_large_default_max", W2H, "frame_too_large", raw=struct.pack(">I", DEFAULT_MAX_FRAME + 1))
ok("frame_at_max_frame", H2W, {"t": "ping", "seq": 1}, max_frame=len(enc({"t": "ping", "seq": 1})))
bad("truncated_header", H2W, "truncated", raw=b"\x00\x00")
bad("truncated_header_three_bytes", W2H, "truncated", raw=b"\x00\x00\x00")
bad("truncated_payload", H2W, "truncated", raw=frame(enc({"t": "ping", "seq": 1}))[:-3])
bad("truncated_payload_header_only", W2H, "truncated", raw=struct.pack(">I", 10))
bad("not_a_map_array", H2W, "not_a_map", payload=enc([1, 2, 3]))
bad("not_a_map_int", W2H, "not_a_map", payload=enc(5))
bad("not_a_map_str", H2W, "not_a_map", payload=enc("req"))
bad("not_a_map_nil", H2W, "not_a_map", payload=b"\xc0")
bad("trailing_bytes", H2W, "trailing_bytes", payload=enc({"t": "ping", "seq": 1}) + b"\x00")
bad("trailing_bytes_second_map", W2H, "trailing_bytes", payload=enc({"t": "end", "id": 1}) + enc({"t": "end", "id": 2}))
bad("malformed_c1", H2W, "malformed", payload=b"\xc1")
bad("malformed_c1_inside_map", H2W, "malformed", payload=b"\x81\xa1t\xc1")
bad("malformed_map_missing_entry", H2W, "malformed", payload=b"\x82\xa1t\xa4ping")
bad("malformed_str_past_end", W2H, "malformed", payload=b"\x81\xa1t\xa5end")
bad("malformed_bin_header_past_end", H2W, "malformed", payload=b"\x81\xa1t\xc4\x09ping")

# --- message-level errors ---------------------------------------------------------------------
bad("unknown_type", H2W, "unknown_type", msg={"t": "bogus", "id": 1})
bad("unknown_type_w2h", W2H, "unknown_type", msg={"t": "req", "id": 1, "op": "noop"})
bad("unknown_type_res_to_worker", H2W, "unknown_type", msg={"t": "res", "id": 1, "ok": True})
bad("unknown_type_chunk_to_worker", H2W, "unknown_type", msg={"t": "chunk", "id": 1, "data": 1})
bad("unknown_type_cancel_to_host", W2H, "unknown_type", msg={"t": "cancel", "id": 1})
bad("unknown_type_shutdown_to_host", W2H, "unknown_type", msg={"t": "shutdown"})
bad("missing_field_t", H2W, "missing_field", msg={"id": 1, "op": "noop"})
bad("missing_field_t_empty_map", W2H, "missing_field", msg={})
bad("missing_field_req_id", H2W, "missing_field", msg={"t": "req", "op": "noop"})
bad("missing_field_req_op", H2W, "missing_field", msg={"t": "req", "id": 1})
bad("missing_field_cancel_id", H2W, "missing_field", msg={"t": "cancel"})
bad("missing_field_ping_seq", H2W, "missing_field", msg={"t": "ping"})
bad("missing_field_pong_seq", W2H, "missing_field", msg={"t": "pong"})
bad("missing_field_hello_host_versions", H2W, "missing_field", msg={"t": "hello", "max_frame": 1024})
bad("missing_field_hello_worker_pid", W2H, "missing_field", msg={
    "t": "hello", "version": 1, "framework": {"name": "echo", "version": ""}, "capabilities": [], "handlers": {}})
bad("missing_field_hello_worker_framework_name", W2H, "missing_field", msg={
    "t": "hello", "version": 1, "pid": 1, "framework": {"version": ""}, "capabilities": [], "handlers": {}})
bad("missing_field_res_id", W2H, "missing_field", msg={"t": "res", "ok": True, "result": 1})
bad("missing_field_res_ok", W2H, "missing_field", msg={"t": "res", "id": 1, "result": 1})
bad("missing_field_res_error", W2H, "missing_field", msg={"t": "res", "id": 1, "ok": False})
bad("missing_field_res_error_message", W2H, "missing_field", msg={
    "t": "res", "id": 1, "ok": False, "error": {"category": "internal", "type": "ValueError"}})
bad("missing_field_chunk_data", W2H, "missing_field", msg={"t": "chunk", "id": 1})
bad("missing_field_end_id", W2H, "missing_field", msg={"t": "end"})
bad("bad_field_t_not_string", H2W, "bad_field", msg={"t": 1, "id": 1})
# The envelope's strings (keys, t, op, error fields...) must be valid UTF-8 and its keys strings:
# a message-level error, the stream stays in sync. Inside values (args, result, data) maps may
# have keys of any type and strings are passed through (such values cannot be written in JSON,
# so no vector holds one).
bad("bad_field_t_invalid_utf8", H2W, "bad_field", payload=b"\x81\xa1t\xa2\xff\xfe")
bad("bad_field_op_invalid_utf8", H2W, "bad_field",
    payload=b"\x83" + enc("t") + enc("req") + enc("id") + enc(1) + enc("op") + b"\xa2\xc3\x28")
bad("bad_field_int_map_key", H2W, "bad_field", payload=b"\x82\xa1t\xa4ping\x01\x02")
bad("bad_field_bin_map_key", W2H, "bad_field", payload=b"\x82\xa1t\xa3end\xc4\x02id\x01")
bad("bad_field_invalid_utf8_map_key", H2W, "bad_field", payload=b"\x82\xa1t\xa4ping\xa1\xff\x01")
bad("bad_field_t_bin", H2W, "bad_field", msg={"t": b"req", "id": 1, "op": "noop"})
bad("bad_field_req_op_int", H2W, "bad_field", msg={"t": "req", "id": 1, "op": 5})
bad("bad_field_req_op_bin", H2W, "bad_field", msg={"t": "req", "id": 1, "op": b"noop"})
bad("bad_field_req_op_nil", H2W, "bad_field", msg={"t": "req", "id": 1, "op": None})
bad("bad_field_req_id_negative", H2W, "bad_field", msg={"t": "req", "id": -1, "op": "noop"})
bad("bad_field_req_id_negative_int64", H2W, "bad_field", msg={"t": "req", "id": i64(-5), "op": "noop"})
bad("bad_field_req_id_string", H2W, "bad_field", msg={"t": "req", "id": "1", "op": "noop"})
bad("bad_field_req_id_float", H2W, "bad_field", msg={"t": "req", "id": 1.0, "op": "noop"})
bad("bad_field_req_id_bool", H2W, "bad_field", msg={"t": "req", "id": True, "op": "noop"})
bad("bad_field_req_id_nil", H2W, "bad_field", msg={"t": "req", "id": None, "op": "noop"})
bad("bad_field_req_args_array", H2W, "bad_field", msg={"t": "req", "id": 1, "op": "noop", "args": [1, 2]})
bad("bad_field_req_args_string", H2W, "bad_field", msg={"t": "req", "id": 1, "op": "noop", "args": "x=1"})
bad("bad_field_req_deadline_negative", H2W, "bad_field", msg={"t": "req", "id": 1, "op": "noop", "deadline": -1})
bad("bad_field_req_deadline_float", H2W, "bad_field", msg={"t": "req", "id": 1, "op": "noop", "deadline": 1.5e12})
bad("bad_field_req_stream_int", H2W, "bad_field", msg={"t": "req", "id": 1, "op": "noop", "stream": 1})
bad("bad_field_req_traceparent_int", H2W, "bad_field", msg={"t": "req", "id": 1, "op": "noop", "traceparent": 1})
bad("bad_field_req_traceparent_bin", H2W, "bad_field", msg={"t": "req", "id": 1, "op": "noop", "traceparent": TP.encode()})
bad("bad_field_req_tracestate_map", H2W, "bad_field", msg={"t": "req", "id": 1, "op": "noop", "traceparent": TP,
                                                            "tracestate": {"rojo": "00f067aa0ba902b7"}})
bad("bad_field_cancel_id_string", H2W, "bad_field", msg={"t": "cancel", "id": "7"})
bad("bad_field_ping_seq_negative", H2W, "bad_field", msg={"t": "ping", "seq": -3})
bad("bad_field_shutdown_grace_string", H2W, "bad_field", msg={"t": "shutdown", "grace": "2s"})
bad("bad_field_hello_host_versions_int", H2W, "bad_field", msg={"t": "hello", "versions": 1})
bad("bad_field_hello_host_versions_element", H2W, "bad_field", msg={"t": "hello", "versions": [1, "2"]})
bad("bad_field_hello_host_max_frame_negative", H2W, "bad_field", msg={"t": "hello", "versions": [1], "max_frame": -1})
bad("bad_field_hello_worker_version_string", W2H, "bad_field", msg={
    "t": "hello", "version": "1", "pid": 1, "framework": {"name": "echo", "version": ""}, "capabilities": [],
    "handlers": {}})
bad("bad_field_hello_worker_handlers_array", W2H, "bad_field", msg={
    "t": "hello", "version": 1, "pid": 1, "framework": {"name": "echo", "version": ""}, "capabilities": [],
    "handlers": ["ping"]})
bad("bad_field_hello_worker_capabilities_element", W2H, "bad_field", msg={
    "t": "hello", "version": 1, "pid": 1, "framework": {"name": "echo", "version": ""}, "capabilities": [1],
    "handlers": {}})
bad("bad_field_hello_worker_error_not_map", W2H, "bad_field", msg={"t": "hello", "error": "failed"})
bad("bad_field_res_ok_int", W2H, "bad_field", msg={"t": "res", "id": 1, "ok": 1, "result": 1})
bad("bad_field_res_error_not_map", W2H, "bad_field", msg={"t": "res", "id": 1, "ok": False, "error": "boom"})
bad("bad_field_res_error_category_int", W2H, "bad_field", msg={
    "t": "res", "id": 1, "ok": False, "error": {"category": 3, "type": "ValueError", "message": "x"}})
bad("bad_field_res_error_traceback_int", W2H, "bad_field", msg={
    "t": "res", "id": 1, "ok": False, "error": {"category": "internal", "type": "ValueError", "message": "x",
                                                "traceback": 5}})
bad("bad_field_chunk_id_string", W2H, "bad_field", msg={"t": "chunk", "id": "9", "data": 1})

# --- host calls: a worker calls a function the host registered, on behalf of request `parent`;
# the ids are the worker's own (a separate id space from the host's request ids) ---------------
ok("hcall", W2H, {"t": "hcall", "id": 1, "fn": "lookup", "args": {"city": "Paris"}, "parent": 42})
ok("hcall_without_args", W2H, {"t": "hcall", "id": 2, "fn": "now", "parent": 42})
ok("hcall_args_nil_means_absent", W2H, {"t": "hcall", "id": 3, "fn": "now", "args": None, "parent": 7})
ok("hcancel", W2H, {"t": "hcancel", "id": 1})
ok("hres_ok", H2W, {"t": "hres", "id": 1, "ok": True, "result": {"temp_c": 21.5}})
ok("hres_ok_without_result", H2W, {"t": "hres", "id": 2, "ok": True})
ok("hres_error", H2W, {"t": "hres", "id": 3, "ok": False, "error": {
    "category": "not_found", "type": "HostError", "message": "lookup: no city named 'Atlantis'"}})
ok("hello_host_host_funcs", H2W, {"t": "hello", "versions": [1], "max_frame": 1048576, "host_funcs": {
    "lookup": {"description": "Weather in a city", "schema": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}})
bad("unknown_type_hcall_to_worker", H2W, "unknown_type", msg={"t": "hcall", "id": 1, "fn": "f", "parent": 1})
bad("unknown_type_hres_to_host", W2H, "unknown_type", msg={"t": "hres", "id": 1, "ok": True})
bad("unknown_type_hcancel_to_worker", H2W, "unknown_type", msg={"t": "hcancel", "id": 1})
bad("missing_field_hcall_fn", W2H, "missing_field", msg={"t": "hcall", "id": 1, "parent": 1})
bad("missing_field_hcall_parent", W2H, "missing_field", msg={"t": "hcall", "id": 1, "fn": "f"})
bad("missing_field_hcall_id", W2H, "missing_field", msg={"t": "hcall", "fn": "f", "parent": 1})
bad("missing_field_hres_ok", H2W, "missing_field", msg={"t": "hres", "id": 1, "result": 1})
bad("missing_field_hres_error", H2W, "missing_field", msg={"t": "hres", "id": 1, "ok": False})
bad("missing_field_hcancel_id", W2H, "missing_field", msg={"t": "hcancel"})
bad("bad_field_hcall_fn_int", W2H, "bad_field", msg={"t": "hcall", "id": 1, "fn": 3, "parent": 1})
bad("bad_field_hcall_args_array", W2H, "bad_field", msg={"t": "hcall", "id": 1, "fn": "f", "args": [1], "parent": 1})
bad("bad_field_hcall_parent_negative", W2H, "bad_field", msg={"t": "hcall", "id": 1, "fn": "f", "parent": -1})
bad("bad_field_hres_ok_int", H2W, "bad_field", msg={"t": "hres", "id": 1, "ok": 1})
bad("bad_field_hres_error_not_map", H2W, "bad_field", msg={"t": "hres", "id": 1, "ok": False, "error": "boom"})
bad("bad_field_hello_host_host_funcs_array", H2W, "bad_field", msg={"t": "hello", "versions": [1], "host_funcs": ["f"]})

# --- batches: the calls a host gathered for a batched op in one breq, answered by one bres whose
# results follow the items' order; a worker declares its batched ops in its hello ------------------
ok("breq", H2W, {"t": "breq", "id": 5, "op": "predict", "items": [
    {"model_id": "m", "X": [[1.0, 2.0]]}, {"model_id": "m", "X": [[3.0, 4.0]]}]})
ok("breq_deadline", H2W, {"t": "breq", "id": 6, "op": "double", "items": [{"x": 1}], "deadline": 1700000000000})
ok("breq_empty_item_args", H2W, {"t": "breq", "id": 7, "op": "ping_all", "items": [{}, {}]})
# the batch's span (the host's handler span for the whole batch), as on a req
ok("breq_traceparent", H2W, {"t": "breq", "id": 8, "op": "double", "items": [{"x": 1}, {"x": 2}],
                             "traceparent": TP, "tracestate": "vendor=v1"})
ok("bres", W2H, {"t": "bres", "id": 5, "results": [
    {"ok": True, "result": {"y": 2}},
    {"ok": False, "error": {"category": "invalid_argument", "type": "InvalidArgument", "message": "x must be an int"}},
    {"ok": True}]})
ok("bres_error_nil_when_ok", W2H, {"t": "bres", "id": 5, "results": [{"ok": True, "result": 1, "error": None}]})
ok("hello_worker_batched", W2H, {"t": "hello", "version": 1, "pid": 1, "framework": {"name": "sklearn", "version": "1.5"},
                                 "capabilities": [], "handlers": {"predict": "sync"},
                                 "batched": {"predict": {"max_size": 64, "max_wait_ms": 2}}})
bad("unknown_type_breq_to_host", W2H, "unknown_type", msg={"t": "breq", "id": 1, "op": "f", "items": []})
bad("unknown_type_bres_to_worker", H2W, "unknown_type", msg={"t": "bres", "id": 1, "results": []})
bad("missing_field_breq_items", H2W, "missing_field", msg={"t": "breq", "id": 1, "op": "f"})
bad("missing_field_breq_op", H2W, "missing_field", msg={"t": "breq", "id": 1, "items": []})
bad("missing_field_bres_results", W2H, "missing_field", msg={"t": "bres", "id": 1})
bad("missing_field_bres_result_ok", W2H, "missing_field", msg={"t": "bres", "id": 1, "results": [{"result": 1}]})
bad("missing_field_bres_result_error", W2H, "missing_field", msg={"t": "bres", "id": 1, "results": [{"ok": False}]})
bad("missing_field_bres_result_error_message", W2H, "missing_field", msg={"t": "bres", "id": 1, "results": [
    {"ok": False, "error": {"category": "internal", "type": "E"}}]})
bad("bad_field_breq_items_not_array", H2W, "bad_field", msg={"t": "breq", "id": 1, "op": "f", "items": {"x": 1}})
bad("bad_field_breq_traceparent_int", H2W, "bad_field", msg={"t": "breq", "id": 1, "op": "f", "items": [{}], "traceparent": 1})
bad("bad_field_breq_item_not_map", H2W, "bad_field", msg={"t": "breq", "id": 1, "op": "f", "items": [{}, 3]})
bad("bad_field_bres_results_not_array", W2H, "bad_field", msg={"t": "bres", "id": 1, "results": {"ok": True}})
bad("bad_field_bres_result_not_map", W2H, "bad_field", msg={"t": "bres", "id": 1, "results": [True]})
bad("bad_field_bres_result_ok_int", W2H, "bad_field", msg={"t": "bres", "id": 1, "results": [{"ok": 1}]})
bad("bad_field_hello_worker_batched_array", W2H, "bad_field", msg={
    "t": "hello", "version": 1, "pid": 1, "framework": {"name": "x", "version": ""}, "capabilities": [],
    "handlers": {}, "batched": ["predict"]})

# --- depth: no value nests more than MAX_DEPTH arrays/maps (the envelope map not counted) -------
MAX_DEPTH = 256


def nest(n: int, leaf=None):
    """``leaf`` inside n arrays."""
    v = leaf
    for _ in range(n):
        v = [v]
    return v


def nest_maps(n: int, leaf=None):
    v = leaf
    for _ in range(n):
        v = {"k": v}
    return v


# at the limit: the args map is level 1, so its value may nest 255 deep
ok("req_args_at_max_depth", H2W, {"t": "req", "id": 16, "op": "echo", "args": {"v": Nest(MAX_DEPTH - 2, [1])}})
ok("res_result_at_max_depth", W2H, {"t": "res", "id": 10, "ok": True, "result": Nest(MAX_DEPTH - 1, {})})
# one level more: a message-level error, the stream stays in sync and the id is still read
bad("too_deep_req_args", H2W, "too_deep", msg={"t": "req", "id": 17, "op": "echo", "args": {"v": nest(MAX_DEPTH)}})
bad("too_deep_res_result", W2H, "too_deep", msg={"t": "res", "id": 11, "ok": True, "result": nest(MAX_DEPTH + 1)})
bad("too_deep_chunk_data_maps", W2H, "too_deep", msg={"t": "chunk", "id": 12, "data": nest_maps(MAX_DEPTH + 1, 1)})
bad("too_deep_unknown_field", W2H, "too_deep", msg={"t": "end", "id": 13, "trace": nest(MAX_DEPTH + 1, 1)})
# far deeper than msgpack-python decodes (1,024 levels for a whole payload): still a too_deep
# message, not a malformed stream
bad("too_deep_req_args_beyond_decoders", H2W, "too_deep", msg={
    "t": "req", "id": 18, "op": "echo", "args": {"v": Raw(b"\x91" * 1100 + b"\x01", None)}})
bad("too_deep_res_result_before_id", W2H, "too_deep", msg={
    "t": "res", "ok": True, "result": Raw(b"\x91" * 1100 + b"\xc0", None), "id": 14})


def main() -> None:
    text = json.dumps(CASES, indent=1, ensure_ascii=False) + "\n"
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {len(CASES)} cases to {OUT}")


if __name__ == "__main__":
    main()
