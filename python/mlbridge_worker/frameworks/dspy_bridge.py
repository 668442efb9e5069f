"""DSPyBridge: DSPy programs built from host-owned definitions.

Programs and the LM configuration are *resources* (see BaseBridge.build_resource): the Go host
keeps their definitions and sends them to any worker that lacks them, so every worker can run
every program and a dead worker loses nothing. The legacy handlers (create_program,
configure_lm, ...) are thin conveniences over the same cache for standalone use.
"""

from __future__ import annotations

import typing
from typing import Any

import dspy

from ..base_bridge import BaseBridge, handler
from ..errors import InvalidArgument, InvalidConfiguration, ModelError, NotFound, RateLimit

MODULES = {"Predict": dspy.Predict, "ChainOfThought": dspy.ChainOfThought}


class Program:
    """A built DSPy module with what the host defined it from."""

    __slots__ = ("id", "module", "module_type", "signature")

    def __init__(self, id: str, module: dspy.Module, module_type: str, signature: type[dspy.Signature]):
        self.id = id
        self.module = module
        self.module_type = module_type
        self.signature = signature

    def info(self) -> dict:
        sig = self.signature
        fields = lambda fs: [  # noqa: E731 - a one-line view
            {"name": n, "type": _type_name(f.annotation), "desc": (f.json_schema_extra or {}).get("desc", "")}
            for n, f in fs.items()
        ]
        return {
            "id": self.id, "module": self.module_type, "signature": sig.signature,
            "instructions": sig.instructions, "inputs": fields(sig.input_fields), "outputs": fields(sig.output_fields),
        }


class DSPyBridge(BaseBridge):
    framework_name = "dspy"
    framework_version = dspy.__version__
    capabilities = ("programs", "lm")
    # One LM call at a time per worker is the honest default for a local model; remote
    # providers can raise it in the pool config.
    capacity = 8

    def _initialize_framework(self) -> None:
        self.lm_id: str | None = None

    # ------------------------------------------------------------ resources

    def build_resource(self, kind: str, id: str, spec: dict, state: bytes | None) -> Any:
        if kind == "program":
            return build_program(id, spec, state)
        if kind == "lm":
            lm = build_lm(spec)
            dspy.configure(lm=lm)  # global: every program on this worker uses it
            self.lm_id = id
            return lm
        return super().build_resource(kind, id, spec, state)

    def program(self, program_id: str) -> Program:
        obj = self._resources.get(program_id)
        if obj is None or not isinstance(obj[1], Program):
            raise NotFound(f"program {program_id!r} not found")
        return obj[1]

    # ------------------------------------------------------------ handlers

    @handler
    def execute_program(self, program_id: str, inputs: dict) -> dict:
        prog = self.program(program_id)
        check_inputs(prog.signature, inputs)
        if self.lm_id is None and dspy.settings.lm is None:
            raise InvalidConfiguration("no LM configured: call configure_lm (or define an 'lm' resource) first")
        try:
            prediction = prog.module(**inputs)
        except Exception as e:
            raise map_error(e) from e
        return {k: v for k, v in prediction.toDict().items()}

    @handler
    def get_program_info(self, program_id: str) -> dict:
        return self.program(program_id).info()

    @handler
    def list_programs(self) -> list[str]:
        return sorted(k for k, (_, obj) in self._resources.items() if isinstance(obj, Program))

    # Legacy conveniences for a worker used standalone; a host defines resources instead.
    @handler
    def create_program(self, program_id: str, signature: str, module: str = "Predict",
                       instructions: str = "") -> dict:
        spec = {"signature": signature, "module": module, "instructions": instructions}
        self.define_resource(program_id, "program", 1, spec)
        return self.program(program_id).info()

    @handler
    def delete_program(self, program_id: str) -> dict:
        self.program(program_id)
        return self.forget_resource(program_id)

    @handler
    def configure_lm(self, spec: dict) -> dict:
        self.define_resource("lm", "lm", 1, spec, is_global=True)
        return {"configured": True}


def build_program(id: str, spec: dict, state: bytes | None) -> Program:
    signature = spec.get("signature")
    if not isinstance(signature, str) or not signature.strip():
        raise InvalidArgument("a program needs a signature string, e.g. 'question -> answer'")
    module_type = spec.get("module", "Predict")
    module_cls = MODULES.get(module_type)
    if module_cls is None:
        raise InvalidArgument(f"unknown module {module_type!r} (have: {', '.join(MODULES)})")
    try:
        sig = dspy.Signature(signature, spec.get("instructions") or None)
    except Exception as e:  # DSPy raises ValueError, SyntaxError, TypeError for bad strings
        raise InvalidArgument(f"invalid signature {signature!r}: {e}") from e
    descs = spec.get("field_descriptions") or {}
    for name, desc in descs.items():
        if name not in sig.fields:
            raise InvalidArgument(f"field_descriptions names {name!r}, which is not in the signature")
        sig = sig.with_updated_fields(name, desc=str(desc))
    module = module_cls(sig)
    if state:
        raise InvalidArgument("loading optimized program state is not supported yet")
    return Program(id, module, module_type, sig)


def build_lm(spec: dict) -> dspy.BaseLM:
    kind = spec.get("provider", "")
    if kind == "dummy":
        # DSPy's own deterministic test double, for tests and demos without a model.
        from dspy.utils import DummyLM

        answers = spec.get("answers")
        if not isinstance(answers, list) or not answers:
            raise InvalidArgument("a dummy LM needs a non-empty list of answers")
        return DummyLM(answers)
    if kind == "openai_compatible":
        import os

        model, key_env = spec.get("model"), spec.get("api_key_env", "")
        if not model:
            raise InvalidArgument("an openai_compatible LM needs a model name")
        key = os.environ.get(key_env) if key_env else None
        if key_env and not key:
            raise InvalidConfiguration(f"environment variable {key_env} is not set in the worker "
                                       "(pass it through with Config.EnvAllow)")
        return dspy.LM(model, api_base=spec.get("base_url"), api_key=key,
                       temperature=spec.get("temperature", 0.0), max_tokens=spec.get("max_tokens", 512))
    raise InvalidArgument(f"unknown LM provider {kind!r} (have: dummy, openai_compatible)")


def check_inputs(sig: type[dspy.Signature], inputs: Any) -> None:
    """Every input field present, no unknown ones, and values of the declared types."""
    if not isinstance(inputs, dict):
        raise InvalidArgument("inputs must be a map of field name to value")
    missing = [n for n in sig.input_fields if n not in inputs]
    if missing:
        raise InvalidArgument(f"missing input field(s): {', '.join(missing)}")
    unknown = [n for n in inputs if n not in sig.input_fields]
    if unknown:
        raise InvalidArgument(f"unknown input field(s): {', '.join(unknown)}")
    for name, field in sig.input_fields.items():
        if not _conforms(inputs[name], field.annotation):
            raise InvalidArgument(
                f"input {name!r} must be {_type_name(field.annotation)}, got {type(inputs[name]).__name__}")


def _conforms(value: Any, annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if annotation in (str, int, float, bool):
        if annotation is float:
            return isinstance(value, (int, float)) and not isinstance(value, bool)
        if annotation is int:
            return isinstance(value, int) and not isinstance(value, bool)
        return isinstance(value, annotation)
    if origin is list:
        (item,) = typing.get_args(annotation) or (Any,)
        return isinstance(value, list) and all(_conforms(v, item) for v in value)
    if origin is dict:
        args = typing.get_args(annotation)
        return isinstance(value, dict) and (not args or all(_conforms(v, args[1]) for v in value.values()))
    if origin is typing.Union:
        return any(_conforms(value, a) for a in typing.get_args(annotation))
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    if annotation is type(None):
        return value is None
    return True  # types we do not check (custom classes): DSPy validates them


def _type_name(annotation: Any) -> str:
    if typing.get_origin(annotation) is None and isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def map_error(e: Exception) -> Exception:
    """DSPy and LM provider errors, mapped to the protocol's categories."""
    name = type(e).__name__
    if "RateLimit" in name:
        return RateLimit(str(e))
    if "Authentication" in name or "NotConfigured" in name or "Configuration" in name:
        return InvalidConfiguration(str(e))
    if isinstance(e, (TimeoutError,)) or "Timeout" in name:
        return e  # category timeout is set from TimeoutError by the runtime
    return ModelError(f"{name}: {e}")
