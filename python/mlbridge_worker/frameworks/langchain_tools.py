"""LangChain tools that are Go functions, and the tool-calling agent that uses them.

Mirrors dspy_tools.py: each tool takes its name, description and argument schema (JSON Schema)
from what the host announced in the hello (:func:`host.functions`), so the model sees the Go
function as the Go side described it. The tool's coroutine awaits ``host.call`` (async handlers,
on the worker's loop); its func calls ``host.call_sync`` (sync handler threads). Either way the
call belongs to the request running the agent: deadline, cancellation and span are inherited.

The agent (chain kind ``tool_agent``) binds the tools to a tool-calling chat model
(``model.bind_tools``) and runs the loop model -> tool calls -> ToolMessages -> model, at most
``max_iters`` model calls. A failing Go tool (any BridgeError but a cancel) is shown to the model
as the tool's result, ``"error: <category>: <message>"``, and recorded in the trajectory, as
DSPy's ReAct does; a cancelled host call (HostCallCancelled) or a cancelled task ends the run.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.tools import StructuredTool

from ..errors import BridgeError, InvalidArgument
from ..host import HostCallCancelled, host


def host_tool(name: str, meta: dict) -> StructuredTool:
    """A StructuredTool whose function is the host function ``name``."""
    schema = meta.get("schema") or {}
    if not isinstance(schema, dict) or not schema:
        schema = {"type": "object", "properties": {}}

    def call(**kwargs: Any) -> Any:
        return host.call_sync(name, kwargs)

    async def acall(**kwargs: Any) -> Any:
        # the async path awaits on the loop: call_sync would refuse to block it
        return await host.call(name, kwargs)

    return StructuredTool(name=name, description=meta.get("description") or f"the host function {name}",
                          args_schema=schema, func=call, coroutine=acall)


def host_tools(names: Any) -> list[StructuredTool]:
    """The tools an agent spec names, each a registered host function."""
    return [host_tool(n, meta) for n, meta in host.named(names, "a tool_agent").items()]


def bind(model: BaseChatModel, tools: list[StructuredTool]) -> Any:
    try:
        return model.bind_tools(tools)
    except NotImplementedError as e:
        raise InvalidArgument(f"the model ({type(model).__name__}) does not support tool calling") from e


def _error(e: BaseException) -> str:
    category = getattr(e, "category", None) or type(e).__name__
    return f"error: {category}: {e}"


class _Run:
    """One agent run: the messages so far and the trajectory."""

    def __init__(self, tools: list[StructuredTool], messages: list[BaseMessage], max_iters: int):
        self.tools = {t.name: t for t in tools}
        self.messages = list(messages)
        self.max_iters = max_iters
        self.trajectory: list[dict] = []

    def calls(self, reply: BaseMessage) -> list[dict]:
        self.messages.append(reply)
        return list(getattr(reply, "tool_calls", None) or [])

    def record(self, call: dict, result: Any = None, error: BaseException | None = None) -> None:
        step = {"tool": call["name"], "args": call.get("args") or {}}
        if error is not None:
            step["error"] = _error(error)
            content: Any = step["error"]
        else:
            step["result"] = result
            content = result if isinstance(result, str) else _json(result)
        self.trajectory.append(step)
        self.messages.append(ToolMessage(content=content, tool_call_id=call.get("id") or call["name"],
                                         name=call["name"], status="error" if error is not None else "success"))

    def unknown(self, call: dict) -> BaseException | None:
        if call["name"] in self.tools:
            return None
        return InvalidArgument(f"no tool named {call['name']!r} (have: {', '.join(self.tools)})")

    def result(self, finished: bool) -> dict:
        last = self.messages[-1]
        return {"answer": last.text if isinstance(last, AIMessage) else "", "finished": finished,
                "trajectory": self.trajectory}


def _json(v: Any) -> str:
    try:
        return json.dumps(v, default=str)
    except (TypeError, ValueError):
        return str(v)


def _loop(run: _Run) -> Generator[tuple[str, Any], Any, dict]:
    """The agent loop, once for both drivers: it yields ("model", messages) and ("tool", call)
    and is sent the reply or the tool's result (or thrown the tool's exception)."""
    for _ in range(run.max_iters):
        calls = run.calls((yield "model", run.messages))
        if not calls:
            return run.result(True)
        for call in calls:
            err = run.unknown(call)
            if err is not None:
                run.record(call, error=err)
                continue
            try:
                out = yield "tool", call
            except HostCallCancelled:
                raise
            except (BridgeError, TypeError) as e:
                run.record(call, error=e)
            else:
                run.record(call, out)
    return run.result(False)


async def arun(model: BaseChatModel, tools: list[StructuredTool], messages: list[BaseMessage],
               max_iters: int) -> dict:
    bound, run = bind(model, tools), _Run(tools, messages, max_iters)
    loop = _loop(run)
    step = next(loop)
    try:
        while True:
            kind, what = step
            if kind == "model":
                step = loop.send(await bound.ainvoke(what))
                continue
            try:
                out = await run.tools[what["name"]].coroutine(**(what.get("args") or {}))
            except BaseException as e:  # the loop decides: recorded, or raised through
                step = loop.throw(e)
            else:
                step = loop.send(out)
    except StopIteration as done:
        return done.value


def run_sync(model: BaseChatModel, tools: list[StructuredTool], messages: list[BaseMessage],
             max_iters: int) -> dict:
    bound, run = bind(model, tools), _Run(tools, messages, max_iters)
    loop = _loop(run)
    step = next(loop)
    try:
        while True:
            kind, what = step
            if kind == "model":
                step = loop.send(bound.invoke(what))
                continue
            try:
                out = run.tools[what["name"]].func(**(what.get("args") or {}))
            except BaseException as e:  # the loop decides: recorded, or raised through
                step = loop.throw(e)
            else:
                step = loop.send(out)
    except StopIteration as done:
        return done.value
