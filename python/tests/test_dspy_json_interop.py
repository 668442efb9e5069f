"""Programs move between plain DSPy and mlbridge as DSPy's own JSON: a file plain DSPy's
``program.save("p.json")`` wrote is a program's state here (ImportProgram's path), and what
mlbridge exports (ExportProgram's ``export_program``) is a file plain DSPy's ``program.load``
reads. DSPy's LabeledFewShot picks the demos; the follow-examples DummyLM answers exactly the
questions that are demos, so a run shows the demos arrived."""

from __future__ import annotations

import json
from pathlib import Path

import dspy
import pytest
from dspy.utils import DummyLM

from mlbridge_worker.errors import ModelError
from mlbridge_worker.frameworks.dspy_bridge import DSPyBridge

CAPITALS = [("France", "Paris"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Japan", "Tokyo"), ("Egypt", "Cairo"),
            ("Peru", "Lima")]
# with a reasoning, so that a ChainOfThought's demos are complete answers too
TRAIN = [dspy.Example(question=f"capital of {c}?", reasoning=f"{a} is the capital of {c}.", answer=a)
         .with_inputs("question") for c, a in CAPITALS]
INSTRUCTIONS = "Name the capital city, nothing else."


def plain_program(module: str) -> dspy.Module:
    sig = dspy.Signature("question -> answer", INSTRUCTIONS)
    return dspy.ChainOfThought(sig) if module == "ChainOfThought" else dspy.Predict(sig)


def bridge() -> DSPyBridge:
    b = DSPyBridge()
    b._initialize_framework()
    b.configure_lm({"provider": "dummy", "follow_examples": True})
    return b


@pytest.mark.parametrize("module", ["Predict", "ChainOfThought"])
def test_a_program_saved_by_dspy_runs_in_mlbridge(tmp_path: Path, module: str) -> None:
    compiled = dspy.LabeledFewShot(k=4).compile(plain_program(module), trainset=TRAIN)
    path = tmp_path / "p.json"
    compiled.save(str(path))  # plain DSPy: dump_state() plus metadata
    saved = path.read_bytes()
    assert "metadata" in json.loads(saved)

    b = bridge()
    # what dspy.Client.ImportProgram defines: the signature, the module, DSPy's file as the state
    b.define_resource("p", "program", 1, {"signature": "question -> answer", "module": module}, saved)
    assert b.get_program_info("p")["demos"] == 4
    out = b.execute_program("p", {"question": "capital of Italy?"})
    assert out["answer"] == "Rome"
    prompt = b.lm.history[-1]["messages"][0]["content"]
    assert INSTRUCTIONS in prompt  # the saved instructions, not the definition's (none)
    # the saved demos, and only those: a capital DSPy did not pick is not answered
    state = json.loads(saved)
    picked = {d["question"] for d in (state if module == "Predict" else state["predict"])["demos"]}
    assert len(picked) == 4 and "capital of Italy?" in picked
    other = next(f"capital of {c}?" for c, _ in CAPITALS if f"capital of {c}?" not in picked)
    with pytest.raises(ModelError):
        b.execute_program("p", {"question": other})
    # and the state stays DSPy's: exported again, it is what DSPy saved (metadata aside)
    again = json.loads(b.export_program("p"))
    want = json.loads(saved)
    assert again.pop("metadata")["dependency_versions"] == want.pop("metadata")["dependency_versions"]
    assert again == want


@pytest.mark.parametrize("module", ["Predict", "ChainOfThought"])
def test_mlbridge_export_loads_in_plain_dspy(tmp_path: Path, module: str) -> None:
    b = bridge()
    b.define_resource("p", "program", 1, {"signature": "question -> answer", "module": module,
                                          "instructions": INSTRUCTIONS})
    events = list(b.optimize_program("p", "BootstrapFewShot", [dict(e) for e in TRAIN],
                                     {"builtin": "exact_match", "field": "answer"},
                                     options={"max_labeled_demos": 3, "max_bootstrapped_demos": 0}))
    state = events[-1]["result"]["state"]
    b.define_resource("p", "program", 2, {"signature": "question -> answer", "module": module,
                                          "instructions": INSTRUCTIONS}, state)
    path = tmp_path / "exported.json"
    path.write_bytes(b.export_program("p"))  # what dspy.Client.ExportProgram returns

    loaded = plain_program(module)
    loaded.load(str(path))  # plain DSPy's load: needs the metadata Module.save writes
    assert sum(len(p.demos) for _, p in loaded.named_predictors()) == 3
    demo = loaded.named_predictors()[0][1].demos[0]
    with dspy.context(lm=DummyLM([], follow_examples=True), adapter=dspy.ChatAdapter()):
        assert loaded(question=demo["question"]).answer == demo["answer"]
