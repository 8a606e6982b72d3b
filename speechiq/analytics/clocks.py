"""Deadline clocks of one call: where each clock starts and which final utterance stops it.

A deadline rule ("say X within N s of Y") runs one clock per start: the call start, each final
utterance satisfying its utterance ``from`` (while none runs), each DTMF entry, each false → true
edge of a metadata condition, each confirmed alert of another rule (docs/rules.md, deadline).
:class:`CallAnalytics` fires the clocks that come due; this module only keeps them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..rules import schema as S
from ..rules.compiler import CompiledPack, Utt, starts_clock


@dataclass
class Timer:
    armed_at: float
    due: float
    source: Utt | None = None  # the utterance that started the clock (or whose alert did)
    done: bool = False
    event: bool = False  # started by a call event (DTMF, metadata edge, another rule's alert)
    alert: Any = None  # the provisional alert fired while speech still held the clock (engine's _Open)

    def stopped_by(self, u: Utt) -> bool:
        """Whether ``u`` (an utterance satisfying the ``say``) counts for this clock."""
        if u.start > self.due:
            return False
        if self.event:  # said after the event (not by the utterance whose alert started it)
            return u is not self.source and u.end > self.armed_at
        return self.source is None or u.start >= self.source.start


class Clocks:
    def __init__(self, pack: CompiledPack) -> None:
        self.pack = pack
        self.timers: dict[int, list[Timer]] = {}
        self.deadline_idx = [i for i, cr in enumerate(pack.rules) if cr.kind == "deadline"]
        self.event_idx: dict[type, list[int]] = {S.Dtmf: [], S.Metadata: [], S.AlertOf: []}
        self._meta_truth: dict[int, bool] = {}
        for i in self.deadline_idx:
            dl = pack.rules[i].deadline
            if dl is not None and dl.start is None:
                self.timers[i] = [Timer(0.0, dl.within)]
            elif dl is not None and dl.event_start:
                self.event_idx[type(dl.start)].append(i)

    def arm(self, i: int, at: float, source: Utt | None = None) -> None:
        """A clock of deadline rule ``i`` started by a call event at media time ``at``."""
        dl = self.pack.rules[i].deadline
        assert dl is not None
        self.timers.setdefault(i, []).append(Timer(at, at + dl.within, source, event=True))

    def on_dtmf(self, st: Any, at: float) -> None:
        """After a digit was added to ``st.dtmf``: each matching entry starts a clock."""
        for i in self.event_idx[S.Dtmf]:
            cr = self.pack.rules[i]
            if cr.deadline is not None and starts_clock(cr.id, cr.deadline, "dtmf", st):
                self.arm(i, at)

    def on_metadata(self, st: Any, at: float, guard: Any) -> None:
        """Metadata changed (or the call starts): each false → true edge starts a clock.
        ``guard(i, fn)`` runs ``fn`` for rule ``i``, logging and returning None if it raises."""
        for i in self.event_idx[S.Metadata]:
            cr = self.pack.rules[i]
            if cr.deadline is None:
                continue
            now = bool(guard(i, lambda cr=cr: starts_clock(cr.id, cr.deadline, "metadata", st)))
            if now and not self._meta_truth.get(i, False):
                self.arm(i, at)
            self._meta_truth[i] = now

    def on_alert(self, st: Any, alert: Any, trig: Utt | None) -> bool:
        """A confirmed alert: clocks of ``from: {alert: …}`` deadlines it matches start at its
        media time. True when one started."""
        armed = False
        for i in self.event_idx[S.AlertOf]:
            cr = self.pack.rules[i]
            if cr.deadline is not None and starts_clock(cr.id, cr.deadline, "alert", st, alert):
                self.arm(i, alert.media_time, trig)
                armed = True
        return armed

    @property
    def alert_started(self) -> bool:
        return bool(self.event_idx[S.AlertOf])

    def on_final(self, u: Utt, hits: dict[int, bool]) -> list[tuple[int, Timer]]:
        """A final utterance; ``hits``: id(condition) -> whether it holds on ``u`` (the pack's
        watched sub-conditions). It stops the clocks its ``say`` satisfies, and starts one of a
        deadline whose utterance ``from`` it satisfies (while that rule has none running).
        Returns the clocks it stopped."""
        stopped: list[tuple[int, Timer]] = []
        for i in self.deadline_idx:
            dl = self.pack.rules[i].deadline
            if dl is None:
                continue
            timers = self.timers.setdefault(i, [])
            if hits.get(id(dl.say)):
                for tm in timers:
                    if not tm.done and tm.stopped_by(u):
                        tm.done = True
                        stopped.append((i, tm))
            if dl.start is not None and hits.get(id(dl.start)) and not any(not tm.done for tm in timers):
                timers.append(Timer(u.end, u.end + dl.within, u))
        return stopped

    def running(self) -> Iterator[tuple[int, Timer]]:
        """(rule index, clock) of every clock not fired or stopped yet."""
        for i, timers in self.timers.items():
            for tm in timers:
                if not tm.done:
                    yield i, tm


__all__ = ["Clocks", "Timer"]
