"""Helpers shared by the store tests (no tests here): real SQLite / PostgreSQL stores and a realistic call."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from speechiq.events import Alert, Evidence, Summary, Transcript, Word
from speechiq.ingest import CallStart, ChannelSpec, Dtmf, Encoding, Gap, MetadataUpdate

PG_HOST, PG_PORT = "127.0.0.1", 5432
PG_URL = f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/test"


def pg_reachable() -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=1.0):
            return True
    except OSError:
        return False


needs_pg = pytest.mark.skipif(not pg_reachable(), reason=f"no PostgreSQL on {PG_HOST}:{PG_PORT}")


class PgSchema:
    """A unique schema in the local PostgreSQL for one test; dropped afterwards."""

    def __init__(self) -> None:
        self.name = f"speechiq_test_{secrets.token_hex(6)}"
        self.engine = sa.create_engine(PG_URL)
        with self.engine.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{self.name}"')

    def drop(self) -> None:
        with self.engine.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE')
        self.engine.dispose()


def backend_params() -> list[Any]:
    return ["sqlite", pytest.param("postgres", marks=needs_pg)]


def store_target(kind: str, tmp_path: Any) -> Iterator[tuple[str, str | None]]:
    """(url, schema) of an empty store of ``kind``; cleans up after the test."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}", None
        return
    schema = PgSchema()
    try:
        yield PG_URL, schema.name
    finally:
        schema.drop()


def call_start(call_id: str, **meta: Any) -> CallStart:
    return CallStart(call_id=call_id, encoding=Encoding("mulaw"), sample_rate=8000, language="en",
                     channels=(ChannelSpec(0, "agent"), ChannelSpec(1, "customer")),
                     metadata={"queue": "billing", "agent_id": "a-7", **meta})


def final(call_id: str, n: int, role: str = "agent", text: str | None = None) -> Transcript:
    start = 2.0 * n
    words = tuple(Word(w, start + 0.2 * i, start + 0.2 * i + 0.15, 0.9)
                  for i, w in enumerate((text or f"utterance number {n}").split()))
    return Transcript(call_id=call_id, channel=0 if role == "agent" else 1, role=role,
                      utterance_id=f"{call_id}:{n}", is_final=True, start=start, end=start + 1.5,
                      text=text or f"utterance number {n}", words=words, language="en",
                      sentiment=-0.4 if role == "customer" else 0.2,
                      sentiment_label="negative" if role == "customer" else "positive")


def alert(call_id: str, n: int, state: str, t: float, evidence: bool = True) -> Alert:
    ev = (Evidence(f"{call_id}:{n}", "customer", 1, 2.0 * n, 2.0 * n + 1.5, "I want a supervisor",
                   ((9, 19),), -0.5),) if evidence else ()
    return Alert(alert_id=f"{call_id}:esc:{n}", call_id=call_id, rule_id="escalation.supervisor",
                 pack_version="pv-abc123", label="escalation.supervisor_request", category="escalation",
                 severity="high", state=state, media_time=t, start=2.0 * n, end=2.0 * n + 1.5, role="customer",
                 text="I want a supervisor", evidence=ev, metadata={"queue": "billing"})


def summary(call_id: str, duration: float, utterances: int, alerts: int = 1) -> Summary:
    analytics = {"nev": 0.35, "ces": 0.5, "nps_proxy": "detractor", "nps_reason": "detractor cue",
                 "sentiment": {"customer": {"mean": -0.4}, "agent": {"mean": 0.2}},
                 "alerts": {"total": alerts}, "pack": {"version": "pv-abc123", "name": "default"}}
    return Summary(call_id=call_id, duration=duration, utterances=utterances, roles={}, alerts=alerts,
                   analytics=analytics, metadata={"queue": "billing", "agent_id": "a-7", "tier": "gold"})


def record_call(store: Any, call_id: str, finals: int = 6) -> None:
    """A whole call through ``store``: start, finals, an alert provisional → confirmed, DTMF, a hold,
    a metadata update, a partial (not stored), the end and the summary."""
    store.record_ingest(call_id, call_start(call_id), 0.0, "en")
    for n in range(finals):
        role = "customer" if n % 2 else "agent"
        store.record(call_id, {"type": "transcript", "call_id": call_id, "is_final": False, "utterance_id":
                               f"{call_id}:{n}", "start": 2.0 * n, "end": 2.0 * n + 1.0, "text": "partial"})
        store.record(call_id, final(call_id, n, role))
        if n == 1:
            store.record(call_id, alert(call_id, 1, "provisional", 3.0))
            store.record(call_id, alert(call_id, 1, "confirmed", 3.5, evidence=False))
        if n == 2:
            store.record_ingest(call_id, Dtmf("4", channel=1), 5.5)
            store.record_ingest(call_id, Gap(3.0, reason="pause"), 5.6)
            store.record_ingest(call_id, MetadataUpdate({"tier": "gold"}), 5.7)
    from speechiq.ingest import CallEnd

    store.record_ingest(call_id, CallEnd("normal"), 2.0 * finals)
    store.record(call_id, summary(call_id, 2.0 * finals, finals))
