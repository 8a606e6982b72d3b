"""Live talk metrics from VAD speech intervals and final transcripts, in media time.

Intervals arrive when an utterance ends (per channel, so up to a few seconds out of order across
channels). Aggregates are running sums; only the last ``WINDOW_S`` seconds of intervals are kept,
so memory per call is bounded however long the call runs.

- mutual silence: nobody speaking (the call start counts as the start of silence);
- over-talk: time both agent and customer speak at once;
- interruption: a role starts while the other has spoken ≥ 0.3 s and goes on ≥ 0.3 s after;
- ``mixed`` channels (one channel, both parties) count for silence only.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from typing import Any

WINDOW_S = 300.0
INTERRUPT_MIN_S = 0.3


class TalkMetrics:
    def __init__(self, roles: Iterable[str] = ("agent", "customer")) -> None:
        self.roles = tuple(roles)
        self._iv: dict[str, list[tuple[float, float]]] = {}
        self.now = 0.0
        self.talk_time: dict[str, float] = {r: 0.0 for r in self.roles}
        self.interruptions: dict[str, int] = {r: 0 for r in self.roles}
        self.overtalk_total = 0.0
        self.longest_overtalk = 0.0
        self.last_overtalk = 0.0
        self.longest_silence = 0.0
        self.first_agent_speech: float | None = None
        self._words: dict[str, int] = {}
        self._final_s: dict[str, float] = {}
        self._last_end = 0.0

    # ---- inputs ------------------------------------------------------------------------------
    def on_activity(self, role: str, start: float, end: float) -> None:
        if end <= start:
            return
        gap = self.silence_before(start)
        self.longest_silence = max(self.longest_silence, gap)
        if role in ("agent", "customer"):
            other = "customer" if role == "agent" else "agent"
            for s0, e0 in self._iv.get(other, []):
                overlap = min(e0, end) - max(s0, start)
                if overlap > 0:
                    self.overtalk_total += overlap
                    self.longest_overtalk = max(self.longest_overtalk, overlap)
                    self.last_overtalk = overlap
                if s0 <= start - INTERRUPT_MIN_S and e0 >= start + INTERRUPT_MIN_S:
                    self.interruptions[role] = self.interruptions.get(role, 0) + 1
        ivs = self._iv.setdefault(role, [])
        bisect.insort(ivs, (start, end))
        self.talk_time[role] = self.talk_time.get(role, 0.0) + (end - start)
        if role == "agent":
            self.first_agent_speech = start if self.first_agent_speech is None else min(self.first_agent_speech,
                                                                                         start)
        self._last_end = max(self._last_end, end)
        self.now = max(self.now, end)
        self._prune()

    def on_final(self, role: str, start: float, end: float, n_words: int) -> None:
        self._words[role] = self._words.get(role, 0) + n_words
        self._final_s[role] = self._final_s.get(role, 0.0) + max(0.0, end - start)

    def advance(self, now: float) -> None:
        self.now = max(self.now, now)
        self.longest_silence = max(self.longest_silence, self.current_silence)

    def _prune(self) -> None:
        horizon = self.now - WINDOW_S
        for role, ivs in self._iv.items():
            if ivs and ivs[0][1] < horizon:
                self._iv[role] = [iv for iv in ivs if iv[1] >= horizon]

    # ---- live values -------------------------------------------------------------------------
    def _all(self) -> list[tuple[float, float]]:
        return sorted(iv for ivs in self._iv.values() for iv in ivs)

    def silence_before(self, start: float) -> float:
        """Mutual silence that ended at ``start`` (0 if someone was speaking then)."""
        last_end = 0.0
        for s0, e0 in self._all():
            if s0 >= start:
                break
            if e0 > start:
                return 0.0
            last_end = max(last_end, e0)
        return max(0.0, start - last_end)

    @property
    def current_silence(self) -> float:
        """Mutual silence up to ``now`` since the last speech that ended (speech still in
        progress is only known when its utterance ends)."""
        return max(0.0, self.now - self._last_end)

    def overtalk_at(self, start: float, role: str) -> float:
        """How long this role's turn starting at ``start`` overlapped the other party already speaking."""
        if role not in ("agent", "customer"):
            return 0.0
        other = "customer" if role == "agent" else "agent"
        mine_end = next((e for s, e in self._iv.get(role, []) if abs(s - start) < 0.05), None)
        best = 0.0
        for s0, e0 in self._iv.get(other, []):
            if s0 < start < e0:
                best = max(best, min(e0, mine_end if mine_end is not None else e0) - start)
        return best

    @property
    def agent_talk_ratio(self) -> float:
        total = sum(self.talk_time.get(r, 0.0) for r in ("agent", "customer"))
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
