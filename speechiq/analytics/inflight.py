"""Speech still in flight: what a deadline waits for before it decides "not said in time".

A deadline of a role must not fire while an utterance of that role that started at or before the
deadline may still turn out to say the required words. Such an utterance is, in the order the
live session sees it: open VAD speech (``speech``, re-reported every clock tick), then an
utterance sent to the recogniser (``hold`` until ``release``: exact, whatever the replay speed),
a partial transcript, or a closed VAD interval whose final has not arrived yet. The last two are
also trusted for a bounded media time only, for callers that send no holds.
"""

from __future__ import annotations

from typing import Any

PENDING_TTL_S = 5.0  # a partial or VAD interval without its final older than this no longer holds
OPEN_SPEECH_HOLD_S = 2.0  # open speech not re-reported for this long no longer holds
_TOL = 0.05  # open-speech reports of one utterance may differ in their start by rounding


def _of(want: str, role: str) -> bool:
    return want == "any" or role == want


class InFlight:
    """Per call: open speech, recogniser holds, partials and uncovered VAD intervals."""

    def __init__(self) -> None:
        self.partials: dict[str, tuple[str, float, float]] = {}  # utterance -> (role, start, seen at)
        self.latest: dict[str, Any] = {}  # utterance -> its latest partial (what it said so far)
        self.activity: list[tuple[str, int, float, float]] = []  # VAD speech not yet covered by a final
        self.asr: dict[str, tuple[str, float]] = {}  # utterance sent to ASR -> (role, speech start)
        self.speaking: dict[int, tuple[str, float, float]] = {}  # channel -> open speech (role, start, until)

    def partial(self, uid: str, role: str, start: float, now: float, utt: Any = None) -> None:
        self.partials[uid] = (role, start, now)
        if utt is not None:
            self.latest[uid] = utt

    def final(self, uid: str, channel: int, start: float, end: float) -> None:
        """A final arrived: its partials and the VAD speech it covers no longer hold anything."""
        self.partials.pop(uid, None)
        self.latest.pop(uid, None)
        self.activity = [a for a in self.activity if not (a[1] == channel and a[2] < end and a[3] > start)]

    def closed(self, role: str, channel: int, start: float, end: float, now: float, covered: bool) -> None:
        """A closed VAD interval: it ends the channel's open speech; unless a final already covers
        it (``covered``), it holds until its final arrives."""
        op = self.speaking.get(channel)
        if op is not None and end > op[1]:
            del self.speaking[channel]
        if not covered:
            horizon = now - 2 * PENDING_TTL_S
            self.activity = [a for a in self.activity if a[3] >= horizon]
            self.activity.append((role, channel, start, end))

    def speech(self, role: str, channel: int, start: float, until: float) -> bool:
        """Open speech on ``channel`` since ``start``, heard up to ``until``; True when it just
        opened (not the same utterance heard further)."""
        op = self.speaking.get(channel)
        same = op is not None and op[0] == role and start <= op[2] + _TOL
        if same and op is not None:
            self.speaking[channel] = (role, min(start, op[1]), max(until, op[2]))
        else:
            self.speaking[channel] = (role, start, until)
        return not same

    def hold(self, key: str, role: str, start: float) -> None:
        self.asr[key] = (role, start)

    def release(self, key: str) -> bool:
        """True when ``key`` was held."""
        return self.asr.pop(key, None) is not None

    def heard(self, role: str, due: float, now: float) -> list[Any]:
        """The latest partial of each utterance of ``role`` that started at or before ``due`` and
        still holds (the partial criterion of :meth:`holds`): what that speech said so far."""
        horizon = now - PENDING_TTL_S
        return [self.latest[uid] for uid, (r, s, seen) in self.partials.items()
                if uid in self.latest and _of(role, r) and s <= due and seen >= horizon]

    def holds(self, role: str, due: float, now: float) -> bool:
        """Whether speech of ``role`` (``any``: of anyone) that started at or before ``due`` may
        still be unheard by the rules."""
        if any(_of(role, r) and s <= due for r, s in self.asr.values()):
            return True
        heard = now - OPEN_SPEECH_HOLD_S
        if any(_of(role, r) and s <= due and until >= heard for r, s, until in self.speaking.values()):
            return True
        horizon = now - PENDING_TTL_S
        if any(_of(role, r) and s <= due and seen >= horizon for r, s, seen in self.partials.values()):
            return True
        return any(_of(role, r) and s <= due and e >= horizon for r, _, s, e in self.activity)


__all__ = ["OPEN_SPEECH_HOLD_S", "PENDING_TTL_S", "InFlight"]
