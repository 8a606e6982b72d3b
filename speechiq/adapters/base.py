"""The sans-I/O adapter interface every wire protocol implements.

An adapter owns no socket, clock or thread. The transport shell feeds it what arrived
(``feed_text`` / ``feed_bytes`` / ``transport_closed``) and gets back ingest events for the engine;
frames the protocol must send back (AudioHook ``opened``/``pong``, our ``started`` …) are queued
in ``outbox()``. Illegal input raises :class:`speechiq.errors.ProtocolError` with a stable ``code``
and the WebSocket ``close_code`` the shell must close with (``None``: report and keep going).

Things worth counting that are not errors (late or duplicate frames, ignored messages, client
error reports …) go through :meth:`Adapter.count`; the shell exports them as
``speechiq_adapter_events_total{platform,kind}``.
"""

from __future__ import annotations

import abc
from collections import Counter
from typing import Any

from ..errors import ProtocolError
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
CLOSE_SUPERSEDED = 4009


def utf8_size_over(text: str, limit: int) -> int | None:
    """UTF-8 size of ``text`` when it exceeds ``limit`` bytes, else ``None`` (limits are in bytes,
    not characters: one character is 1–4 bytes). Encodes only when the length alone cannot tell."""
    n = len(text)
    if n <= limit // 4:
        return None
    size = len(text.encode("utf-8", "surrogatepass"))
    return size if size > limit else None


class Adapter(abc.ABC):
    """Base class: bytes/messages in → :mod:`speechiq.ingest` events out."""

    platform: str = "abstract"
    # Whether a dropped transport may come back and continue the call (our protocol's resume
    # token, AudioHook's reconnect). A platform that cannot resume ends the call at once when its
    # transport drops (reason ``transport_closed``) instead of holding it for the grace window.
    resumable: bool = False

    def __init__(self) -> None:
        self._outbox: list[str | bytes] = []
        self._ended = False
        self.counts: Counter[str] = Counter()
        self._fresh_counts: dict[str, int] = {}

    # ---- input -------------------------------------------------------------------------
    @abc.abstractmethod
    def feed_text(self, text: str) -> list[IngestEvent]:
        """A text (JSON) frame arrived."""

    @abc.abstractmethod
    def feed_bytes(self, data: bytes) -> list[IngestEvent]:
        """A binary frame (or, for TCP protocols, any chunk of the byte stream) arrived."""

    def transport_closed(self, code: int | None = None, error: str = "") -> list[IngestEvent]:
        """The connection is gone. Emits exactly one :class:`CallEnd` over the adapter's life.

        ``error``: the shell closed it for that protocol error (reason ``error``). Otherwise a
        normal close (1000, or no code) is a hangup, and anything else a drop: ``transport_lost``
        (held for the resume grace window) if the protocol can resume, else ``transport_closed``.
        """
        if error:
            return self.end("error", error)
        if code in (None, CLOSE_NORMAL):
            return self.end("remote_hangup")
        return self.end("transport_lost" if self.resumable else "transport_closed", f"close code {code}")

    # ---- engine feedback ---------------------------------------------------------------
    def on_started(self, call_id: str, resume_token: str, info: dict[str, Any]) -> list[IngestEvent]:
        """The engine accepted the call (hook for protocols that acknowledge). ``info``: ``resumed``,
        ``media_time`` (exact seconds), ``sample_rate``, ``channels``. Returns events to apply next
        (e.g. a gap when a reconnecting client is ahead of the call's timeline)."""
        return []

    def on_engine_event(self, event: Any) -> None:  # noqa: B027
        """An engine event for this call (transcript, alert …); protocols that forward them override."""

    def on_summary(self, summary: Summary) -> None:  # noqa: B027
        """The call was finalised (hook for protocols with a close handshake)."""

    def error_frame(self, exc: ProtocolError) -> str | bytes | None:
        """The frame reporting a fatal error before the close (``None``: the protocol has none)."""
        return None

    def warning_frame(self, exc: ProtocolError) -> str | bytes | None:
        """The frame reporting a non-fatal error (``close_code=None``): the call goes on."""
        return None

    # ---- output ------------------------------------------------------------------------
    def outbox(self) -> list[str | bytes]:
        """Frames to send, oldest first; the queue is emptied."""
        out, self._outbox = self._outbox, []
        return out

    def send(self, frame: str | bytes) -> None:
        self._outbox.append(frame)

    # ---- counters ----------------------------------------------------------------------
    def count(self, kind: str, n: int = 1) -> None:
        """Note ``n`` occurrences of something worth a metric (not an error)."""
        self.counts[kind] += n
        self._fresh_counts[kind] = self._fresh_counts.get(kind, 0) + n

    def take_counts(self) -> dict[str, int]:
        """Counts noted since the last call (the shell adds them to the metrics)."""
        if not self._fresh_counts:
            return {}
        out, self._fresh_counts = self._fresh_counts, {}
        return out

    @property
    def ended(self) -> bool:
        return self._ended

    def end(self, reason: str = "normal", detail: str = "") -> list[IngestEvent]:
        if self._ended:
            return []
        self._ended = True
        return [CallEnd(reason=reason, detail=detail)]
