"""Encoding and writing whole answers: results and errors.

A result is measured before it is encoded (:func:`~.protocol.value_size`): one too deep, or
surely too big for the host's max frame, is refused as a ``serialization`` error for its call
without being copied; the worker keeps serving.

numpy values (scalars, arrays) are converted when msgpack refuses the value: see
:func:`~.arrays.plain`.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

from .errors import error_map, exc_text, exception_to_error
from .protocol import FrameTooLarge, ValueRefused, pack_header, value_size
from .stats import OpStats

# {"t": "res", "id": <id>, "ok": true, "result": <result>} encoded around its two values (the
# eager path in dispatch builds its answer from these inline)
_RES_OK_HEAD = b"\x84\xa1t\xa3res\xa2id"
#: the same with a fifth field, "shm": the segments the result's arrays are in (shm.py)
_RES_OK_SHM_HEAD = b"\x85\xa1t\xa3res\xa2id"
_SHM_KEY = b"\xa3shm"
_RES_OK_MID = b"\xa2ok\xc3\xa6result"
_CHUNK_HEAD = b"\x83\xa1t\xa5chunk\xa2id"
_CHUNK_MID = b"\xa4data"
_NIL = b"\xc0"
_SCALARS = frozenset((int, float, bool))
#: an encoded value up to this size is joined to its frame header (one write); a larger one is
#: written after it instead of being copied once more
_JOIN_MAX = 64 * 1024


class OutputMixin:
    """How the :class:`~.runtime.Runtime` answers."""

    def send(self, msg: dict) -> None:
        payload = self._pack(msg)
        self.write(pack_header(len(payload)) + payload)

    def send_result(self, id: int, result: Any, st: OpStats | None = None) -> None:
        head = _RES_OK_HEAD + self._pack(id) + _RES_OK_MID
        t = type(result)
        ids: list[int] = []  # segments the result's large arrays went to
        try:
            if result is None:
                body = _NIL
            elif t in _SCALARS:
                body = self._pack(result)
            else:
                body = self._pack_value(result, len(head), ids)
        except Exception as e:
            if st is not None:
                st.errors += 1
            # segments already sent are named, so that the host frees them
            self._send_error_map(id, error_map("serialization", *_refusal("the result", e)), ids)
            return
        if ids:  # the arrays' bytes are in the segments: the frame is small
            head = _RES_OK_SHM_HEAD + self._pack(id) + _RES_OK_MID
            body += _SHM_KEY + self._pack(ids)
        if len(body) <= _JOIN_MAX:
            self.write(pack_header(len(head) + len(body)) + head + body)
        else:
            self._write_frame(head, body)

    def _pack_chunk(self, id: int, item: Any) -> bytes:
        """The payload of a ``chunk`` frame; raises like :meth:`_pack_value` (streams call it)."""
        head = _CHUNK_HEAD + self._pack(id) + _CHUNK_MID
        return head + self._pack_value(item, len(head))

    def _pack_value(self, v: Any, overhead: int, shm_ids: list[int] | None = None) -> bytes:
        """``v`` encoded, to be sent after ``overhead`` bytes of envelope. Raises ValueRefused
        (too deep; too big, found before encoding when possible) or the packer's error. With
        ``shm_ids`` (and a segment channel), large numpy arrays go to shared memory and their
        segment ids are appended to it."""
        t = type(v)
        room = self.out_max - overhead
        if t is str or t is bytes:
            if len(v) >= room:  # its header takes a byte at least
                raise FrameTooLarge(len(v) + 1, self.out_max)
        elif v is None:
            return _NIL
        elif t not in _SCALARS:
            value_size(v, room, self.out_max)  # before the copy: refusing costs no memory
        try:
            body = self._pack(v)
        except TypeError:
            # A type msgpack does not know: numpy values are converted here rather than by a
            # Packer default= hook, so the converted value is measured like any other (an array
            # map adds two levels and its bytes); the plain path pays only this try (free on 3.11+).
            np_plain = _numpy_plain()
            if np_plain is None:  # numpy never imported: nothing in v is numpy, msgpack's error stands
                raise
            shm = getattr(self, "shm", None)  # a Runtime has one; tests' bare outputs do not
            shared = (shm, shm_ids) if shm_ids is not None and shm is not None else None
            v = np_plain(v, room, self.out_max, shared)
            value_size(v, room, self.out_max)
            body = self._pack(v)
        if len(body) > room:  # the bound is low for ints (1 byte each, up to 9 encoded)
            raise FrameTooLarge(len(body) + overhead, self.out_max)
        return body

    def _write_frame(self, head: bytes, body: bytes) -> None:
        n = len(head) + len(body)
        if len(body) <= _JOIN_MAX:
            self.write(pack_header(n) + head + body)
        else:  # two writes on the loop thread: nothing can come between them
            self.write(pack_header(n) + head)
            self.write(body)

    def send_error(self, id: int, category: str, type_: str, message: str, tb: str | None = None) -> None:
        self._send_error_map(id, error_map(category, type_, message, tb))

    def send_error_exc(self, id: int, exc: BaseException) -> None:
        self._send_error_map(id, exception_to_error(exc))

    def _send_error_map(self, id: int, err: dict, shm_ids: list[int] | None = None) -> None:
        msg = {"t": "res", "id": id, "ok": False, "error": err}
        if shm_ids:
            msg["shm"] = shm_ids
        try:
            self.send(msg)
        except Exception:  # e.g. lone surrogates in a message: make it encodable
            for k, v in list(err.items()):
                if isinstance(v, str):
                    err[k] = v.encode("utf-8", "backslashreplace").decode("utf-8")
            self.send(msg)


_plain: Callable[..., Any] | None = None


def _numpy_plain() -> Callable[..., Any] | None:
    """arrays.plain once numpy is loaded (by the bridge), else None: numpy stays optional, and a
    blocked import (sys.modules["numpy"] = None) counts as absent."""
    global _plain
    if _plain is None and sys.modules.get("numpy") is not None:
        from .arrays import plain  # imports numpy: only now that the bridge has

        _plain = plain
    return _plain


def _refusal(what: str, e: Exception) -> tuple[str, str]:
    """(type, message) of the serialization error for ``what`` that could not be sent."""
    if isinstance(e, ValueRefused):
        return type(e).__name__, f"{what} {e}"
    return type(e).__name__, f"{what} cannot be encoded as msgpack: {exc_text(e)}"
