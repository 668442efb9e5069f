"""The DSPy modules a program definition can name, built from the spec's options.

  Predict, ChainOfThought   the signature alone
  MultiChainComparison      attempts (M, default 3): M ChainOfThought completions, then DSPy's
                            MultiChainComparison picks the answer from them
  BestOfN, Refine           attempts (N, default 3), reward (builtin or a Go function, dspy_metrics.py),
                            threshold (default 1.0), inner ("Predict" or "ChainOfThought")
  ReAct                     tools (required: names of host functions, Go functions the host
                            registered; dspy_tools.py), max_iters (default 5)

The spec is checked whole here, so that a worker refuses a bad definition when it is created.
"""

from __future__ import annotations

from typing import Any

import dspy

from ..errors import InvalidArgument
from .dspy_metrics import build_reward
from .dspy_tools import host_tools

MODULES = ("Predict", "ChainOfThought", "MultiChainComparison", "BestOfN", "Refine", "ReAct")
INNER = {"Predict": dspy.Predict, "ChainOfThought": dspy.ChainOfThought}


class CompareChains(dspy.Module):
    """M ChainOfThought attempts compared by MultiChainComparison: DSPy's module takes the
    attempts as an argument, so a program that is called with the signature's inputs alone
    makes them first. Each attempt asks the LM with its own rollout id (a distinct, uncached
    sample), as BestOfN does."""

    def __init__(self, signature: type[dspy.Signature], attempts: int):
        super().__init__()
        self.attempts = attempts
        self.generate = dspy.ChainOfThought(signature)
        self.compare = dspy.MultiChainComparison(signature, M=attempts)

    def forward(self, **inputs: Any) -> dspy.Prediction:
        completions = [self.generate(**inputs, config=self._sample(i)) for i in range(self.attempts)]
        return self.compare(completions, **inputs)

    async def aforward(self, **inputs: Any) -> dspy.Prediction:
        """The async path (StreamProgram, async execution): DSPy's MultiChainComparison has no
        aforward, so its prompt is made here as its forward makes it, then awaited."""
        completions = [await self.generate.acall(**inputs, config=self._sample(i)) for i in range(self.attempts)]
        last = self.compare.last_key
        attempts = {
            f"reasoning_attempt_{i + 1}": "«I'm trying to " + _first_line(c.get("rationale", c.get("reasoning")))
            + " I'm not sure but my prediction is " + _first_line(c[last]) + "»"
            for i, c in enumerate(completions)}
        return await self.compare.predict.acall(**attempts, **inputs)

    def stream_predictor(self) -> tuple[str, dspy.Predict]:
        """The predictor whose output StreamProgram streams: the comparison (the attempts'
        fields have the same names)."""
        return "compare.predict", self.compare.predict

    @staticmethod
    def _sample(i: int) -> dict:
        return {"rollout_id": i, "temperature": 1.0}


def _first_line(v: Any) -> str:
    return str(v).strip().split("\n")[0].strip()


class _NoAsync:
    """BestOfN and Refine have no async path in DSPy (no aforward): StreamProgram and the async
    execution mode refuse them clearly instead of failing inside DSPy."""

    async def aforward(self, **inputs: Any) -> dspy.Prediction:
        raise InvalidArgument(f"{type(self).__name__[1:]} cannot run async or be streamed (DSPy has no async "
                              "version of it): use ExecuteProgram")


class _BestOfN(_NoAsync, dspy.BestOfN):
    pass


class _Refine(_NoAsync, dspy.Refine):
    pass


def _int(spec: dict, key: str, default: int, low: int = 1) -> int:
    v = spec.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise InvalidArgument(f"module option {key!r} must be an integer >= {low}, got {v!r}")
    return v


def _check_added_inputs(module_type: str, sig: type[dspy.Signature], spec: dict) -> None:
    """An input named as a field the module adds itself would be lost: ChainOfThought's output
    "reasoning" replaces an input of that name (DSPy then ignores the caller's value with a
    warning), ReAct passes its own "trajectory"."""
    added = set()
    if module_type in ("ChainOfThought", "MultiChainComparison", "ReAct") or spec.get("inner") == "ChainOfThought":
        added.add("reasoning")
    if module_type == "ReAct":
        added.add("trajectory")
    clash = sorted(added & set(sig.input_fields))
    if clash:
        raise InvalidArgument(f"{module_type} adds field(s) {', '.join(map(repr, clash))} itself: "
                              "rename the input (its value would be lost)")


def build_module(module_type: str, sig: type[dspy.Signature], spec: dict) -> dspy.Module:
    _check_added_inputs(module_type, sig, spec)
    if module_type in INNER:
        return INNER[module_type](sig)
    if module_type == "ReAct":
        return dspy.ReAct(sig, tools=host_tools(spec.get("tools")), max_iters=_int(spec, "max_iters", 5))
    if module_type == "MultiChainComparison":
        return CompareChains(sig, _int(spec, "attempts", 3))
    if module_type in ("BestOfN", "Refine"):
        inner_name = spec.get("inner", "Predict")
        inner = INNER.get(inner_name)
        if inner is None:
            raise InvalidArgument(f"{module_type}: unknown inner module {inner_name!r} (have: {', '.join(INNER)})")
        if "reward" not in spec:
            raise InvalidArgument(f"{module_type} needs a reward, e.g. {{'builtin': 'exact_match', 'field': "
                                  "'answer', 'target': 'Paris'}")
        reward = build_reward(spec["reward"], list(sig.output_fields))
        threshold = spec.get("threshold", 1.0)
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
            raise InvalidArgument(f"{module_type}: threshold must be a number, got {threshold!r}")
        cls = _BestOfN if module_type == "BestOfN" else _Refine
        return cls(inner(sig), N=_int(spec, "attempts", 3), reward_fn=reward, threshold=float(threshold))
    raise InvalidArgument(f"unknown module {module_type!r} (have: {', '.join(MODULES)})")
