"""The protocol's value limits (spec/protocol.md, "Values"): nesting depth and frame size, both
known before a value is encoded, and never an empty error message."""

from __future__ import annotations

import tracemalloc
from typing import Any

import msgpack
import pytest

from limit_bridges import nest
from mlbridge_worker.errors import BridgeError, InvalidArgument, error_map, exc_text, exception_to_error
from mlbridge_worker.output import OutputMixin
from mlbridge_worker.protocol import (
    HOST_TO_WORKER,
    MAX_DEPTH,
    FrameDecoder,
    FrameTooLarge,
    ProtocolError,
    ValueTooDeep,
    decode_frames,
    decode_payload,
    encode_frame,
    pack_header,
    validate,
    value_size,
)

LIMITS = "limit_bridges:LimitBridge"


def deep_req(id: int, depth: int, id_first: bool = True) -> bytes:
    """A req frame whose args hold a value nested ``depth`` deep, built by hand (msgpack-python
    will not pack more than ~1,000 levels)."""
    head = b"\x84\xa1t\xa3req"
    idf = b"\xa2id" + msgpack.packb(id)
    rest = b"\xa2op\xa4echo\xa4args\x81\xa5value" + b"\x91" * (depth - 1) + b"\x01"
    payload = head + idf + rest if id_first else head + rest + idf
    return pack_header(len(payload)) + payload


# ------------------------------------------------------------------------------ value_size


def test_depth_limit_is_exact():
    assert value_size(nest(MAX_DEPTH)) > 0
    assert value_size(nest(MAX_DEPTH - 1, [])) > 0  # an empty array is a level too
    with pytest.raises(ValueTooDeep):
        value_size(nest(MAX_DEPTH + 1))
    with pytest.raises(ValueTooDeep):
        value_size(nest(MAX_DEPTH, []))
    maps: Any = 1
    for _ in range(MAX_DEPTH + 1):
        maps = {"k": maps}
    with pytest.raises(ValueTooDeep):
        value_size(maps)
    with pytest.raises(ValueTooDeep):  # a tuple key packs as an array: it counts
        value_size(nest(MAX_DEPTH - 1, {(1,): 2}))


def test_cyclic_value_is_too_deep_not_a_recursion_error():
    v: list = []
    v.append(v)
    with pytest.raises(ValueTooDeep):
        value_size(v)


@pytest.mark.parametrize("v", [
    None, True, 0, -1, 2**64 - 1, 1.5, "", "héllo", b"\x00" * 300, bytearray(b"ab"), memoryview(b"abc"),
    [1, 2.5, "x", None], list(range(1000)), [0.1] * 100, {"a": 1, "b": [b"x" * 70000, {"c": 2.0}]},
    {1: "int key", (1, 2): "tuple key"}, ("tuple", 1), [msgpack.ExtType(1, b"\x00" * 20)],
    [{"a": i, "b": "x" * 10, "c": 1.5} for i in range(100)], ["s" * i for i in range(40)],
])
def test_size_is_a_lower_bound(v):
    assert value_size(v) <= len(msgpack.packb(v, use_bin_type=True))


def test_size_walk_stops_at_the_room():
    with pytest.raises(FrameTooLarge) as ei:
        value_size([[b"x" * 1000]] * 100, room=10_000, limit=12_345)
    assert "12345" in str(ei.value)
    # it stopped at the first element that passed the room, and reports the bound so far
    assert 10_000 < ei.value.at_least <= 10_000 + 1002
    with pytest.raises(FrameTooLarge):  # a million elements are a million bytes at least: no walk
        value_size([None] * 1_000_000, room=10_000)


# ------------------------------------------------------------------------------ output path


class _Out(OutputMixin):
    """The output half of a Runtime: frames go to a list."""

    def __init__(self, out_max: int):
        self.out_max = out_max
        self._pack = msgpack.Packer(use_bin_type=True).pack
        self.frames: list[bytes] = []

    def write(self, data) -> None:
        self.frames.append(bytes(data))

    def messages(self) -> list[dict]:
        return decode_frames(b"".join(self.frames), 1 << 30)


MAX = 8 << 20


@pytest.mark.parametrize("name,make", [
    ("bytes", lambda: b"x" * (3 * MAX)),
    ("str", lambda: "x" * (3 * MAX)),
    ("floats", lambda: [0.25] * (3 * MAX // 9)),
    ("shared bytes", lambda: [b"y" * (1 << 20)] * 24),  # 1 MiB in memory, 24 MiB encoded
    ("nested", lambda: {"rows": [{"blob": b"z" * (1 << 20), "n": i} for i in range(24)]}),
])
def test_result_over_max_frame_refused_before_encoding(name, make):
    """A result of 3x the host's max frame is refused as `serialization` having allocated almost
    nothing: the old path packed it, joined it to its envelope and prefixed the header (~4x)."""
    out = _Out(MAX)
    result = make()
    tracemalloc.start()
    try:
        out.send_result(7, result)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 256 << 10, f"{name}: refusing cost {peak} bytes"
    [m] = out.messages()
    assert m["id"] == 7 and m["ok"] is False
    assert m["error"]["category"] == "serialization"
    assert m["error"]["type"] == "FrameTooLarge"
    assert str(MAX) in m["error"]["message"]


def test_result_just_under_max_frame_is_sent_whole():
    out = _Out(1 << 20)
    head = len(b"\x84\xa1t\xa3res\xa2id\x07\xa2ok\xc3\xa6result")
    body = b"q" * ((1 << 20) - head - 5)  # bin32 header: 5 bytes
    out.send_result(7, body)
    [m] = out.messages()
    assert m["ok"] and m["result"] == body
    assert sum(map(len, out.frames)) == 4 + (1 << 20)
    out.frames.clear()
    out.send_result(8, body + b"!")  # one byte over
    [m] = out.messages()
    assert m["error"]["type"] == "FrameTooLarge"


def test_int_heavy_result_over_the_bound_is_still_refused():
    """Ints count 1 byte in the bound (up to 9 encoded): such a result is packed, then refused."""
    out = _Out(1 << 20)
    out.send_result(1, [2**40] * 200_000)  # bound 200 KB, 1.8 MB encoded
    [m] = out.messages()
    assert m["error"]["category"] == "serialization" and m["error"]["type"] == "FrameTooLarge"


def test_result_too_deep_is_a_serialization_error():
    out = _Out(1 << 20)
    out.send_result(1, nest(MAX_DEPTH))
    out.send_result(2, nest(MAX_DEPTH + 1))
    ok, deep = out.messages()
    assert ok["ok"] and ok["result"] == nest(MAX_DEPTH)
    assert deep["id"] == 2 and deep["error"]["category"] == "serialization"
    assert deep["error"]["type"] == "ValueTooDeep"
    assert str(MAX_DEPTH) in deep["error"]["message"]


def test_chunk_refused_before_encoding():
    out = _Out(MAX)
    with pytest.raises(FrameTooLarge):
        out._pack_chunk(3, b"x" * (3 * MAX))
    with pytest.raises(ValueTooDeep):
        out._pack_chunk(3, nest(MAX_DEPTH + 1))
    payload = out._pack_chunk(3, {"a": [1, b"2"]})
    assert msgpack.unpackb(payload) == {"t": "chunk", "id": 3, "data": {"a": [1, b"2"]}}


# ------------------------------------------------------------------------------ reading


def test_too_deep_frame_keeps_the_stream_in_sync():
    after = encode_frame({"t": "req", "id": 2, "op": "noop"})
    for depth in (MAX_DEPTH + 1, 2000):  # caught by the depth check / by msgpack-python's stack
        dec = FrameDecoder()
        err, nxt = dec.feed(deep_req(1, depth) + after)
        assert isinstance(err, ProtocolError) and err.kind == "too_deep" and not err.frame_level
        assert (err.id, err.t) == (1, "req")
        assert "256" in str(err)
        assert nxt == {"t": "req", "id": 2, "op": "noop"}
        with pytest.raises(ProtocolError):
            validate(err, HOST_TO_WORKER)


def test_too_deep_frame_id_after_the_deep_value():
    dec = FrameDecoder()
    [err] = dec.feed(deep_req(5, 2000, id_first=False))
    assert err.kind == "too_deep" and err.id is None  # unreadable past the value: dropped
    [err] = dec.feed(deep_req(5, MAX_DEPTH + 1, id_first=False))
    assert err.kind == "too_deep" and err.id == 5  # decodable whole: the id is known


def test_at_the_limit_decodes():
    msg = decode_payload(deep_req(1, MAX_DEPTH - 1)[4:])  # the args map is level 1
    assert msg["args"]["value"] == nest(MAX_DEPTH - 2)


# ------------------------------------------------------------------------------ messages


class _Mute(Exception):
    def __str__(self) -> str:
        raise RuntimeError("broken __str__")


def test_error_messages_are_never_empty():
    assert exc_text(ValueError()) == "ValueError"
    assert exc_text(_Mute()) == "_Mute"
    assert exc_text(msgpack.StackError()) == "StackError"
    assert exception_to_error(RuntimeError())["message"] == "RuntimeError"
    assert exception_to_error(InvalidArgument(""))["message"] == "InvalidArgument"
    assert exception_to_error(BridgeError("", type_name="LMError"))["message"] == "LMError"
    assert error_map("internal", "KeyError", "")["message"] == "KeyError"
    assert error_map("internal", "", "")["message"] == "internal"
    # a malformed payload's text used to end on "invalid msgpack: " (StackError() is empty)
    with pytest.raises(ProtocolError) as ei:
        decode_payload(b"\x81\xa1t\xc1")
    assert not str(ei.value).endswith(": ")


# ------------------------------------------------------------------------------ a real worker


@pytest.fixture
def limits(make_worker):
    w = make_worker(LIMITS)
    w.hello(max_frame=1 << 20)
    return w


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1100, 100_000])
def test_worker_answers_a_request_too_deep_and_lives(limits, depth):
    """A request nested past msgpack-python's 1,024 levels used to be a malformed stream: the
    worker exited (code 3) and every call in flight on it failed, with an empty message."""
    slow = limits.request("sleep_echo", {"value": "slow", "seconds": 0.3})
    limits.send_raw(deep_req(1000, depth))
    m = limits.next_for(1000)
    assert m["ok"] is False and m["error"]["category"] == "invalid_argument", m
    assert m["error"]["type"] == "ValueTooDeep" and "256" in m["error"]["message"]
    assert limits.next_for(slow)["result"] == "slow"  # the call in flight was not harmed
    assert limits.ok("echo", {"value": nest(MAX_DEPTH - 1)}) == nest(MAX_DEPTH - 1)


def test_worker_drops_a_frame_whose_id_cannot_be_read(limits):
    limits.send_raw(deep_req(1000, 2000, id_first=False))
    limits.wait_stderr("dropped a frame (too_deep)")
    assert limits.ok("noop") is None


@pytest.mark.parametrize("op", ["nest", "sync_nest"])
def test_worker_refuses_a_result_too_deep(limits, op):
    assert limits.ok(op, {"depth": MAX_DEPTH}) == nest(MAX_DEPTH)
    err = limits.call(op, {"depth": MAX_DEPTH + 1})["error"]
    assert err["category"] == "serialization" and err["type"] == "ValueTooDeep"
    err = limits.call(op, {"depth": 5000})["error"]  # past msgpack's own limit too
    assert err["category"] == "serialization" and err["type"] == "ValueTooDeep"
    assert limits.ok("noop") is None


def test_worker_refuses_cyclic_and_too_big_results(limits):
    assert limits.call("cyclic")["error"]["type"] == "ValueTooDeep"
    for op, args in (("floats", {"n": 400_000}), ("shared", {"n": 1 << 20, "times": 3}), ("big", {"n": 3 << 20})):
        err = limits.call(op, args)["error"]
        assert (err["category"], err["type"]) == ("serialization", "FrameTooLarge"), (op, err)
        assert "1048576" in err["message"]
    assert limits.ok("noop") is None


def test_worker_stream_item_limits(limits):
    items, end = limits.stream("nest_stream", {"depth": MAX_DEPTH + 1})
    assert items == [1] and end["error"]["type"] == "ValueTooDeep"
    items, end = limits.stream("big_stream", {"n": 2 << 20})
    assert items == [b"x"] and end["error"]["type"] == "FrameTooLarge"
    assert limits.ok("noop") is None


@pytest.mark.parametrize("type_", ["ValueError", "RuntimeError", "KeyError"])
def test_worker_exception_without_text_has_a_message(limits, type_):
    err = limits.call("fail_empty", {"type": type_})["error"]
    assert err["type"] == type_ and err["message"] == type_


def test_frame_header_layout_for_large_results(limits):
    """A large result goes out as two writes (no extra copy): the frame must still be whole."""
    data = limits.ok("big", {"n": 900_000})
    assert data == bytes(900_000)
