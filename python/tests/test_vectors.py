"""The shared vectors (spec/vectors/messages.json): Python must agree with every case."""

import json
import pathlib

import msgpack
import pytest

from mlbridge_worker.protocol import (
    DEFAULT_MAX_FRAME,
    ERROR_KINDS,
    FrameDecoder,
    ProtocolError,
    decode_frames,
    encode_frame,
    validate,
)

VECTORS = pathlib.Path(__file__).resolve().parents[2] / "spec" / "vectors" / "messages.json"
CASES = json.loads(VECTORS.read_text(encoding="utf-8"))


def from_json(v):
    if isinstance(v, dict):
        if set(v) == {"$bin"}:
            return bytes.fromhex(v["$bin"])
        if set(v) == {"$ext"}:
            t, h = v["$ext"]
            return msgpack.ExtType(t, bytes.fromhex(h))
        if set(v) == {"$nest"}:  # a value inside n single-element arrays
            n, leaf = v["$nest"]
            out = from_json(leaf)
            for _ in range(n):
                out = [out]
            return out
        return {k: from_json(x) for k, x in v.items()}
    if isinstance(v, list):
        return [from_json(x) for x in v]
    return v


def strict_equal(a, b) -> bool:
    """Equality that also compares types (1 != 1.0 != True here)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(strict_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b))
    return a == b


def decode_case(case):
    data = bytes.fromhex(case["hex"])
    msgs = decode_frames(data, case.get("max_frame", DEFAULT_MAX_FRAME))
    assert len(msgs) == 1, f"{case['name']}: a case holds exactly one frame"
    validate(msgs[0], case["direction"])
    return msgs[0]


def test_file_shape():
    assert isinstance(CASES, list) and len(CASES) > 50
    names = [c["name"] for c in CASES]
    assert len(names) == len(set(names)), "case names are unique"
    for c in CASES:
        assert c["direction"] in ("host_to_worker", "worker_to_host")
        assert ("message" in c) != ("error" in c), c["name"]
        if "error" in c:
            assert c["error"] in ERROR_KINDS, c["name"]
    kinds = {c["error"] for c in CASES if "error" in c}
    assert kinds == set(ERROR_KINDS), f"every error kind is covered; missing {set(ERROR_KINDS) - kinds}"
    types = {(c["direction"], c["message"]["t"]) for c in CASES if "message" in c}
    for t in ("hello", "req", "cancel", "ping", "pong", "shutdown"):
        assert ("host_to_worker", t) in types
    for t in ("hello", "res", "chunk", "end", "ping", "pong"):
        assert ("worker_to_host", t) in types


def test_vectors_are_up_to_date():
    """generate.py reproduces the committed file byte for byte (deterministic)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("vector_gen", VECTORS.with_name("generate.py"))
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    text = json.dumps(gen.CASES, indent=1, ensure_ascii=False) + "\n"
    assert text == VECTORS.read_text(encoding="utf-8")


@pytest.mark.parametrize("case", [c for c in CASES if "message" in c], ids=lambda c: c["name"])
def test_valid_case(case):
    msg = decode_case(case)
    want = from_json(case["message"])
    assert strict_equal(msg, want), f"{msg!r} != {want!r}"
    # re-encoding decodes back to the same message
    again = decode_frames(encode_frame(msg))
    assert len(again) == 1 and strict_equal(again[0], want)
    validate(again[0], case["direction"])


@pytest.mark.parametrize("case", [c for c in CASES if "error" in c], ids=lambda c: c["name"])
def test_invalid_case(case):
    with pytest.raises(ProtocolError) as ei:
        decode_case(case)
    assert ei.value.kind == case["error"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["name"])
def test_byte_by_byte_feed_agrees(case):
    """Feeding one byte at a time gives the same outcome as one whole chunk."""
    data = bytes.fromhex(case["hex"])
    dec = FrameDecoder(case.get("max_frame", DEFAULT_MAX_FRAME))
    msgs = []
    try:
        for i in range(len(data)):
            msgs += dec.feed(data[i : i + 1])
        dec.close()
        assert len(msgs) == 1
        validate(msgs[0], case["direction"])
    except ProtocolError as e:
        assert case.get("error") == e.kind, case["name"]
    else:
        assert "message" in case, case["name"]
        assert strict_equal(msgs[0], from_json(case["message"]))
