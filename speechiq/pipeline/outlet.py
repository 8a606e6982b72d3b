"""A call's outlet: every event to the call tap, the store and each attached connection.

While no connection is attached (a dropped transport inside its resume grace window) the
events a client must not miss — finals, alerts, notices, the summary — are kept, in order, and a
resuming connection receives them right after its ``started`` and before anything new; partial
transcripts are not kept (a newer partial or the final supersedes them). The backlog is bounded:
past ``limit`` events the oldest go first and are counted. A connection closed as too slow hands
back what it could not send (:meth:`CallOutlet.requeue`), so a resume after that loses nothing.

Events that are kept are also **numbered** (``seq`` 1, 2, … per call; partials carry 0) and the
last ``recent_limit`` are remembered. The backlog alone cannot know what was in flight when a
transport died (written to the socket, never read by the client); a client that resumes with
``last_seq`` (the highest ``seq`` it processed) gets exactly the numbered events after it — from
the remembered ones and the backlog — so nothing in flight is lost and nothing is repeated.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)
Sink = Callable[[Any], None]
BACKLOG_LIMIT = 10_000
RECENT_LIMIT = 2_000  # numbered events remembered while connections are attached


def _keep(event: Any) -> bool:
    return not (getattr(event, "type", "") == "transcript" and not getattr(event, "is_final", True))


class CallOutlet:
    def __init__(self, call_id: str, publish: Callable[[str, Any], None], limit: int = BACKLOG_LIMIT,
                 recent_limit: int = RECENT_LIMIT) -> None:
        self.call_id = call_id
        self._publish = publish  # engine-wide: call tap, store
        self._live: list[Sink] = []
        self._catching_up: list[Sink] = []
        self._backlog: deque[Any] = deque()
        self._limit = limit
        self._keeping = False  # a connection was attached once and none is now
        self.backlog_dropped = 0
        self.replayed = 0
        self.seq = 0  # the last number given
        self._recent: deque[Any] = deque(maxlen=recent_limit)
        self._resume_after: dict[Any, int] = {}  # sink → the last_seq it resumed with

    @property
    def attached(self) -> bool:
        return bool(self._live or self._catching_up)

    def attach(self, sink: Sink, *, resume: bool = False, after_seq: int | None = None) -> None:
        """A new connection. ``resume=True``: it gets the kept events first, on :meth:`replay`;
        until then new events queue behind them. ``after_seq``: the client's ``last_seq`` — it
        gets every numbered event after that one instead (the events in flight at the drop too)."""
        if resume and after_seq is not None:
            self._resume_after[sink] = after_seq
            self._catching_up.append(sink)
        elif resume and (self._backlog or self._keeping):
            self._catching_up.append(sink)
        else:
            self._live.append(sink)
        self._keeping = False

    def replay(self, sink: Sink) -> int:
        """Deliver what the resuming ``sink`` missed, then make it live. Returns the count."""
        if sink not in self._catching_up:
            return 0
        after = self._resume_after.pop(sink, None)
        missed = list(self._backlog) if after is None else self._numbered_after(after)
        self._backlog.clear()
        for event in missed:
            self._deliver(sink, event)
        n = len(missed)
        while self._backlog:  # emitted while it caught up
            self._deliver(sink, self._backlog.popleft())
            n += 1
        self._catching_up.remove(sink)
        self._live.append(sink)
        self.replayed += n
        return n

    def _numbered_after(self, after: int) -> list[Any]:
        """The kept events numbered after ``after``: remembered ones and the backlog, in order."""
        by_seq = {e.seq: e for e in (*self._recent, *self._backlog) if getattr(e, "seq", 0) > after}
        out = [by_seq[k] for k in sorted(by_seq)]
        first = out[0].seq if out else self.seq + 1
        lost = max(0, first - after - 1)  # numbers no longer kept (past both bounds)
        if lost:
            self.backlog_dropped += lost
            log.warning("call %s: %d events after seq %d are no longer kept", self.call_id, lost, after)
        return out

    def detach(self, sink: Sink) -> None:
        self._resume_after.pop(sink, None)
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
        if _keep(event) and hasattr(event, "seq"):
            self.seq += 1
            event = dataclasses.replace(event, seq=self.seq)
            self._recent.append(event)
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
