"""Webhook delivery of alerts: bounded queue, retries with backoff, HMAC-signed bodies.

Each alert is POSTed as JSON with
``X-Speechiq-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the secret>``
(Stripe's scheme: the timestamp is signed, so receivers can reject replays) and
``X-Speechiq-Event-Id: <alert_id>:<state>`` for idempotency. Connection errors, 429 and 5xx are
retried with exponential backoff and jitter (``Retry-After`` honoured); other 4xx are final.
``submit`` never blocks the call: when the queue is full the alert is dropped and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import random
import time
from typing import Any

from ..events import to_json

log = logging.getLogger(__name__)
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 30.0


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: str, body: bytes, header: str, tolerance_s: int = 300, now: float | None = None) -> bool:
    """Receiver-side check (also documented for users)."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        t = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - t) > tolerance_s:
        return False
    expected = sign(secret, body, t).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


class WebhookSender:
    def __init__(self, urls: list[str], secret: str | None, retries: int = 5, queue_size: int = 1000,
                 timeout_s: float = 5.0) -> None:
        self.urls = list(urls)
        self.secret = secret
        self.retries = retries
        self.timeout_s = timeout_s
        self._queue: asyncio.Queue[tuple[str, bytes, str]] = asyncio.Queue(maxsize=queue_size)
        self._tasks: list[asyncio.Task[None]] = []
        self._client: Any = None
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self.retried = 0

    async def start(self, workers: int = 2) -> None:
        import httpx

        self._client = httpx.AsyncClient(timeout=self.timeout_s)
        self._tasks = [asyncio.create_task(self._worker()) for _ in range(workers)]

    def submit(self, alert: Any) -> None:
        body = to_json(alert).encode()
        event_id = f"{alert.alert_id}:{alert.state}"
        for url in self.urls:
            try:
                self._queue.put_nowait((url, body, event_id))
            except asyncio.QueueFull:
                self.dropped += 1

    async def _worker(self) -> None:
        while True:
            url, body, event_id = await self._queue.get()
            try:
                await self._deliver(url, body, event_id)
            finally:
                self._queue.task_done()

    async def _deliver(self, url: str, body: bytes, event_id: str) -> None:
        for attempt in range(self.retries + 1):
            headers = {"Content-Type": "application/json", "X-Speechiq-Event-Id": event_id,
                       "User-Agent": "speechiq-webhooks"}
            if self.secret:
                headers["X-Speechiq-Signature"] = sign(self.secret, body)
            delay = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** attempt) * (0.5 + random.random())
            try:
                resp = await self._client.post(url, content=body, headers=headers)
                if resp.status_code < 300:
                    self.sent += 1
                    return
                if resp.status_code != 429 and resp.status_code < 500:
                    log.warning("webhook %s refused %s: HTTP %d", url, event_id, resp.status_code)
                    self.failed += 1
                    return
                with contextlib.suppress(ValueError, TypeError):
                    delay = max(delay, float(resp.headers.get("Retry-After", "")))
            except Exception as exc:  # connection refused, timeout …
                log.info("webhook %s attempt %d failed: %s", url, attempt + 1, exc)
            if attempt < self.retries:
                self.retried += 1
                await asyncio.sleep(delay)
        self.failed += 1

    async def flush(self, timeout: float = 10.0) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout)

    async def close(self) -> None:
        await self.flush(5.0)
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        if self._client is not None:
            await self._client.aclose()

    def stats(self) -> dict[str, int]:
        return {"sent": self.sent, "failed": self.failed, "dropped": self.dropped, "retried": self.retried,
                "queued": self._queue.qsize()}
