"""The durable store against real databases: SQLite in tmp_path and the local PostgreSQL (a unique
schema per test, dropped afterwards; skipped when 127.0.0.1:5432 does not answer)."""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
import sqlalchemy.exc as sa_exc
from test_store_helpers import (
    PG_URL,
    alert,
    backend_params,
    call_start,
    final,
    needs_pg,
    record_call,
    store_target,
    summary,
)

from speechiq.errors import ConfigError
from speechiq.store import CallStore, open_reader
from speechiq.store import schema as S
from speechiq.store.batch import BatchWriter, Pending
from speechiq.store.convert import to_ops
from speechiq.store.db import WRITER_OPTION


@pytest.fixture(params=backend_params())
def target(request: Any, tmp_path: Any) -> Iterator[tuple[str, str | None]]:
    yield from store_target(request.param, tmp_path)


def _store(target: tuple[str, str | None], **kw: Any) -> CallStore:
    url, schema = target
    return CallStore(url, schema=schema, batch_ms=20, **kw)


def _count(store: CallStore, table: sa.Table) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_call_roundtrip(target):
    with _store(target) as store:
        record_call(store, "rt-1")
        assert store.flush(30)
        st = store.stats()
        assert st.pending == 0 and st.dropped == 0 and st.failed == 0
        detail = store.get_call("rt-1")
    assert detail is not None
    c = detail.call
    assert (c.call_id, c.session, c.platform, c.language) == ("rt-1", 1, "speechiq", "en")
    assert c.ended_at is not None and c.ended_at >= c.started_at and c.end_reason == "normal"
    assert c.duration == 12.0 and c.sample_rate == 8000
    assert [ch["role"] for ch in c.channels] == ["agent", "customer"]
    assert c.metadata == {"queue": "billing", "agent_id": "a-7", "tier": "gold"}
    assert (c.agent, c.queue) == ("a-7", "billing")
    assert (c.nev, c.ces, c.nps_proxy, c.nps_reason) == (0.35, 0.5, "detractor", "detractor cue")
    assert (c.customer_sentiment, c.agent_sentiment) == (-0.4, 0.2)
    assert c.pack_version == "pv-abc123" and list(c.pack_versions) == ["pv-abc123"]
    assert c.utterance_count == 6 and c.alert_count == 1 and c.summary["type"] == "summary"
    # finals only (the partials are not stored), in media order, with words and sentiment
    assert [u.utterance_id for u in detail.utterances] == [f"rt-1:{n}" for n in range(6)]
    u1 = detail.utterances[1]
    assert (u1.role, u1.channel, u1.start, u1.end, u1.sentiment, u1.sentiment_label) == (
        "customer", 1, 2.0, 3.5, -0.4, "negative")
    assert [w["text"] for w in u1.words] == ["utterance", "number", "1"]
    # one alert row, latest state, full history, evidence kept from the provisional
    (a,) = detail.alerts
    assert (a.rule_id, a.pack_version, a.label, a.category, a.severity) == (
        "escalation.supervisor", "pv-abc123", "escalation.supervisor_request", "escalation", "high")
    assert a.state == "confirmed" and a.media_time == 3.5
    assert (a.first_media_time, a.last_media_time) == (3.0, 3.5)
    assert [h["state"] for h in a.history] == ["provisional", "confirmed"]
    assert a.evidence[0]["spans"] == [[9, 19]] and a.evidence[0]["utterance_id"] == "rt-1:1"
    kinds = [e.kind for e in detail.events]
    assert kinds == ["call_open", "dtmf", "hold", "metadata", "call_end"]
    seqs = [e.seq for e in detail.events]
    assert seqs == sorted(seqs)
    hold = detail.events[2]
    assert hold.media_time == 5.6 and hold.data["seconds"] == 3.0
    assert detail.events[1].data["digit"] == "4"


def test_reader_filters_and_sessions(target):
    with _store(target) as store:
        record_call(store, "same-id", finals=2)
        record_call(store, "same-id", finals=4)  # the id used again after its call ended
        store.record_ingest("other", call_start("other", queue="sales"), 0.0)
        store.record("other", final("other", 0))
        assert store.flush(30)
        assert store.reader.sessions("same-id") == [1, 2]
        assert store.get_call("same-id").call.utterance_count == 4
        assert store.get_call("same-id", 1).call.utterance_count == 2
        assert {c.call_id for c in store.list_calls(queue="sales")} == {"other"}
        assert [c.call_id for c in store.list_calls(live=True)] == ["other"]
        assert {(c.call_id, c.session) for c in store.list_calls(label="escalation.supervisor_request")} == {
            ("same-id", 1), ("same-id", 2)}
        assert len(store.list_calls(limit=2)) == 2
        assert len(store.alerts(category="escalation")) == 2
        assert store.alerts(state="provisional") == []


class _CommitThenFail:
    """Connection factory: the first ``n`` transactions COMMIT and then report a lost connection
    (the writer cannot know the outcome and writes the batch again)."""

    def __init__(self, engine: sa.Engine, n: int) -> None:
        self.engine, self.n, self.tripped = engine, n, 0

    @contextlib.contextmanager
    def __call__(self) -> Iterator[sa.Connection]:
        with self.engine.begin() as conn:
            yield conn
        if self.tripped < self.n:
            self.tripped += 1
            raise sa_exc.OperationalError("COMMIT", {}, ConnectionResetError("connection lost after commit"))


def test_batch_written_again_after_unknown_commit_does_not_duplicate(target):
    url, schema = target
    store = CallStore(url, schema=schema, batch_ms=20, start=False)
    flaky = _CommitThenFail(store.engine.execution_options(**{WRITER_OPTION: True}), n=1_000_000)
    store._writer._begin = flaky  # the real writer, over real transactions that really commit
    flaky.n = 3  # schema creation, then the first two data batches commit and "fail"
    store.start()
    record_call(store, "dup-1")
    record_call(store, "dup-2")
    assert store.flush(30)
    st = store.stats()
    assert flaky.tripped == 3 and st.retries >= 2 and st.failed == 0
    assert store.reader.sessions("dup-1") == [1] and store.reader.sessions("dup-2") == [1]
    for cid in ("dup-1", "dup-2"):
        d = store.get_call(cid)
        assert len(d.utterances) == 6 and len(d.alerts) == 1 and len(d.events) == 5
        assert [h["state"] for h in d.alerts[0].history] == ["provisional", "confirmed"]
    assert _count(store, S.calls) == 2 and _count(store, S.utterances) == 12
    store.close()


def test_batch_writer_replays_are_idempotent(target):
    """The same batch (and a prefix of it) applied in separate transactions changes nothing."""
    with _store(target) as store:
        with store.engine.begin() as conn:
            S.ensure_schema(conn)
        items: list[Pending] = []
        for seq, ev in enumerate([final("bw", 0), alert("bw", 0, "provisional", 1.0), final("bw", 1),
                                  alert("bw", 0, "confirmed", 2.0), summary("bw", 4.0, 2)]):
            items.append(Pending("bw", ev, 1_700_000_000.0 + seq, ev.type, local=7, seq=seq, ops=to_ops(ev)))
        engine = store.engine
        for batch in (items[:2], items, items, items[:3]):
            writer = BatchWriter("host:1:abcd")  # a fresh writer: it knows nothing of earlier commits
            with engine.begin() as conn:
                writer.write(conn, batch)
        d = store.get_call("bw")
        assert store.reader.sessions("bw") == [1]
        assert len(d.utterances) == 2 and len(d.alerts) == 1
        assert [h["state"] for h in d.alerts[0].history] == ["provisional", "confirmed"]
        assert d.alerts[0].state == "confirmed"  # the prefix replay ran last but history keeps order
        assert d.call.duration == 4.0 and d.call.ended_at is not None


def test_resumed_call_continues_the_same_session(target):
    with _store(target) as store:
        store.record_ingest("res-1", call_start("res-1"), 0.0)
        for n in range(3):
            store.record("res-1", final("res-1", n))
        from speechiq.events import Started
        from speechiq.ingest import CallEnd

        store.record_ingest("res-1", CallEnd("transport_lost"), 6.0)
        assert store.flush(30)
        # the connection comes back: the engine records the resume, then the rest of the call;
        # the outlet replays missed events to the client only, but a final sent twice is one row
        store.record("res-1", Started("res-1", "secret-token", 8000, ({"index": 0, "role": "agent"},), True, 6.0))
        store.record("res-1", final("res-1", 2))
        for n in range(3, 5):
            store.record("res-1", final("res-1", n))
        store.record("res-1", summary("res-1", 10.0, 5))
        assert store.flush(30)
        d = store.get_call("res-1")
    assert store.reader.sessions("res-1") == [1]
    assert [u.utterance_id for u in d.utterances] == [f"res-1:{n}" for n in range(5)]
    assert [e.kind for e in d.events] == ["call_open", "call_end", "resumed"]
    assert "resume_token" not in d.events[2].data  # a secret: never stored


def test_concurrent_calls_from_many_threads(target):
    with _store(target, batch_rows=200) as store:
        n_calls, threads = 40, 8

        def work(k: int) -> None:
            for i in range(k, n_calls, threads):
                record_call(store, f"cc-{i:03d}", finals=10)

        ts = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert store.flush(60)
        st = store.stats()
        assert st.dropped == 0 and st.failed == 0 and st.pending == 0
        assert _count(store, S.calls) == n_calls
        assert _count(store, S.utterances) == n_calls * 10
        assert _count(store, S.alerts) == n_calls
        assert _count(store, S.call_events) == n_calls * 5
        assert all(c.ended_at is not None and c.utterance_count == 10 for c in store.list_calls(limit=100))


def test_two_writers_on_one_database_number_sessions_apart(target):
    """Two engine processes (two stores) writing the same call id at once: two sessions, no clash."""
    url, schema = target
    a, b = _store(target), CallStore(url, schema=schema, batch_ms=20)
    try:
        a.flush(30)
        b.flush(30)

        def run(store: CallStore) -> None:
            for _ in range(5):
                record_call(store, "shared-id", finals=3)

        ts = [threading.Thread(target=run, args=(s,)) for s in (a, b)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert a.flush(60) and b.flush(60)
        assert a.stats().failed == 0 and b.stats().failed == 0
        assert a.reader.sessions("shared-id") == list(range(1, 11))
        assert _count(a, S.utterances) == 30
    finally:
        a.close()
        b.close()


def test_close_flushes_everything(target):
    url, schema = target
    store = CallStore(url, schema=schema, batch_ms=5000)  # nothing would be written for 5 s
    for i in range(30):
        record_call(store, f"cl-{i}", finals=4)
    assert store.close(30)
    assert store.stats().pending == 0
    reader = open_reader(url, schema=schema)
    assert len(reader.list_calls(limit=100)) == 30
    reader.engine.dispose()
    assert store.record("late", final("late", 0)) is False and store.stats().dropped == 1


def test_unstorable_event_is_counted_not_blocking(target):
    with _store(target) as store:
        store.record("bad", {"type": "transcript", "is_final": True, "text": "no id"})  # no utterance_id
        record_call(store, "good", finals=2)
        assert store.flush(30)
        assert store.stats().failed == 1
        assert len(store.get_call("good").utterances) == 2


def test_url_checks(tmp_path):
    for bad in ("mysql://x/y", "sqlite://", "sqlite:///:memory:", "not a url"):
        with pytest.raises(ConfigError):
            CallStore(bad, start=False)
    with pytest.raises(ConfigError):
        open_reader(f"sqlite:///{tmp_path / 'missing.db'}")
    assert not (tmp_path / "missing.db").exists()
    with pytest.raises(ConfigError):
        CallStore(f"sqlite:///{tmp_path / 'x.db'}", schema="nope", start=False)


def test_newer_schema_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'v.db'}"
    with CallStore(url) as store:
        record_call(store, "v", finals=1)
        assert store.flush(30)
        with store.engine.begin() as conn:
            conn.execute(sa.update(S.store_schema).values(version=S.SCHEMA_VERSION + 1))
    store = CallStore(url, batch_ms=20, max_backoff_s=0.05)
    store.record("v2", final("v2", 0))
    assert not store.flush(1.0)
    assert "version" in (store.stats().last_error or "")
    assert not store.close(0.5)


def test_fast_conversion_matches_the_wire_form():
    """Finals and alerts skip the generic walk; the stored form is still clean(to_dict(event))."""
    import dataclasses

    from speechiq.events import to_dict
    from speechiq.store.convert import _alert_dict, _transcript_dict, clean

    t = dataclasses.replace(final("fc", 3, "customer", text="nul\x00 byte"), avg_logprob=float("nan"),
                            emitted_at=1_700_000_000.123456)
    a = dataclasses.replace(alert("fc", 1, "provisional", 3.0004), metadata={"queue": "q", "n": float("inf")})
    assert _transcript_dict(t) == clean(to_dict(t))
    assert _alert_dict(a) == clean(to_dict(a))
    assert _transcript_dict(t)["text"] == "nul byte" and _transcript_dict(t)["avg_logprob"] is None


@needs_pg
def test_postgres_schema_is_created_when_missing():
    name = f"speechiq_new_{secrets.token_hex(5)}"
    admin = sa.create_engine(PG_URL)
    try:
        with CallStore(PG_URL, schema=name, batch_ms=20) as store:
            record_call(store, "new-schema", finals=2)
            assert store.flush(30)
            assert len(store.get_call("new-schema").utterances) == 2
        with admin.connect() as conn:
            tables = set(conn.execute(sa.text("SELECT table_name FROM information_schema.tables "
                                              "WHERE table_schema = :s"), {"s": name}).scalars())
        assert {"calls", "utterances", "alerts", "call_events", "store_schema"} <= tables
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        admin.dispose()


@needs_pg
def test_event_the_database_refuses_is_isolated_and_counted(tmp_path):
    """PostgreSQL refuses a channel number past its integer range: that one event is logged and
    counted as failed after its retries; the events around it are written."""
    import dataclasses

    scratch = store_target("postgres", tmp_path)
    url, schema = next(scratch)
    try:
        with CallStore(url, schema=schema, batch_ms=20, max_backoff_s=0.05) as store:
            store.flush(30)
            record_call(store, "ok-before", finals=2)
            store.record("poison", dataclasses.replace(final("poison", 0), channel=2**40))
            record_call(store, "ok-after", finals=2)
            assert store.flush(60)
            st = store.stats()
            assert st.failed == 1 and st.pending == 0
            assert len(store.get_call("ok-before").utterances) == 2
            assert len(store.get_call("ok-after").utterances) == 2
    finally:
        scratch.close()  # drops the schema


def test_calls_cli_over_a_populated_store(tmp_path, capsys):
    import json

    from speechiq.cli import main

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    with CallStore(url, batch_ms=20) as store:
        for cid in ("cli-a", "cli-b", "cli-c"):
            record_call(store, cid, finals=4)
        assert store.flush(30)
    assert main(["calls", "list", "--store", url, "--limit", "2", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["call_id"] for r in rows] == ["cli-c", "cli-b"] and rows[0]["nev"] == 0.35
    assert main(["calls", "list", "--store", url]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
    assert main(["calls", "show", "cli-a", "--store", url, "--by-speaker"]) == 0
    text = capsys.readouterr().out
    assert text.index(" agent:") < text.index(" customer:")
    assert "[   2.00 –    3.50] customer utterance number 1" in text
    assert "provisional → confirmed" in text and "NEV 0.35" in text and "hold" in text
    assert main(["calls", "show", "cli-a", "--store", url, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [u["utterance_id"] for u in shown["utterances"]] == [f"cli-a:{n}" for n in range(4)]
    assert shown["alerts"][0]["state"] == "confirmed"
