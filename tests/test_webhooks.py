"""Webhooks against a real local HTTP server: retries, backoff, signature, idempotency id."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading

import pytest

import speechiq.alerts.webhooks as wh
from speechiq.events import Alert


class _Handler(http.server.BaseHTTPRequestHandler):
    fail_first = 2
    received: list = []  # noqa: RUF012

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers), body))
        if len(type(self).received) <= type(self).fail_first:
            self.send_response(503)
            self.send_header("Retry-After", "0")
            self.end_headers()
            return
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture()
def http_server():
    _Handler.received = []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/hook"
    srv.shutdown()


def alert() -> Alert:
    return Alert(alert_id="a1", call_id="c1", rule_id="r1", pack_version="abc", label="escalation.legal_threat",
                 category="escalation", severity="high", state="confirmed", media_time=12.0, start=10.0,
                 end=12.0, role="customer", text="I will call my lawyer")


def test_retries_then_delivers_signed(http_server, monkeypatch):
    monkeypatch.setattr(wh, "BACKOFF_BASE_S", 0.01)

    async def run():
        s = wh.WebhookSender([http_server], "s3cret", retries=5)
        await s.start()
        s.submit(alert())
        await s.flush(10)
        await s.close()
        return s

    s = asyncio.run(run())
    assert s.sent == 1 and s.failed == 0 and s.retried == 2
    assert len(_Handler.received) == 3
    headers, body = _Handler.received[-1]
    assert json.loads(body)["rule_id"] == "r1"
    assert headers["X-Speechiq-Event-Id"] == "a1:confirmed"
    assert wh.verify("s3cret", body, headers["X-Speechiq-Signature"])
    assert not wh.verify("wrong", body, headers["X-Speechiq-Signature"])
    assert not wh.verify("s3cret", body + b" ", headers["X-Speechiq-Signature"])


def test_gives_up_and_counts(monkeypatch):
    monkeypatch.setattr(wh, "BACKOFF_BASE_S", 0.001)

    async def run():
        s = wh.WebhookSender(["http://127.0.0.1:9/nothing-listens"], None, retries=2, queue_size=1)
        await s.start(workers=1)
        s.submit(alert())
        s.submit(alert())  # may be dropped: queue of 1 while the first is in flight
        await s.flush(10)
        await s.close()
        return s

    s = asyncio.run(run())
    assert s.sent == 0 and s.failed + s.dropped == 2
