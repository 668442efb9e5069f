"""Framing and message validation beyond the shared vectors."""

import struct

import msgpack
import pytest

from mlbridge_worker.protocol import (
    HOST_TO_WORKER,
    WORKER_TO_HOST,
    FrameDecoder,
    ProtocolError,
    check_req,
    decode_frames,
    decode_message,
    encode_frame,
    validate,
)


def test_encode_frame_layout():
    f = encode_frame({"t": "end", "id": 3})
    (n,) = struct.unpack(">I", f[:4])
    assert n == len(f) - 4
    assert msgpack.unpackb(f[4:]) == {"t": "end", "id": 3}


def test_bytes_travel_as_bin_not_str():
    f = encode_frame({"t": "chunk", "id": 1, "data": b"\x00\xff"})
    assert b"\xc4\x02\x00\xff" in f  # bin8, length 2
    assert decode_frames(f)[0]["data"] == b"\x00\xff"


def test_many_frames_in_one_chunk_and_split_anywhere():
    msgs = [{"t": "req", "id": i, "op": "echo", "args": {"value": "x" * i}} for i in range(50)]
    stream = b"".join(encode_frame(m) for m in msgs)
    assert decode_frames(stream) == msgs
    for cut in (1, 3, 4, 5, 7, 64, 1000):
        dec = FrameDecoder()
        out = []
        for i in range(0, len(stream), cut):
            out += dec.feed(stream[i : i + cut])
        dec.close()
        assert out == msgs, cut


def test_max_frame_checked_before_payload_is_buffered():
    dec = FrameDecoder(max_frame=100)
    with pytest.raises(ProtocolError) as ei:
        dec.feed(struct.pack(">I", 101))  # only the header: no payload needed to refuse
    assert ei.value.kind == "frame_too_large"
    assert ei.value.frame_level
    assert dec.buffered <= 4


def test_large_frame_accepted_up_to_max():
    payload = msgpack.packb({"t": "chunk", "id": 1, "data": b"z" * 1_000_000}, use_bin_type=True)
    dec = FrameDecoder(max_frame=len(payload))
    data = struct.pack(">I", len(payload)) + payload
    out = []
    for i in range(0, len(data), 65536):
        out += dec.feed(data[i : i + 65536])
    dec.close()
    assert len(out) == 1 and len(out[0]["data"]) == 1_000_000


def test_truncated_only_at_close():
    dec = FrameDecoder()
    f = encode_frame({"t": "ping", "seq": 1})
    assert dec.feed(f[:-1]) == []
    with pytest.raises(ProtocolError) as ei:
        dec.close()
    assert ei.value.kind == "truncated"


def test_decoder_refuses_after_error():
    dec = FrameDecoder()
    with pytest.raises(ProtocolError):
        dec.feed(b"\x00\x00\x00\x00")
    with pytest.raises(ProtocolError):
        dec.feed(encode_frame({"t": "ping", "seq": 1}))


def test_message_errors_are_not_frame_level():
    with pytest.raises(ProtocolError) as ei:
        validate({"t": "nope"}, HOST_TO_WORKER)
    assert ei.value.kind == "unknown_type" and not ei.value.frame_level


def test_req_error_carries_readable_id():
    with pytest.raises(ProtocolError) as ei:
        check_req({"t": "req", "id": 12, "op": 5})
    assert ei.value.kind == "bad_field" and ei.value.id == 12
    with pytest.raises(ProtocolError) as ei:
        check_req({"t": "req", "id": "12", "op": "x"})
    assert ei.value.kind == "bad_field" and ei.value.id is None


def test_op_not_utf8_is_named_so():
    # decoded with surrogateescape, it is a str: "must be a string, got str" said nothing
    op = b"summarize\xff".decode("utf-8", "surrogateescape")
    with pytest.raises(ProtocolError) as ei:
        check_req({"t": "req", "id": 3, "op": op})
    assert ei.value.kind == "bad_field" and "not valid UTF-8" in str(ei.value)


def test_check_req_defaults():
    assert check_req({"t": "req", "id": 1, "op": "x"}) == (1, "x", {}, None, False)
    assert check_req({"t": "req", "id": 1, "op": "x", "args": {"a": 1}, "deadline": 5, "stream": True}) == (
        1, "x", {"a": 1}, 5, True)


def test_decode_message_validates_direction():
    f = encode_frame({"t": "res", "id": 1, "ok": True})
    assert decode_message(f, WORKER_TO_HOST)["ok"] is True
    with pytest.raises(ProtocolError) as ei:
        decode_message(f, HOST_TO_WORKER)
    assert ei.value.kind == "unknown_type"


@pytest.mark.parametrize("garbage", [
    b"\xc1" * 10, b"\xff\xff", bytes(range(256)), b"\x00\x00\x00\x05\x81\xa1t\xc0", b"\x00\x00\x00\x02\x92\x01",
])
def test_garbage_raises_protocol_error_only(garbage):
    dec = FrameDecoder(max_frame=1 << 20)
    try:
        for m in dec.feed(garbage):
            validate(m, HOST_TO_WORKER)
        dec.close()
    except ProtocolError as e:
        assert e.kind
    else:
        pytest.fail("garbage accepted")


def test_fuzz_random_bytes_never_escape_protocol_error():
    import random

    rnd = random.Random(1234)
    for _ in range(3000):
        n = rnd.randrange(0, 40)
        body = bytes(rnd.randrange(256) for _ in range(n))
        data = struct.pack(">I", len(body)) + body if rnd.random() < 0.8 else body
        dec = FrameDecoder(max_frame=1 << 16)
        try:
            for m in dec.feed(data):
                for d in (HOST_TO_WORKER, WORKER_TO_HOST):
                    try:
                        validate(m, d)
                    except ProtocolError:
                        pass
            dec.close()
        except ProtocolError:
            pass
