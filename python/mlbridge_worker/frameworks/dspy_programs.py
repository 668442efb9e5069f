"""DSPy programs built from host-owned definitions, and the checks on their inputs.

A definition is {signature, module, instructions?, field_descriptions?} plus the module's own
options (see dspy_modules.py), and optional state: DSPy's `dump_state()` JSON of an optimized
(or imported) program, loaded over the freshly built module. Everything about it is checked
here, before any LM is called: a bad signature is `invalid_argument`, never a silent fallback
to `question -> answer`; inputs must be present and of the declared types.
"""

from __future__ import annotations

import json
import typing
from typing import Any

import dspy
from dspy.utils.saving import get_dependency_versions

from ..errors import InvalidArgument
from .dspy_modules import MODULES, build_module


class Program:
    """A built DSPy module with what the host defined it from."""

    __slots__ = ("id", "module", "module_type", "signature", "_checks")

    def __init__(self, id: str, module: dspy.Module, module_type: str, signature: type[dspy.Signature]):
        self.id = id
        self.module = module
        self.module_type = module_type
        self.signature = signature
        # check_inputs, compiled once: DSPy computes `input_fields` anew on every access
        self._checks = tuple((name, _checker(field.annotation)) for name, field in signature.input_fields.items())

    def check_inputs(self, inputs: Any) -> None:
        """:func:`check_inputs` on this program's signature, with the field list and the type
        tests built once; a misfit is reported by :func:`check_inputs` itself (same messages)."""
        checks = self._checks
        if type(inputs) is dict and len(inputs) == len(checks):
            try:
                if all(ok(inputs[name]) for name, ok in checks):
                    return
            except KeyError:
                pass
        check_inputs(self.signature, inputs)

    def info(self) -> dict:
        sig = self.signature
        fields = lambda fs: [  # noqa: E731 - a one-line view
            {"name": n, "type": _type_name(f.annotation), "desc": _desc(n, f)} for n, f in fs.items()
        ]
        return {
            "id": self.id, "module": self.module_type, "signature": typed_signature(sig),
            "instructions": sig.instructions, "inputs": fields(sig.input_fields), "outputs": fields(sig.output_fields),
            "demos": demo_count(self.module),
        }


def typed_signature(sig: type[dspy.Signature]) -> str:
    """The signature in DSPy's notation with each field's type, str (the default) left implicit:
    `question -> answer, confidence: float` (DSPy's own `sig.signature` drops every type)."""
    side = lambda fs: ", ".join(  # noqa: E731 - a one-line view
        n if f.annotation is str else f"{n}: {_type_name(f.annotation)}" for n, f in fs.items())
    return f"{side(sig.input_fields)} -> {side(sig.output_fields)}"


def build_program(id: str, spec: dict, state: bytes | None) -> Program:
    signature = spec.get("signature")
    if not isinstance(signature, str) or not signature.strip():
        raise InvalidArgument("a program needs a signature string, e.g. 'question -> answer'")
    module_type = spec.get("module", "Predict")
    if module_type not in MODULES:
        raise InvalidArgument(f"unknown module {module_type!r} (have: {', '.join(MODULES)})")
    sig = parse_signature(signature, spec.get("instructions") or None)
    descs = spec.get("field_descriptions") or {}
    for name, desc in descs.items():
        if name not in sig.fields:
            raise InvalidArgument(f"field_descriptions names {name!r}, which is not in the signature")
        sig = sig.with_updated_fields(name, desc=str(desc))
    module = build_module(module_type, sig, spec)
    if state:
        load_state(module, state)
    return Program(id, module, module_type, sig)


def load_state(module: dspy.Module, state: bytes) -> None:
    """Load DSPy's own `dump_state()` JSON (demos, instructions, field prefixes) over a module
    built from the same definition. A state of another program shape is `invalid_argument`."""
    try:
        obj = json.loads(state)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidArgument(f"program state is not JSON: {e}") from e
    except RecursionError as e:  # valid JSON nested deeper than Python's stack (Go allows 10000)
        raise InvalidArgument("program state is nested too deeply to be DSPy's state") from e
    if not isinstance(obj, dict):
        raise InvalidArgument("program state must be a JSON object (DSPy's dump_state)")
    obj.pop("metadata", None)  # Module.save adds one; load_state does not take it
    # A bare Predict dumps its own state; a composite module one state per named predictor.
    have = {"self"} if "signature" in obj and "demos" in obj else set(obj)
    want = {name for name, _ in module.named_predictors()}
    if have != want:
        raise InvalidArgument(f"program state has predictors {sorted(have)}, the module has {sorted(want)}: "
                              "it was saved from another module or signature")
    for name, predictor_state in (obj.items() if have != {"self"} else [("self", obj)]):
        _check_predictor_state(name, predictor_state)
    try:
        module.load_state(obj)
    except Exception as e:  # KeyError, TypeError, pydantic errors on a damaged state
        raise InvalidArgument(f"program state does not load: {type(e).__name__}: {e}") from e


#: the keys of one predictor's state in DSPy's dump_state; Predict.load_state setattr()s any
#: other key onto the predictor, so a state naming "forward" or "callbacks" would break it
_PREDICTOR_STATE_KEYS = frozenset(("traces", "train", "demos", "signature", "lm", "fields"))


def _check_predictor_state(name: str, state: Any) -> None:
    """One predictor's state is DSPy's shape: its keys only, demos a list of maps. Its "lm" is
    dropped: the LM ConfigureLM sets answers every program, a state does not pick another."""
    if not isinstance(state, dict):
        raise InvalidArgument(f"program state of predictor {name!r} must be a JSON object")
    extra = state.keys() - _PREDICTOR_STATE_KEYS
    if extra:
        raise InvalidArgument(f"program state of predictor {name!r} has unknown keys {sorted(extra)}; "
                              f"DSPy's state has {sorted(_PREDICTOR_STATE_KEYS)}")
    demos = state.get("demos", [])
    if not isinstance(demos, list) or not all(isinstance(d, dict) for d in demos):
        raise InvalidArgument(f"program state of predictor {name!r}: demos must be a list of objects")
    for key in ("traces", "train"):
        if not isinstance(state.get(key, []), list):
            raise InvalidArgument(f"program state of predictor {name!r}: {key} must be a list")
    state["lm"] = None


def dump_state(module: dspy.Module) -> bytes:
    """DSPy's `dump_state()` as JSON bytes: what the host stores as a definition's State."""
    return json.dumps(module.dump_state(), ensure_ascii=False).encode()


def export_state(module: dspy.Module) -> bytes:
    """What DSPy's `Module.save("p.json")` writes: `dump_state()` and `metadata`, without which
    DSPy's `Module.load` fails (it reads `metadata.dependency_versions` to warn of a mismatch)."""
    state = module.dump_state()
    state["metadata"] = {"dependency_versions": get_dependency_versions()}
    return json.dumps(state, ensure_ascii=False).encode()


def demo_count(module: dspy.Module) -> int:
    return sum(len(p.demos) for _, p in module.named_predictors())


def parse_signature(text: str, instructions: str | None = None) -> type[dspy.Signature]:
    """DSPy's parser, plus the rules the Go parser (mlbridge.ParseSignature) applies, so that both
    sides accept the same signatures (spec/vectors/signatures.json): DSPy alone takes a
    signature without inputs, a trailing comma, `list[str, int]` or `dict[int, str]`."""
    for side in text.split("->"):
        if any(not part.strip() for part in _top_level_split(side)):
            raise InvalidArgument(f"invalid signature {text!r}: an empty field (a stray comma, or no fields)")
    try:
        sig = dspy.Signature(text, instructions)
    except Exception as e:  # DSPy raises ValueError, SyntaxError, TypeError for bad strings
        raise InvalidArgument(f"invalid signature {text!r}: {e}") from e
    if not sig.input_fields or not sig.output_fields:
        raise InvalidArgument(f"invalid signature {text!r}: it needs at least one input and one output")
    for name, field in sig.fields.items():
        problem = _annotation_problem(field.annotation)
        if problem:
            raise InvalidArgument(f"invalid signature {text!r}: field {name!r}: {problem}")
    return sig


def _top_level_split(side: str) -> list[str]:
    """Split at commas outside brackets and quotes."""
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(side):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(side[start:i])
            start = i + 1
    parts.append(side[start:])
    return parts


def _annotation_problem(annotation: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is list and len(args) > 1:
        return "list takes one item type"
    if origin is dict and args and args[0] is not str:
        return "dict keys must be str"
    for a in args:
        if typing.get_origin(a) is not None:
            problem = _annotation_problem(a)
            if problem:
                return problem
    return ""


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


def _checker(annotation: Any) -> typing.Callable[[Any], bool]:
    """:func:`_conforms` for one annotation, as a test of a value alone (str needs no call)."""
    if annotation is str:
        return lambda v: isinstance(v, str)
    return lambda v: _conforms(v, annotation)


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


def _desc(name: str, field: Any) -> str:
    desc = (field.json_schema_extra or {}).get("desc", "")
    return "" if desc == f"${{{name}}}" else desc  # DSPy's placeholder for "no description"


def _type_name(annotation: Any) -> str:
    if typing.get_origin(annotation) is None and isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")
