"""Webhook delivery of alerts: bounded queues, retries with backoff, HMAC-signed bodies.

Each alert is POSTed as JSON (``speechiq.events.to_json``) with
``X-Speechiq-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the secret>``
(Stripe's scheme: the timestamp is signed, so receivers can reject replays) and
``X-Speechiq-Event-Id: <alert_id>:<state>`` for idempotency (a retried delivery repeats it).
Connection errors, timeouts, 429 and 5xx are retried with exponential backoff and full jitter
(``Retry-After`` honoured, seconds or HTTP date, up to ``RETRY_AFTER_MAX_S``); other statuses
are final. Every URL has its own queue and worker, so one dead endpoint never delays another and
each endpoint gets a call's alerts in order. ``submit`` never blocks the call: when a queue is
full the alert is dropped for that URL and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import hashlib
import hmac
import logging
import random
import time
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigError
from ..events import to_json

log = logging.getLogger(__name__)
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 30.0
RETRY_AFTER_MAX_S = 300.0
_sleep = asyncio.sleep  # tests record the waits through this


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The ``X-Speechiq-Signature`` value for ``body``."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: str, body: bytes, header: str, tolerance_s: int = 300, now: float | None = None) -> bool:
    """Receiver-side check: the HMAC matches and the timestamp is within ``tolerance_s``."""
    try:
        parts = dict(p.strip().split("=", 1) for p in header.split(","))
        t = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - t) > tolerance_s:
        return False
    expected = sign(secret, body, t).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or HTTP date), capped."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, min(RETRY_AFTER_MAX_S, seconds))


def backoff(attempt: int) -> float:
    """Exponential backoff with jitter: uniform in [b/2, b] with b = base·2^attempt, capped."""
    b = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** attempt)
    return b * (0.5 + 0.5 * random.random())


class WebhookSender:
    """POSTs alerts to ``urls``. ``await start()`` on the event loop, ``submit`` per alert,
    ``await close()`` at shutdown (waits up to 5 s for queued deliveries)."""

    def __init__(self, urls: list[str] | tuple[str, ...], secret: str | None, retries: int = 5,
                 queue_size: int = 1000, timeout_s: float = 5.0) -> None:
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ConfigError(f"webhook URL must be http(s)://host/…: {url!r}")
        if retries < 0 or queue_size < 1:
            raise ConfigError("webhook retries must be ≥ 0 and queue_size ≥ 1")
        self.urls = list(dict.fromkeys(urls))
        self.secret = secret
        self.retries = retries
        self.timeout_s = timeout_s
        self._queues: dict[str, asyncio.Queue[tuple[bytes, str]]] = {
            u: asyncio.Queue(maxsize=queue_size) for u in self.urls}
        self._tasks: list[asyncio.Task[None]] = []
        self._client: Any = None
        self._closed = False
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self.retried = 0

    async def start(self) -> None:
        import httpx

        self._client = httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=False)
        self._tasks = [asyncio.create_task(self._worker(u), name=f"webhook {u}") for u in self.urls]

    def submit(self, alert: Any) -> None:
        """Queue ``alert`` for every URL; never blocks, never raises."""
        try:
            body = to_json(alert).encode()
            event_id = f"{alert.alert_id}:{alert.state}"
        except Exception:
            log.exception("webhook: cannot serialise %r", alert)
            self.failed += len(self.urls)
            return
        for q in self._queues.values():
            if self._closed:
                self.dropped += 1
                continue
            try:
                q.put_nowait((body, event_id))
            except asyncio.QueueFull:
                self.dropped += 1

    async def _worker(self, url: str) -> None:
        q = self._queues[url]
        while True:
            body, event_id = await q.get()
            try:
                await self._deliver(url, body, event_id)
            except Exception:  # never let one delivery kill the worker
                log.exception("webhook %s: delivery of %s crashed", url, event_id)
                self.failed += 1
            finally:
                q.task_done()

    async def _deliver(self, url: str, body: bytes, event_id: str) -> None:
        for attempt in range(self.retries + 1):
            headers = {"Content-Type": "application/json", "X-Speechiq-Event-Id": event_id,
                       "User-Agent": "speechiq-webhooks"}
            if self.secret:
                headers["X-Speechiq-Signature"] = sign(self.secret, body)
            delay = backoff(attempt)
            try:
                resp = await self._client.post(url, content=body, headers=headers)
            except Exception as exc:  # connection refused, reset, timeout …
                log.info("webhook %s: attempt %d for %s failed: %s", url, attempt + 1, event_id, exc)
            else:
                if 200 <= resp.status_code < 300:
                    self.sent += 1
                    return
                if resp.status_code != 429 and resp.status_code < 500:
                    log.warning("webhook %s refused %s: HTTP %d", url, event_id, resp.status_code)
                    self.failed += 1
                    return
                wait = retry_after(resp.headers.get("Retry-After"))
                if wait is not None:
                    delay = max(delay, wait)
            if attempt < self.retries:
                self.retried += 1
                await _sleep(delay)
        log.warning("webhook %s: gave up on %s after %d attempts", url, event_id, self.retries + 1)
        self.failed += 1

    async def flush(self, timeout: float = 10.0) -> None:
        """Wait until every queued alert was delivered or given up (at most ``timeout`` s)."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(q.join() for q in self._queues.values())), timeout)

    async def close(self) -> None:
        self._closed = True
        if self._tasks:
            await self.flush(5.0)
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        left = sum(q.qsize() for q in self._queues.values())
        if left:
            log.warning("webhooks: %d alert deliveries abandoned at shutdown", left)
            self.dropped += left
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def stats(self) -> dict[str, int]:
        return {"sent": self.sent, "failed": self.failed, "dropped": self.dropped, "retried": self.retried,
                "queued": sum(q.qsize() for q in self._queues.values())}
