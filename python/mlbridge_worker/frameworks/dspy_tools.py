"""DSPy tools that are Go functions: a ReAct agent's tools, called through the host
(:mod:`mlbridge_worker.host`).

Each tool takes its name, description and argument schema from what the host announced, so the
LM sees the Go function as the Go side described it: ``args`` are the schema's properties (what
ReAct writes into its prompt), and the function-calling form
(:meth:`HostTool.format_as_litellm_function_call`) is the Go schema itself, ``required`` list
included (DSPy would derive ``required`` from defaults a Go schema does not have). A call made
on DSPy's sync path (a sync handler's thread) uses ``host.call_sync``; on the async path
(``acall``) ``await host.call``. Either way the call is made for the request running the
program: it inherits its deadline, cancellation and span.

A Go error becomes the tool's exception, which ReAct writes into the trajectory as the
observation (the agent can react to it), as it does for any failing tool. A *cancelled* call is
different: the request is over, so the agent must stop, not read "cancelled" as an observation
and ask the LM for its next step. ReAct catches ``Exception`` around every tool call, so the
cancel travels as :class:`~.dspy_metrics.GoFailed` (a BaseException), which the bridge turns
back into the cancel.
"""

from __future__ import annotations

from typing import Any

import dspy

from ..host import HostCallCancelled, host
from .dspy_metrics import GoFailed


class HostTool(dspy.Tool):
    """A dspy.Tool whose function is the host function ``name``."""

    #: the argument schema (JSON Schema) the host announced for the function
    go_schema: dict[str, Any] = {}

    def __init__(self, name: str, meta: dict):
        schema = meta.get("schema") or {}
        props = schema.get("properties") if isinstance(schema, dict) else None

        def call(**kwargs: Any) -> Any:
            try:
                return host.call_sync(name, kwargs)
            except HostCallCancelled as e:
                raise GoFailed(e) from e

        super().__init__(call, name=name, desc=meta.get("description") or f"the host function {name}",
                         args=dict(props or {}))
        self.go_schema = schema if isinstance(schema, dict) and schema else {"type": "object", "properties": {}}

    async def acall(self, **kwargs: Any) -> Any:
        # the async path awaits on the loop: call_sync would refuse to block it
        try:
            return await host.call(self.name, self._validate_and_parse_args(**kwargs))
        except HostCallCancelled as e:
            raise GoFailed(e) from e

    def format_as_litellm_function_call(self) -> dict:
        """The tool for native function calling: the Go schema as the parameters."""
        return {"type": "function", "function": {"name": self.name, "description": self.desc,
                                                 "parameters": self.go_schema}}


def host_tools(names: Any) -> list[HostTool]:
    """The tools a ReAct spec names, each a registered host function."""
    return [HostTool(n, meta) for n, meta in host.named(names, "ReAct").items()]
