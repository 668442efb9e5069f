"""LangChainBridge: LCEL chains (prompt | chat model | parser) built from host-owned definitions.

Models and chains are *resources* (see BaseBridge.build_resource): the Go host keeps their
definitions and sends a chain's model before the chain, so every worker can run every chain.

  model  {"provider": "local" | "openai_compatible" | "fake", ...}   (see langchain_models)
  chain  {"model": "<model id>", "messages": [[role, template], ...] | "template": "...",
          "parser": "str" | "json"}     roles: system, human (user), ai (assistant), placeholder
  chain  {"kind": "tool_agent", "model": ..., "messages" | "template": ..., "tools": [host function
          names], "max_iters": 5}: a tool-calling agent over Go functions (langchain_tools);
          invoke returns {"answer", "finished", "trajectory": [{tool, args, result | error}]}

Ops: invoke(chain_id, inputs) -> str | JSON value; stream(chain_id, inputs) -> text chunks;
chat(model_id, messages) -> {"role": "assistant", "content": str}; plus the generic execute and
describe of BaseBridge. invoke, stream and chat are async by default and execute is sync; each
has an implementation of the other mode (handler_modes / set_handler_mode switch between them).
"""

from __future__ import annotations

from contextlib import aclosing, closing, contextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Iterator

import langchain_core
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, convert_to_messages
from langchain_core.output_parsers import JsonOutputParser, StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable

from ..base_bridge import BaseBridge, alternative, handler
from ..errors import InvalidArgument
from . import langchain_tools
from .langchain_models import build_model, closing_streams, describe_model, map_error

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


@dataclass
class ToolAgent:
    """A tool_agent chain: the prompt's messages start a tool-calling loop over Go functions."""
    model_id: str
    prompt: ChatPromptTemplate
    model: BaseChatModel
    tools: list
    max_iters: int

    def bind(self, model: BaseChatModel) -> None:
        self.model = model

    @property
    def input_variables(self) -> list[str]:
        return list(self.prompt.input_variables)

    def info(self) -> dict:
        return {"kind": "tool_agent", "model": self.model_id, "input_variables": self.input_variables,
                "tools": [t.name for t in self.tools], "max_iters": self.max_iters}


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
        kind = spec.get("kind", "chain")
        if kind == "tool_agent":
            n = spec.get("max_iters", 5)
            if not isinstance(n, int) or isinstance(n, bool) or n < 1:
                raise InvalidArgument(f"max_iters must be a positive integer, got {n!r}")
            return ToolAgent(model_id, _prompt(spec), model, langchain_tools.host_tools(spec.get("tools")), n)
        if kind != "chain":
            raise InvalidArgument(f"unknown chain kind {kind!r} (have: chain, tool_agent)")
        parser = spec.get("parser", "str")
        if parser not in PARSERS:
            raise InvalidArgument(f"unknown parser {parser!r} (have: {', '.join(PARSERS)})")
        return Chain(model_id, _prompt(spec), parser, model)

    def chain(self, chain_id: str) -> Any:
        chain: Chain | ToolAgent = self.resource(chain_id, kind="chain")
        model = self.resource(chain.model_id, kind="model")
        if model is not chain.model:  # the model was redefined (a new version) since
            chain.bind(model)
        return chain

    def execute_resource(self, kind: str, id: str, obj: Any, inputs: dict) -> Any:
        if kind != "chain":
            return super().execute_resource(kind, id, obj, inputs)
        return self.invoke_sync(id, inputs)

    def describe_resource(self, kind: str, id: str, obj: Any) -> dict:
        if kind == "chain":
            return obj.info()
        if kind == "model":
            return describe_model(obj)
        return {}

    # ------------------------------------------------------------ handlers
    #
    # Each op has an async and a sync implementation (see base_bridge.alternative): the bridge
    # option handler_modes, or set_handler_mode at runtime, picks one per op. Both share their
    # checks and error mapping, so they answer the same results and the same error categories.

    def _checked(self, chain_id: str, inputs: Any, agent_ok: bool = True) -> Any:
        chain = self.chain(chain_id)
        if isinstance(chain, ToolAgent) and not agent_ok:
            raise InvalidArgument(f"{chain_id!r} is a tool_agent: invoke it (it does not stream)")
        _check_inputs(chain, inputs)
        return chain

    @handler
    async def invoke(self, chain_id: str, inputs: dict) -> Any:
        chain = self._checked(chain_id, inputs)
        with _model_call():
            if isinstance(chain, ToolAgent):
                return await langchain_tools.arun(chain.model, chain.tools, chain.prompt.format_messages(**inputs),
                                                  chain.max_iters)
            return await chain.runnable.ainvoke(inputs)

    @alternative("invoke")
    def invoke_sync(self, chain_id: str, inputs: dict) -> Any:
        chain = self._checked(chain_id, inputs)
        with _model_call():
            if isinstance(chain, ToolAgent):
                return langchain_tools.run_sync(chain.model, chain.tools, chain.prompt.format_messages(**inputs),
                                                chain.max_iters)
            return chain.runnable.invoke(inputs)

    @handler
    async def stream(self, chain_id: str, inputs: dict) -> AsyncIterator[str]:
        """The chain's text as the model produces it. A json chain streams its raw text, and its
        whole output is parsed at the end, so bad JSON fails the stream as it fails invoke."""
        chain, text = self._checked(chain_id, inputs, agent_ok=False), _Text()
        # aclosing: a stream stopped early (cancelled, or the host went away) closes LangChain's
        # generators at once, not when the garbage collector finds them
        with _model_call():
            async with aclosing(chain.text.astream(inputs)) as chunks:
                async for chunk in chunks:
                    if text.add(chunk):
                        yield chunk
            text.check(chain.parser)

    @alternative("stream")
    def stream_sync(self, chain_id: str, inputs: dict) -> Iterator[str]:
        chain, text = self._checked(chain_id, inputs, agent_ok=False), _Text()
        # closing: when the runtime closes this generator (a cancel), LangChain's is closed too.
        # LangChain then reads the model's stream to its end, for tracing; the local model cuts
        # that short for a cancelled call (see LocalChatModel._stream).
        with _model_call(), closing(chain.text.stream(inputs)) as chunks:
            for chunk in chunks:
                if text.add(chunk):
                    yield chunk
            text.check(chain.parser)

    def _chat_args(self, model_id: str, messages: Any) -> tuple[BaseChatModel, list[BaseMessage]]:
        return self.resource(model_id, kind="model"), _chat_messages(messages)

    @handler
    async def chat(self, model_id: str, messages: list) -> dict:
        """One reply to a whole conversation; the host keeps the history."""
        model, history = self._chat_args(model_id, messages)
        with _model_call():
            return _reply(await model.ainvoke(history))

    @alternative("chat")
    def chat_sync(self, model_id: str, messages: list) -> dict:
        model, history = self._chat_args(model_id, messages)
        with _model_call():
            return _reply(model.invoke(history))

    @alternative("execute")
    async def execute_async(self, id: str, inputs: dict | None = None) -> Any:
        """The generic execute (BaseBridge's, sync by default, through execute_resource) on the
        event loop: a chain runs through ainvoke."""
        r = self._resources.get(id)
        if r is None or r.kind != "chain":
            return self.execute(id, inputs)  # refused (NotFound, InvalidArgument) by the sync op itself
        return await self.invoke(id, inputs or {})


@contextmanager
def _model_call() -> Iterator[None]:
    """Around every model call, in both modes: LangChain's and the providers' failures as
    protocol categories (map_error), and any local-model stream left open closed at the end."""
    try:
        with closing_streams():
            yield
    except Exception as e:
        mapped = map_error(e)
        if mapped is e:  # already a bridge error: keep it and its traceback as they are
            raise
        raise mapped from e


class _Text:
    """The text a stream has yielded, and the check of a json chain's whole output at its end."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def add(self, chunk: str) -> bool:
        """Keep a chunk; False for an empty one, which is not sent."""
        if chunk:
            self.parts.append(chunk)
        return bool(chunk)

    def check(self, parser: str) -> None:
        if parser != "str":
            PARSERS[parser]().parse("".join(self.parts))


def _reply(message: BaseMessage) -> dict:
    return {"role": "assistant", "content": message.text}


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


def _check_inputs(chain: Chain | ToolAgent, inputs: Any) -> None:
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
