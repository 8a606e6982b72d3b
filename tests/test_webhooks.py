"""Webhooks against a real local HTTP server: retries, backoff, Retry-After, signature, idempotency id."""

from __future__ import annotations

import asyncio
import email.utils
import http.server
import json
import threading
import time

import pytest

import speechiq.alerts.webhooks as wh
from speechiq.errors import ConfigError
from speechiq.events import Alert


class _Handler(http.server.BaseHTTPRequestHandler):
    """Answers the queued (status, headers) replies in order, then 204."""

    replies: list = []  # noqa: RUF012
    received: list = []  # noqa: RUF012

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers), body))
        status, headers = type(self).replies.pop(0) if type(self).replies else (204, {})
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture()
def http_server():
    _Handler.received, _Handler.replies = [], []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/hook"
    srv.shutdown()
    srv.server_close()


@pytest.fixture()
def waits(monkeypatch):
    """Record the backoff waits instead of sleeping them."""
    got: list[float] = []

    async def fake_sleep(seconds):
        got.append(seconds)
        await asyncio.sleep(0)

    monkeypatch.setattr(wh, "_sleep", fake_sleep)
    return got


def alert(i: int = 1, state: str = "confirmed") -> Alert:
    return Alert(alert_id=f"a{i}", call_id="c1", rule_id="r1", pack_version="abc", label="escalation.legal_threat",
                 category="escalation", severity="high", state=state, media_time=12.0, start=10.0,
                 end=12.0, role="customer", text="I will call my lawyer")


def deliver(urls, alerts, **kw):
    async def run():
        s = wh.WebhookSender(urls, **{"secret": "s3cret", **kw})
        await s.start()
        for a in alerts:
            s.submit(a)
        await s.flush(20)
        await s.close()
        return s

    return asyncio.run(run())


def test_fails_twice_then_delivers_signed(http_server, waits):
    _Handler.replies = [(503, {}), (503, {})]
    s = deliver([http_server], [alert()], retries=5)
    assert s.stats() == {"sent": 1, "failed": 0, "dropped": 0, "retried": 2, "queued": 0}
    assert len(_Handler.received) == 3 and len(waits) == 2
    assert 0.25 <= waits[0] <= 0.5 and 0.5 <= waits[1] <= 1.0  # exponential with jitter
    ids = {h["X-Speechiq-Event-Id"] for h, _ in _Handler.received}
    assert ids == {"a1:confirmed"}  # the same id on every retry: receivers deduplicate
    headers, body = _Handler.received[-1]
    assert json.loads(body)["rule_id"] == "r1" and headers["Content-Type"] == "application/json"
    sig = headers["X-Speechiq-Signature"]
    assert wh.verify("s3cret", body, sig)
    assert not wh.verify("wrong", body, sig)
    assert not wh.verify("s3cret", body + b" ", sig)
    assert not wh.verify("s3cret", body, sig, now=time.time() + 3600)  # replayed an hour later
    assert not wh.verify("s3cret", body, "garbage")


def test_retry_after_is_honoured(http_server, waits):
    _Handler.replies = [(429, {"Retry-After": "7"})]
    s = deliver([http_server], [alert()])
    assert s.sent == 1 and waits[0] >= 7.0


def test_retry_after_forms():
    assert wh.retry_after("3") == 3.0
    assert wh.retry_after(None) is None and wh.retry_after("soon") is None
    now = time.time()
    assert 59 <= wh.retry_after(email.utils.formatdate(now + 60, usegmt=True), now=now) <= 60
    assert wh.retry_after("99999") == wh.RETRY_AFTER_MAX_S


def test_client_errors_are_final_and_order_is_kept(http_server, waits):
    _Handler.replies = [(400, {})]
    s = deliver([http_server], [alert(1), alert(2, "provisional"), alert(2, "confirmed")], secret=None)
    assert s.failed == 1 and s.sent == 2 and waits == []
    assert [h["X-Speechiq-Event-Id"] for h, _ in _Handler.received] == ["a1:confirmed", "a2:provisional",
                                                                         "a2:confirmed"]
    assert all("X-Speechiq-Signature" not in h for h, _ in _Handler.received)  # no secret, no signature


def test_dead_endpoint_gives_up_without_blocking_the_others(http_server, waits):
    s = deliver(["http://127.0.0.1:9/nothing-listens", http_server], [alert()], retries=2)
    assert s.sent == 1 and s.failed == 1 and s.retried == 2 and len(_Handler.received) == 1


def test_full_queue_drops_and_counts(waits):
    async def run():
        s = wh.WebhookSender(["http://127.0.0.1:9/x"], None, retries=0, queue_size=2)
        for i in range(5):  # not started: nothing drains the queue
            s.submit(alert(i))
        stats = s.stats()
        await s.close()
        return stats, s.stats()

    before, after = asyncio.run(run())
    assert before["dropped"] == 3 and before["queued"] == 2
    assert after["dropped"] == 5  # abandoned at shutdown are counted too


def test_bad_configuration():
    with pytest.raises(ConfigError):
        wh.WebhookSender(["ftp://example.com/hook"], None)
    with pytest.raises(ConfigError):
        wh.WebhookSender(["http://127.0.0.1/hook"], None, queue_size=0)
