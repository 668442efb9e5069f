"""The embedded offline LM (SmolLM2-135M-Instruct on llama.cpp) under real DSPy programs.

The model is small, so these tests check structure — every declared output field present and of
its declared type — never wording. Constrained decoding (the signature's JSON schema compiled to a
llama.cpp grammar) is what makes that hold for a 135M model.
"""

from __future__ import annotations

import pytest

from mlbridge_worker.frameworks.dspy_bridge import DSPyBridge
from mlbridge_worker.frameworks.local_lm import LlamaCppEngine, LocalLM, default_model_path


@pytest.fixture(scope="module")
def bridge():
    b = DSPyBridge()
    b._initialize_framework()
    b.configure_lm({"provider": "local", "max_tokens": 128})
    return b


def test_local_lm_is_a_dspy_lm_on_the_packaged_model():
    import dspy

    assert default_model_path().endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    assert issubclass(LocalLM, dspy.BaseLM)
    assert LlamaCppEngine.supports_response_schema and "response_format" in LlamaCppEngine.supported_params


def test_chain_of_thought_yields_typed_fields(bridge):
    bridge.create_program("cot", "question: str -> answer: str, confidence: float", module="ChainOfThought")
    out = bridge.execute_program("cot", {"question": "What is the capital of France?"})
    assert set(out) == {"reasoning", "answer", "confidence"}
    assert isinstance(out["reasoning"], str) and isinstance(out["answer"], str)
    assert isinstance(out["confidence"], float)


def test_list_int_and_bool_outputs_parse(bridge):
    bridge.create_program("kw", "text: str -> keywords: list[str], count: int, positive: bool")
    out = bridge.execute_program("kw", {"text": "I love sunny days at the beach with friends."})
    assert set(out) == {"keywords", "count", "positive"}
    assert isinstance(out["keywords"], list) and all(isinstance(k, str) for k in out["keywords"])
    assert isinstance(out["count"], int) and not isinstance(out["count"], bool)
    assert isinstance(out["positive"], bool)


def test_tokens_are_counted(bridge):
    bridge.create_program("p", "question -> answer")
    bridge.execute_program("p", {"question": "Name a color."})
    usage = bridge.lm.history[-1]["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
