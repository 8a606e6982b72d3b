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
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)
SEVERITY_ORDER = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
_ids = itertools.count(1)


@dataclass(frozen=True)
class AlertFilter:
    """Empty sets match everything; ``min_severity`` keeps that level and above."""

    categories: frozenset[str] = frozenset()
    labels: frozenset[str] = frozenset()
    severities: frozenset[str] = frozenset()
    min_severity: str | None = None
    queues: frozenset[str] = frozenset()
    agents: frozenset[str] = frozenset()
    call_ids: frozenset[str] = frozenset()

    @classmethod
    def from_query(cls, query: Mapping[str, Iterable[str]]) -> AlertFilter:
        def values(key: str) -> frozenset[str]:
            out: set[str] = set()
            for v in query.get(key, ()):
                out.update(x.strip() for x in v.split(",") if x.strip())
            return frozenset(out)

        sev = values("severity")
        min_sev = next(iter(values("min_severity")), None)
        if min_sev is not None and min_sev not in SEVERITY_ORDER:
            raise ValueError(f"min_severity must be one of {', '.join(SEVERITY_ORDER)}")
        return cls(values("category"), values("label"), sev, min_sev, values("queue"), values("agent"),
                   values("call_id"))

    def matches(self, alert: Any, meta: Mapping[str, Any]) -> bool:
        if self.categories and alert.category not in self.categories:
            return False
        if self.labels and alert.label not in self.labels:
            return False
        if self.severities and alert.severity not in self.severities:
            return False
        if self.min_severity and SEVERITY_ORDER.get(alert.severity, 0) < SEVERITY_ORDER[self.min_severity]:
            return False
        if self.queues and str(meta.get("queue", "")) not in self.queues:
            return False
        if self.agents and str(meta.get("agent_id", meta.get("agent", ""))) not in self.agents:
            return False
        return not (self.call_ids and alert.call_id not in self.call_ids)

    def as_dict(self) -> dict[str, Any]:
        return {k: sorted(v) if isinstance(v, frozenset) else v for k, v in self.__dict__.items() if v}


@dataclass(eq=False)
class Subscription:
    queue_size: int
    filter: AlertFilter = field(default_factory=AlertFilter)
    key: str = ""
    id: int = field(default_factory=lambda: next(_ids))
    dropped: int = 0
    delivered: int = 0
    closed: bool = False

    def __post_init__(self) -> None:
        self._queue: asyncio.Queue[Any] = asyncio.Queue()

    def offer(self, item: Any) -> bool:
        """Queue without waiting; drops the oldest item when full. False if something was dropped."""
        if self.closed:
            return True
        lost = False
        while self._queue.qsize() >= self.queue_size:
            self._queue.get_nowait()
            self.dropped += 1
            lost = True
        self._queue.put_nowait(item)
        self.delivered += 1
        return not lost

    async def get(self) -> Any:
        return await self._queue.get()

    def take_dropped(self) -> int:
        n, self.dropped = self.dropped, 0
        return n

    def pending(self) -> int:
        return self._queue.qsize()


class _Hub:
    def __init__(self, queue_size: int) -> None:
        self.queue_size = queue_size
        self.published = 0
        self.dropped_total = 0
        self._subs: dict[str, dict[int, Subscription]] = {}

    def _add(self, key: str, flt: AlertFilter | None) -> Subscription:
        sub = Subscription(self.queue_size, flt or AlertFilter(), key)
        self._subs.setdefault(key, {})[sub.id] = sub
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        sub.closed = True
        group = self._subs.get(sub.key, {})
        group.pop(sub.id, None)
        if not group:
            self._subs.pop(sub.key, None)

    def _fan_out(self, key: str, item: Any, meta: Mapping[str, Any] | None = None) -> None:
        self.published += 1
        for sub in list(self._subs.get(key, {}).values()):
            try:
                if (meta is None or sub.filter.matches(item, meta)) and not sub.offer(item):
                    self.dropped_total += 1
            except Exception:  # a bad subscriber must never break a call
                log.exception("subscriber %s failed", sub.id)

    @property
    def subscribers(self) -> int:
        return sum(len(g) for g in self._subs.values())

    def stats(self) -> dict[str, int]:
        return {"published": self.published, "dropped": self.dropped_total, "subscribers": self.subscribers}


class AlertBus(_Hub):
    """Alerts of every call to supervisor subscriptions (``/v1/alerts``)."""

    def subscribe(self, flt: AlertFilter | None = None) -> Subscription:
        return self._add("*", flt)

    def publish(self, alert: Any, call_metadata: Mapping[str, Any] | None = None) -> None:
        self._fan_out("*", alert, call_metadata or {})


class EventTap(_Hub):
    """Every event of one call (transcripts, alerts, notices) to consoles watching it;
    ``subscribe("*")`` watches every call."""

    def subscribe(self, call_id: str) -> Subscription:
        return self._add(call_id, None)

    def publish_call_event(self, call_id: str, event: Any) -> None:
        if call_id in self._subs:
            self._fan_out(call_id, event)
        else:
            self.published += 1
        if "*" in self._subs:
            for sub in list(self._subs["*"].values()):
                if not sub.offer(event):
                    self.dropped_total += 1
