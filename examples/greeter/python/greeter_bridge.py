"""GreeterBridge: the Python side of the "greeter" bridge (scaffolded by `mlbridge new-bridge greeter`).

Replace the bodies with calls into your framework. Handlers may be `def` (run on the worker's
thread pool: right for blocking or CPU-bound work), `async def` (run on its event loop) or
generators (streamed to Go item by item); the kind is read from the function itself.
"""

from __future__ import annotations

from typing import Any

from mlbridge_worker import BaseBridge, handler
from mlbridge_worker.errors import InvalidArgument


class GreeterBridge(BaseBridge):
    framework_name = "greeter"
    framework_version = "0.1.0"
    capabilities = ("models",)

    def _initialize_framework(self) -> None:
        # Import your framework here (once, before the worker reports ready).
        pass

    # Resources are built from definitions the Go host owns (Adapter.Create), so any worker can
    # rebuild them and a dead worker loses nothing.
    def build_resource(self, kind: str, id: str, spec: dict, state: bytes | None) -> Any:
        if kind == "model":
            prefix = spec.get("prefix", "")
            if not isinstance(prefix, str):
                raise InvalidArgument("model prefix must be a string")
            return {"prefix": prefix}
        return super().build_resource(kind, id, spec, state)

    def execute_resource(self, kind: str, id: str, obj: Any, inputs: dict) -> Any:
        if kind == "model":
            return self.predict(str(inputs.get("text", "")), model_id=id)
        return super().execute_resource(kind, id, obj, inputs)

    @handler
    def predict(self, text: str, model_id: str = "") -> dict:
        if not isinstance(text, str):
            raise InvalidArgument("text must be a string")
        prefix = self.resource(model_id, kind="model")["prefix"] if model_id else ""
        return {"label": prefix + ("long" if len(text) > 20 else "short"), "length": len(text)}

    @handler
    async def generate(self, prompt: str) -> str:
        return prompt[::-1]

    @handler
    async def stream_words(self, text: str):
        for word in text.split():
            yield word
