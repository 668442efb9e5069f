"""DSPy tools that are Go functions: a ReAct agent's tools, called through the host
(:mod:`mlbridge_worker.host`).

Each tool takes its name, description and argument schema from what the host announced, so the
LM sees the Go function as the Go side described it. A call made on DSPy's sync path (a sync
handler's thread) uses ``host.call_sync``; on the async path (``acall``) ``await host.call``.
Either way the call is made for the request running the program: it inherits its deadline,
cancellation and span. A Go error becomes the tool's exception, which ReAct writes into the
trajectory as the observation (the agent can react to it), as it does for any failing tool.
"""

from __future__ import annotations

from typing import Any

import dspy

from ..host import host


class HostTool(dspy.Tool):
    """A dspy.Tool whose function is the host function ``name``."""

    def __init__(self, name: str, meta: dict):
        schema = meta.get("schema") or {}
        props = schema.get("properties") if isinstance(schema, dict) else None

        def call(**kwargs: Any) -> Any:
            return host.call_sync(name, kwargs)

        super().__init__(call, name=name, desc=meta.get("description") or f"the host function {name}",
                         args=dict(props or {}))

    async def acall(self, **kwargs: Any) -> Any:
        # the async path awaits on the loop: call_sync would refuse to block it
        return await host.call(self.name, self._validate_and_parse_args(**kwargs))


def host_tools(names: Any) -> list[HostTool]:
    """The tools a ReAct spec names, each a registered host function."""
    return [HostTool(n, meta) for n, meta in host.named(names, "ReAct").items()]
