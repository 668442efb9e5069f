"""Parity: a program run directly in DSPy and the same program run through a worker process give
the same outputs under DSPy's DummyLM."""

from __future__ import annotations

import dspy
import pytest
from dspy.utils import DummyLM

from client import Worker
from dspy_cases import CASES, DSPY


def direct(module: str, signature: str, answers: list[dict], inputs: list[dict]) -> list[dict]:
    program = getattr(dspy, module)(signature)
    with dspy.context(lm=DummyLM(answers), adapter=dspy.ChatAdapter()):
        return [dict(program(**i).toDict()) for i in inputs]


@pytest.mark.parametrize("module,signature,answers,inputs", CASES)
def test_bridge_matches_direct_dspy(module, signature, answers, inputs):
    want = direct(module, signature, answers, inputs)
    with Worker(DSPY) as w:
        w.hello()
        w.ok("define_resource", {"id": "lm", "kind": "lm", "version": 1, "is_global": True,
                                 "spec": {"provider": "dummy", "answers": answers}})
        w.ok("define_resource", {"id": "p", "kind": "program", "version": 1,
                                 "spec": {"signature": signature, "module": module}})
        got = [w.ok("execute_program", {"program_id": "p", "inputs": i}) for i in inputs]
    assert got == want
    assert all(v is not None for out in got for v in out.values())
