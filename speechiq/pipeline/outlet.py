"""A call's outlet: every event to the call tap, the store and each attached connection.

While no connection is attached (a dropped transport inside its resume grace window) the
events a client must not miss — finals, alerts, notices, the summary — are kept, in order, and a
resuming connection receives them right after its ``started`` and before anything new; partial
transcripts are not kept (a newer partial or the final supersedes them). The backlog is bounded:
past ``limit`` events the oldest go first and are counted. A connection closed as too slow hands
back what it could not send (:meth:`CallOutlet.requeue`), so a resume after that loses nothing.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)
Sink = Callable[[Any], None]
BACKLOG_LIMIT = 10_000


def _keep(event: Any) -> bool:
    return not (getattr(event, "type", "") == "transcript" and not getattr(event, "is_final", True))


class CallOutlet:
    def __init__(self, call_id: str, publish: Callable[[str, Any], None], limit: int = BACKLOG_LIMIT) -> None:
        self.call_id = call_id
        self._publish = publish  # engine-wide: call tap, store
        self._live: list[Sink] = []
        self._catching_up: list[Sink] = []
        self._backlog: deque[Any] = deque()
        self._limit = limit
        self._keeping = False  # a connection was attached once and none is now
        self.backlog_dropped = 0
        self.replayed = 0

    @property
    def attached(self) -> bool:
        return bool(self._live or self._catching_up)

    def attach(self, sink: Sink, *, resume: bool = False) -> None:
        """A new connection. ``resume=True``: it gets the kept events first, on :meth:`replay`;
        until then new events queue behind them."""
        if resume and (self._backlog or self._keeping):
            self._catching_up.append(sink)
        else:
            self._live.append(sink)
        self._keeping = False

    def replay(self, sink: Sink) -> int:
        """Deliver what the resuming ``sink`` missed, then make it live. Returns the count."""
        if sink not in self._catching_up:
            return 0
        n = 0
        while self._backlog:
            self._deliver(sink, self._backlog.popleft())
            n += 1
        self._catching_up.remove(sink)
        self._live.append(sink)
        self.replayed += n
        return n

    def detach(self, sink: Sink) -> None:
        for group in (self._live, self._catching_up):
            if sink in group:
                group.remove(sink)
        if not self.attached:
            self._keeping = True

    def requeue(self, events: list[Any]) -> int:
        """Events a connection took but could not send (it was closed as too slow, after its
        sink was detached): kept ahead of everything emitted since, in their order, for the
        resuming connection. Partials are not kept. Returns how many were kept."""
        kept = [e for e in events if _keep(e)]
        self._backlog.extendleft(reversed(kept))
        while len(self._backlog) > self._limit:
            self._backlog.popleft()
            self.backlog_dropped += 1
        return len(kept)

    def emit(self, event: Any) -> None:
        self._publish(self.call_id, event)
        if self._catching_up or (self._keeping and not self._live):
            if _keep(event):
                self._backlog.append(event)
                while len(self._backlog) > self._limit:
                    self._backlog.popleft()
                    self.backlog_dropped += 1
            if not self._live:
                return
        for sink in list(self._live):
            self._deliver(sink, event)

    def _deliver(self, sink: Sink, event: Any) -> None:
        try:
            sink(event)
        except Exception:  # a broken connection must not break the call
            log.exception("call %s: sink failed", self.call_id)
