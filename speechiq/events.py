"""Engine output events (engine → clients, subscribers, store). Frozen; ``to_dict`` gives the wire JSON.

Every time is seconds of call audio (media time), never wall-clock time, except ``emitted_at``
fields which are wall-clock Unix seconds kept only for latency measurement.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from enum import Enum
from typing import Any


@dataclass(frozen=True)
class Word:
    text: str
    start: float
    end: float
    probability: float


@dataclass(frozen=True)
class Started:
    call_id: str
    resume_token: str
    sample_rate: int
    channels: tuple[dict[str, Any], ...]
    resumed: bool = False
    media_time: float = 0.0  # where the timeline continues (non-zero on resume)
    type: str = "started"


@dataclass(frozen=True)
class Transcript:
    call_id: str
    channel: int
    role: str
    utterance_id: str
    is_final: bool
    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    language: str = ""
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0
    emitted_at: float = 0.0
    sentiment: float | None = None  # [-1, 1], the configured scorer's (analytics.sentiment)
    sentiment_label: str | None = None  # negative | neutral | positive
    seq: int = 0  # the call outlet's event number (docs/protocol.md: resume with last_seq); 0 = not numbered
    type: str = "transcript"


@dataclass(frozen=True)
class Evidence:
    """One utterance that supports an alert; ``spans`` are [start, end) char offsets into text."""

    utterance_id: str
    role: str
    channel: int
    start: float
    end: float
    text: str
    spans: tuple[tuple[int, int], ...] = ()
    sentiment: float | None = None


@dataclass(frozen=True)
class Alert:
    alert_id: str
    call_id: str
    rule_id: str
    pack_version: str
    label: str
    category: str
    severity: str
    state: str  # provisional | confirmed | retracted
    media_time: float
    start: float
    end: float
    role: str
    text: str
    description: str = ""
    evidence: tuple[Evidence, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    emitted_at: float = 0.0
    seq: int = 0  # the call outlet's event number (docs/protocol.md: resume with last_seq); 0 = not numbered
    type: str = "alert"


@dataclass(frozen=True)
class Notice:
    """Something the client should know that is not an error (e.g. work shed under overload)."""

    code: str
    message: str
    media_time: float | None = None
    seq: int = 0  # the call outlet's event number (docs/protocol.md: resume with last_seq); 0 = not numbered
    type: str = "notice"


@dataclass(frozen=True)
class ErrorEvent:
    code: str
    message: str
    seq: int = 0  # as on the other events
    type: str = "error"


@dataclass(frozen=True)
class Summary:
    call_id: str
    duration: float
    utterances: int
    roles: Mapping[str, Any]
    shed_partials: int = 0
    dropped_finals: int = 0
    alerts: int = 0
    analytics: Mapping[str, Any] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    reason: str = "normal"
    seq: int = 0  # the call outlet's event number (docs/protocol.md: resume with last_seq); 0 = not numbered
    type: str = "summary"


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return round(value, 3)
    return value


def to_dict(event: Any) -> dict[str, Any]:
    """Wire form of any event dataclass (floats rounded to ms)."""
    return _plain(event)


def to_json(event: Any) -> str:
    return json.dumps(to_dict(event), ensure_ascii=False, separators=(",", ":"))


__all__ = [
    "Alert",
    "ErrorEvent",
    "Evidence",
    "Notice",
    "Started",
    "Summary",
    "Transcript",
    "Word",
    "asdict",
    "to_dict",
    "to_json",
]
