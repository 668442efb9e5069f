"""The configuration hints in error messages name what a Go user and a registry (mlbridge.yaml)
user each have to change, not only the Go API."""

import pytest

from mlbridge_worker.errors import InvalidConfiguration
from mlbridge_worker.frameworks.dspy_bridge import DSPyBridge
from mlbridge_worker.frameworks.dspy_lms import _remote_lm
from mlbridge_worker.frameworks.langchain_models import _openai_model

KEY = "MLBRIDGE_TEST_HINT_UNSET_KEY"


@pytest.mark.parametrize("build", [_remote_lm, _openai_model])
def test_missing_key_hint_names_go_and_yaml(monkeypatch, build):
    monkeypatch.delenv(KEY, raising=False)
    with pytest.raises(InvalidConfiguration) as info:
        build({"provider": "openai_compatible", "model": "openai/x", "api_key_env": KEY})
    msg = str(info.value)
    assert KEY in msg
    assert "Config.EnvAllow in Go" in msg and "env: in mlbridge.yaml" in msg


def test_no_lm_hint_names_the_go_api():
    b = DSPyBridge()
    b._initialize_framework()
    b.create_program("p", "question -> answer")
    with pytest.raises(InvalidConfiguration) as info:
        b.execute_program("p", {"question": "q"})
    msg = str(info.value)
    assert "no LM configured" in msg
    assert "dspy.Client.ConfigureLM" in msg and "'lm' resource" in msg
