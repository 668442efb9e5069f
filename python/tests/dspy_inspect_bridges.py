"""DSPyBridge with two read-only ops for the Go ReAct tests (a worker imports this module:
tests/ is on its PYTHONPATH): what DSPy sent the LM, and the tools a ReAct program holds."""

from __future__ import annotations

from typing import Any

from mlbridge_worker import handler
from mlbridge_worker.frameworks.dspy_bridge import DSPyBridge


class InspectDSPyBridge(DSPyBridge):
    @handler
    def lm_history(self) -> list[dict]:
        """Each call of this worker's LM (DSPy's ``lm.history``, what ``dspy.inspect_history``
        prints): the messages sent and the outputs received."""
        if self.lm is None:
            return []
        return [{"messages": [{"role": m.get("role"), "content": str(m.get("content"))} for m in e.get("messages") or []],
                 "outputs": [o if isinstance(o, str) else str(o) for o in e.get("outputs") or []]}
                for e in list(self.lm.history)]

    @handler
    def react_tools(self, program_id: str) -> dict[str, Any]:
        """The dspy.Tool objects a ReAct program was built with, as DSPy sees them, and the
        instructions ReAct wrote from them."""
        module = self.program(program_id).module
        return {"instructions": module.react.signature.instructions,
                "tools": [{"name": t.name, "desc": t.desc, "args": t.args, "prompt": str(t),
                           "function": t.format_as_litellm_function_call()["function"]}
                          for t in module.tools.values()]}
