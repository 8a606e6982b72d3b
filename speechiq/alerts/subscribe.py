"""Supervisor-facing WebSocket handlers: ``/v1/alerts`` and ``/v1/calls/{call_id}/events``."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping
from typing import Any

from websockets.exceptions import ConnectionClosed

from ..events import to_json
from .bus import AlertBus, AlertFilter, EventTap, Subscription


async def _pump(ws: Any, sub: Subscription) -> None:
    """Send queued items until the peer goes away; report drops as they happen."""

    async def drain_incoming() -> None:  # we expect nothing from the client, but must read closes
        with contextlib.suppress(ConnectionClosed):
            async for _ in ws:
                pass

    reader = asyncio.create_task(drain_incoming())
    try:
        while not reader.done():
            getter = asyncio.create_task(sub.get())
            done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                break
            dropped = sub.take_dropped()
            if dropped:
                await ws.send(json.dumps({"type": "dropped", "count": dropped}))
            await ws.send(to_json(getter.result()))
    except ConnectionClosed:
        pass
    finally:
        reader.cancel()


async def serve_alert_subscription(ws: Any, bus: AlertBus, query: Mapping[str, list[str]]) -> None:
    try:
        flt = AlertFilter.from_query(query)
    except ValueError as exc:
        await ws.send(json.dumps({"type": "error", "code": "invalid_filter", "message": str(exc)}))
        await ws.close(1008, "invalid_filter")
        return
    sub = bus.subscribe(flt)
    try:
        await ws.send(json.dumps({"type": "subscribed", "filters": flt.as_dict()}))
        await _pump(ws, sub)
    finally:
        bus.unsubscribe(sub)


async def serve_call_tap(ws: Any, tap: EventTap, call_id: str) -> None:
    sub = tap.subscribe(call_id)
    try:
        await ws.send(json.dumps({"type": "subscribed", "call_id": call_id}))
        await _pump(ws, sub)
    finally:
        tap.unsubscribe(sub)
