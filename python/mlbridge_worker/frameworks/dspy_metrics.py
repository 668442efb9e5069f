"""Built-in metrics (optimizers, Evaluate) and rewards (BestOfN, Refine), chosen by name from a spec.

A metric compares a prediction with a gold example: ``{"builtin": "exact_match" | "f1" |
"contains", "field": name}``. A reward scores a prediction alone, against a target the spec
names: ``{"builtin": "exact_match" | "contains", "field": name, "target": text}``.

Specs are maps so that other sources can be added beside ``builtin``: a metric implemented in Go
will be ``{"go": name}`` once calls from Python back into Go exist. Until then it is refused with
a clear ``invalid_argument``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dspy
from dspy.evaluate.metrics import F1

from ..errors import InvalidArgument

Metric = Callable[..., float]  # (example, prediction, trace=None) -> score
Reward = Callable[[dict, dspy.Prediction], float]  # (inputs, prediction) -> score


def _norm(v: Any) -> str:
    return " ".join(str(v).split()).casefold()


def _exact(pred: Any, gold: Any) -> float:
    """Equal after trimming, collapsing whitespace and case-folding: what a user means by "the
    same answer" (DSPy's answer_exact_match also strips punctuation and articles, for QA)."""
    return float(_norm(pred) == _norm(gold))


def _contains(pred: Any, gold: Any) -> float:
    return float(_norm(gold) in _norm(pred))


def _f1(pred: Any, gold: Any) -> float:
    return float(F1(str(pred), [str(gold)]))  # DSPy's token F1 (SQuAD normalization)


METRICS: dict[str, Callable[[Any, Any], float]] = {"exact_match": _exact, "f1": _f1, "contains": _contains}
REWARDS: dict[str, Callable[[Any, Any], float]] = {"exact_match": _exact, "contains": _contains}


def _builtin(spec: Any, table: dict[str, Callable[[Any, Any], float]], what: str) -> tuple[str, Callable]:
    if not isinstance(spec, dict):
        raise InvalidArgument(f"a {what} must be a map like {{'builtin': 'exact_match', 'field': 'answer'}}")
    if "go" in spec:
        raise InvalidArgument(f"a {what} implemented in Go ({spec['go']!r}) needs calls from Python back into Go, "
                              "which are not supported yet: use a builtin one")
    name = spec.get("builtin")
    fn = table.get(name) if isinstance(name, str) else None
    if fn is None:
        raise InvalidArgument(f"unknown builtin {what} {name!r} (have: {', '.join(table)})")
    field = spec.get("field")
    if not isinstance(field, str) or not field:
        raise InvalidArgument(f"the {what} {name!r} needs the output field it scores ('field')")
    return field, fn


def build_metric(spec: Any, outputs: list[str]) -> Metric:
    """A DSPy metric comparing output ``field`` of the prediction with the example's."""
    field, fn = _builtin(spec, METRICS, "metric")
    if field not in outputs:
        raise InvalidArgument(f"the metric scores field {field!r}, which is not an output (have: {', '.join(outputs)})")

    def metric(example: dspy.Example, prediction: dspy.Prediction, trace: Any = None) -> float:
        return fn(prediction.get(field, ""), example.get(field, ""))

    return metric


def build_reward(spec: Any, outputs: list[str]) -> Reward:
    """A BestOfN/Refine reward: output ``field`` against the spec's ``target``."""
    field, fn = _builtin(spec, REWARDS, "reward")
    if field not in outputs:
        raise InvalidArgument(f"the reward scores field {field!r}, which is not an output (have: {', '.join(outputs)})")
    target = spec.get("target")
    if not isinstance(target, str):
        raise InvalidArgument(f"the reward {spec['builtin']!r} needs a string 'target' to compare {field!r} with")

    def reward(inputs: dict, prediction: dspy.Prediction) -> float:
        return fn(prediction.get(field, ""), target)

    return reward
