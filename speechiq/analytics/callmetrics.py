"""Call-level proxies of the seeds' metrics, computed from the transcript, sentiment and events.

- **NEV** (negative emotion value, 0–100): share of customer turns scored negative × mean
  intensity of those turns × 100.
- **CES** (customer effort score proxy, 1–7, higher = more effort): 1 + cue points, capped at 7.
  Cues: repeat contact (+2: "third time calling", "called before", "又打了"), transfers (+1 each),
  holds (+1 each), long silences (+0.5 each), escalation / supervisor request (+1).
- **NPS proxy**: promoter if promoter cues and no detractor cues and the customer's last turns are
  not negative; detractor if detractor cues or the last customer turns are negative; else passive.
Every score comes with the cues (text, media time) behind it, so a reviewer can check it.
"""

from __future__ import annotations

import re
from typing import Any

REPEAT_CONTACT = re.compile(
    r"(second|third|fourth|fifth|\d+(st|nd|rd|th)) time (i'?m |i am |i have been |i've been )?(calling|called|ringing)"
    r"|called (you |here )?(before|already|again|yesterday|last week)|already called|keep calling|calling again"
    r"|又打|再次打|打了(好几|三|两|四|几)次|第[二三四五]次打|已经打过|反复打", re.I)
PROMOTER = re.compile(
    r"\b(i'?d|i would|i will|i'll|i already|already) (definitely )?recommend|recommend (you|it|this) to"
    r"|told (my|all my) .{0,30}(to switch|about you)|best (service|company|experience)|you('ve| have) all been great"
    r"|love (the|your) (service|company)|推荐给|会推荐|强烈推荐|服务太好|非常满意", re.I)
DETRACTOR = re.compile(
    r"switch(ing)? (to|provider|companies)|go(ing)? elsewhere|cancel (my|the) (service|account|subscription)"
    r"|worst (service|company|experience)|never (use|recommend)|terrible (service|company)|lawyer|\bsue\b"
    r"|换运营商|销户|不用你们|再也不|最差|投诉", re.I)
EVENT_POINTS = {"transfer": 1.0, "hold": 1.0, "silence": 0.5, "escalation": 1.0, "supervisor_request": 1.0,
                "repeat_contact": 2.0}


class CallMetrics:
    def __init__(self) -> None:
        self.customer_turns = 0
        self.negative: list[float] = []
        self.last_customer: list[float] = []
        self.cues: dict[str, list[dict[str, Any]]] = {"effort": [], "promoter": [], "detractor": []}
        self._events: set[tuple[str, float]] = set()
        self.sentiment_sum: dict[str, float] = {}
        self.sentiment_n: dict[str, int] = {}

    def on_final(self, role: str, text: str, language: str, sentiment: Any, start: float, end: float) -> None:
        score = float(getattr(sentiment, "score", 0.0))
        label = getattr(sentiment, "label", "neutral")
        self.sentiment_sum[role] = self.sentiment_sum.get(role, 0.0) + score
        self.sentiment_n[role] = self.sentiment_n.get(role, 0) + 1
        if role not in ("customer", "mixed"):
            return
        self.customer_turns += 1
        if label == "negative":
            self.negative.append(abs(score))
        self.last_customer = ([*self.last_customer, score])[-2:]
        if REPEAT_CONTACT.search(text):
            self._cue("effort", "repeat_contact", text, start)
        for name, rx in (("promoter", PROMOTER), ("detractor", DETRACTOR)):
            m = rx.search(text)
            if m:
                self.cues[name].append({"cue": m.group(0), "media_time": round(start, 2)})

    def _cue(self, kind: str, cue: str, text: str, t: float) -> None:
        if ("repeat_contact", round(t)) in self._events:
            return
        self._events.add((cue, round(t)))
        self.cues[kind].append({"cue": cue, "text": text[:120], "media_time": round(t, 2)})

    def on_event(self, kind: str, media_time: float) -> None:
        if kind in EVENT_POINTS and (kind, round(media_time)) not in self._events:
            self._events.add((kind, round(media_time)))
            self.cues["effort"].append({"cue": kind, "media_time": round(media_time, 2)})

    def nev(self) -> float:
        if not self.customer_turns or not self.negative:
            return 0.0
        share = len(self.negative) / self.customer_turns
        return round(100.0 * share * (sum(self.negative) / len(self.negative)), 1)

    def ces(self) -> float:
        points = sum(EVENT_POINTS.get(c["cue"], 0.0) for c in self.cues["effort"])
        return round(min(7.0, 1.0 + points), 1)

    def nps_proxy(self) -> str:
        ending_negative = any(s <= -0.25 for s in self.last_customer)
        if self.cues["detractor"] or (ending_negative and self.negative):
            return "detractor"
        if self.cues["promoter"]:
            return "promoter"
        return "passive"

    def summary(self) -> dict[str, Any]:
        return {
            "nev": self.nev(),
            "ces": self.ces(),
            "nps_proxy": self.nps_proxy(),
            "cues": {k: v[:20] for k, v in self.cues.items()},
            "sentiment": {r: round(self.sentiment_sum[r] / n, 3) for r, n in self.sentiment_n.items() if n},
        }
