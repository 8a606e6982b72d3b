"""Call-level proxies computed from the transcript, sentiment and events (docs/metrics.md).

- **NEV** (negative emotion value, 0–100): share of customer turns labelled negative × mean
  |score| of those turns × 100.
- **CES** (customer effort proxy, 1–7, higher = more effort): 1 + cue points, capped at 7.
  Once per call: repeat contact +2, escalation +1, supervisor request +1. Each time: transfer +1,
  hold +1, long silence +0.5, customer repeating a question or saying they already said it +1.
- **NPS proxy**: detractor if a detractor cue was heard or the customer's last two turns average
  ≤ −0.25; promoter if a promoter cue was heard and neither holds; else passive.

Only customer turns are read (``mixed`` turns too: one channel cannot tell who spoke). Every
score comes with the cues behind it (cue, media time, text), so a reviewer can check it.
"""

from __future__ import annotations

import re
from collections import deque
from typing import Any

from .sentiment import NEGATIVE_AT, Sentiment

REPEAT_CONTACT = re.compile(
    r"\b(second|third|fourth|fifth|\d+(st|nd|rd|th)) time (i'?m |i am |i have been |i've been )?"
    r"(calling|called|ringing)"
    r"|\bcalled (you |here |about this )?(before|already|again|yesterday|last week)|\balready called"
    r"|\bkeep calling|\bcalling (back )?again|\bcalled (you )?(twice|three times|several times|many times)"
    r"|又打|再次打|打了(好几|三|两|四|几)次|第[二三四五]次打|已经打过|反复打|打过好几次", re.I)
REPEAT_INFO = re.compile(
    r"\b(i|i've|i have) already (told you|said (that|it|this)|explained|gave you|given you)"
    r"|\bas i (said|told you|explained)|\blike i said"
    r"|\bhow many times (do|must|have) i|\bi just (told|said|gave)|\bfor the (second|third) time"
    r"|我(已经|刚才|刚刚)(说|讲|告诉)|说了(好几|多少|几)遍|我都说了", re.I)
PROMOTER = re.compile(
    r"\b(i'?d|i would|i will|i'll|i already|already|definitely) (definitely )?recommend"
    r"|\brecommend (you|it|this|them) to"
    r"|\btold (my|all my) .{0,30}(to switch|about you)|\bbest (service|company|experience)\b"
    r"|\byou('ve| have) (all )?been (great|amazing|fantastic)|\blove (the|your) (service|company)"
    r"|推荐给|会推荐|强烈推荐|服务太好|非常满意", re.I)
DETRACTOR = re.compile(
    r"\bswitch(ing)? (to (another|a different|your competitor)|providers?|companies|carriers)"
    r"|\b(i'?m|i am|we'?re|going to|gonna|will) (be )?switching\b|\bgo(ing)? elsewhere"
    r"|\bcancel (my|the|our) (service|account|subscription|contract|plan)"
    r"|\b(?<!not )(?<!never )(going to|gonna|i'?ll|will) cancel\b|\bworst (service|company|experience)"
    r"|\bnever (use|recommend)|\b(terrible|awful|horrible) (service|company|experience)|\blawyer|\bsue\b"
    r"|换运营商|销户|不用你们|再也不|最差|投诉", re.I)
ONCE = {"repeat_contact": 2.0, "escalation": 1.0, "supervisor_request": 1.0}
EACH = {"transfer": 1.0, "hold": 1.0, "silence": 0.5, "repeated_question": 1.0, "repeat_info": 1.0}
DEDUP_S = 2.0  # the same event kind within this many seconds is one event (rule alert + transcript cue)
MAX_CUES = 50
_QWORDS = re.compile(r"^(what|when|why|how|where|who|which|can|could|will|would|is|are|do|does|did|have|has)\b", re.I)
_STOP = frozenset((
    "a", "an", "the", "i", "you", "my", "your", "me", "it", "is", "are", "was", "do", "does", "did", "to", "of",
    "for", "on", "in", "at", "and", "or", "but", "this", "that", "can", "could", "will", "would", "please", "so",
    "just", "what", "when", "why", "how", "where", "okay", "ok", "um", "uh", "yeah", "well", "again", "then", "now",
))


def _question_tokens(text: str) -> frozenset[str] | None:
    """Content tokens of a question (English words, Chinese character bigrams), None if not a question."""
    t = text.strip()
    zh = re.sub(r"[^\u3400-\u9fff]", "", t)
    if zh:
        if not (t.endswith(("?", "？")) or re.search(r"[吗呢]|什么|怎么|为什么|多久|几时|哪", t)):
            return None
        return frozenset(zh[i:i + 2] for i in range(len(zh) - 1))
    if not (t.endswith("?") or _QWORDS.match(t)):
        return None
    return frozenset(w for w in re.findall(r"[a-z0-9']+", t.lower()) if w not in _STOP)


class CallMetrics:
    """NEV, CES and NPS proxies of one call; bounded memory (counters, capped cue lists)."""

    def __init__(self) -> None:
        self.customer_turns = 0
        self.negative_turns = 0
        self.negative_intensity = 0.0
        self.cues: dict[str, list[dict[str, Any]]] = {"effort": [], "promoter": [], "detractor": []}
        self._last_customer: deque[float] = deque(maxlen=2)
        self._questions: deque[tuple[frozenset[str], float]] = deque(maxlen=20)
        self._seen_once: set[str] = set()
        self._last_event: dict[str, float] = {}
        self._points = 0.0
        self._sent: dict[str, dict[str, float]] = {}

    # ---- inputs ------------------------------------------------------------------------------
    def on_final(self, role: str, text: str, language: str, sentiment: Sentiment, start: float, end: float) -> None:
        """A final transcript with its sentiment."""
        score = float(getattr(sentiment, "score", 0.0))
        label = str(getattr(sentiment, "label", "neutral"))
        self._sentiment(role, score)
        if role not in ("customer", "mixed") or not text.strip():
            return
        self.customer_turns += 1
        if label == "negative":
            self.negative_turns += 1
            self.negative_intensity += abs(score)
        self._last_customer.append(score)
        if REPEAT_CONTACT.search(text):
            self._effort("repeat_contact", start, text)
        if REPEAT_INFO.search(text):
            self._effort("repeat_info", start, text)
        self._repeated_question(text, start)
        for name, rx in (("promoter", PROMOTER), ("detractor", DETRACTOR)):
            m = rx.search(text)
            if m and len(self.cues[name]) < MAX_CUES:
                self.cues[name].append({"cue": m.group(0), "media_time": round(start, 2), "text": text[:120]})

    def on_event(self, kind: str, media_time: float) -> None:
        """A call event from a confirmed alert: hold, transfer, repeat_contact, escalation, silence …"""
        self._effort(kind, media_time)

    def _effort(self, kind: str, t: float, text: str = "") -> None:
        if kind in ONCE:
            if kind in self._seen_once:
                return
            self._seen_once.add(kind)
            self._points += ONCE[kind]
        elif kind in EACH:
            last = self._last_event.get(kind)
            if last is not None and abs(t - last) < DEDUP_S:
                return
            self._last_event[kind] = t
            self._points += EACH[kind]
        else:
            return
        if len(self.cues["effort"]) < MAX_CUES:
            cue: dict[str, Any] = {"cue": kind, "media_time": round(t, 2)}
            if text:
                cue["text"] = text[:120]
            self.cues["effort"].append(cue)

    def _repeated_question(self, text: str, t: float) -> None:
        tokens = _question_tokens(text)
        if not tokens or len(tokens) < 2:
            return
        for prev, t0 in self._questions:
            if t - t0 >= 10.0 and len(tokens & prev) / len(tokens | prev) >= 0.6:
                self._effort("repeated_question", t, text)
                break
        self._questions.append((tokens, t))

    def _sentiment(self, role: str, score: float) -> None:
        s = self._sent.get(role)
        if s is None:
            self._sent[role] = {"sum": score, "turns": 1, "first": score, "last": score, "min": score}
            return
        s["sum"] += score
        s["turns"] += 1
        s["last"] = score
        s["min"] = min(s["min"], score)

    # ---- results -----------------------------------------------------------------------------
    def nev(self) -> float:
        if not self.customer_turns or not self.negative_turns:
            return 0.0
        share = self.negative_turns / self.customer_turns
        return round(100.0 * share * (self.negative_intensity / self.negative_turns), 1)

    def ces(self) -> float:
        return round(min(7.0, 1.0 + self._points), 1)

    def nps_proxy(self) -> tuple[str, str]:
        """(promoter | passive | detractor, the reason)."""
        ending = sum(self._last_customer) / len(self._last_customer) if self._last_customer else 0.0
        if self.cues["detractor"]:
            return "detractor", "detractor cue"
        if ending <= NEGATIVE_AT:
            return "detractor", "customer ends negative"
        if self.cues["promoter"]:
            return "promoter", "promoter cue"
        return "passive", "no promoter or detractor cue"

    def summary(self) -> dict[str, Any]:
        nps, reason = self.nps_proxy()
        return {
            "nev": self.nev(),
            "ces": self.ces(),
            "nps_proxy": nps,
            "nps_reason": reason,
            "customer_turns": self.customer_turns,
            "negative_customer_turns": self.negative_turns,
            "cues": {k: list(v) for k, v in self.cues.items()},
            "sentiment": {r: {"mean": round(s["sum"] / s["turns"], 3), "first": round(s["first"], 3),
                              "last": round(s["last"], 3), "min": round(s["min"], 3), "turns": int(s["turns"])}
                          for r, s in self._sent.items()},
        }
