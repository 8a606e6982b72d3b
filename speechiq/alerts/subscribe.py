"""Supervisor-facing WebSocket handlers: ``/v1/alerts`` and ``/v1/calls/{call_id}/events``.

Transport-thin: the server accepts and authenticates the connection, then hands it here. Each
handler sends ``{"type":"subscribed",…}`` first, then one JSON message per event
(``speechiq.events.to_json``), and ``{"type":"dropped","count":N}`` before the next event when
its queue overflowed (the oldest events were dropped). Messages from the client are ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from websockets.exceptions import ConnectionClosed

from ..events import to_json
from .bus import AlertBus, AlertFilter, EventTap, Subscription, SubscriptionClosed

POLICY_VIOLATION = 1008
GOING_AWAY = 1001


async def _pump(ws: Any, sub: Subscription) -> None:
    """Send queued items until the peer goes away or the subscription closes."""

    async def drain_incoming() -> None:  # nothing is expected from the client, but closes must be read
        with contextlib.suppress(ConnectionClosed):
            async for _ in ws:
                pass

    reader = asyncio.create_task(drain_incoming())
    getter: asyncio.Task[Any] | None = None
    try:
        while True:
            getter = asyncio.create_task(sub.get())
            done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:  # the client went away
                break
            try:
                item = getter.result()
            except SubscriptionClosed:
                await ws.close(GOING_AWAY, "subscription closed")
                break
            dropped = sub.take_dropped()
            if dropped:
                await ws.send(json.dumps({"type": "dropped", "count": dropped}))
            await ws.send(to_json(item))
    except ConnectionClosed:
        pass
    finally:
        for task in (getter, reader):
            if task is not None and not task.done():
                task.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionClosed, SubscriptionClosed):
            await reader


async def _refuse(ws: Any, code: str, message: str) -> None:
    with contextlib.suppress(ConnectionClosed):
        await ws.send(json.dumps({"type": "error", "code": code, "message": message}))
        await ws.close(POLICY_VIOLATION, code)


async def serve_alert_subscription(ws: Any, bus: AlertBus, query: Mapping[str, list[str]]) -> None:
    """``/v1/alerts?category=…&label=…&severity=high+&queue=…&agent=…&call_id=…`` (see docs/metrics.md)."""
    try:
        flt = AlertFilter.from_query(query)
    except ValueError as exc:
        await _refuse(ws, "invalid_filter", str(exc))
        return
    sub = bus.subscribe(flt)
    try:
        await ws.send(json.dumps({"type": "subscribed", "filters": flt.as_dict()}))
        await _pump(ws, sub)
    except ConnectionClosed:
        pass
    finally:
        sub.close()


async def serve_call_tap(ws: Any, tap: EventTap, call_id: str) -> None:
    """``/v1/calls/{call_id}/events``: every event of that call (``*``: of every call). The id
    may arrive percent-encoded from the URL path (``a%40b`` is call ``a@b``)."""
    call_id = unquote(call_id or "")
    if not call_id or "/" in call_id or len(call_id) > 256:
        await _refuse(ws, "invalid_call_id", f"not a call id: {call_id[:64]!r}")
        return
    sub = tap.subscribe(call_id)
    try:
        await ws.send(json.dumps({"type": "subscribed", "call_id": call_id}))
        await _pump(ws, sub)
    except ConnectionClosed:
        pass
    finally:
        sub.close()
