"""Sans-I/O: one call event (a frozen event, its ``to_dict`` form, or an ingest event) → row ops.

No database here: the writer turns these ops into statements. Values are made storable once,
on the way in: non-finite floats become ``None`` (PostgreSQL JSON refuses NaN), NUL characters
are removed from text (PostgreSQL text refuses them), tuples become lists, unknown objects
their ``str``. Partial transcripts are not stored (their final replaces them).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, is_dataclass
from enum import Enum
from typing import Any

from ..events import Alert, Transcript, to_dict
from ..ingest import CallEnd, CallStart, Dtmf, Gap, MetadataUpdate

# kinds refused first when the queue nears its bound (transcripts, alerts, summaries keep room)
LOW_PRIORITY = frozenset({"notice", "error", "dtmf", "metadata", "started", "call_end", "gap", "hold"})


@dataclass(frozen=True)
class IngestRecord:
    """An ingest event (CallStart, Dtmf, MetadataUpdate, Gap, CallEnd) with the call's media time
    (for a ``Gap``: the media time where the gap starts)."""

    event: CallStart | Dtmf | MetadataUpdate | Gap | CallEnd
    media_time: float | None = None
    language: str | None = None  # the call's resolved language (CallStart says "auto")


@dataclass(frozen=True)
class CallPatch:
    """Changes to the call row. ``fields`` are set as given; ``metadata`` is merged into the
    stored metadata (replacing it when ``replace_metadata``); ``media_time`` raises
    ``last_media_time``; ``pack_version`` joins ``pack_versions``; ``ends``: the call's summary."""

    fields: Mapping[str, Any] = field(default_factory=dict)
    metadata: Mapping[str, Any] | None = None
    replace_metadata: bool = False
    media_time: float | None = None
    pack_version: str | None = None
    ends: bool = False


@dataclass(frozen=True)
class UtteranceOp:
    row: Mapping[str, Any]  # utterances columns except call_id / session


@dataclass(frozen=True)
class AlertOp:
    row: Mapping[str, Any]  # alerts columns of this state, except call_id / session / history


@dataclass(frozen=True)
class EventOp:
    kind: str
    media_time: float | None
    data: Mapping[str, Any]


Op = CallPatch | UtteranceOp | AlertOp | EventOp


def clean(value: Any) -> Any:
    """A JSON-safe, database-safe copy of ``value``."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, Enum):
        return clean(value.value)
    if isinstance(value, Mapping):
        return {clean(str(k)): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [clean(v) for v in value]
    if is_dataclass(value) and not isinstance(value, type):
        return clean(to_dict(value))
    return clean(str(value))


def kind_of(event: Any) -> str:
    """The event's type without converting it (cheap: called on the event loop)."""
    if isinstance(event, IngestRecord):
        if isinstance(event.event, Gap):
            return "hold" if event.event.reason == "pause" else "gap"
        return _INGEST_KINDS.get(type(event.event), "ingest")
    if isinstance(event, Mapping):
        return str(event.get("type", ""))
    return str(getattr(event, "type", ""))


def is_partial(event: Any) -> bool:
    if isinstance(event, Mapping):
        return event.get("type") == "transcript" and not event.get("is_final", True)
    return getattr(event, "type", "") == "transcript" and not getattr(event, "is_final", True)


def _num(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _int(value: Any) -> int | None:
    f = _num(value)
    return int(f) if f is not None else None


def _str(value: Any) -> str | None:
    return None if value is None else clean(str(value))


def people(meta: Mapping[str, Any]) -> dict[str, str | None]:
    """The filter columns read from call metadata (same keys as the /v1/alerts filters)."""
    agent = meta.get("agent_id", meta.get("agent"))
    return {"agent": _str(agent) if agent not in (None, "") else None,
            "queue": _str(meta["queue"]) if meta.get("queue") not in (None, "") else None}


def to_ops(event: Any) -> list[Op]:
    """The row ops for one event. Raises ``ValueError`` for an event that cannot be stored."""
    if isinstance(event, IngestRecord):
        return _ingest_ops(event)
    fast = _FAST.get(type(event))
    if fast is not None:
        d = fast(event)
    elif isinstance(event, Mapping):
        d = clean(event)
    else:
        d = clean(to_dict(event))
    if not isinstance(d, dict):
        raise ValueError(f"not an event: {type(event).__name__}")
    kind = str(d.get("type") or "")
    if not kind:
        raise ValueError("event without a type")
    handler = _HANDLERS.get(kind)
    return handler(d) if handler else [EventOp(kind, _num(d.get("media_time")), d)]


def _ms(value: float | None) -> float | None:
    """As the wire form (``to_dict`` rounds floats to ms), and storable (non-finite → None)."""
    return None if value is None or not math.isfinite(value) else round(value, 3)


def _text(value: str) -> str:
    return value.replace("\x00", "") if "\x00" in value else value


def _transcript_dict(t: Transcript) -> dict[str, Any]:
    """``clean(to_dict(t))`` without the generic walk (finals carry every word: the hot path)."""
    return {
        "call_id": _text(t.call_id), "channel": t.channel, "role": _text(t.role), "utterance_id": _text(t.utterance_id),
        "is_final": t.is_final, "start": _ms(t.start), "end": _ms(t.end), "text": _text(t.text),
        "words": [{"text": _text(w.text), "start": _ms(w.start), "end": _ms(w.end), "probability": _ms(w.probability)}
                  for w in t.words],
        "language": _text(t.language), "avg_logprob": _ms(t.avg_logprob), "no_speech_prob": _ms(t.no_speech_prob),
        "emitted_at": _ms(t.emitted_at), "sentiment": _ms(t.sentiment),
        "sentiment_label": None if t.sentiment_label is None else _text(t.sentiment_label), "seq": t.seq,
        "type": t.type,
    }


def _alert_dict(a: Alert) -> dict[str, Any]:
    """``clean(to_dict(a))`` without the generic walk."""
    evidence = [{"utterance_id": _text(e.utterance_id), "role": _text(e.role), "channel": e.channel,
                 "start": _ms(e.start), "end": _ms(e.end), "text": _text(e.text),
                 "spans": [[int(x), int(y)] for x, y in e.spans], "sentiment": _ms(e.sentiment)}
                for e in a.evidence]
    return {
        "alert_id": _text(a.alert_id), "call_id": _text(a.call_id), "rule_id": _text(a.rule_id),
        "pack_version": _text(a.pack_version), "label": _text(a.label), "category": _text(a.category),
        "severity": _text(a.severity), "state": _text(a.state), "media_time": _ms(a.media_time),
        "start": _ms(a.start), "end": _ms(a.end), "role": _text(a.role), "text": _text(a.text),
        "description": _text(a.description), "evidence": evidence, "metadata": clean(to_dict(dict(a.metadata))),
        "emitted_at": _ms(a.emitted_at), "seq": a.seq, "type": a.type,
    }


_FAST: dict[type, Any] = {Transcript: _transcript_dict, Alert: _alert_dict}


def _transcript(d: dict[str, Any]) -> list[Op]:
    if not d.get("is_final", True):
        return []
    uid = d.get("utterance_id")
    if not uid:
        raise ValueError("final transcript without an utterance_id")
    start, end = _num(d.get("start")), _num(d.get("end"))
    if start is None or end is None:
        raise ValueError(f"transcript {uid}: start/end are not numbers")
    row = {
        "utterance_id": str(uid), "channel": _int(d.get("channel")) or 0, "role": str(d.get("role") or "unknown"),
        "media_start": start, "media_end": end, "text": str(d.get("text") or ""),
        "language": d.get("language") or None, "words": d.get("words") or [],
        "sentiment": _num(d.get("sentiment")), "sentiment_label": _str(d.get("sentiment_label")),
        "avg_logprob": _num(d.get("avg_logprob")), "no_speech_prob": _num(d.get("no_speech_prob")),
        "emitted_at": _num(d.get("emitted_at")) or None,
    }
    return [CallPatch(media_time=end), UtteranceOp(row)]


def _alert(d: dict[str, Any]) -> list[Op]:
    aid = d.get("alert_id")
    t = _num(d.get("media_time"))
    if not aid or t is None:
        raise ValueError("alert without alert_id or media_time")
    row = {
        "alert_id": str(aid), "rule_id": str(d.get("rule_id") or ""), "pack_version": str(d.get("pack_version") or ""),
        "label": d.get("label") or None, "category": str(d.get("category") or ""),
        "severity": str(d.get("severity") or ""), "state": str(d.get("state") or "confirmed"), "media_time": t,
        "media_start": _num(d.get("start")), "media_end": _num(d.get("end")), "role": _str(d.get("role")),
        "text": _str(d.get("text")), "description": _str(d.get("description")),
        "evidence": d.get("evidence") or [], "meta": d.get("metadata") or {},
        "emitted_at": _num(d.get("emitted_at")) or None,
    }
    return [CallPatch(media_time=t, pack_version=row["pack_version"] or None), AlertOp(row)]


def _summary(d: dict[str, Any]) -> list[Op]:
    an = d.get("analytics") if isinstance(d.get("analytics"), dict) else {}
    pack = an.get("pack") if isinstance(an.get("pack"), dict) else {}
    counts = an.get("alerts") if isinstance(an.get("alerts"), dict) else {}
    meta = d.get("metadata") if isinstance(d.get("metadata"), dict) else {}
    duration = _num(d.get("duration"))
    fields = {
        "duration": duration, "end_reason": _str(d.get("reason")), "summary": d,
        "nev": _num(an.get("nev")), "ces": _num(an.get("ces")), "nps_proxy": _str(an.get("nps_proxy")),
        "nps_reason": _str(an.get("nps_reason")), "utterance_count": _int(d.get("utterances")),
        "alert_count": _int(counts.get("total")) if counts else _int(d.get("alerts")),
        "pack_version": _str(pack.get("version")),
        "customer_sentiment": _role_mean(an, "customer"), "agent_sentiment": _role_mean(an, "agent"),
    }
    return [CallPatch(fields=fields, metadata=meta, media_time=duration,
                      pack_version=fields.get("pack_version"), ends=True)]


def _role_mean(analytics: dict[str, Any], role: str) -> float | None:
    sent = analytics.get("sentiment")
    entry = sent.get(role) if isinstance(sent, dict) else None
    return _num(entry.get("mean")) if isinstance(entry, dict) else None


def _started(d: dict[str, Any]) -> list[Op]:
    fields = {"sample_rate": _int(d.get("sample_rate")), "channels": d.get("channels")}
    t = _num(d.get("media_time"))
    data = {k: v for k, v in d.items() if k not in ("type", "call_id", "resume_token")}  # the token is a secret
    kind = "resumed" if d.get("resumed") else "started"
    return [CallPatch(fields={k: v for k, v in fields.items() if v is not None}, media_time=t), EventOp(kind, t, data)]


_HANDLERS = {"transcript": _transcript, "alert": _alert, "summary": _summary, "started": _started}

_INGEST_KINDS: dict[type, str] = {CallStart: "call_open", Dtmf: "dtmf", MetadataUpdate: "metadata",
                                  CallEnd: "call_end"}


def _ingest_ops(rec: IngestRecord) -> list[Op]:
    ev, t = rec.event, _num(rec.media_time)
    if isinstance(ev, CallStart):
        meta = clean(dict(ev.metadata))
        language = rec.language or (ev.language if ev.language != "auto" else None)
        channels = [{"index": c.index, "role": clean(c.role), "name": c.name} for c in ev.channels]
        fields = {"platform": clean(ev.platform), "language": language, "sample_rate": ev.sample_rate,
                  "channels": channels}
        data = {"platform": ev.platform, "encoding": clean(ev.encoding), "sample_rate": ev.sample_rate,
                "channels": channels, "language": ev.language, "hotwords": list(ev.hotwords), "metadata": meta}
        return [CallPatch(fields=fields, metadata=meta, media_time=t), EventOp("call_open", t, clean(data))]
    if isinstance(ev, Dtmf):
        data = {"digit": ev.digit, "channel": ev.channel, "duration_ms": ev.duration_ms}
        return [CallPatch(media_time=t), EventOp("dtmf", t, clean(data))]
    if isinstance(ev, MetadataUpdate):
        meta = clean(dict(ev.metadata))
        fields = {"language": ev.language} if ev.language else {}
        return [CallPatch(fields=fields, metadata=meta, media_time=t),
                EventOp("metadata", t, {"metadata": meta, "language": ev.language})]
    if isinstance(ev, Gap):  # a platform pause is a hold; discards and losses are plain gaps
        kind = "hold" if ev.reason == "pause" else "gap"
        data = {"seconds": _num(ev.seconds), "channel": ev.channel, "reason": clean(ev.reason)}
        end = None if t is None or data["seconds"] is None else t + data["seconds"]
        return [CallPatch(media_time=end), EventOp(kind, t, data)]
    if isinstance(ev, CallEnd):
        return [EventOp("call_end", t, clean({"reason": ev.reason, "detail": ev.detail}))]
    raise ValueError(f"not a storable ingest event: {type(ev).__name__}")


__all__ = [
    "LOW_PRIORITY",
    "AlertOp",
    "CallPatch",
    "EventOp",
    "IngestRecord",
    "Op",
    "UtteranceOp",
    "clean",
    "is_partial",
    "kind_of",
    "people",
    "to_ops",
]
