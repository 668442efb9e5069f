"""LMs for DSPy programs, built from a host-owned spec, and DSPy's errors mapped to categories.

Spec = {provider, adapter?, ...}:
  local              the embedded SmolLM2-135M (model_path?, n_ctx?, n_threads?, max_tokens?, seed?)
  openai_compatible  any provider DSPy supports: model ("openai/..." is assumed when base_url is
                     set without a provider prefix), base_url?, api_key_env? (the variable's *name*;
                     with base_url and no api_key_env, a placeholder key: servers without auth),
                     temperature?, max_tokens?, num_retries?
  dummy              DSPy's own DummyLM (tests, demos without a model): `answers` in order (a list),
                     or by prompt (a map: the answer whose key the prompt's last message contains);
                     follow_examples? answers an input that is one of the prompt's demos with
                     that demo's outputs (DummyLM's mode 3: the LM "learns" from few-shot demos)
adapter: "json" or "chat" — which DSPy adapter formats prompts. "json" asks the LM for the
signature's JSON schema; it is the default for the local LM, whose constrained decoding needs it.
"""

from __future__ import annotations

import os

import dspy
from dspy.utils import exceptions as dx

from ..errors import (BridgeError, InvalidArgument, InvalidConfiguration, ModelError, RateLimit, Timeout,
                      Unknown)
from .dspy_genai import instrument

PROVIDERS = ("local", "openai_compatible", "dummy")
ADAPTERS = {"json": dspy.JSONAdapter, "chat": dspy.ChatAdapter}


def build_lm(spec: dict) -> tuple[dspy.BaseLM, dspy.Adapter]:
    """The LM and the adapter to run it with."""
    kind = spec.get("provider", "")
    if kind == "local":
        from .local_lm import LocalLM

        lm: dspy.BaseLM = LocalLM(
            spec.get("model_path") or None, n_ctx=_int(spec, "n_ctx", 2048), n_threads=_int(spec, "n_threads", 1),
            max_tokens=_int(spec, "max_tokens", 256), temperature=float(spec.get("temperature", 0.0)),
            seed=_int(spec, "seed", 0))
        default_adapter = "json"
    elif kind == "openai_compatible":
        lm = _remote_lm(spec)
        default_adapter = "chat"
    elif kind == "dummy":
        from dspy.utils import DummyLM

        answers, follow = spec.get("answers", []), spec.get("follow_examples", False)
        if not isinstance(follow, bool):
            raise InvalidArgument("follow_examples must be a bool")
        if not isinstance(answers, (list, dict)) or not (answers or follow):
            raise InvalidArgument("a dummy LM needs a non-empty list (or map) of answers, or follow_examples")
        lm = DummyLM(answers or [], follow_examples=follow)
        default_adapter = "chat"
    else:
        raise InvalidArgument(f"unknown LM provider {kind!r} (have: {', '.join(PROVIDERS)})")
    adapter = spec.get("adapter") or default_adapter
    if adapter not in ADAPTERS:
        raise InvalidArgument(f"unknown adapter {adapter!r} (have: {', '.join(ADAPTERS)})")
    return instrument(lm), ADAPTERS[adapter]()


def _remote_lm(spec: dict) -> dspy.BaseLM:
    model, base_url, key_env = spec.get("model"), spec.get("base_url") or None, spec.get("api_key_env") or ""
    if not isinstance(model, str) or not model:
        raise InvalidArgument("an openai_compatible LM needs a model name")
    if base_url and "/" not in model:
        model = "openai/" + model  # an OpenAI-compatible server named by its URL
    key = os.environ.get(key_env) if key_env else None
    if key_env and not key:
        raise InvalidConfiguration(f"environment variable {key_env} is not set in the worker "
                                   "(pass it through: Config.EnvAllow in Go, env: in mlbridge.yaml)")
    if key is None and base_url:
        key = "unused"  # a self-hosted server without auth; DSPy refuses an empty credential
    try:
        return dspy.LM(model, api_base=base_url, api_key=key, cache=False,
                       temperature=float(spec.get("temperature", 0.0)), max_tokens=_int(spec, "max_tokens", 512),
                       num_retries=_int(spec, "num_retries", 3))
    except (ValueError, TypeError) as e:
        raise InvalidConfiguration(f"DSPy refused LM {model!r}: {e}") from e


def _int(spec: dict, key: str, default: int) -> int:
    v = spec.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise InvalidArgument(f"LM option {key!r} must be a non-negative integer, got {v!r}")
    return v


# Most specific first: several of DSPy's classes subclass others (ContextWindowExceededError is an
# LMInvalidRequestError, LMUnsupportedModelError too).
_CATEGORIES: tuple[tuple[type[Exception] | tuple[type[Exception], ...], type[BridgeError]], ...] = (
    (dx.LMRateLimitError, RateLimit),
    ((dx.LMTimeoutError, dx.LMLockTimeoutError), Timeout),
    ((dx.LMAuthError, dx.LMBillingError, dx.LMUnsupportedModelError, dx.LMUnsupportedFeatureError,
      dx.LMConfigurationError), InvalidConfiguration),
    (dx.LMInvalidRequestError, InvalidArgument),  # incl. the prompt exceeding the context window
    ((dx.AdapterParseError, dx.LMServerError, dx.LMTransportError, dx.LMProviderError,
      dx.LMStreamAssemblyError, dx.LMCollectionLimitError), ModelError),
)


def map_error(e: Exception) -> BridgeError:
    """A DSPy or provider failure as one of the protocol's categories.

    Anything DSPy did not classify itself (LMUnexpectedError, or a plain exception out of a
    module) is `unknown`: the caller learns the framework failed, and the type and message say how.
    """
    if isinstance(e, BridgeError):
        return e
    if isinstance(e, dx.LMUnexpectedError) and isinstance(e.__cause__, BridgeError):
        return e.__cause__  # ours, raised inside an LM call: DSPy wrapped it
    for types, category in _CATEGORIES:
        if isinstance(e, types):
            return category(str(e), type_name=type(e).__name__)
    return Unknown(str(e), type_name=type(e).__name__)
