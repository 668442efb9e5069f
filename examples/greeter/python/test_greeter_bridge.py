"""Tests of the "greeter" bridge (scaffolded by `mlbridge new-bridge greeter`)."""

import asyncio

import pytest

from mlbridge_worker.errors import InvalidArgument, NotFound
from greeter_bridge import GreeterBridge


@pytest.fixture
def bridge():
    b = GreeterBridge()
    b._initialize_framework()
    return b


def test_handler_kinds(bridge):
    kinds = bridge.handler_kinds()
    assert (kinds["predict"], kinds["generate"], kinds["stream_words"]) == ("sync", "async", "async_gen")


def test_predict(bridge):
    assert bridge.predict("hi") == {"label": "short", "length": 2}
    with pytest.raises(InvalidArgument):
        bridge.predict(42)


def test_generate_and_stream(bridge):
    assert asyncio.run(bridge.generate("abc")) == "cba"

    async def collect():
        return [w async for w in bridge.stream_words("one two three")]

    assert asyncio.run(collect()) == ["one", "two", "three"]


def test_model_resource(bridge):
    bridge.define_resource("m", "model", 1, {"prefix": "x-"})
    assert bridge.execute("m", {"text": "hello"}) == {"label": "x-short", "length": 5}
    with pytest.raises(InvalidArgument):
        bridge.define_resource("bad", "model", 1, {"prefix": 3})
    with pytest.raises(NotFound):
        bridge.predict("hi", model_id="nope")
