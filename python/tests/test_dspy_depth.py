"""More DSPy modules, optimizers, Evaluate and program state, on DSPy's own DummyLM."""

from __future__ import annotations

import json
import threading

import pytest

from mlbridge_worker.errors import InvalidArgument
from mlbridge_worker.frameworks.dspy_bridge import DSPyBridge

CAPITALS = [("France", "Paris"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Japan", "Tokyo"), ("Egypt", "Cairo"),
            ("Peru", "Lima"), ("Kenya", "Nairobi"), ("Chile", "Santiago"), ("Cuba", "Havana"), ("Iran", "Tehran")]
TRAIN = [{"question": f"capital of {c}?", "answer": a} for c, a in CAPITALS]
EXACT = {"builtin": "exact_match", "field": "answer"}
PARIS = {"builtin": "exact_match", "field": "answer", "target": "Paris"}


@pytest.fixture
def bridge() -> DSPyBridge:
    b = DSPyBridge()
    b._initialize_framework()
    return b


def define(b: DSPyBridge, id: str, version: int = 1, state: bytes | None = None, **spec) -> None:
    b.define_resource(id, "program", version, {"signature": "question -> answer", **spec}, state)


def test_multi_chain_comparison_compares_the_attempts(bridge: DSPyBridge) -> None:
    bridge.configure_lm({"provider": "dummy", "answers": [
        {"reasoning": "r1", "answer": "Lyon"}, {"reasoning": "r2", "answer": "Paris"},
        {"rationale": "two attempts say Paris", "answer": "Paris"}]})
    define(bridge, "m", module="MultiChainComparison", attempts=2)
    assert bridge.execute_program("m", {"question": "capital of France?"}) == {
        "rationale": "two attempts say Paris", "answer": "Paris"}
    assert bridge.get_program_info("m")["module"] == "MultiChainComparison"


def test_best_of_n_stops_at_the_first_reward_over_the_threshold(bridge: DSPyBridge) -> None:
    bridge.configure_lm({"provider": "dummy", "answers": [{"answer": "Lyon"}, {"answer": "Paris"}, {"answer": "Nice"}]})
    define(bridge, "b", module="BestOfN", attempts=3, reward=PARIS, threshold=1.0)
    assert bridge.execute_program("b", {"question": "capital of France?"}) == {"answer": "Paris"}
    # The third answer was not asked for: the next call gets it.
    define(bridge, "p")
    assert bridge.execute_program("p", {"question": "q"}) == {"answer": "Nice"}


def test_refine_asks_for_feedback_after_a_low_reward(bridge: DSPyBridge) -> None:
    bridge.configure_lm({"provider": "dummy", "answers": [
        {"answer": "Lyon"}, {"discussion": "wrong city", "advice": {"self": "answer Paris"}}, {"answer": "Paris"}]})
    define(bridge, "r", module="Refine", attempts=3, reward={**PARIS, "builtin": "contains"}, inner="Predict")
    assert bridge.execute_program("r", {"question": "capital of France?"}) == {"answer": "Paris"}


@pytest.mark.parametrize("spec, message", [
    ({"module": "BestOfN"}, "needs a reward"),
    ({"module": "Refine", "reward": {"builtin": "f1", "field": "answer", "target": "x"}}, "unknown builtin reward"),
    ({"module": "BestOfN", "reward": {"builtin": "exact_match", "field": "nope", "target": "x"}}, "not an output"),
    ({"module": "BestOfN", "reward": {"builtin": "exact_match", "field": "answer"}}, "string 'target'"),
    ({"module": "BestOfN", "reward": {"go": "my_reward"}}, "no host function named 'my_reward'"),
    ({"module": "BestOfN", "reward": {"go": ""}}, "the name of a function registered"),
    ({"module": "Refine", "reward": {"go": "r", "field": "answer"}}, "takes no field"),
    ({"module": "BestOfN", "reward": PARIS, "attempts": 0}, "'attempts' must be an integer >= 1"),
    ({"module": "BestOfN", "reward": PARIS, "inner": "ReAct"}, "unknown inner module"),
    ({"module": "MultiChainComparison", "attempts": "3"}, "'attempts' must be an integer"),
    ({"module": "ReAct"}, "ReAct needs tools"),
])
def test_module_options_are_checked(bridge: DSPyBridge, spec: dict, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        define(bridge, "x", **spec)


def test_evaluate_then_optimize_then_the_stored_state_scores_better(bridge: DSPyBridge) -> None:
    # follow_examples: the dummy LM answers a question that is one of the prompt's demos with
    # the demo's answer, and fails to answer (a parse error) otherwise. Demos are what the
    # optimizers choose, so the score measures them.
    bridge.configure_lm({"provider": "dummy", "follow_examples": True})
    define(bridge, "p")
    before = bridge.evaluate_program("p", TRAIN, EXACT)
    assert before["score"] == 0.0 and all(r["failed"] for r in before["results"])

    events = list(bridge.optimize_program("p", "BootstrapFewShotWithRandomSearch", TRAIN, EXACT, options={
        "max_labeled_demos": 4, "max_bootstrapped_demos": 2, "max_errors": 100, "num_candidate_programs": 2}))
    trials = [e["score"] for e in events if e.get("event") == "trial"]
    assert trials == [0.0, 0.4, 0.4, 0.4, 0.4]  # zero-shot, labeled only, then the bootstrapped ones
    assert any(e.get("event") == "metric" for e in events)
    result = events[-1]["result"]
    assert result["demos"] == 4 and result["trials"] == 5 and result["best_score"] == 0.4
    assert bridge.get_program_info("p")["demos"] == 0  # this worker's program is untouched

    define(bridge, "p", version=2, state=result["state"])
    assert bridge.get_program_info("p")["demos"] == 4
    after = bridge.evaluate_program("p", TRAIN, EXACT)
    assert after["score"] == 0.4
    good = [r for r in after["results"] if not r["failed"]]
    assert len(good) == 4 and all(r["score"] == 1.0 for r in good)
    exported = json.loads(bridge.export_program("p"))
    assert "dependency_versions" in exported.pop("metadata")  # as Module.save writes it
    assert exported == json.loads(result["state"])


def test_bootstrap_few_shot_keeps_labeled_demos(bridge: DSPyBridge) -> None:
    bridge.configure_lm({"provider": "dummy", "follow_examples": True})
    define(bridge, "p", module="ChainOfThought")
    events = list(bridge.optimize_program("p", "BootstrapFewShot", TRAIN, {"builtin": "f1", "field": "answer"},
                                          options={"max_labeled_demos": 3, "max_errors": 100}))
    result = events[-1]["result"]
    assert result["demos"] == 3
    define(bridge, "p", version=2, module="ChainOfThought", state=result["state"])
    assert bridge.get_program_info("p")["demos"] == 3


@pytest.mark.parametrize("args, message", [
    ({"optimizer": "COPRO"}, "unknown optimizer"),
    ({"options": {"num_threads": 4}}, "takes no option"),
    ({"options": {"max_labeled_demos": -1}}, "non-negative integer"),
    ({"metric": {"builtin": "bleu", "field": "answer"}}, "unknown builtin metric"),
    ({"metric": {"go": "my_metric"}}, "no host function named 'my_metric'"),
    ({"trainset": []}, "non-empty list"),
    ({"trainset": [{"question": "q"}]}, "lacks field"),
    ({"input_keys": ["answer"]}, "must be the program's inputs"),
])
def test_optimizer_arguments_are_checked(bridge: DSPyBridge, args: dict, message: str) -> None:
    bridge.configure_lm({"provider": "dummy", "follow_examples": True})
    define(bridge, "p")
    call = {"optimizer": "BootstrapFewShot", "trainset": TRAIN, "metric": EXACT, **args}
    with pytest.raises(InvalidArgument, match=message):
        list(bridge.optimize_program("p", **call))


def test_closing_the_stream_stops_the_optimizer(bridge: DSPyBridge) -> None:
    bridge.configure_lm({"provider": "dummy", "follow_examples": True})
    define(bridge, "p")
    stream = bridge.optimize_program("p", "BootstrapFewShotWithRandomSearch", TRAIN, EXACT, options={
        "max_labeled_demos": 4, "max_errors": 1000, "num_candidate_programs": 50})
    first = next(stream)
    assert first["event"] in ("trial", "metric")
    stream.close()  # joins the optimizer's thread, stopped by Cancelled at its next metric call
    assert [t.name for t in threading.enumerate() if t.name == "mlbridge-dspy-optimize"] == []


def test_state_of_another_shape_is_refused(bridge: DSPyBridge) -> None:
    define(bridge, "cot", module="ChainOfThought")
    state = bridge.export_program("cot")
    with pytest.raises(InvalidArgument, match="program state"):
        define(bridge, "p", state=b"not json")
    with pytest.raises(InvalidArgument, match="saved from another module"):
        define(bridge, "mcc", module="MultiChainComparison", state=state)
    define(bridge, "cot2", module="ChainOfThought", state=state)  # the same shape loads


def test_mipro_v2_light_runs_on_the_dummy_lm(bridge: DSPyBridge) -> None:
    pytest.importorskip("optuna")  # MIPROv2's search: the worker's mipro extra
    # Answers by prompt, first match wins: MIPROv2's proposer prompts (they quote the data) get
    # their fields, and the program knows every other capital.
    answers: dict[str, dict] = {
        "proposed_instruction": {"proposed_instruction": "Name the capital city."},
        "program_description": {"program_description": "It answers questions."},
        "module_description": {"module_description": "It answers."},
        "observations": {"observations": "Capitals."},
        "summary": {"summary": "Capitals of countries."},
    }
    answers.update({ex["question"]: {"answer": ex["answer"] if i % 2 == 0 else "?"} for i, ex in enumerate(TRAIN)})
    bridge.configure_lm({"provider": "dummy", "answers": answers})
    define(bridge, "p")
    events = list(bridge.optimize_program("p", "MIPROv2", TRAIN, EXACT, options={"auto": "light", "max_errors": 100}))
    trials = [e["score"] for e in events if e.get("event") == "trial"]
    result = events[-1]["result"]
    assert len(trials) > 1 and set(trials) == {0.5} and result["best_score"] == 0.5
    define(bridge, "p", version=2, state=result["state"])


def test_mipro_v2_without_optuna_is_a_configuration_error(bridge: DSPyBridge, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from mlbridge_worker.errors import InvalidConfiguration

    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna raises ImportError
    bridge.configure_lm({"provider": "dummy", "follow_examples": True})
    define(bridge, "p")
    with pytest.raises(InvalidConfiguration, match="optuna"):
        list(bridge.optimize_program("p", "MIPROv2", TRAIN, EXACT))


def test_multi_chain_comparison_streams_and_runs_async() -> None:
    import asyncio

    for mode in ("stream", "async"):
        b = DSPyBridge()
        b._initialize_framework()
        b.configure_lm({"provider": "dummy", "answers": [
            {"reasoning": "r1", "answer": "Paris"}, {"reasoning": "r2", "answer": "Paris"},
            {"rationale": "both say Paris", "answer": "Paris"}]})
        define(b, "m", module="MultiChainComparison", attempts=2)

        async def run() -> object:
            if mode == "stream":
                return [c async for c in b.stream_program("m", {"question": "q"})]
            return await b.execute_program_async("m", {"question": "q"})

        want = {"rationale": "both say Paris", "answer": "Paris"}
        assert asyncio.run(run()) == ([{"prediction": want}] if mode == "stream" else want)


@pytest.mark.parametrize("module", ["BestOfN", "Refine"])
def test_best_of_n_and_refine_refuse_streaming_clearly(bridge: DSPyBridge, module: str) -> None:
    import asyncio

    bridge.configure_lm({"provider": "dummy", "answers": [{"answer": "Paris"}]})
    define(bridge, "b", module=module, reward=PARIS)

    async def stream() -> list:
        return [c async for c in bridge.stream_program("b", {"question": "q"})]

    with pytest.raises(InvalidArgument, match="cannot run async or be streamed"):
        asyncio.run(stream())
    assert bridge.execute_program("b", {"question": "q"}) == {"answer": "Paris"}  # the sync path is unaffected
