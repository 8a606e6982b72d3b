"""The sans-I/O adapter interface every wire protocol implements.

An adapter owns no socket, clock or thread. The transport shell feeds it what arrived
(``feed_text`` / ``feed_bytes`` / ``transport_closed``) and gets back ingest events for the engine;
frames the protocol must send back (AudioHook ``opened``/``pong``, our ``started`` …) are queued
in ``outbox()``. Illegal input raises :class:`speechiq.errors.ProtocolError` with a stable ``code``
and the WebSocket ``close_code`` the shell must close with (``None``: report and keep going).
"""

from __future__ import annotations

import abc
from typing import Any

from ..events import Summary
from ..ingest import CallEnd, IngestEvent

# WebSocket close codes used across adapters (RFC 6455 + the 4000-4999 private range).
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_INVALID_PAYLOAD = 1007
CLOSE_POLICY_VIOLATION = 1008
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL_ERROR = 1011
CLOSE_TRY_AGAIN_LATER = 1013
CLOSE_UNAUTHORIZED = 4001
CLOSE_START_TIMEOUT = 4008
CLOSE_UNKNOWN_CALL = 4004


class Adapter(abc.ABC):
    """Base class: bytes/messages in → :mod:`speechiq.ingest` events out."""

    platform: str = "abstract"

    def __init__(self) -> None:
        self._outbox: list[str | bytes] = []
        self._ended = False

    # ---- input -------------------------------------------------------------------------
    @abc.abstractmethod
    def feed_text(self, text: str) -> list[IngestEvent]:
        """A text (JSON) frame arrived."""

    @abc.abstractmethod
    def feed_bytes(self, data: bytes) -> list[IngestEvent]:
        """A binary frame (or, for TCP protocols, any chunk of the byte stream) arrived."""

    def transport_closed(self, code: int | None = None) -> list[IngestEvent]:
        """The connection is gone. Emits exactly one :class:`CallEnd` over the adapter's life."""
        return self.end("transport_lost" if code not in (None, CLOSE_NORMAL) else "remote_hangup")

    # ---- engine feedback ---------------------------------------------------------------
    def on_started(self, call_id: str, resume_token: str, info: dict[str, Any]) -> None:  # noqa: B027
        """The engine accepted the call (hook for protocols that acknowledge)."""

    def on_engine_event(self, event: Any) -> None:  # noqa: B027
        """An engine event for this call (transcript, alert …); protocols that forward them override."""

    def on_summary(self, summary: Summary) -> None:  # noqa: B027
        """The call was finalised (hook for protocols with a close handshake)."""

    # ---- output ------------------------------------------------------------------------
    def outbox(self) -> list[str | bytes]:
        """Frames to send, oldest first; the queue is emptied."""
        out, self._outbox = self._outbox, []
        return out

    def send(self, frame: str | bytes) -> None:
        self._outbox.append(frame)

    @property
    def ended(self) -> bool:
        return self._ended

    def end(self, reason: str = "normal", detail: str = "") -> list[IngestEvent]:
        if self._ended:
            return []
        self._ended = True
        return [CallEnd(reason=reason, detail=detail)]
