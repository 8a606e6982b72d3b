"""What a call's final utterances feed besides the rules (talk metrics, call metrics), the
alert counts, and the call summary built from them (docs/rules.md, summary).

Each feed is guarded: a failing metrics component is logged and skipped, never fatal to the call.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..events import Alert
from ..rules.compiler import CompiledPack, Utt
from .sentiment import Sentiment, label_of

log = logging.getLogger(__name__)

EVENT_KINDS = {"process.long_hold": "hold", "process.transfer": "transfer", "issue.repeat_contact": "repeat_contact",
               "process.escalation": "escalation", "escalation.supervisor_request": "supervisor_request",
               "process.long_silence": "silence", "process.overtalk": "overtalk"}

_CJK_CHAR = re.compile(r"[\u3400-\u9fff]")
_LATIN_WORD = re.compile(r"[A-Za-z0-9']+")


def word_count(text: str) -> int:
    """Words for speech rate: Chinese characters count one each, plus Latin words."""
    return len(_CJK_CHAR.findall(text)) + len(_LATIN_WORD.findall(text))


@dataclass
class AlertCounts:
    confirmed: Counter[str] = field(default_factory=Counter)
    by_category: Counter[str] = field(default_factory=Counter)
    by_severity: Counter[str] = field(default_factory=Counter)
    by_label: Counter[str] = field(default_factory=Counter)
    retracted: int = 0

    def add(self, alert: Alert) -> None:
        self.confirmed[alert.rule_id] += 1
        self.by_category[alert.category] += 1
        self.by_severity[alert.severity] += 1
        self.by_label[alert.label] += 1

    def as_dict(self) -> dict[str, Any]:
        return {"total": sum(self.confirmed.values()), "retracted": self.retracted,
                "by_category": dict(self.by_category), "by_severity": dict(self.by_severity),
                "by_label": dict(self.by_label), "by_rule": dict(self.confirmed)}


def feed_final(call_id: str, talk: Any, callmetrics: Any, u: Utt, score: float) -> None:
    """A final utterance (sentiment ``score``) into the talk and call metrics."""
    try:
        talk.on_final(u.role, u.start, u.end, word_count(u.text))
    except Exception:
        log.exception("call %s: talk metrics rejected a final", call_id)
    try:
        callmetrics.on_final(u.role, u.text, u.lang, Sentiment(score=score, label=label_of(score)), u.start, u.end)
    except Exception:
        log.exception("call %s: call metrics rejected a final", call_id)


def feed_alert(call_id: str, callmetrics: Any, alert: Alert) -> None:
    """A confirmed alert whose label is a call event (hold, transfer, …) into the call metrics."""
    kind = EVENT_KINDS.get(alert.label)
    if kind:
        try:
            callmetrics.on_event(kind, alert.media_time)
        except Exception:
            log.exception("call %s: call metrics rejected event %s", call_id, kind)


def call_summary(call_id: str, talk: Any, callmetrics: Any, finals: list[Utt], sentiments: dict[str, float],
                 counts: AlertCounts, pack: CompiledPack) -> dict[str, Any]:
    out: dict[str, Any] = {}
    try:
        out.update(callmetrics.summary())
    except Exception:
        log.exception("call %s: call metrics summary failed", call_id)
    try:
        out["talk"] = talk.snapshot()
    except Exception:
        log.exception("call %s: talk metrics snapshot failed", call_id)
    sent: dict[str, Any] = {}
    for role in ("agent", "customer"):
        scores = [sentiments[u.id] for u in finals if u.role == role and u.id in sentiments]
        if scores:
            sent[role] = {"mean": round(float(np.mean(scores)), 3), "first": round(scores[0], 3),
                          "last": round(scores[-1], 3), "min": round(min(scores), 3), "turns": len(scores)}
    out.setdefault("sentiment", sent)  # CallMetrics may report its own view first
    out["alerts"] = counts.as_dict()
    out["pack"] = {"version": pack.version, "name": pack.name, "rules": len(pack.rules)}
    return out


__all__ = ["EVENT_KINDS", "AlertCounts", "call_summary", "feed_alert", "feed_final", "word_count"]
