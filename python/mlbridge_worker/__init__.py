"""mlbridge worker: the Python side of mlbridge.

A worker process serves one bridge (a :class:`BaseBridge` subclass) to a Go host over the
framed msgpack protocol of spec/protocol.md. Start it with
``python -m mlbridge_worker --bridge module:Class`` (the host does this; see ``__main__``).
"""

__version__ = "0.1.0"

from .base_bridge import BaseBridge, alternative, batched, handler  # noqa: E402
from .errors import (  # noqa: E402
    BridgeError,
    InvalidArgument,
    InvalidConfiguration,
    ModelError,
    NotFound,
    RateLimit,
    Unavailable,
)

__all__ = [
    "__version__",
    "BaseBridge",
    "alternative",
    "batched",
    "handler",
    "BridgeError",
    "InvalidArgument",
    "InvalidConfiguration",
    "ModelError",
    "NotFound",
    "RateLimit",
    "Unavailable",
]
