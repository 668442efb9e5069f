"""LM configuration and error categories, through real DSPy.

The OpenAI-compatible path runs DSPy's own client against a local HTTP server that answers the
way an OpenAI-compatible provider does (a body, or an error status): what is under test is the
whole way from the provider's answer to the category the Go caller sees.
"""

from __future__ import annotations

import json
import socket

import pytest
from dspy.utils import exceptions as dx

from mlbridge_worker.errors import exception_to_error
from openai_stub import serving
from mlbridge_worker.frameworks.dspy_bridge import DSPyBridge
from mlbridge_worker.frameworks.dspy_lms import map_error


@pytest.fixture
def provider():
    with serving("[[ ## answer ## ]]\nParis\n\n[[ ## completed ## ]]") as srv:
        yield srv


def bridge_on(url: str, monkeypatch) -> DSPyBridge:
    monkeypatch.setenv("MLBRIDGE_TEST_KEY", "sk-test-123")
    b = DSPyBridge()
    b._initialize_framework()
    b.configure_lm({"provider": "openai_compatible", "model": "my-model", "base_url": url,
                    "api_key_env": "MLBRIDGE_TEST_KEY", "num_retries": 0})
    b.create_program("p", "question -> answer")
    return b


def test_openai_compatible_endpoint_answers(provider, monkeypatch):
    b = bridge_on(provider.url, monkeypatch)
    assert b.execute_program("p", {"question": "capital of France?"}) == {"answer": "Paris"}
    path, auth, body = provider.seen[-1]
    assert path == "/v1/chat/completions"
    assert auth == "Bearer sk-test-123"  # the key came from the named variable
    assert body["model"] == "my-model"
    assert "capital of France?" in json.dumps(body["messages"])


@pytest.mark.parametrize("status,category,dspy_type", [
    (429, "rate_limit", "LMRateLimitError"),
    (401, "invalid_configuration", "LMAuthError"),
    (400, "invalid_argument", "LMInvalidRequestError"),
    (500, "model_error", "LMServerError"),
])
def test_provider_errors_map_to_categories(provider, monkeypatch, status, category, dspy_type):
    b = bridge_on(provider.url, monkeypatch)
    provider.status = status
    with pytest.raises(Exception) as info:
        b.execute_program("p", {"question": "q"})
    err = exception_to_error(info.value)
    assert (err["category"], err["type"]) == (category, dspy_type)
    assert "refused by the test provider" in err["message"]


def test_unreachable_endpoint_is_a_model_error(monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    b = bridge_on(f"http://127.0.0.1:{port}/v1", monkeypatch)
    with pytest.raises(Exception) as info:
        b.execute_program("p", {"question": "q"})
    assert exception_to_error(info.value)["category"] == "model_error"
    assert exception_to_error(info.value)["type"] == "LMTransportError"


def test_unparseable_model_output_is_a_model_error(provider, monkeypatch):
    provider.content = "no fields here at all"
    b = bridge_on(provider.url, monkeypatch)
    with pytest.raises(Exception) as info:
        b.execute_program("p", {"question": "q"})
    assert exception_to_error(info.value)["category"] == "model_error"


@pytest.mark.parametrize("exc,category", [
    (dx.LMRateLimitError("slow down"), "rate_limit"),
    (dx.LMTimeoutError("took too long"), "timeout"),
    (dx.LMLockTimeoutError("lock"), "timeout"),
    (dx.LMAuthError("bad key"), "invalid_configuration"),
    (dx.LMBillingError("no credit"), "invalid_configuration"),
    (dx.LMNotConfiguredError("no key"), "invalid_configuration"),
    (dx.LMUnsupportedModelError("no such model"), "invalid_configuration"),
    (dx.ContextWindowExceededError(message="prompt too long"), "invalid_argument"),
    (dx.LMInvalidRequestError("bad request"), "invalid_argument"),
    (dx.LMServerError("500"), "model_error"),
    (dx.LMTransportError("reset"), "model_error"),
    (dx.LMUnexpectedError("?"), "unknown"),
    (RuntimeError("a module failed"), "unknown"),
])
def test_dspy_error_classes_map_to_categories(exc, category):
    mapped = map_error(exc)
    err = exception_to_error(mapped)
    assert err["category"] == category
    assert err["type"] == type(exc).__name__  # the framework's own class reaches the caller


@pytest.mark.parametrize("spec,match", [
    ({"provider": "openai_compatible"}, "needs a model name"),
    ({"provider": "local", "n_threads": -1}, "non-negative integer"),
    ({"provider": "dummy", "answers": [{"answer": "x"}], "adapter": "xml"}, "unknown adapter"),
    ({"provider": "local", "model_path": "/nonexistent/model.gguf"}, "does not exist"),
])
def test_bad_lm_specs(spec, match):
    b = DSPyBridge()
    b._initialize_framework()
    with pytest.raises(Exception, match=match) as info:
        b.configure_lm(spec)
    assert exception_to_error(info.value)["category"] in ("invalid_argument", "invalid_configuration")
