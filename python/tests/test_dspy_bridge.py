"""DSPyBridge with real DSPy; the LM is DSPy's own DummyLM (deterministic)."""

import pytest

from mlbridge_worker.errors import InvalidArgument, InvalidConfiguration, NotFound
from mlbridge_worker.frameworks.dspy_bridge import DSPyBridge


@pytest.fixture
def bridge():
    b = DSPyBridge()
    b._initialize_framework()
    return b


def dummy(*answers):
    return {"provider": "dummy", "answers": list(answers)}


def test_predict_and_chain_of_thought(bridge):
    bridge.configure_lm(dummy({"answer": "Paris"}, {"reasoning": "it is the capital", "answer": "Rome"}))
    bridge.create_program("p", "question -> answer")
    bridge.create_program("cot", "question -> answer", module="ChainOfThought")
    assert bridge.execute_program("p", {"question": "capital of France?"}) == {"answer": "Paris"}
    out = bridge.execute_program("cot", {"question": "capital of Italy?"})
    assert out == {"reasoning": "it is the capital", "answer": "Rome"}
    assert bridge.list_programs() == ["cot", "p"]


def test_typed_fields_are_honoured(bridge):
    bridge.configure_lm(dummy({"answer": "Paris", "confidence": "0.75"}))
    bridge.create_program("t", "context: list[str], question: str -> answer: str, confidence: float")
    out = bridge.execute_program("t", {"context": ["France's capital is Paris."], "question": "capital?"})
    assert out["answer"] == "Paris"
    assert isinstance(out["confidence"], float) and out["confidence"] == 0.75
    info = bridge.get_program_info("t")
    assert [f["type"] for f in info["inputs"]] == ["list[str]", "str"]
    assert [f["type"] for f in info["outputs"]] == ["str", "float"]
    # the signature keeps the types DSPy's own `signature` drops; str, the default, stays implicit
    assert info["signature"] == "context: list[str], question -> answer, confidence: float"


def test_untyped_signature_reads_as_written(bridge):
    bridge.create_program("u", "question -> answer")
    assert bridge.get_program_info("u")["signature"] == "question -> answer"
    bridge.create_program("o", "q: Optional[int], d: dict[str, int] -> a: Literal['x', 'y'], b: bool")
    assert bridge.get_program_info("o")["signature"] == "q: Optional[int], d: dict[str, int] -> a: Literal['x', 'y'], b: bool"


def test_instructions_and_field_descriptions(bridge):
    bridge.define_resource("d", "program", 1, {
        "signature": "question -> answer", "instructions": "Answer in one word.",
        "field_descriptions": {"answer": "a single word"},
    })
    info = bridge.get_program_info("d")
    assert info["instructions"] == "Answer in one word."
    assert info["outputs"][0]["desc"] == "a single word"


@pytest.mark.parametrize("signature", ["question answer", "", "a -> b -> c", "1x -> y", "q: notatype[ -> a"])
def test_bad_signature_is_an_error_never_a_fallback(bridge, signature):
    with pytest.raises(InvalidArgument):
        bridge.create_program("bad", signature)
    assert bridge.list_programs() == []


def test_bad_inputs(bridge):
    bridge.configure_lm(dummy({"answer": "x"}))
    bridge.create_program("t", "context: list[str], question: str -> answer")
    with pytest.raises(InvalidArgument, match="missing input field"):
        bridge.execute_program("t", {"question": "q"})
    with pytest.raises(InvalidArgument, match="unknown input field"):
        bridge.execute_program("t", {"question": "q", "context": [], "extra": 1})
    with pytest.raises(InvalidArgument, match="must be list"):
        bridge.execute_program("t", {"question": "q", "context": "not a list"})
    with pytest.raises(InvalidArgument, match="must be str"):
        bridge.execute_program("t", {"question": 42, "context": []})


def test_unknown_program_module_and_provider(bridge):
    with pytest.raises(NotFound):
        bridge.execute_program("nope", {})
    with pytest.raises(NotFound):
        bridge.get_program_info("nope")
    with pytest.raises(InvalidArgument, match="unknown module"):
        bridge.create_program("m", "q -> a", module="ReActNope")
    with pytest.raises(InvalidArgument, match="unknown LM provider"):
        bridge.configure_lm({"provider": "nope"})


def test_no_lm_configured(bridge):
    bridge.create_program("p", "question -> answer")
    with pytest.raises(InvalidConfiguration, match="no LM configured"):
        bridge.execute_program("p", {"question": "q"})


def test_missing_api_key_env_is_a_configuration_error(bridge, monkeypatch):
    monkeypatch.delenv("MLBRIDGE_TEST_NO_SUCH_KEY", raising=False)
    with pytest.raises(InvalidConfiguration, match="MLBRIDGE_TEST_NO_SUCH_KEY"):
        bridge.configure_lm({"provider": "openai_compatible", "model": "openai/x", "api_key_env": "MLBRIDGE_TEST_NO_SUCH_KEY"})


def test_delete_program(bridge):
    bridge.create_program("p", "question -> answer")
    assert bridge.delete_program("p")["forgotten"] is True
    with pytest.raises(NotFound):
        bridge.delete_program("p")


def _signature_vectors():
    import json
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[2] / "spec" / "vectors" / "signatures.json"
    return json.loads(path.read_text())


@pytest.mark.parametrize("case", _signature_vectors()["valid"], ids=lambda c: c["in"])
def test_shared_valid_signatures(bridge, case):
    info = bridge.create_program("v", case["in"])
    # The same fields, in the same order, as the Go parser's canonical form (type spelling aside).
    assert [f["name"] for f in info["inputs"] + info["outputs"]] == _field_names(case["canonical"])


def _field_names(canonical: str) -> list[str]:
    from mlbridge_worker.frameworks.dspy_programs import _top_level_split

    names = []
    for side in canonical.split(" -> "):
        names += [part.split(":")[0].strip() for part in _top_level_split(side)]
    return names


@pytest.mark.parametrize("signature", _signature_vectors()["invalid"])
def test_shared_invalid_signatures(bridge, signature):
    with pytest.raises(InvalidArgument):
        bridge.create_program("bad", signature)
