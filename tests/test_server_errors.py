"""The connection shell's error outcomes over real sockets (docs/protocol.md, "Errors and close codes").

- a non-fatal error (``close_code=None``) is an ``error`` event, counted, and the call goes on;
- a frame above the transport's hard limit (twice the frame limit) is closed 1009 by websockets
  unread, and still counted (``frame_too_large``);
- an internal error sends ``error`` ``internal_error`` before closing 1011;
- adapter counters (e.g. an unknown chan_websocket event, ignored) reach
  ``speechiq_adapter_events_total``; ``server.metrics_port`` serves /metrics and nothing else.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from speechiq.adapters.native import NativeAdapter
from speechiq.ingest import IngestEvent
from speechiq.server.outbound import DEFAULT_LIMIT

START = json.dumps({"type": "start", "encoding": "pcm16", "sample_rate": 8000, "channels": [{"role": "agent"}],
                    "language": "en"})
MAX_FRAME = 2048
MAX_TEXT = 1024


class BrokenAdapter(NativeAdapter):
    """Our protocol with a bug in its audio path: any binary frame raises a plain exception."""

    def feed_bytes(self, data: bytes) -> list[IngestEvent]:
        raise RuntimeError("a bug")


@pytest.fixture(scope="module")
def server():
    from conftest import ServerThread

    st = ServerThread({"server.max_frame_bytes": MAX_FRAME, "server.max_text_bytes": MAX_TEXT,
                       "server.metrics_port": 0}).start()
    st.srv.routes["/v1/broken"] = lambda engine, request: BrokenAdapter()
    yield st
    st.stop()


async def session(url: str, frames: list[str | bytes], wait_s: float = 5.0) -> tuple[list[dict[str, Any]], int | None]:
    events: list[dict[str, Any]] = []
    async with connect(url, max_size=None) as ws:
        try:
            for f in frames:
                await ws.send(f)
            async with asyncio.timeout(wait_s):
                async for raw in ws:
                    events.append(json.loads(raw))
        except (TimeoutError, ConnectionClosed):
            pass
    return events, ws.close_code


def errors_counted(st: Any, platform: str, code: str) -> float:
    return st.engine.metrics.protocol_errors.labels(platform, code)._value.get()


def settled(st: Any, read: Any, expected: float) -> float:
    """``read()`` once the server finished with the connection: the client may see the close
    before the server's handler has run to its end (it counts as it unwinds)."""

    async def wait() -> float:
        for _ in range(500):
            if read() == expected:
                break
            await asyncio.sleep(0.01)
        return read()

    return st.call(wait(), timeout=30)


def test_non_fatal_error_is_reported_and_the_call_goes_on(server):
    before = errors_counted(server, "speechiq", "invalid_dtmf")
    frames = [START, bytes(1600), json.dumps({"type": "dtmf", "digit": "X"}), bytes(1600),
              json.dumps({"type": "metadata", "metadata": {"queue": "billing"}}), json.dumps({"type": "stop"})]
    events, close = server.call(session(server.url(), frames, wait_s=30))
    kinds = [e["type"] for e in events]
    assert kinds[0] == "started" and kinds[-1] == "summary", kinds
    errors = [e for e in events if e["type"] == "error"]
    assert [e["code"] for e in errors] == ["invalid_dtmf"] and errors[0]["message"]
    assert close == 1000  # the call ended with its stop, not with the error
    assert errors_counted(server, "speechiq", "invalid_dtmf") == before + 1


def test_frames_above_twice_the_limit_are_closed_1009_and_counted(server):
    before = errors_counted(server, "speechiq", "frame_too_large")
    # up to twice the limit the adapter reads and refuses it (error event, 1009) ...
    events, close = server.call(session(server.url(), [START, bytes(MAX_FRAME + 2)]))
    assert close == 1009 and [e["code"] for e in events if e["type"] == "error"] == ["frame_too_large"]
    assert errors_counted(server, "speechiq", "frame_too_large") == before + 1
    # ... beyond it websockets closes 1009 before the frame is read: no event, still counted once
    limit = 2 * max(MAX_FRAME, MAX_TEXT)
    events, close = server.call(session(server.url(), [START, bytes(limit + 1)]))
    assert close == 1009 and not [e for e in events if e["type"] == "error"]
    count = lambda: errors_counted(server, "speechiq", "frame_too_large")  # noqa: E731
    assert settled(server, count, before + 2) == before + 2
    _, close = server.call(session(server.url(), ["x" * (limit + 1)]))  # text frames too
    assert close == 1009 and settled(server, count, before + 3) == before + 3


def test_internal_error_sends_an_error_event_then_closes_1011(server):
    before = errors_counted(server, "speechiq", "internal_error")
    events, close = server.call(session(server.url("/v1/broken"), [START, bytes(320)]))
    assert events[0]["type"] == "started"
    errors = [e for e in events if e["type"] == "error"]
    assert [e["code"] for e in errors] == ["internal_error"] and "a bug" not in errors[0]["message"]
    assert close == 1011
    assert settled(server, lambda: errors_counted(server, "speechiq", "internal_error"), before + 1) == before + 1
    # the call it carried is ended, not left hanging
    assert settled(server, lambda: server.engine.active_calls, 0) == 0


def test_unknown_chan_websocket_event_is_counted_and_ignored(server):
    counted = server.engine.metrics.adapter_events.labels("asterisk", "unknown_event")
    before = counted._value.get()
    media_start = ("MEDIA_START connection_id:c1 channel:PJSIP/1-0001 channel_id:1700000000.1 format:slin16 "
                   "optimal_frame_size:640 ptime:20")
    tone = (np.sin(np.arange(16000) / 16000 * 2 * np.pi * 440) * 3000).astype("<i2").tobytes()

    async def run() -> tuple[int | None, list[Any]]:
        sub = server.engine.tap.subscribe("*")
        try:
            async with connect(server.url("/v1/asterisk"), subprotocols=["media"]) as ws:  # type: ignore[list-item]
                await ws.send(media_start)
                await ws.send("MEDIA_FUTURE_EVENT something:new")  # a newer Asterisk's event
                await ws.send(json.dumps({"event": "ANOTHER_NEW_EVENT", "x": 1}))
                for i in range(0, len(tone), 640):
                    await ws.send(tone[i:i + 640])
            events = []
            async with asyncio.timeout(30):
                while not events or getattr(events[-1], "type", "") != "summary":
                    events.append(await sub.get())
            return ws.close_code, events
        finally:
            server.engine.tap.unsubscribe(sub)

    close, events = server.call(run(), timeout=60)
    assert close == 1000  # the call was not broken by the unknown events
    assert events[-1].type == "summary"  # the call ran to its end
    assert settled(server, counted._value.get, before + 2) == before + 2


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_metrics_port_serves_metrics_and_health_only(server):
    port = server.srv.metrics_port
    assert port and port != server.srv.port
    status, body = _get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200 and "speechiq_protocol_errors_total" in body
    status, body = _get(f"http://127.0.0.1:{port}/healthz")
    assert status == 200 and json.loads(body)["status"] == "ok"
    status, _ = _get(f"http://127.0.0.1:{port}/v1/calls")
    assert status == 404



def test_a_client_that_cannot_keep_up_is_closed_1008_and_a_resume_loses_nothing(server):
    """Events go engine outlet → connection → bounded send queue. Eight finals handed to a queue of
    four at once (the writer gets no turn in between, as when the socket is stalled): finals are
    not dropped silently: the client is closed 1008 ``client too slow``; for the call that is a
    drop, and the resuming connection gets all eight, in order, once."""
    from speechiq.events import Transcript

    call_id = "slow-client-1"
    before = errors_counted(server, "speechiq", "client_too_slow")

    async def run() -> tuple[int | None, str, list[dict[str, Any]], list[dict[str, Any]]]:
        server.srv.outbound_limit = 4
        try:
            ws = await connect(server.url(), max_size=None)
        finally:
            server.srv.outbound_limit = DEFAULT_LIMIT  # only this connection gets the tiny queue
        await ws.send(START.replace('"start",', f'"start", "call_id": "{call_id}",'))
        started = json.loads(await ws.recv())
        session = server.engine.sessions[call_id]
        for i in range(8):
            session.outlet.emit(Transcript(call_id=call_id, channel=0, role="agent", utterance_id=f"0-{i}",
                                           is_final=True, start=float(i), end=i + 0.5, text=f"final {i}"))
        first: list[dict[str, Any]] = []
        try:
            async with asyncio.timeout(10):
                async for raw in ws:
                    first.append(json.loads(raw))
        except (TimeoutError, ConnectionClosed):
            pass
        resume = json.loads(START)
        resume["resume_token"] = started["resume_token"]
        second, _ = await session_events(server.url(), [json.dumps(resume), json.dumps({"type": "stop"})])
        return ws.close_code, ws.close_reason, first, second

    async def session_events(url: str, frames: list[str]) -> tuple[list[dict[str, Any]], int | None]:
        return await session(url, frames, wait_s=30)

    close, reason, first, second = server.call(run(), timeout=60)
    assert close == 1008 and reason == "client too slow"
    assert settled(server, lambda: errors_counted(server, "speechiq", "client_too_slow"), before + 1) == before + 1
    assert second[0]["type"] == "started" and second[0]["resumed"] and second[-1]["type"] == "summary"
    texts = [e["text"] for e in first + second if e["type"] == "transcript"]
    assert texts == [f"final {i}" for i in range(8)]  # each once, in order, none lost
