"""DSPy optimizers and Evaluate run for the Go host, with progress and cancellation.

An optimization is long, blocking DSPy work. The bridge's handler is a sync generator (the
runtime runs it on its thread pool); it starts the DSPy work on a thread of its own and yields
the progress that work reports through a queue, so events reach Go while DSPy runs:

  {"event": "metric", "calls": n, "score": s}   each metric call (one example scored)
  {"event": "trial", "trial": k, "score": s}    each Evaluate DSPy ran (a candidate program)
  {"result": {...}}                             last: the optimized state (DSPy's dump_state JSON)

Scores are fractions (DSPy's Evaluate reports percent; it is divided by 100 here).

Cancellation: the host's cancel marks the request stopped; the generator sees it between
events, sets :attr:`Run.cancel`, and the DSPy thread raises :class:`Cancelled` at its next
module call, LM call or metric call (DSPy callbacks, see :class:`_Hooks`). Cancelled is a BaseException so that DSPy's per-example ``except Exception``
(bootstrap, ParallelExecutor) lets it through and the optimizer stops instead of counting an
error. The generator waits for the DSPy thread to end, so the runtime keeps counting the call
(abandoned) until the worker's thread is really free.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import dspy
from dspy.utils.callback import BaseCallback

from ..errors import InvalidArgument, InvalidConfiguration
from ..request import current_request
from .dspy_metrics import Metric, build_metric
from .dspy_programs import Program, demo_count, dump_state

OPTIMIZERS = ("BootstrapFewShot", "BootstrapFewShotWithRandomSearch", "MIPROv2")
# The options each optimizer takes from Go, with their types; anything else is refused.
_INT_OPTIONS = {
    "BootstrapFewShot": ("max_bootstrapped_demos", "max_labeled_demos", "max_rounds", "max_errors"),
    "BootstrapFewShotWithRandomSearch": ("max_bootstrapped_demos", "max_labeled_demos", "max_rounds",
                                         "max_errors", "num_candidate_programs"),
    "MIPROv2": ("max_bootstrapped_demos", "max_labeled_demos", "max_errors", "seed", "minibatch_size"),
}
_COMPILE_OPTIONS = {"minibatch_size"}  # MIPROv2 takes it in compile(), not __init__
_POLL = 0.05  # seconds between the generator's looks at the host's cancel


class Cancelled(BaseException):
    """The host cancelled the call: raised in the DSPy thread at its next module, LM or metric call."""


class Run:
    """One optimization or evaluation: its event queue, its cancel flag, its metric counts."""

    def __init__(self) -> None:
        # the host's request, when this thread serves one (Evaluate, a sync handler): its cancel
        # is read directly; the optimizer's own thread gets it through `cancel`
        self.request = current_request()
        self.events: queue.Queue[dict] = queue.Queue()
        self.cancel = threading.Event()
        self.calls = 0
        self.trials = 0
        self.best: float | None = None  # the best trial score
        self.scored: dict[int, float] = {}  # id(example) -> score, for Evaluate's per-example results

    def check(self) -> None:
        """Raise Cancelled once the host cancelled."""
        if self.cancel.is_set() or (self.request is not None and self.request.cancelled):
            raise Cancelled()

    def metric(self, inner: Metric, report: bool = True) -> Metric:
        def metric(example: dspy.Example, prediction: dspy.Prediction, trace: Any = None) -> float:
            self.check()
            score = inner(example, prediction, trace)
            self.calls += 1
            self.scored[id(example)] = score
            if report:
                self.events.put({"event": "metric", "calls": self.calls, "score": score})
            return score

        return metric


class _Hooks(BaseCallback):
    """DSPy's callbacks, as the run's hooks: each Evaluate DSPy runs inside an optimizer (a
    candidate program) is reported as a trial, and every module and LM call first checks the
    cancel. DSPy logs and swallows a callback's Exception, not a BaseException: Cancelled
    goes through, so work stops before its next LM call even on examples that never reach the
    metric (a failed prediction)."""

    def __init__(self, run: Run):
        self.run = run

    def on_module_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        self.run.check()

    def on_lm_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        self.run.check()

    def on_evaluate_end(self, call_id: str, outputs: Any | None, exception: BaseException | None = None) -> None:
        score = getattr(outputs, "score", None)
        if exception is None and isinstance(score, (int, float)):
            run, score = self.run, score / 100.0
            run.trials += 1
            run.best = score if run.best is None else max(run.best, score)
            run.events.put({"event": "trial", "trial": run.trials, "score": score})


def examples(raw: Any, input_keys: list[str], fields: list[str], what: str) -> list[dspy.Example]:
    """Examples from Go's []map[string]any, each with the input keys and the gold output fields."""
    if not isinstance(raw, list) or not raw:
        raise InvalidArgument(f"{what} must be a non-empty list of examples (maps of field to value)")
    out = []
    for i, ex in enumerate(raw):
        if not isinstance(ex, dict):
            raise InvalidArgument(f"{what}[{i}] must be a map of field to value, got {type(ex).__name__}")
        missing = [k for k in (*input_keys, *fields) if k not in ex]
        if missing:
            raise InvalidArgument(f"{what}[{i}] lacks field(s) {', '.join(missing)}")
        out.append(dspy.Example(**ex).with_inputs(*input_keys))
    return out


def input_keys(prog: Program, keys: Any) -> list[str]:
    """The example keys that are inputs: the caller's, or the signature's input fields."""
    if keys is None or keys == []:
        return list(prog.signature.input_fields)
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise InvalidArgument("input_keys must be a list of field names")
    unknown = [k for k in keys if k not in prog.signature.input_fields]
    if unknown or set(keys) != set(prog.signature.input_fields):
        raise InvalidArgument(f"input_keys {keys} must be the program's inputs {list(prog.signature.input_fields)}")
    return keys


def metric_field(spec: Any) -> list[str]:
    f = spec.get("field") if isinstance(spec, dict) else None
    return [f] if isinstance(f, str) and f else []


def build_optimizer(name: str, metric: Metric, options: dict) -> tuple[Any, dict]:
    """The teleprompter and the extra compile() arguments."""
    if name not in OPTIMIZERS:
        raise InvalidArgument(f"unknown optimizer {name!r} (have: {', '.join(OPTIMIZERS)})")
    allowed = _INT_OPTIONS[name] + (("auto",) if name == "MIPROv2" else ())
    unknown = [k for k in options if k not in allowed]
    if unknown:
        raise InvalidArgument(f"{name} takes no option(s) {', '.join(unknown)} (have: {', '.join(allowed)})")
    init: dict[str, Any] = {}
    comp: dict[str, Any] = {}
    for k, v in options.items():
        if k == "auto":
            if v not in ("light", "medium", "heavy"):
                raise InvalidArgument(f"MIPROv2 auto must be light, medium or heavy, got {v!r}")
        elif isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise InvalidArgument(f"{name} option {k!r} must be a non-negative integer, got {v!r}")
        (comp if k in _COMPILE_OPTIONS else init)[k] = v
    if name == "BootstrapFewShot":
        return dspy.BootstrapFewShot(metric=metric, **init), comp
    if name == "BootstrapFewShotWithRandomSearch":
        # num_threads=1: candidates are scored one example after another on this thread, where
        # the cancel check runs; a single worker's LM serves one call at a time anyway.
        return dspy.BootstrapFewShotWithRandomSearch(metric=metric, num_threads=1, **init), comp
    try:
        import optuna  # noqa: F401 - MIPROv2's search needs it; DSPy imports it late
    except ImportError as e:
        raise InvalidConfiguration("MIPROv2 needs the optuna package in the worker's Python: the worker "
                                   "package's mipro extra (mlbridge python setup --extras dspy,mipro)") from e
    init.setdefault("auto", "light")  # the budget is DSPy's preset; explicit trial counts are not exposed
    return dspy.MIPROv2(metric=metric, num_threads=1, **init), comp


def optimize(prog: Program, lm: dspy.BaseLM, adapter: dspy.Adapter | None, optimizer: str, trainset: list,
             valset: list | None, metric_spec: Any, options: dict, keys: Any, run: Run) -> dict:
    """Compile a copy of the program (the cached one keeps serving calls) and describe the result."""
    keys = input_keys(prog, keys)
    outputs = list(prog.signature.output_fields)
    metric = run.metric(build_metric(metric_spec, outputs))
    train = examples(trainset, keys, metric_field(metric_spec), "trainset")
    val = examples(valset, keys, metric_field(metric_spec), "valset") if valset else None
    student = prog.module.deepcopy()
    with dspy.context(lm=lm, adapter=adapter, callbacks=[_Hooks(run)]):
        teleprompter, comp = build_optimizer(optimizer, metric, options)  # MIPROv2 reads the LM here
        if val is not None:
            comp["valset"] = val
        compiled = teleprompter.compile(student, trainset=train, **comp)
    score = getattr(compiled, "score", None)  # MIPROv2 keeps its best score (percent)
    best = score / 100.0 if isinstance(score, (int, float)) else run.best
    return {"state": dump_state(compiled), "demos": demo_count(compiled), "trials": run.trials,
            "metric_calls": run.calls, "best_score": best}


def evaluate(prog: Program, lm: dspy.BaseLM, adapter: dspy.Adapter | None, devset: list, metric_spec: Any,
             keys: Any, run: Run) -> dict:
    """DSPy's Evaluate: the mean score and, per example, the prediction and its score. An example
    the program failed on (an LM or parse error: DSPy logs it) scores 0 and is marked failed."""
    keys = input_keys(prog, keys)
    metric = run.metric(build_metric(metric_spec, list(prog.signature.output_fields)), report=False)
    dev = examples(devset, keys, metric_field(metric_spec), "devset")
    ev = dspy.Evaluate(devset=dev, metric=metric, num_threads=1, max_errors=len(dev) + 1, display_progress=False)
    with dspy.context(lm=lm, adapter=adapter, callbacks=[_Hooks(run)]):
        result = ev(prog.module)
    rows = []
    for ex, pred, score in result.results:
        rows.append({"prediction": dict(pred.toDict()) if isinstance(pred, dspy.Prediction) else {},
                     "score": float(score), "failed": id(ex) not in run.scored})
    return {"score": result.score / 100.0, "results": rows}


def run_streaming(work: Callable[[Run], dict]) -> Iterator[dict]:
    """Run ``work`` on a thread of its own and yield its events, then ``{"result": ...}``.

    Called from a sync generator handler: the host's cancel is seen between events (the
    runtime's request flag), passed to the work as :attr:`Run.cancel`, and the generator returns
    once the work has stopped."""
    run = Run()
    outcome: dict[str, Any] = {}
    ctx = contextvars.copy_context()  # the request's context: the runtime's request, logging

    def target() -> None:
        try:
            outcome["value"] = ctx.run(work, run)
        except BaseException as e:  # noqa: BLE001 - handed to the generator, which re-raises
            outcome["error"] = e

    t = threading.Thread(target=target, name="mlbridge-dspy-optimize", daemon=True)
    t.start()
    req = current_request()
    try:
        while True:
            try:
                yield run.events.get(timeout=_POLL)
            except queue.Empty:
                if not t.is_alive():
                    break
            if req is not None and req.cancelled:
                run.cancel.set()
        while not run.events.empty():  # events put just before the thread ended
            yield run.events.get_nowait()
    finally:
        run.cancel.set()  # a consumer that stopped early (generator closed) stops the work too
        t.join()
    if "error" in outcome:
        raise outcome["error"]
    yield {"result": outcome["value"]}
