"""Runs one sans-I/O adapter over one WebSocket connection against the engine."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from websockets.exceptions import ConnectionClosed

from ..adapters.base import (
    CLOSE_INTERNAL_ERROR,
    CLOSE_NORMAL,
    CLOSE_START_TIMEOUT,
    CLOSE_TRY_AGAIN_LATER,
    Adapter,
)
from ..engine import CallBinding, Engine
from ..errors import OverloadError, ProtocolError
from ..ingest import CallEnd, CallStart, IngestEvent
from .outbound import Outbound

log = logging.getLogger(__name__)
PEER_CLOSE_WAIT_S = 10.0


class TransportClosed(Exception):
    """A non-WebSocket transport (TCP) reached end of stream."""


class AdapterConnection:
    """Glue between a transport, an adapter and the engine; one instance per connection.

    ``ws`` is a websockets ``ServerConnection`` or anything with the same four members:
    ``recv()``, ``send(frame)``, ``close(code, reason)`` and ``close_code`` (see tcp.py).
    """

    def __init__(self, ws: Any, adapter: Adapter, engine: Engine) -> None:
        self.ws = ws
        self.adapter = adapter
        self.engine = engine
        self.binding: CallBinding | None = None
        self.out = Outbound(ws.send, on_drop=self._dropped)
        self._ended = asyncio.Event()

    def _dropped(self, kind: str) -> None:
        self.engine.metrics.events_dropped.labels(kind).inc()

    def _sink(self, event: Any) -> None:
        self.adapter.on_engine_event(event)
        droppable = getattr(event, "type", "") == "transcript" and not event.is_final
        for frame in self.adapter.outbox():
            self.out.put(frame, droppable=droppable)

    def _flush(self) -> None:
        for frame in self.adapter.outbox():
            self.out.put(frame)

    async def run(self) -> None:
        platform = self.adapter.platform
        self.engine.metrics.connections.labels(platform).inc()
        self.out.start()
        close_code, close_reason = CLOSE_NORMAL, ""
        try:
            await self._receive_loop()
        except ProtocolError as exc:
            self.engine.metrics.protocol_errors.labels(platform, exc.code).inc()
            log.info("%s: protocol error %s: %s", platform, exc.code, exc.message)
            self._send_error(exc)
            close_code, close_reason = exc.close_code or CLOSE_NORMAL, exc.code
        except OverloadError as exc:
            self._send_error(ProtocolError("overloaded", str(exc), CLOSE_TRY_AGAIN_LATER))
            close_code, close_reason = CLOSE_TRY_AGAIN_LATER, "overloaded"
        except (ConnectionClosed, TransportClosed):
            pass
        except Exception:
            log.exception("%s: internal error", platform)
            self.engine.metrics.protocol_errors.labels(platform, "internal_error").inc()
            close_code, close_reason = CLOSE_INTERNAL_ERROR, "internal_error"
        finally:
            await self._transport_gone()
            await self.out.drain()
            with contextlib.suppress(Exception):
                await self.ws.close(close_code, close_reason[:120])

    def _send_error(self, exc: ProtocolError) -> None:
        frame_fn = getattr(self.adapter, "error_frame", None)
        if frame_fn is not None:
            self.out.put(frame_fn(exc))
        else:
            self._flush()

    async def _receive_loop(self) -> None:
        timeout = self.engine.settings.server.start_timeout_s
        while True:
            try:
                if self.binding is None:
                    msg = await asyncio.wait_for(self.ws.recv(), timeout)
                else:
                    msg = await self.ws.recv()
            except asyncio.TimeoutError:
                raise ProtocolError("start_timeout", f"no call started within {timeout:g} s",
                                    CLOSE_START_TIMEOUT) from None
            events = self.adapter.feed_text(msg) if isinstance(msg, str) else self.adapter.feed_bytes(msg)
            self._flush()
            for event in events:
                await self._apply(event)
            if self._ended.is_set():
                await self._await_peer_close()
                return

    async def _apply(self, event: IngestEvent) -> None:
        if isinstance(event, CallStart):
            if self.binding is not None:
                raise ProtocolError("duplicate_start", "this connection already carries a call")
            self.binding = self.engine.open_call(event, self._sink)
            started = self.binding.session.started_event(resumed=self.binding.resumed)
            info = {"resumed": started.resumed, "media_time": round(started.media_time, 3),
                    "sample_rate": started.sample_rate, "channels": list(started.channels)}
            self.adapter.on_started(started.call_id, started.resume_token, info)
            self._flush()
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
        if self._ended.is_set():
            return
        code = self.ws.close_code
        events = self.adapter.transport_closed(code)
        for event in events:
            if isinstance(event, CallEnd):
                with contextlib.suppress(Exception):
                    await self._end(event)

