"""Read side of the store, for the CLI, the console and batch re-scoring (blocking calls: from
async code run them with ``asyncio.to_thread``).

Wall-clock filters (``since`` / ``until``) take an aware or naive-UTC ``datetime`` or Unix
seconds. Label / category filters on calls mean "has a confirmed alert with that label".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import sqlalchemy as sa

from . import schema as S

When = dt.datetime | float | int


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if hasattr(value, "__dataclass_fields__"):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    return value


class _Record:
    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (datetimes as ISO 8601 UTC)."""
        return _plain(self)


@dataclass(frozen=True)
class StoredCall(_Record):
    call_id: str
    session: int
    platform: str | None
    started_at: dt.datetime
    ended_at: dt.datetime | None
    duration: float | None
    last_media_time: float | None
    language: str | None
    end_reason: str | None
    metadata: Mapping[str, Any]
    agent: str | None
    queue: str | None
    sample_rate: int | None
    channels: Sequence[Mapping[str, Any]] | None
    pack_version: str | None
    pack_versions: Sequence[str]
    nev: float | None
    ces: float | None
    nps_proxy: str | None
    nps_reason: str | None
    customer_sentiment: float | None
    agent_sentiment: float | None
    utterance_count: int | None
    alert_count: int | None
    summary: Mapping[str, Any] | None
    writer: str
    updated_at: dt.datetime

    @property
    def live(self) -> bool:
        return self.ended_at is None


@dataclass(frozen=True)
class StoredUtterance(_Record):
    call_id: str
    session: int
    utterance_id: str
    channel: int
    role: str
    start: float
    end: float
    text: str
    language: str | None
    words: Sequence[Mapping[str, Any]]
    sentiment: float | None
    sentiment_label: str | None
    avg_logprob: float | None
    no_speech_prob: float | None
    emitted_at: dt.datetime | None


@dataclass(frozen=True)
class StoredAlert(_Record):
    call_id: str
    session: int
    alert_id: str
    rule_id: str
    pack_version: str
    label: str | None
    category: str
    severity: str
    state: str
    media_time: float
    first_media_time: float
    last_media_time: float
    start: float | None
    end: float | None
    role: str | None
    text: str | None
    description: str | None
    evidence: Sequence[Mapping[str, Any]]
    metadata: Mapping[str, Any]
    history: Sequence[Mapping[str, Any]]
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True)
class StoredEvent(_Record):
    call_id: str
    session: int
    seq: int
    kind: str
    media_time: float | None
    at: dt.datetime
    data: Mapping[str, Any]


@dataclass(frozen=True)
class CallDetail(_Record):
    call: StoredCall
    utterances: tuple[StoredUtterance, ...]
    alerts: tuple[StoredAlert, ...]
    events: tuple[StoredEvent, ...]


_RENAMES = {"meta": "metadata", "media_start": "start", "media_end": "end"}


def _build(cls: type, row: sa.Row[Any]) -> Any:
    m = row._mapping
    return cls(**{_RENAMES.get(k, k): m[k] for k in m.keys()})  # noqa: SIM118 (RowMapping keys)


def _since(col: sa.ColumnElement[Any], since: When | None, until: When | None) -> list[sa.ColumnElement[bool]]:
    out = []
    if since is not None:
        out.append(col >= sa.bindparam(None, since, type_=S.UtcDateTime))
    if until is not None:
        out.append(col < sa.bindparam(None, until, type_=S.UtcDateTime))
    return out


class StoreReader:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def list_calls(self, *, since: When | None = None, until: When | None = None, label: str | None = None,
                   category: str | None = None, agent: str | None = None, queue: str | None = None,
                   platform: str | None = None, live: bool | None = None, limit: int = 100,
                   offset: int = 0) -> list[StoredCall]:
        """Newest first."""
        c, a = S.calls.c, S.alerts.c
        conds = _since(c.started_at, since, until)
        if agent is not None:
            conds.append(c.agent == agent)
        if queue is not None:
            conds.append(c.queue == queue)
        if platform is not None:
            conds.append(c.platform == platform)
        if live is not None:
            conds.append(c.ended_at.is_(None) if live else c.ended_at.is_not(None))
        if label is not None or category is not None:
            sub = sa.select(sa.literal(1)).where(a.call_id == c.call_id, a.session == c.session,
                                                 a.state == "confirmed")
            if label is not None:
                sub = sub.where(a.label == label)
            if category is not None:
                sub = sub.where(a.category == category)
            conds.append(sa.exists(sub))
        q = (sa.select(S.calls).where(*conds).order_by(c.started_at.desc(), c.call_id, c.session.desc())
             .limit(limit).offset(offset))
        with self.engine.connect() as conn:
            return [_build(StoredCall, r) for r in conn.execute(q)]

    def get_call(self, call_id: str, session: int | None = None) -> CallDetail | None:
        """One call with its utterances (by media time), alerts (by first media time) and events
        (in order); ``session=None``: the latest call with that id."""
        c, u, a, e = S.calls.c, S.utterances.c, S.alerts.c, S.call_events.c
        with self.engine.connect() as conn:
            q = sa.select(S.calls).where(c.call_id == call_id)
            q = q.where(c.session == session) if session is not None else q.order_by(c.session.desc()).limit(1)
            row = conn.execute(q).first()
            if row is None:
                return None
            call = _build(StoredCall, row)
            key = (call.call_id, call.session)
            utts = conn.execute(sa.select(S.utterances).where(u.call_id == key[0], u.session == key[1])
                                .order_by(u.media_start, u.channel, u.utterance_id))
            alerts = conn.execute(sa.select(S.alerts).where(a.call_id == key[0], a.session == key[1])
                                  .order_by(a.first_media_time, a.alert_id))
            events = conn.execute(sa.select(S.call_events).where(e.call_id == key[0], e.session == key[1])
                                  .order_by(e.seq))
            return CallDetail(call, tuple(_build(StoredUtterance, r) for r in utts),
                              tuple(_build(StoredAlert, r) for r in alerts),
                              tuple(_build(StoredEvent, r) for r in events))

    def sessions(self, call_id: str) -> list[int]:
        c = S.calls.c
        with self.engine.connect() as conn:
            return [int(s) for s in conn.execute(sa.select(c.session).where(c.call_id == call_id)
                                                 .order_by(c.session)).scalars()]

    def alerts(self, *, since: When | None = None, until: When | None = None, call_id: str | None = None,
               label: str | None = None, category: str | None = None, severity: str | None = None,
               rule_id: str | None = None, state: str | None = "confirmed", limit: int = 500,
               offset: int = 0) -> list[StoredAlert]:
        """Alerts by when they were first raised (wall clock), newest first. ``state=None``: any."""
        a = S.alerts.c
        conds = _since(a.created_at, since, until)
        for col, value in ((a.call_id, call_id), (a.label, label), (a.category, category), (a.severity, severity),
                           (a.rule_id, rule_id), (a.state, state)):
            if value is not None:
                conds.append(col == value)
        q = (sa.select(S.alerts).where(*conds).order_by(a.created_at.desc(), a.alert_id)
             .limit(limit).offset(offset))
        with self.engine.connect() as conn:
            return [_build(StoredAlert, r) for r in conn.execute(q)]

    def utterances(self, call_id: str, session: int | None = None) -> list[StoredUtterance]:
        detail = self.get_call(call_id, session)
        return list(detail.utterances) if detail is not None else []


__all__ = ["CallDetail", "StoreReader", "StoredAlert", "StoredCall", "StoredEvent", "StoredUtterance"]
