"""Encoding and writing whole answers: results and errors."""

from __future__ import annotations

from typing import Any

from .errors import error_map, exception_to_error
from .protocol import pack_header
from .stats import OpStats

# {"t": "res", "id": <id>, "ok": true, "result": <result>} encoded around its two values (the
# eager path in dispatch builds its answer from these inline)
_RES_OK_HEAD = b"\x84\xa1t\xa3res\xa2id"
_RES_OK_MID = b"\xa2ok\xc3\xa6result"


class OutputMixin:
    """How the :class:`~.runtime.Runtime` answers."""

    def send(self, msg: dict) -> None:
        payload = self._pack(msg)
        self.write(pack_header(len(payload)) + payload)

    def send_result(self, id: int, result: Any, st: OpStats | None = None) -> None:
        try:
            payload = (_RES_OK_HEAD + self._pack(id) + _RES_OK_MID
                       + (b"\xc0" if result is None else self._pack(result)))
        except Exception as e:
            if st is not None:
                st.errors += 1
            self.send_error(
                id, "serialization", type(e).__name__,
                f"the result cannot be encoded as msgpack: {e}",
            )
            return
        n = len(payload)
        if n > self.out_max:
            if st is not None:
                st.errors += 1
            self.send_error(
                id, "serialization", "FrameTooLarge",
                f"the result encodes to {n} bytes, more than the max frame size {self.out_max}",
            )
            return
        self.write(pack_header(n) + payload)

    def send_error(self, id: int, category: str, type_: str, message: str, tb: str | None = None) -> None:
        self._send_error_map(id, error_map(category, type_, message, tb))

    def send_error_exc(self, id: int, exc: BaseException) -> None:
        self._send_error_map(id, exception_to_error(exc))

    def _send_error_map(self, id: int, err: dict) -> None:
        msg = {"t": "res", "id": id, "ok": False, "error": err}
        try:
            self.send(msg)
        except Exception:  # e.g. lone surrogates in a message: make it encodable
            for k, v in list(err.items()):
                if isinstance(v, str):
                    err[k] = v.encode("utf-8", "backslashreplace").decode("utf-8")
            self.send(msg)
