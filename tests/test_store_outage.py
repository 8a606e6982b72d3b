"""The database unavailable, then available again: nothing accepted is lost, memory stays bounded,
drops are counted. SQLite: another connection holds the write lock. PostgreSQL: the store talks
through a real TCP relay that is down at first (connections refused) and cut mid-way."""

from __future__ import annotations

import contextlib
import socket
import sqlite3
import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa
from test_store_helpers import PG_HOST, PG_PORT, PgSchema, final, needs_pg, record_call

from speechiq.store import CallStore
from speechiq.store import schema as S
from speechiq.store.metrics import StoreCollector


def _wait(cond: Any, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def _counts(store: CallStore) -> dict[str, int]:
    with store.engine.connect() as conn:
        return {t.name: int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one())
                for t in (S.calls, S.utterances, S.alerts, S.call_events)}


def test_sqlite_locked_then_free_loses_nothing(tmp_path):
    path = tmp_path / "locked.db"
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("PRAGMA journal_mode=WAL")
    blocker.execute("BEGIN EXCLUSIVE")  # the database is unavailable for writing
    store = CallStore(f"sqlite:///{path}", batch_ms=20, max_backoff_s=0.2, sqlite_timeout_s=0.05)
    try:
        for i in range(10):
            record_call(store, f"out-{i}", finals=4)
        assert _wait(lambda: store.stats().retries >= 3)
        st = store.stats()
        assert st.pending == st.enqueued and st.events_written == 0 and st.last_error
        assert "locked" in st.last_error
        families = {m.name: m for m in StoreCollector(store).collect()}
        assert families["speechiq_store_healthy"].samples[0].value == 0
        assert families["speechiq_store_pending"].samples[0].value == st.pending
        blocker.execute("ROLLBACK")  # available again
        assert store.flush(30)
        st = store.stats()
        assert st.pending == 0 and st.dropped == 0 and st.failed == 0 and st.last_error is None
        assert _counts(store) == {"calls": 10, "utterances": 40, "alerts": 10, "call_events": 50}
    finally:
        blocker.close()
        store.close()


def test_queue_is_bounded_while_down_and_drops_are_counted(tmp_path):
    path = tmp_path / "bounded.db"
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    store = CallStore(f"sqlite:///{path}", batch_ms=20, max_backoff_s=0.1, sqlite_timeout_s=0.05,
                      max_pending=100)
    try:
        accepted = sum(store.record("big", final("big", n)) for n in range(300))
        st = store.stats()
        assert accepted == 100 and st.pending == 100 and st.dropped == 200
        # near the bound, low-priority kinds (DTMF, notices, metadata) are refused first
        from speechiq.ingest import Dtmf

        store2 = CallStore(f"sqlite:///{path}", batch_ms=20, sqlite_timeout_s=0.05, max_pending=10)
        for n in range(9):
            assert store2.record("x", final("x", n))
        assert not store2.record_ingest("x", Dtmf("1"), 1.0)
        assert store2.record("x", final("x", 9))
        assert not store2.record("x", final("x", 10))
        assert store2.stats().dropped == 2
        blocker.execute("ROLLBACK")
        assert store.flush(30) and store2.flush(30)
        assert _counts(store)["utterances"] == 100 + 10
    finally:
        blocker.close()
        store.close()
        store2.close()


class Relay:
    """A real TCP relay 127.0.0.1:port → PostgreSQL that can be stopped (refusing and cutting
    connections) and started again on the same port."""

    def __init__(self) -> None:
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._server: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", self.port))
        srv.listen(16)
        self._server = srv
        threading.Thread(target=self._accept, args=(srv,), daemon=True).start()

    def stop(self) -> None:
        srv, self._server = self._server, None
        if srv is not None:
            with contextlib.suppress(OSError):
                srv.shutdown(socket.SHUT_RDWR)  # wakes the accept() blocked in the relay thread
            srv.close()
        with self._lock:
            conns, self._conns = self._conns, []
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()

    def _accept(self, srv: socket.socket) -> None:
        while True:
            try:
                client, _ = srv.accept()
            except OSError:
                return
            upstream = socket.create_connection((PG_HOST, PG_PORT))
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


@needs_pg
def test_postgres_down_at_first_then_cut_mid_way_loses_nothing():
    schema = PgSchema()
    relay = Relay()
    store = CallStore(f"postgresql://postgres@127.0.0.1:{relay.port}/test", schema=schema.name, batch_ms=20,
                      max_backoff_s=0.2)
    try:
        for i in range(5):
            record_call(store, f"pg-out-{i}", finals=4)
        assert _wait(lambda: store.stats().retries >= 2)  # connection refused: nothing written
        assert store.stats().events_written == 0
        relay.start()
        assert store.flush(30)
        assert store.stats().pending == 0
        relay.stop()  # the database goes away with connections open
        for i in range(5, 10):
            record_call(store, f"pg-out-{i}", finals=4)
        assert _wait(lambda: store.stats().last_error is not None)
        relay.start()
        assert store.flush(30)
        st = store.stats()
        assert st.pending == 0 and st.dropped == 0 and st.failed == 0
        assert _counts(store) == {"calls": 10, "utterances": 40, "alerts": 10, "call_events": 50}
        assert store.reader.sessions("pg-out-7") == [1]
    finally:
        store.close(5)
        relay.stop()
        schema.drop()


@pytest.mark.parametrize("n", [3])
def test_close_while_down_reports_the_loss(tmp_path, n):
    path = tmp_path / "down.db"
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    store = CallStore(f"sqlite:///{path}", batch_ms=20, max_backoff_s=0.1, sqlite_timeout_s=0.05)
    for i in range(n):
        store.record("lost", final("lost", i))
    try:
        assert store.close(0.5) is False  # logged: events not written
    finally:
        blocker.close()
