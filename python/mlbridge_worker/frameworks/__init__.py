"""Bridges for real ML frameworks. Each module imports its framework at import time, so a
zygote (PoolConfig.Preload) pays the import once for all workers."""

import os

# Offline by default: DSPy and LiteLLM fetch a model price map from the internet on first use
# (5 s timeout, then a bundled copy). Use the bundled copy unless the operator says otherwise.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
