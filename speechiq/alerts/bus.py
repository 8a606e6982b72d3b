"""Non-blocking fan-out of alerts and per-call events to subscribers.

``publish`` never waits and never raises (it runs on the event loop, inside a call's path).
Each subscriber has a bounded queue; when it is full the **oldest** queued item is dropped
(a supervisor wants the newest alerts) and the drop is counted per subscriber and in total.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)
SEVERITY_ORDER = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
FILTER_KEYS = ("category", "label", "severity", "min_severity", "queue", "agent", "call_id")
IGNORED_KEYS = ("api_key", "token")  # authentication travels in the same query string
_ids = itertools.count(1)
_CLOSED = object()


class SubscriptionClosed(Exception):
    """``get()`` on a subscription that was closed."""


@dataclass(frozen=True)
class AlertFilter:
    """Empty sets match everything. Different fields combine with AND, values of one field with
    OR; a severity passes if it is in ``severities`` or at least ``min_severity``.

    ``queue`` and ``agent`` are read from the call's metadata (``queue``; ``agent_id`` or
    ``agent``), falling back to the alert's own metadata.
    """

    categories: frozenset[str] = frozenset()
    labels: frozenset[str] = frozenset()
    severities: frozenset[str] = frozenset()
    min_severity: str | None = None
    queues: frozenset[str] = frozenset()
    agents: frozenset[str] = frozenset()
    call_ids: frozenset[str] = frozenset()

    @classmethod
    def from_query(cls, query: Mapping[str, Iterable[str]]) -> AlertFilter:
        """From a URL query (``parse_qs`` form); values may be comma-separated; ``severity=high+``
        means high and above. Unknown keys or severities raise ``ValueError``."""
        unknown = sorted(set(query) - set(FILTER_KEYS) - set(IGNORED_KEYS))
        if unknown:
            raise ValueError(f"unknown filter {', '.join(unknown)}; use {', '.join(FILTER_KEYS)}")

        def values(key: str) -> frozenset[str]:
            out: set[str] = set()
            for v in query.get(key, ()):
                out.update(x.strip() for x in str(v).split(",") if x.strip())
            return frozenset(out)

        sev: set[str] = set()
        mins = set(values("min_severity"))
        for v in query.get("severity", ()):
            for x in str(v).split(","):
                # "high+" means high and above; an unencoded "+" arrives decoded as a space
                if x.strip() and (x.endswith(("+", " "))):
                    mins.add(x.strip().rstrip("+").strip())
                elif x.strip():
                    sev.add(x.strip())
        bad = sorted((sev | mins) - set(SEVERITY_ORDER))
        if bad:
            raise ValueError(f"unknown severity {', '.join(bad)}; use {', '.join(SEVERITY_ORDER)}")
        min_sev = min(mins, key=SEVERITY_ORDER.__getitem__) if mins else None
        return cls(values("category"), values("label"), frozenset(sev), min_sev, values("queue"),
                   values("agent"), values("call_id"))

    def matches(self, alert: Any, meta: Mapping[str, Any]) -> bool:
        if self.categories and alert.category not in self.categories:
            return False
        if self.labels and alert.label not in self.labels:
            return False
        if (self.severities or self.min_severity) and not (
                alert.severity in self.severities
                or (self.min_severity and SEVERITY_ORDER.get(alert.severity, -1) >= SEVERITY_ORDER[self.min_severity])):
            return False
        if self.call_ids and alert.call_id not in self.call_ids:
            return False
        if self.queues or self.agents:
            own = getattr(alert, "metadata", None) or {}
            if self.queues and str(_pick(meta, own, "queue")) not in self.queues:
                return False
            if self.agents and str(_pick(meta, own, "agent_id", "agent")) not in self.agents:
                return False
        return True

    def as_dict(self) -> dict[str, Any]:
        return {k: sorted(v) if isinstance(v, frozenset) else v for k, v in self.__dict__.items() if v}


def _pick(meta: Mapping[str, Any], own: Mapping[str, Any], *keys: str) -> Any:
    for source in (meta, own):
        for k in keys:
            if source.get(k) is not None:
                return source[k]
    return ""


class Subscription:
    """One subscriber's bounded queue. ``get()`` waits for the next item; ``close()`` ends it."""

    def __init__(self, hub: _Hub, queue_size: int, flt: AlertFilter, key: str) -> None:
        self.id = next(_ids)
        self.key = key
        self.filter = flt
        self.queue_size = max(1, int(queue_size))
        self.dropped = 0  # not yet reported by ``take_dropped``
        self.dropped_total = 0
        self.delivered = 0
        self.closed = False
        self._hub = hub
        self._queue: asyncio.Queue[Any] = asyncio.Queue()

    def offer(self, item: Any) -> bool:
        """Queue without waiting; drops the oldest item when full. False if something was dropped."""
        if self.closed:
            return True
        lost = False
        while self._queue.qsize() >= self.queue_size:
            self._queue.get_nowait()
            self.dropped += 1
            self.dropped_total += 1
            lost = True
        self._queue.put_nowait(item)
        self.delivered += 1
        return not lost

    async def get(self) -> Any:
        """The next item; raises ``SubscriptionClosed`` once closed."""
        if self.closed and self._queue.empty():
            raise SubscriptionClosed
        item = await self._queue.get()
        if item is _CLOSED:
            self._queue.put_nowait(_CLOSED)  # wake any other waiter too
            raise SubscriptionClosed
        return item

    def close(self) -> None:
        """Unsubscribe; pending ``get()`` calls raise ``SubscriptionClosed``. Idempotent."""
        if self.closed:
            return
        self.closed = True
        self._hub.unsubscribe(self)
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(_CLOSED)

    def take_dropped(self) -> int:
        """Drops since the last call (for "dropped" notices)."""
        n, self.dropped = self.dropped, 0
        return n

    def pending(self) -> int:
        return self._queue.qsize() - (1 if self.closed else 0)


class _Hub:
    def __init__(self, queue_size: int) -> None:
        self.queue_size = queue_size
        self.published = 0
        self.delivered = 0
        self.dropped_total = 0
        self._subs: dict[str, dict[int, Subscription]] = {}

    def _add(self, key: str, flt: AlertFilter | None) -> Subscription:
        sub = Subscription(self, self.queue_size, flt or AlertFilter(), key)
        self._subs.setdefault(key, {})[sub.id] = sub
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        group = self._subs.get(sub.key, {})
        group.pop(sub.id, None)
        if not group:
            self._subs.pop(sub.key, None)
        if not sub.closed:
            sub.close()

    def _fan_out(self, key: str, item: Any, meta: Mapping[str, Any] | None = None) -> None:
        for sub in list(self._subs.get(key, {}).values()):
            try:
                if meta is not None and not sub.filter.matches(item, meta):
                    continue
                self.delivered += 1
                if not sub.offer(item):
                    self.dropped_total += 1
            except Exception:  # a bad filter or subscriber must never break a call
                log.exception("subscriber %s failed", sub.id)

    @property
    def subscribers(self) -> int:
        return sum(len(g) for g in self._subs.values())

    def stats(self) -> dict[str, int]:
        """Counters for /metrics: published, delivered (queued to a subscriber), dropped, subscribers."""
        return {"published": self.published, "delivered": self.delivered, "dropped": self.dropped_total,
                "subscribers": self.subscribers}


class AlertBus(_Hub):
    """Alerts of every call to supervisor subscriptions (``/v1/alerts``)."""

    def subscribe(self, flt: AlertFilter | None = None) -> Subscription:
        return self._add("*", flt)

    def publish(self, alert: Any, call_metadata: Mapping[str, Any] | None = None) -> None:
        """Never blocks, never raises."""
        self.published += 1
        self._fan_out("*", alert, call_metadata or {})


class EventTap(_Hub):
    """Every event of one call (transcripts, alerts, notices) to consoles watching it;
    ``subscribe("*")`` watches every call."""

    def subscribe(self, call_id: str) -> Subscription:
        return self._add(call_id, None)

    def publish_call_event(self, call_id: str, event: Any) -> None:
        """Never blocks, never raises."""
        self.published += 1
        if call_id != "*":
            self._fan_out(call_id, event)
        self._fan_out("*", event)
