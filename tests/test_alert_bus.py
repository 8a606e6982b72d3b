"""Alert bus and supervisor subscription over a real WebSocket."""

from __future__ import annotations

import asyncio
import json

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

from speechiq.alerts.bus import AlertBus, AlertFilter, EventTap
from speechiq.alerts.subscribe import serve_alert_subscription
from speechiq.events import Alert


def alert(i: int, category: str = "compliance", severity: str = "high", call_id: str = "c1") -> Alert:
    return Alert(alert_id=f"a{i}", call_id=call_id, rule_id="r", pack_version="v", label="x.y", category=category,
                 severity=severity, state="confirmed", media_time=float(i), start=0.0, end=1.0, role="agent",
                 text="t")


def test_filters_and_drop_oldest():
    async def run():
        bus = AlertBus(queue_size=3)
        sub = bus.subscribe(AlertFilter.from_query({"category": ["compliance,escalation"], "min_severity": ["medium"],
                                                    "queue": ["billing"]}))
        bus.publish(alert(1), {"queue": "billing"})
        bus.publish(alert(2, severity="low"), {"queue": "billing"})  # below min severity
        bus.publish(alert(3, category="sales_opportunity"), {"queue": "billing"})
        bus.publish(alert(4), {"queue": "sales"})  # other queue
        for i in range(5, 10):
            bus.publish(alert(i), {"queue": "billing"})
        got = [(await sub.get()).alert_id for _ in range(sub.pending())]
        return got, sub.dropped, bus.stats()

    got, dropped, stats = asyncio.run(run())
    assert got == ["a7", "a8", "a9"]  # the newest three; a1, a5, a6 dropped
    assert dropped == 3 and stats["dropped"] == 3


def test_tap_per_call_and_wildcard():
    async def run():
        tap = EventTap(10)
        one, every = tap.subscribe("c1"), tap.subscribe("*")
        tap.publish_call_event("c1", "e1")
        tap.publish_call_event("c2", "e2")
        return [await one.get() for _ in range(one.pending())], [await every.get() for _ in range(every.pending())]

    assert asyncio.run(run()) == (["e1"], ["e1", "e2"])


def test_subscription_over_websocket():
    async def run():
        bus = AlertBus(100)

        async def handler(ws):
            await serve_alert_subscription(ws, bus, {"severity": ["high"]})

        async with serve(handler, "127.0.0.1", 0) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            async with connect(f"ws://127.0.0.1:{port}") as ws:
                hello = json.loads(await ws.recv())
                bus.publish(alert(1, severity="low"))
                bus.publish(alert(2))
                got = json.loads(await asyncio.wait_for(ws.recv(), 5))
            return hello, got

    hello, got = asyncio.run(run())
    assert hello == {"type": "subscribed", "filters": {"severities": ["high"]}}
    assert got["alert_id"] == "a2" and got["type"] == "alert"
