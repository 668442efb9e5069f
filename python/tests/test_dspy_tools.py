"""The DSPy tools built from the host's announced functions (dspy_tools.py) and a ReAct agent
using them, without a worker: ``host`` is replaced by a stand-in with the announcement and the
calls. What DSPy sees (the Tool objects, ReAct's prompt in the DummyLM's history) must be what
Go declared; a failing tool is an observation; a cancelled one ends the run."""

from __future__ import annotations

import asyncio

import dspy
import pytest

from mlbridge_worker.errors import NotFound
from mlbridge_worker.frameworks import dspy_tools
from mlbridge_worker.frameworks.dspy_bridge import DSPyBridge
from mlbridge_worker.frameworks.dspy_metrics import GoFailed
from mlbridge_worker.host import Host, HostCallCancelled

# What mlbridge.Func announces for func(ctx, struct{City string `json:"city" desc:"..."`;
# Units string `json:"units,omitempty"`}) and for one without arguments: units is optional.
WEATHER = {"description": "Current weather in a city",
           "schema": {"type": "object", "properties": {"city": {"type": "string", "description": "the city's name"},
                                                       "units": {"type": "string"}},
                      "required": ["city"]}}
LOCAL_TIME = {"description": "Local time in a city",
              "schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


class FakeHost(Host):
    """The announced functions and their calls, without a worker (the real lookup, named)."""

    def __init__(self, cancel: bool = False) -> None:
        super().__init__()
        self.calls: list[tuple[str, str, dict]] = []
        self.cancel = cancel

    def functions(self) -> dict:
        return {"weather": WEATHER, "local_time": LOCAL_TIME, "bare": {"description": "", "schema": {}}}

    def _answer(self, name: str, args: dict):
        if self.cancel:
            raise HostCallCancelled("request 7 was cancelled")
        if args.get("city") == "Atlantis":
            raise NotFound("no city named 'Atlantis'")
        return "12:00" if name == "local_time" else {"city": args.get("city"), "temp_c": 21.5}

    def call_sync(self, name, args):
        self.calls.append(("sync", name, args))
        return self._answer(name, args)

    async def call(self, name, args):
        self.calls.append(("async", name, args))
        return self._answer(name, args)


@pytest.fixture
def fake_host(monkeypatch) -> FakeHost:
    h = FakeHost()
    monkeypatch.setattr(dspy_tools, "host", h)
    return h


def test_tools_carry_the_go_declaration(fake_host):
    weather, local_time, bare = dspy_tools.host_tools(["weather", "local_time", "bare"])
    assert isinstance(weather, dspy.Tool)
    assert (weather.name, weather.desc) == ("weather", "Current weather in a city")
    assert weather.args == WEATHER["schema"]["properties"]
    # the function-calling form is the Go schema: units stays optional (DSPy alone would
    # make every argument without a default required)
    fc = weather.format_as_litellm_function_call()["function"]
    assert fc == {"name": "weather", "description": "Current weather in a city", "parameters": WEATHER["schema"]}
    assert local_time.format_as_litellm_function_call()["function"]["parameters"] == LOCAL_TIME["schema"]
    # what ReAct writes into its instructions for each tool
    assert str(weather) == ("weather, whose description is <desc>Current weather in a city</desc>. It takes arguments "
                            f"{WEATHER['schema']['properties']}.")
    assert bare.desc == "the host function bare" and bare.args == {}
    assert bare.format_as_litellm_function_call()["function"]["parameters"] == {"type": "object", "properties": {}}
    assert weather(city="Paris") == {"city": "Paris", "temp_c": 21.5}
    assert asyncio.run(local_time.acall(city="Rome")) == "12:00"
    assert fake_host.calls == [("sync", "weather", {"city": "Paris"}), ("async", "local_time", {"city": "Rome"})]


def bridge_with_react(answers: list[dict]) -> DSPyBridge:
    b = DSPyBridge()
    b._initialize_framework()
    b.configure_lm({"provider": "dummy", "answers": answers})
    b.define_resource("agent", "program", 1, {"signature": "question -> answer", "module": "ReAct",
                                              "tools": ["weather", "local_time"], "max_iters": 5})
    return b


STEPS = [
    {"next_thought": "Atlantis first", "next_tool_name": "weather", "next_tool_args": {"city": "Atlantis"}},
    {"next_thought": "the time", "next_tool_name": "local_time", "next_tool_args": {"city": "Paris"}},
    {"next_thought": "done", "next_tool_name": "finish", "next_tool_args": {}},
    {"reasoning": "noon", "answer": "12:00 in Paris"},
]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_react_prompt_shows_the_tools_and_the_error(fake_host, mode):
    b = bridge_with_react(STEPS)
    if mode == "sync":
        out = b.execute_program("agent", {"question": "time in Paris?"})
    else:
        out = asyncio.run(b.execute_program_async("agent", {"question": "time in Paris?"}))
    assert out["answer"] == "12:00 in Paris"
    assert [c[1:] for c in fake_host.calls] == [("weather", {"city": "Atlantis"}), ("local_time", {"city": "Paris"})]
    traj = out["trajectory"]
    assert traj["observation_0"].startswith("Execution error in weather:") and "NotFound" in traj["observation_0"]
    assert "no city named 'Atlantis'" in traj["observation_0"] and traj["observation_1"] == "12:00"

    history = b.lm.history  # what DSPy sent the DummyLM: dspy.inspect_history's source
    assert len(history) == 4
    system = history[0]["messages"][0]["content"]
    tools = b.program("agent").module.tools
    for name in ("weather", "local_time"):
        assert str(tools[name]) in system, f"{name} is not in ReAct's prompt"
    assert "whose description is <desc>Local time in a city</desc>" in system
    # the agent's next step was asked with the error in its trajectory
    assert "no city named 'Atlantis'" in history[1]["messages"][-1]["content"]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_cancelled_tool_call_ends_the_run(monkeypatch, mode):
    h = FakeHost(cancel=True)
    monkeypatch.setattr(dspy_tools, "host", h)
    b = bridge_with_react(STEPS)
    tool = b.program("agent").module.tools["weather"]
    with pytest.raises(GoFailed):  # not an Exception: ReAct cannot turn it into an observation
        tool(city="Paris")
    with pytest.raises(HostCallCancelled):
        if mode == "sync":
            b.execute_program("agent", {"question": "time in Paris?"})
        else:
            asyncio.run(b.execute_program_async("agent", {"question": "time in Paris?"}))
    # one LM call (the step that chose the tool), none after the cancel
    assert len(b.lm.history) == 1 and len(h.calls) == 2
