"""Runs one sans-I/O adapter over one transport connection against the engine.

Errors (docs/protocol.md, "Errors and close codes"); each is counted once in
``speechiq_protocol_errors_total{platform,code}``:

- a :class:`ProtocolError` with ``close_code=None`` is reported (the adapter's warning frame, for
  our protocol an ``error`` event) and the call goes on;
- any other :class:`ProtocolError`, ``overloaded`` (1013) and ``internal_error`` (1011) are
  reported (the adapter's error frame) and close the connection with their code; a call it
  carried ends with reason ``error``;
- a frame above the transport's hard limit (twice ``server.max_frame_bytes``) is refused by
  websockets itself with 1009 before we read it: counted as ``frame_too_large``;
- a client that cannot keep up with its events is closed with 1008 ``client too slow``
  (``client_too_slow``, see outbound.py); for the call that is a dropped transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from websockets.exceptions import ConnectionClosed

from ..adapters.base import (
    CLOSE_INTERNAL_ERROR,
    CLOSE_NORMAL,
    CLOSE_POLICY_VIOLATION,
    CLOSE_START_TIMEOUT,
    CLOSE_TOO_BIG,
    CLOSE_TRY_AGAIN_LATER,
    Adapter,
)
from ..engine import CallBinding, Engine
from ..errors import OverloadError, ProtocolError
from ..ingest import CallEnd, CallStart, IngestEvent
from .outbound import DEFAULT_LIMIT, Outbound

log = logging.getLogger(__name__)
PEER_CLOSE_WAIT_S = 10.0
CLOSE_WAIT_S = 5.0  # a close handshake still pending after this (a stalled reader) aborts the transport
TOO_SLOW = "client_too_slow"


class TransportClosed(Exception):
    """A non-WebSocket transport (TCP) reached end of stream."""


class ConnectionSink:
    """What the engine holds for one connection: call it with an engine event; ``close(code,
    reason)`` closes the connection from outside its receive loop — e.g. when another connection
    resumed its call (4009 ``superseded``): the error is reported and counted, then the close sent."""

    __slots__ = ("_conn",)

    def __init__(self, conn: AdapterConnection) -> None:
        self._conn = conn

    def __call__(self, event: Any) -> None:
        self._conn.deliver(event)

    def close(self, code: int, reason: str, message: str = "") -> None:
        self._conn.close(code, reason, message)


class AdapterConnection:
    """Glue between a transport, an adapter and the engine; one instance per connection.

    ``ws`` is a websockets ``ServerConnection`` or anything with the same members: ``recv()``,
    ``send(frame)``, ``close(code, reason)``, ``close_code`` and ``transport`` (see tcp.py).
    """

    def __init__(self, ws: Any, adapter: Adapter, engine: Engine, *, outbound_limit: int = DEFAULT_LIMIT) -> None:
        self.ws = ws
        self.adapter = adapter
        self.engine = engine
        self.binding: CallBinding | None = None
        self.sink = ConnectionSink(self)
        self.out = Outbound(ws.send, outbound_limit, on_drop=self._dropped, on_overflow=self._too_slow)
        self.failure: ProtocolError | None = None  # the error that ends this connection
        self._ended = asyncio.Event()
        self._close_task: asyncio.Future[None] | None = None

    # ---- engine → client -----------------------------------------------------------------------
    def deliver(self, event: Any) -> None:
        self.adapter.on_engine_event(event)
        droppable = getattr(event, "type", "") == "transcript" and not event.is_final
        for frame in self.adapter.outbox():
            self.out.put(frame, droppable=droppable, event=event)

    def _flush(self) -> None:
        for frame in self.adapter.outbox():
            self.out.put(frame)

    def _dropped(self, kind: str, n: int = 1) -> None:
        self.engine.metrics.events_dropped.labels(kind).inc(n)

    # ---- errors ----------------------------------------------------------------------------------
    def _count(self, code: str) -> None:
        self.engine.metrics.protocol_errors.labels(self.adapter.platform, code).inc()

    def _fail(self, exc: ProtocolError) -> None:
        """Record the error that ends this connection: reported and counted once."""
        if self.failure is not None:
            return
        self.failure = exc
        self._count(exc.code)
        frame = self.adapter.error_frame(exc)
        if frame is not None:
            self.out.put(frame)
        else:
            self._flush()

    def _warn(self, exc: ProtocolError) -> None:
        """A non-fatal protocol error: reported and counted, the call goes on."""
        log.info("%s: protocol error %s (call goes on): %s", self.adapter.platform, exc.code, exc.message)
        self._count(exc.code)
        self._flush()
        frame = self.adapter.warning_frame(exc)
        if frame is not None:
            self.out.put(frame)

    def _too_slow(self) -> None:
        """The outbound queue is full of frames that must not be dropped: close the client.

        For the call this is a drop: the connection stops taking events at once, and the events
        it took but could not send are handed back to the call's outlet, which keeps them (with
        everything after) for a resuming connection, so a resume loses nothing."""
        if self.failure is None:
            self.failure = ProtocolError(TOO_SLOW, "client too slow", CLOSE_POLICY_VIOLATION)
            self._count(TOO_SLOW)
        unsent = self.out.discard()
        self._dropped("unsent", len(unsent))
        log.warning("%s: client too slow (%d frames not sent): closing", self.adapter.platform, len(unsent))
        if self.binding is not None and not self.binding.superseded:
            session = self.binding.session
            session.detach(self.sink)
            events = list({id(e): e for e in unsent if e is not None}.values())  # one per event, in order
            if events:
                session.outlet.requeue(events)
        self._schedule_close(CLOSE_POLICY_VIOLATION, "client too slow")

    def close(self, code: int, reason: str, message: str = "") -> None:
        """Close this connection from outside its receive loop (see :class:`ConnectionSink`)."""
        if self._close_task is not None or self.failure is not None:
            return
        self._fail(ProtocolError(reason, message or reason, code))
        self._schedule_close(code, reason, flush=True)

    def _schedule_close(self, code: int, reason: str, *, flush: bool = False) -> None:
        if self._close_task is None:
            self._close_task = asyncio.ensure_future(self._close_transport(code, reason, flush=flush))

    async def _close_transport(self, code: int, reason: str, *, flush: bool = False) -> None:
        if flush:
            await self.out.flush(CLOSE_WAIT_S)
        try:
            async with asyncio.timeout(CLOSE_WAIT_S):
                await self.ws.close(code, reason[:120])
        except TimeoutError:
            transport = getattr(self.ws, "transport", None)
            if transport is not None:
                transport.abort()
        except Exception:  # already closed or broken: nothing left to close
            log.debug("close failed", exc_info=True)

    # ---- the connection ------------------------------------------------------------------------
    async def run(self) -> None:
        platform = self.adapter.platform
        self.engine.metrics.connections.labels(platform).inc()
        self.out.start()
        try:
            await self._receive_loop()
        except ProtocolError as exc:
            log.info("%s: protocol error %s: %s", self.adapter.platform, exc.code, exc.message)
            self._fail(exc)
        except OverloadError as exc:
            self._fail(ProtocolError("overloaded", str(exc), CLOSE_TRY_AGAIN_LATER))
        except ConnectionClosed as exc:
            sent = exc.sent
            if sent is not None and sent.code == CLOSE_TOO_BIG and self.failure is None:
                # websockets refused a frame above max_size (2 × server.max_frame_bytes) unread
                log.info("%s: frame too large: %s", self.adapter.platform, sent.reason)
                self.failure = ProtocolError("frame_too_large", sent.reason or "frame too large", CLOSE_TOO_BIG)
                self._count("frame_too_large")
        except TransportClosed:
            pass
        except Exception:
            log.exception("%s: internal error", self.adapter.platform)
            self._fail(ProtocolError("internal_error", "an internal error ended this connection (it is logged)",
                                     CLOSE_INTERNAL_ERROR))
        finally:
            await self._transport_gone()
            self._export_counts()
            await self.out.drain()
            if self._close_task is None:
                f = self.failure
                code, reason = (f.close_code or CLOSE_POLICY_VIOLATION, f.code) if f else (CLOSE_NORMAL, "")
                self._schedule_close(code, reason)
            assert self._close_task is not None
            await asyncio.shield(self._close_task)

    async def _receive_loop(self) -> None:
        timeout = self.engine.settings.server.start_timeout_s
        while True:
            try:
                if self.binding is None:
                    msg = await asyncio.wait_for(self.ws.recv(), timeout)
                else:
                    msg = await self.ws.recv()
            except TimeoutError:
                raise ProtocolError("start_timeout", f"no call started within {timeout:g} s",
                                    CLOSE_START_TIMEOUT) from None
            try:
                events = self.adapter.feed_text(msg) if isinstance(msg, str) else self.adapter.feed_bytes(msg)
                self._flush()
                for event in events:
                    await self._apply(event)
            except ProtocolError as exc:
                if exc.close_code is not None:
                    raise
                self._warn(exc)
            self._export_counts()
            if self._ended.is_set():
                await self._await_peer_close()
                return

    async def _apply(self, event: IngestEvent) -> None:
        if isinstance(event, CallStart):
            if self.binding is not None:
                raise ProtocolError("duplicate_start", "this connection already carries a call")
            self.binding = self.engine.open_call(event, self.sink)
            started = self.binding.session.started_event(resumed=self.binding.resumed)
            info = {"resumed": started.resumed, "media_time": started.media_time,
                    "sample_rate": started.sample_rate, "channels": list(started.channels)}
            follow = self.adapter.on_started(started.call_id, started.resume_token, info) or []
            self._flush()
            for ev in follow:
                await self._apply(ev)
        elif isinstance(event, CallEnd):
            await self._end(event)
        elif self.binding is None:
            raise ProtocolError("not_started", "media before the call started")
        else:
            self.binding.handle(event)

    async def _end(self, event: CallEnd) -> None:
        if self._ended.is_set():
            return
        self._ended.set()
        if self.binding is None:
            return
        summary = await self.binding.end(event)
        if summary is not None:
            self.adapter.on_summary(summary)
            self._flush()

    async def _await_peer_close(self) -> None:
        """After the call ended: our protocol closes now; platforms close themselves."""
        if getattr(self.adapter, "close_after_end", self.adapter.platform == "speechiq"):
            return
        with contextlib.suppress(asyncio.TimeoutError, ConnectionClosed, TransportClosed):
            async with asyncio.timeout(PEER_CLOSE_WAIT_S):
                while True:
                    msg = await self.ws.recv()
                    with contextlib.suppress(ProtocolError):
                        (self.adapter.feed_text(msg) if isinstance(msg, str) else self.adapter.feed_bytes(msg))
                    self._flush()

    async def _transport_gone(self) -> None:
        """The transport is gone or about to be closed: end the call once, with the right reason."""
        if self._ended.is_set():
            return
        f = self.failure
        if f is not None and f.code != TOO_SLOW:
            events = self.adapter.transport_closed(f.close_code, error=f.code)
        else:  # a drop, a close by the peer, or us closing a client that cannot keep up
            events = self.adapter.transport_closed(f.close_code if f else self.ws.close_code)
        for event in events:
            if isinstance(event, CallEnd):
                try:
                    await self._end(event)
                except Exception:
                    log.exception("%s: ending the call failed", self.adapter.platform)
            elif self.binding is not None and not self._ended.is_set():
                with contextlib.suppress(Exception):  # e.g. frames a platform held for reordering
                    self.binding.handle(event)

    def _export_counts(self) -> None:
        counts = self.adapter.take_counts()
        for kind, n in counts.items():
            self.engine.metrics.adapter_events.labels(self.adapter.platform, kind).inc(n)
