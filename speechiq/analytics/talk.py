"""Live talk metrics from VAD speech intervals and final transcripts, in media time.

Intervals arrive when an utterance closes, per channel, so the two parties' intervals can come up
to a few seconds out of order. Every pairwise quantity (over-talk, interruptions) is counted when
the later interval of a pair arrives, so arrival order does not change the totals; silences are
read from the union of all speech, so a late interval that fills a gap shortens it again.
Only the last ``WINDOW_S`` seconds of intervals are kept (older gaps are folded into running
maxima), so memory per call is bounded however long the call runs.

- mutual silence: nobody speaking; the call start (0) counts as the start of silence;
- over-talk: time agent and customer speak at once;
- interruption: a role starts while the other has already spoken ≥ 0.3 s and the other goes on
  ≥ 0.3 s after that start (backchannels and near-simultaneous starts are not interruptions);
- a role's overlapping intervals (e.g. re-reported or joined legs) merge; only new time counts;
- ``mixed`` (one channel carrying both parties) and any other role end mutual silence but are
  not attributed to either party: no over-talk, interruptions or talk ratio from them.

Speech still in progress (an open VAD utterance) is known only from :meth:`TalkMetrics.on_speech`;
without it ``current_silence`` (and so ``longest_silence``) runs on through a turn that is still
open until that turn closes. With it the live silence stops when the speech starts.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from typing import Any

WINDOW_S = 300.0
INTERRUPT_MIN_S = 0.3
PARTIES = ("agent", "customer")
_EPS = 1e-6
_TOL = 0.05  # a transcript's start and its VAD interval's start may differ by rounding
OPEN_HOLD_S = 2.0  # open speech not re-reported for this long no longer counts as going on

Interval = tuple[float, float]


def _finite(t: float) -> float:
    v = float(t)
    if not math.isfinite(v):
        raise ValueError(f"media time must be a finite number of seconds, got {t!r}")
    return v


def _interrupts(a: Interval, b: Interval) -> bool:
    """True if the turn ``a`` started while ``b`` was going on (≥ 0.3 s before and after)."""
    return b[0] <= a[0] - INTERRUPT_MIN_S and b[1] >= a[0] + INTERRUPT_MIN_S


def _overlap(a: Interval, b: Interval) -> float:
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


def _insert_merged(ivs: list[Interval], start: float, end: float) -> tuple[Interval, list[Interval]]:
    """Insert into a sorted list of disjoint intervals, merging overlaps; returns (merged, replaced)."""
    i = bisect.bisect_left(ivs, (start, end))
    lo = i - 1 if i > 0 and ivs[i - 1][1] > start else i
    hi = i
    while hi < len(ivs) and ivs[hi][0] < end:
        hi += 1
    replaced = ivs[lo:hi]
    merged = (min([start, *(s for s, _ in replaced)]), max([end, *(e for _, e in replaced)]))
    ivs[lo:hi] = [merged]
    return merged, replaced


class TalkMetrics:
    """Running talk metrics of one call (see the module docstring for the definitions)."""

    def __init__(self, roles: Iterable[str] = PARTIES) -> None:
        self.roles = tuple(roles)
        self.now = 0.0
        self.talk_time: dict[str, float] = {r: 0.0 for r in self.roles}
        self.interruptions: dict[str, int] = {r: 0 for r in self.roles if r in PARTIES}
        self.overtalk_total = 0.0
        self.longest_overtalk = 0.0
        self.last_overtalk = 0.0
        self.first_agent_speech: float | None = None
        self._iv: dict[str, list[Interval]] = {}  # per role, sorted, disjoint, recent window
        self._union: list[Interval] = []  # everybody's speech, sorted, disjoint, recent window
        self._words: dict[str, int] = {}
        self._final_s: dict[str, float] = {}
        self._last_end = 0.0  # latest end of any speech
        self._pruned_end = 0.0  # end of the speech already folded out of the window
        self._settled_longest = 0.0  # longest silence among folded-out speech
        self._gaps: float | None = 0.0  # cached longest gap inside the window
        self._open: dict[str, Interval] = {}  # role -> (start, heard until) of speech not closed yet

    # ---- inputs ------------------------------------------------------------------------------
    def on_activity(self, role: str, start: float, end: float) -> None:
        """A speech interval of ``role`` (seconds of call audio). Empty or reversed intervals are
        ignored; a time that is not a finite number raises ``ValueError``."""
        start, end = _finite(start), _finite(end)
        start = max(0.0, start)
        if not end > start:
            return
        ivs = self._iv.setdefault(role, [])
        merged, replaced = _insert_merged(ivs, start, end)
        self.talk_time[role] = self.talk_time.get(role, 0.0) + (merged[1] - merged[0]) - sum(
            e - s for s, e in replaced)
        if role in PARTIES:
            self._pairs(role, merged, replaced)
        if role == "agent" and (self.first_agent_speech is None or start < self.first_agent_speech):
            self.first_agent_speech = start
        _insert_merged(self._union, start, end)
        op = self._open.get(role)
        if op is not None and end > op[0]:  # the open utterance closed
            del self._open[role]
        self._gaps = None
        self._last_end = max(self._last_end, end)
        self.now = max(self.now, end)
        self._prune()

    def _pairs(self, role: str, merged: Interval, replaced: list[Interval]) -> None:
        """Over-talk and interruptions between the merged interval and the other party's."""
        other = PARTIES[1] if role == PARTIES[0] else PARTIES[0]
        for y in self._iv.get(other, ()):
            if y[0] > merged[1] + INTERRUPT_MIN_S:
                break
            if y[1] < merged[0] - INTERRUPT_MIN_S:
                continue
            added = _overlap(merged, y) - sum(_overlap(x, y) for x in replaced)
            if added > _EPS:
                self.overtalk_total += added
                self.last_overtalk = _overlap(merged, y)
                self.longest_overtalk = max(self.longest_overtalk, self.last_overtalk)
            mine = int(_interrupts(merged, y)) - sum(_interrupts(x, y) for x in replaced)
            theirs = int(_interrupts(y, merged)) - sum(_interrupts(y, x) for x in replaced)
            self.interruptions[role] = max(0, self.interruptions.get(role, 0) + mine)
            self.interruptions[other] = max(0, self.interruptions.get(other, 0) + theirs)

    def on_speech(self, role: str, start: float, until: float) -> None:
        """Speech of ``role`` going on since ``start``, heard up to ``until`` (an open VAD
        utterance, or a partial transcript). No talk time is counted (its interval comes with
        :meth:`on_activity` when it closes); mutual silence stops at ``start``."""
        start, until = max(0.0, _finite(start)), _finite(until)
        op = self._open.get(role)
        if op is not None and start <= op[1] + _TOL:  # the same utterance, heard further
            start = min(start, op[0])
            until = max(until, op[1])
        self._open[role] = (start, max(start, until))
        self.now = max(self.now, until)

    def on_final(self, role: str, start: float, end: float, n_words: int) -> None:
        """A final transcript: ``n_words`` words (Chinese: characters) spoken in [start, end]."""
        start, end = _finite(start), _finite(end)
        if end > start and n_words > 0:
            self._words[role] = self._words.get(role, 0) + int(n_words)
            self._final_s[role] = self._final_s.get(role, 0.0) + (end - start)

    def advance(self, now: float) -> None:
        """Clock tick (media time)."""
        self.now = max(self.now, _finite(now))
        self._prune()

    def _prune(self) -> None:
        horizon = self.now - WINDOW_S
        if not self._union or self._union[0][1] >= horizon:
            return
        keep = bisect.bisect_left(self._union, (horizon, horizon))
        while keep > 0 and self._union[keep - 1][1] >= horizon:
            keep -= 1
        cursor = self._pruned_end
        for s, e in self._union[:keep]:
            self._settled_longest = max(self._settled_longest, s - cursor)
            cursor = max(cursor, e)
        self._pruned_end = cursor
        del self._union[:keep]
        for role, ivs in self._iv.items():
            if ivs and ivs[0][1] < horizon:
                self._iv[role] = [iv for iv in ivs if iv[1] >= horizon]
        self._gaps = None

    # ---- live values -------------------------------------------------------------------------
    def silence_before(self, start: float) -> float:
        """Mutual silence that ended at ``start`` (0 if someone else was speaking then)."""
        i = bisect.bisect_right(self._union, (start + _TOL, float("inf")))
        if i == 0:
            return max(0.0, start - self._pruned_end)
        s, e = self._union[i - 1]
        if s < start - _TOL:  # speech began before `start`: silent only if it ended by then
            return 0.0 if e > start + _TOL else max(0.0, start - e)
        prev_end = self._union[i - 2][1] if i >= 2 else self._pruned_end
        return max(0.0, start - prev_end)

    def _live_open(self) -> list[Interval]:
        return [iv for iv in self._open.values() if self.now <= iv[1] + OPEN_HOLD_S]

    @property
    def current_silence(self) -> float:
        """Mutual silence from the end of the latest known speech to ``now``; 0 while speech
        reported by :meth:`on_speech` is going on. Speech that was not reported open is known
        only when its utterance closes, so the value can run ahead meanwhile."""
        if self._live_open():
            return 0.0
        heard = max([self._last_end, *(e for _, e in self._open.values())])
        return max(0.0, self.now - heard)

    @property
    def current_overtalk(self) -> float:
        """Longest overlap of a party's speech still going on (reported open with
        :meth:`on_speech`) with the other party's speech, open or closed: over-talk known while
        it lasts, before either turn closes (``overtalk_total``/``longest_overtalk`` count it
        when the intervals arrive). 0 when no party's open speech overlaps the other's."""
        live = {r: iv for r, iv in self._open.items() if r in PARTIES and self.now <= iv[1] + OPEN_HOLD_S}
        best = 0.0
        for role, (s, u) in live.items():
            other = PARTIES[1] if role == PARTIES[0] else PARTIES[0]
            if other in live:
                o = live[other]
                best = max(best, min(u, o[1]) - max(s, o[0]))
            for y0, y1 in reversed(self._iv.get(other, ())):
                if y1 <= s:
                    break
                best = max(best, min(u, y1) - max(s, y0))
        return max(0.0, best)

    @property
    def longest_silence(self) -> float:
        """Longest mutual silence so far, the one still going on (or just ended by open speech)
        included."""
        if self._gaps is None:
            cursor, best = self._pruned_end, 0.0
            for s, e in self._union:
                best = max(best, s - cursor)
                cursor = max(cursor, e)
            self._gaps = best
        live = self._live_open()
        ended = max(0.0, min(s for s, _ in live) - self._last_end) if live else 0.0
        return max(self._settled_longest, self._gaps, self.current_silence, ended)

    def overtalk_at(self, start: float, role: str) -> float:
        """How long this role's turn starting at ``start`` overlapped the other party already speaking."""
        if role not in PARTIES:
            return 0.0
        other = PARTIES[1] if role == PARTIES[0] else PARTIES[0]
        mine_end = next((e for s, e in self._iv.get(role, ()) if s - _TOL <= start < e), None)
        best = 0.0
        for s0, e0 in self._iv.get(other, ()):
            if s0 >= start:
                break
            if e0 > start:
                best = max(best, min(e0, mine_end if mine_end is not None else e0) - start)
        return best

    @property
    def agent_talk_ratio(self) -> float:
        total = sum(self.talk_time.get(r, 0.0) for r in PARTIES)
        return self.talk_time.get("agent", 0.0) / total if total else 0.0

    @property
    def speech_rate(self) -> dict[str, float]:
        """Words (Chinese: characters) per minute of that role's final utterances."""
        return {r: self._words[r] / (self._final_s[r] / 60.0) for r in self._words if self._final_s.get(r)}

    def snapshot(self) -> dict[str, Any]:
        return {
            "talk_time": {r: round(v, 2) for r, v in self.talk_time.items()},
            "agent_talk_ratio": round(self.agent_talk_ratio, 3),
            "speech_rate_wpm": {r: round(v, 1) for r, v in self.speech_rate.items()},
            "overtalk_total": round(self.overtalk_total, 2),
            "longest_overtalk": round(self.longest_overtalk, 2),
            "interruptions": dict(self.interruptions),
            "longest_silence": round(self.longest_silence, 2),
            "first_agent_speech": None if self.first_agent_speech is None else round(self.first_agent_speech, 2),
        }
