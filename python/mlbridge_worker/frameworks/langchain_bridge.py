"""LangChainBridge: LCEL chains (prompt | chat model | parser) built from host-owned definitions.

Models and chains are *resources* (see BaseBridge.build_resource): the Go host keeps their
definitions and sends a chain's model before the chain, so every worker can run every chain.

  model  {"provider": "local" | "openai_compatible" | "fake", ...}   (see langchain_models)
  chain  {"model": "<model id>", "messages": [[role, template], ...] | "template": "...",
          "parser": "str" | "json"}     roles: system, human (user), ai (assistant), placeholder

Ops: invoke(chain_id, inputs) -> str | JSON value; stream(chain_id, inputs) -> text chunks;
chat(model_id, messages) -> {"role": "assistant", "content": str}; plus the generic execute and
describe of BaseBridge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, AsyncIterator

import langchain_core
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, convert_to_messages
from langchain_core.output_parsers import JsonOutputParser, StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable

from ..base_bridge import BaseBridge, handler
from ..errors import InvalidArgument
from .langchain_models import build_model, describe_model, map_error

PARSERS = {"str": StrOutputParser, "json": JsonOutputParser}
# Both spellings in both places, as LangChain itself accepts them (and the Go client documents).
PROMPT_ROLES = {"system": "system", "human": "human", "user": "human", "ai": "ai", "assistant": "ai",
                "placeholder": "placeholder"}
CHAT_ROLES = {"system": SystemMessage, "user": HumanMessage, "human": HumanMessage, "assistant": AIMessage,
              "ai": AIMessage}


@dataclass
class Chain:
    model_id: str
    prompt: ChatPromptTemplate
    parser: str
    model: BaseChatModel
    runnable: Runnable = field(init=False)
    text: Runnable = field(init=False)  # the same chain ending in text: what `stream` yields

    def __post_init__(self) -> None:
        self.bind(self.model)

    def bind(self, model: BaseChatModel) -> None:
        self.text = self.prompt | model | StrOutputParser()
        self.runnable = self.text if self.parser == "str" else self.prompt | model | PARSERS[self.parser]()
        self.model = model  # last: a concurrent call that sees the new model finds its runnables

    @property
    def input_variables(self) -> list[str]:
        return list(self.prompt.input_variables)

    def info(self) -> dict:
        return {"model": self.model_id, "input_variables": self.input_variables, "parser": self.parser}


class LangChainBridge(BaseBridge):
    framework_name = "langchain"
    framework_version = langchain_core.__version__
    capabilities = ("chains", "chat", "stream")
    # A local model serializes its calls on its one llama.cpp context; remote providers overlap
    # their waits. Pools can lower or raise it with Config.MaxInFlight.
    capacity = 8

    def _initialize_framework(self) -> None:
        pass  # imported at module import, so a preloading zygote pays for it once

    # ------------------------------------------------------------ resources

    def build_resource(self, kind: str, id: str, spec: dict, state: bytes | None) -> Any:
        if kind == "model":
            return build_model(spec)
        if kind == "chain":
            return self._build_chain(spec)
        return super().build_resource(kind, id, spec, state)

    def _build_chain(self, spec: dict) -> Chain:
        model_id = spec.get("model")
        if not isinstance(model_id, str) or not model_id:
            raise InvalidArgument("a chain needs a model (the id of a model resource)")
        model = self.resource(model_id, kind="model")  # NotFound: the host defines models first
        parser = spec.get("parser", "str")
        if parser not in PARSERS:
            raise InvalidArgument(f"unknown parser {parser!r} (have: {', '.join(PARSERS)})")
        return Chain(model_id, _prompt(spec), parser, model)

    def chain(self, chain_id: str) -> Chain:
        chain: Chain = self.resource(chain_id, kind="chain")
        model = self.resource(chain.model_id, kind="model")
        if model is not chain.model:  # the model was redefined (a new version) since
            chain.bind(model)
        return chain

    def execute_resource(self, kind: str, id: str, obj: Any, inputs: dict) -> Any:
        if kind != "chain":
            return super().execute_resource(kind, id, obj, inputs)
        chain = self.chain(id)
        _check_inputs(chain, inputs)
        try:
            return chain.runnable.invoke(inputs)
        except Exception as e:
            raise map_error(e) from e

    def describe_resource(self, kind: str, id: str, obj: Any) -> dict:
        if kind == "chain":
            return obj.info()
        if kind == "model":
            return describe_model(obj)
        return {}

    # ------------------------------------------------------------ handlers

    @handler
    async def invoke(self, chain_id: str, inputs: dict) -> Any:
        chain = self.chain(chain_id)
        _check_inputs(chain, inputs)
        try:
            return await chain.runnable.ainvoke(inputs)
        except Exception as e:
            raise map_error(e) from e

    @handler
    async def stream(self, chain_id: str, inputs: dict) -> AsyncIterator[str]:
        """The chain's text as the model produces it. A json chain streams its raw text, and its
        whole output is parsed at the end, so bad JSON fails the stream as it fails invoke."""
        chain = self.chain(chain_id)
        _check_inputs(chain, inputs)
        parts: list[str] = []
        try:
            async for chunk in chain.text.astream(inputs):
                if chunk:
                    parts.append(chunk)
                    yield chunk
            if chain.parser != "str":
                PARSERS[chain.parser]().parse("".join(parts))
        except Exception as e:
            raise map_error(e) from e

    @handler
    async def chat(self, model_id: str, messages: list) -> dict:
        """One reply to a whole conversation; the host keeps the history."""
        model: BaseChatModel = self.resource(model_id, kind="model")
        history = _chat_messages(messages)
        try:
            reply = await model.ainvoke(history)
        except Exception as e:
            raise map_error(e) from e
        return {"role": "assistant", "content": reply.text}


def _prompt(spec: dict) -> ChatPromptTemplate:
    messages, template = spec.get("messages"), spec.get("template")
    if (messages is None) == (template is None):
        raise InvalidArgument("a chain needs exactly one of messages ([[role, template], ...]) or template")
    if template is not None:
        if not isinstance(template, str):
            raise InvalidArgument("template must be a string")
        messages = [["human", template]]
    if not isinstance(messages, list) or not messages:
        raise InvalidArgument("messages must be a non-empty list of [role, template] pairs")
    pairs = []
    for m in messages:
        if not isinstance(m, (list, tuple)) or len(m) != 2 or not all(isinstance(x, str) for x in m):
            raise InvalidArgument(f"each message must be a [role, template] pair of strings, got {m!r}")
        if m[0] not in PROMPT_ROLES:
            raise InvalidArgument(f"unknown role {m[0]!r} (have: {', '.join(PROMPT_ROLES)})")
        pairs.append((PROMPT_ROLES[m[0]], m[1]))
    try:
        return ChatPromptTemplate.from_messages(pairs)
    except (ValueError, KeyError, TypeError) as e:
        raise InvalidArgument(f"bad prompt template: {e}") from e


def _check_inputs(chain: Chain, inputs: Any) -> None:
    """Before any model call: a missing variable would otherwise fail inside LangChain as a
    KeyError (unknown), after a prompt may have been half built."""
    if not isinstance(inputs, dict):
        raise InvalidArgument(f"inputs must be a map, got {type(inputs).__name__}")
    missing = [v for v in chain.input_variables if v not in inputs]
    if missing:
        raise InvalidArgument(f"missing input variables: {', '.join(missing)}")
    for name in chain.prompt.optional_variables:  # placeholders take a list of messages
        if name in inputs:
            try:
                convert_to_messages(inputs[name])
            except (ValueError, TypeError, NotImplementedError) as e:
                raise InvalidArgument(f"input {name!r} must be a list of messages: {e}") from e


def _chat_messages(messages: Any) -> list[BaseMessage]:
    if not isinstance(messages, list) or not messages:
        raise InvalidArgument("messages must be a non-empty list of {role, content} maps")
    out: list[BaseMessage] = []
    for m in messages:
        if not isinstance(m, dict) or not isinstance(m.get("content"), str) or m.get("role") not in CHAT_ROLES:
            raise InvalidArgument(f"each message must be {{role: system|user|assistant, content: str}}, got {m!r}")
        out.append(CHAT_ROLES[m["role"]](content=m["content"]))
    return out
