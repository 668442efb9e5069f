"""Metrics (optimizers, Evaluate) and rewards (BestOfN, Refine), built in or implemented in Go.

A metric compares a prediction with a gold example: ``{"builtin": "exact_match" | "f1" |
"contains", "field": name}``. A reward scores a prediction alone, against a target the spec
names: ``{"builtin": "exact_match" | "contains", "field": name, "target": text}``.

``{"go": name}`` is either one implemented by the host: a Go function registered with
``mlbridge.Func`` (``dspy.MetricFunc``/``dspy.RewardFunc`` in Go). Each score is a host call
(``host.call_sync``, :mod:`..host`) made from the DSPy thread that needs it, on behalf of the
request running the optimizer, the evaluation or the program: it inherits that request's
deadline, cancellation and trace. A metric receives ``{"example": {...}, "prediction": {...}}``,
a reward ``{"inputs": {...}, "prediction": {...}}``; either returns a number.

A Go function that fails (its error, or a result that is not a number) fails the whole call
with that typed error: :class:`GoFailed` carries it through DSPy, which would otherwise count
it as one failed example (or attempt) and carry on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dspy
from dspy.evaluate.metrics import F1

from ..errors import BridgeError, InvalidArgument
from ..host import host

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


class GoFailed(BaseException):
    """A metric or reward implemented in Go failed; :attr:`error` is the typed error to raise.

    A BaseException, like the optimizer's Cancelled: DSPy catches ``Exception`` per example
    (Evaluate, bootstrapping) and per attempt (BestOfN, Refine), logs it and carries on, so a
    Go metric that fails on every example would end as a score of 0 instead of an error. The
    bridge raises :attr:`error` in its place (``DSPyBridge.run`` and ``_mapped``)."""

    def __init__(self, error: BridgeError):
        super().__init__(str(error))
        self.error = error


def _go_function(spec: dict, what: str) -> str:
    """The name of the registered host function a ``{"go": name}`` spec names (checked now:
    a definition naming a function the host did not register is refused when it is made)."""
    name = spec["go"]
    if not isinstance(name, str) or not name:
        raise InvalidArgument(f"a {what} implemented in Go is {{'go': name}}, the name of a function registered "
                              f"with mlbridge.Func, got {name!r}")
    extra = [k for k in spec if k != "go"]
    if extra:
        raise InvalidArgument(f"a {what} implemented in Go takes no {', '.join(extra)} (the Go function decides)")
    host.named([name], f"the {what}")
    return name


def _go_score(name: str, what: str, args: dict) -> float:
    """Call the Go function and check its answer is a score; any failure is :class:`GoFailed`."""
    try:
        value = host.call_sync(name, args)
    except BridgeError as e:
        raise GoFailed(e) from e
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise GoFailed(InvalidArgument(f"the {what} {name!r} (a Go function) returned {type(value).__name__} "
                                       f"{value!r:.80}, not a number"))
    return float(value)


def _plain(d: Any) -> dict:
    """A DSPy Example's or Prediction's fields as a dict to send to the host."""
    return dict(d.toDict()) if hasattr(d, "toDict") else dict(d)


def _builtin(spec: Any, table: dict[str, Callable[[Any, Any], float]], what: str) -> tuple[str, Callable]:
    if not isinstance(spec, dict):
        raise InvalidArgument(f"a {what} must be a map like {{'builtin': 'exact_match', 'field': 'answer'}}")
    name = spec.get("builtin")
    fn = table.get(name) if isinstance(name, str) else None
    if fn is None:
        raise InvalidArgument(f"unknown builtin {what} {name!r} (have: {', '.join(table)})")
    field = spec.get("field")
    if not isinstance(field, str) or not field:
        raise InvalidArgument(f"the {what} {name!r} needs the output field it scores ('field')")
    return field, fn


def build_metric(spec: Any, outputs: list[str]) -> Metric:
    """A DSPy metric: output ``field`` of the prediction against the example's, or a Go function."""
    if isinstance(spec, dict) and "go" in spec:
        name = _go_function(spec, "metric")

        def go_metric(example: dspy.Example, prediction: dspy.Prediction, trace: Any = None) -> float:
            return _go_score(name, "metric", {"example": _plain(example), "prediction": _plain(prediction)})

        return go_metric
    field, fn = _builtin(spec, METRICS, "metric")
    if field not in outputs:
        raise InvalidArgument(f"the metric scores field {field!r}, which is not an output (have: {', '.join(outputs)})")

    def metric(example: dspy.Example, prediction: dspy.Prediction, trace: Any = None) -> float:
        return fn(prediction.get(field, ""), example.get(field, ""))

    return metric


def build_reward(spec: Any, outputs: list[str]) -> Reward:
    """A BestOfN/Refine reward: output ``field`` against the spec's ``target``, or a Go function."""
    if isinstance(spec, dict) and "go" in spec:
        name = _go_function(spec, "reward")

        def go_reward(inputs: dict, prediction: dspy.Prediction) -> float:
            return _go_score(name, "reward", {"inputs": dict(inputs), "prediction": _plain(prediction)})

        return go_reward
    field, fn = _builtin(spec, REWARDS, "reward")
    if field not in outputs:
        raise InvalidArgument(f"the reward scores field {field!r}, which is not an output (have: {', '.join(outputs)})")
    target = spec.get("target")
    if not isinstance(target, str):
        raise InvalidArgument(f"the reward {spec['builtin']!r} needs a string 'target' to compare {field!r} with")

    def reward(inputs: dict, prediction: dspy.Prediction) -> float:
        return fn(prediction.get(field, ""), target)

    return reward
