"""The LangChain tools built from the host's announced functions (langchain_tools), without a
worker: ``host`` is replaced by a stand-in with the same three methods."""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.tools import StructuredTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from mlbridge_worker.errors import InvalidArgument, NotFound
from mlbridge_worker.frameworks import langchain_tools
from mlbridge_worker.frameworks.langchain_models import build_model, describe_model
from mlbridge_worker.host import Host

WEATHER = {"description": "Current weather in a city",
           "schema": {"type": "object", "properties": {"city": {"type": "string", "description": "the city's name"}},
                      "required": ["city"]}}


class FakeHost(Host):
    """The host's announced functions and calls, without a worker (the real lookup, named)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, str, dict]] = []

    def functions(self) -> dict:
        return {"weather": WEATHER, "noargs": {"description": "", "schema": {}}}

    def call_sync(self, name, args):
        self.calls.append(("sync", name, args))
        if args.get("city") == "Atlantis":
            raise NotFound("no city named 'Atlantis'")
        return {"city": args.get("city"), "temp_c": 21.5}

    async def call(self, name, args):
        self.calls.append(("async", name, args))
        return {"city": args.get("city"), "temp_c": 21.5}


@pytest.fixture
def fake_host(monkeypatch):
    h = FakeHost()
    monkeypatch.setattr(langchain_tools, "host", h)
    return h


def test_tools_from_host_functions(fake_host):
    weather, noargs = langchain_tools.host_tools(["weather", "noargs"])
    assert isinstance(weather, StructuredTool)
    assert weather.name == "weather" and weather.description == "Current weather in a city"
    assert weather.args == WEATHER["schema"]["properties"]
    assert convert_to_openai_tool(weather)["function"]["parameters"] == WEATHER["schema"]
    assert noargs.description == "the host function noargs" and noargs.args == {}
    assert weather.invoke({"city": "Paris"}) == {"city": "Paris", "temp_c": 21.5}
    assert asyncio.run(weather.ainvoke({"city": "Rome"})) == {"city": "Rome", "temp_c": 21.5}
    assert fake_host.calls == [("sync", "weather", {"city": "Paris"}), ("async", "weather", {"city": "Rome"})]


@pytest.mark.parametrize("names", [[], None, "weather", ["weather", 3], ["weather", "stocks"]])
def test_bad_tool_names(fake_host, names):
    with pytest.raises(InvalidArgument):
        langchain_tools.host_tools(names)


def test_loop_records_errors_and_results(fake_host):
    model = build_model({"provider": "fake", "turns": [
        {"tool_calls": [{"name": "weather", "args": {"city": "Atlantis"}}, {"name": "nope", "args": {}}]},
        {"tool_calls": [{"name": "weather", "args": {"city": "Paris"}}]},
        {"content": "21.5"}]})
    tools = langchain_tools.host_tools(["weather"])
    out = langchain_tools.run_sync(model, tools, [], 5)
    assert out["answer"] == "21.5" and out["finished"]
    t = out["trajectory"]
    assert t[0]["error"].startswith("error: not_found:") and "nope" in t[1]["error"]
    assert t[2] == {"tool": "weather", "args": {"city": "Paris"}, "result": {"city": "Paris", "temp_c": 21.5}}


def test_loop_stops_at_max_iters(fake_host):
    model = build_model({"provider": "fake", "turns": [
        {"tool_calls": [{"name": "weather", "args": {"city": "Paris"}}]}] * 3})
    out = asyncio.run(langchain_tools.arun(model, langchain_tools.host_tools(["weather"]), [], 2))
    assert not out["finished"] and len(out["trajectory"]) == 2


def _declared(name: str, meta: dict) -> dict:
    """The tool as a tool-calling model is told about it: the Go name, description and schema."""
    return {"type": "function", "function": {"name": name, "description": meta["description"],
                                             "parameters": meta["schema"]}}


def test_tool_calling_models_are_given_the_go_declaration(fake_host):
    from langchain_openai import ChatOpenAI

    weather, noargs = langchain_tools.host_tools(["weather", "noargs"])
    assert weather.args_schema == WEATHER["schema"]  # the Go JSON Schema, as is
    # a real tool-calling model (no connection is made to bind): what it would send
    bound = ChatOpenAI(model="m", api_key="unused", base_url="http://127.0.0.1:9/v1").bind_tools([weather, noargs])
    sent = bound.kwargs["tools"]
    assert sent[0] == _declared("weather", WEATHER)
    assert sent[1]["function"]["name"] == "noargs" and sent[1]["function"]["description"] == "the host function noargs"
    # the fake model the tests script records the same, and describe shows it
    model = build_model({"provider": "fake", "turns": [{"content": "ok"}]})
    assert describe_model(model)["bound_tools"] == []
    out = langchain_tools.run_sync(model, [weather, noargs], [], 2)
    assert out["finished"] and describe_model(model)["bound_tools"] == sent
