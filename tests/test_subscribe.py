"""Supervisor WebSocket handlers over a real websockets server and client."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qs, urlsplit

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

from speechiq.alerts.bus import AlertBus, EventTap
from speechiq.alerts.subscribe import serve_alert_subscription, serve_call_tap
from speechiq.events import Alert, Transcript


def alert(i: int, severity: str = "high") -> Alert:
    return Alert(alert_id=f"a{i}", call_id="c1", rule_id="r", pack_version="v", label="x.y", category="compliance",
                 severity=severity, state="confirmed", media_time=float(i), start=0.0, end=1.0, role="agent",
                 text="t")


def transcript(call_id: str, text: str) -> Transcript:
    return Transcript(call_id=call_id, channel=0, role="agent", utterance_id="u1", is_final=True, start=0.0,
                      end=1.0, text=text)


async def _with_server(handler, client, path: str = "/"):
    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}{path}") as ws:
            return await asyncio.wait_for(client(ws), 10)


async def _until(predicate):
    for _ in range(500):
        if predicate():
            return True
        await asyncio.sleep(0.01)
    return False


def test_alert_subscription_filters_and_reports_drops():
    bus = AlertBus(2)

    async def handler(ws):  # as the server does it: the query string of the upgrade request
        await serve_alert_subscription(ws, bus, parse_qs(urlsplit(ws.request.path).query))

    async def client(ws):
        hello = json.loads(await ws.recv())
        bus.publish(alert(1, severity="low"))  # filtered out
        for i in range(2, 7):  # five at once into a queue of two: the three oldest drop
            bus.publish(alert(i))
        got = [json.loads(await ws.recv()) for _ in range(3)]
        await ws.close()
        gone = await _until(lambda: bus.stats()["subscribers"] == 0)
        return hello, got, gone

    hello, got, gone = asyncio.run(_with_server(handler, client, "/v1/alerts?severity=high+&api_key=k"))
    assert hello == {"type": "subscribed", "filters": {"min_severity": "high"}}
    assert got[0] == {"type": "dropped", "count": 3}
    assert [g["alert_id"] for g in got[1:]] == ["a5", "a6"] and got[1]["type"] == "alert"
    assert gone  # the subscription ends with the connection


def test_invalid_filter_is_refused():
    bus = AlertBus(10)

    async def handler(ws):
        await serve_alert_subscription(ws, bus, {"severity": ["urgent"]})

    async def client(ws):
        msg = json.loads(await ws.recv())
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        return msg, closed.value.rcvd.code

    msg, code = asyncio.run(_with_server(handler, client))
    assert msg["type"] == "error" and msg["code"] == "invalid_filter" and "urgent" in msg["message"]
    assert code == 1008 and bus.stats()["subscribers"] == 0


def test_call_tap_streams_one_call():
    tap = EventTap(10)

    async def handler(ws):
        await serve_call_tap(ws, tap, "c1")

    async def client(ws):
        hello = json.loads(await ws.recv())
        tap.publish_call_event("c2", transcript("c2", "other call"))
        tap.publish_call_event("c1", transcript("c1", "hello"))
        tap.publish_call_event("c1", alert(1))
        return hello, json.loads(await ws.recv()), json.loads(await ws.recv())

    hello, first, second = asyncio.run(_with_server(handler, client))
    assert hello == {"type": "subscribed", "call_id": "c1"}
    assert first["type"] == "transcript" and first["text"] == "hello"
    assert second["type"] == "alert"


def test_call_tap_decodes_a_percent_encoded_call_id():
    tap = EventTap(10)

    async def handler(ws):
        await serve_call_tap(ws, tap, urlsplit(ws.request.path).path.split("/")[3])

    async def client(ws):
        hello = json.loads(await ws.recv())
        tap.publish_call_event("agent@pbx:1", transcript("agent@pbx:1", "hello"))
        return hello, json.loads(await ws.recv())

    hello, first = asyncio.run(_with_server(handler, client, "/v1/calls/agent%40pbx%3A1/events"))
    assert hello == {"type": "subscribed", "call_id": "agent@pbx:1"}
    assert first["text"] == "hello"


def test_closing_the_subscription_closes_the_socket():
    tap = EventTap(10)

    async def handler(ws):
        await serve_call_tap(ws, tap, "c1")

    async def client(ws):
        await ws.recv()
        for group in list(tap._subs.values()):
            for sub in list(group.values()):
                sub.close()  # e.g. the server shutting down
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        return closed.value.rcvd.code

    assert asyncio.run(_with_server(handler, client)) == 1001


def test_bad_call_id_is_refused():
    async def handler(ws):
        await serve_call_tap(ws, EventTap(10), "")

    async def client(ws):
        msg = json.loads(await ws.recv())
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        return msg["code"], closed.value.rcvd.code

    assert asyncio.run(_with_server(handler, client)) == ("invalid_call_id", 1008)
