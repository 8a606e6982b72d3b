"""``CallStore``: the durable store of calls, final transcripts, alerts and call events.

Write side (the engine, on the event loop): ``record(call_id, event)`` for every event a call
emits (the frozen event or its ``to_dict`` form; partial transcripts are skipped here) and
``record_ingest(call_id, ingest_event, media_time)`` for what the telephony side says
(``CallStart`` → the call's platform/metadata, ``Dtmf``, ``MetadataUpdate``, ``CallEnd``).
Neither blocks: events are queued and a background thread writes them in batches
(see :mod:`speechiq.store.writer`). ``flush`` waits for what was recorded so far; ``close``
flushes and stops. Read side: :class:`~speechiq.store.read.StoreReader` methods.
"""

from __future__ import annotations

import atexit
import logging
import os
import secrets
import socket
import threading
import time
import weakref
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ..errors import ConfigError
from ..ingest import CallEnd, CallStart, Dtmf, Gap, MetadataUpdate
from .batch import Pending
from .convert import IngestRecord, is_partial, kind_of
from .db import WRITER_OPTION, display_url, make_engine, parse_url
from .read import CallDetail, StoredAlert, StoredCall, StoreReader
from .writer import StoreStats, StoreWriter

log = logging.getLogger(__name__)


class CallStore:
    """``url``: ``sqlite:///PATH`` or ``postgresql+psycopg://user:pass@host/db``. ``schema``: a
    PostgreSQL schema to keep the tables in (default: the connection's search path).

    ``batch_ms`` / ``batch_rows``: a transaction at least that often / of at most that many
    events; ``max_pending``: events kept in memory while the database is unavailable (past it
    new events are refused and counted); ``max_backoff_s``: the longest wait between retries."""

    def __init__(self, url: str, *, schema: str | None = None, batch_ms: float = 150.0, batch_rows: int = 500,
                 max_pending: int = 200_000, max_backoff_s: float = 5.0, sqlite_timeout_s: float = 5.0,
                 engine: sa.Engine | None = None, start: bool = True) -> None:
        base = engine if engine is not None else make_engine(url, sqlite_timeout_s=sqlite_timeout_s)
        if schema is not None:
            if base.dialect.name != "postgresql":
                raise ConfigError("store: a schema name needs PostgreSQL")
            base = base.execution_options(schema_translate_map={None: schema})
        self.engine = base
        self.schema = schema
        self.url = display_url(base)
        self.writer_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._writer = StoreWriter(base.execution_options(**{WRITER_OPTION: True}), writer_id=self.writer_id,
                                   batch_ms=batch_ms, batch_rows=batch_rows, max_pending=max_pending,
                                   max_backoff_s=max_backoff_s, pg_schema=schema)
        self.reader = StoreReader(base)
        self._owns_engine = engine is None
        self._started = False
        self._calls_lock = threading.Lock()
        self._calls: dict[str, list[int]] = {}  # live call id → [its local number, next event ordinal]
        self._next_local = 0
        if start:
            self.start()

    @classmethod
    def from_settings(cls, store_settings: Any, **overrides: Any) -> CallStore:
        """From ``settings.store`` (``url`` and, where present, ``schema_name``, ``batch_ms``,
        ``batch_rows``, ``max_pending``, ``max_backoff_s``)."""
        kwargs: dict[str, Any] = {}
        for name, arg in (("schema_name", "schema"), ("batch_ms", "batch_ms"), ("batch_rows", "batch_rows"),
                          ("max_pending", "max_pending"), ("max_backoff_s", "max_backoff_s")):
            value = getattr(store_settings, name, None)
            if value is not None:
                kwargs[arg] = value
        kwargs.update(overrides)
        return cls(store_settings.url, **kwargs)

    def start(self) -> CallStore:
        if not self._started:
            self._started = True
            self._writer.start()
            # a process that exits without close() still writes what it queued (the writer
            # thread is a daemon: it would be stopped mid-way at interpreter exit)
            self._at_exit = _exit_hook(weakref.ref(self))
            atexit.register(self._at_exit)
            log.info("store: writing to %s", self.url)
        return self

    # ---- write side (non-blocking) -----------------------------------------------------------
    def record(self, call_id: str, event: Any) -> bool:
        """Queue one call event (frozen event or dict). False: refused (queue full or closed) —
        counted in ``stats().dropped`` and logged."""
        if is_partial(event):
            return True
        kind = kind_of(event)
        local, seq = self._number(call_id, new=False, ends=kind == "summary")
        return self._writer.put(Pending(call_id, event, time.time(), kind, local, seq))

    def record_ingest(self, call_id: str, event: CallStart | Dtmf | MetadataUpdate | Gap | CallEnd,
                      media_time: float | None = None, language: str | None = None) -> bool:
        """Queue an ingest event: ``CallStart`` (when the call opens; ``language``: the resolved
        one), ``Dtmf``, ``MetadataUpdate`` or ``CallEnd``, at the call's ``media_time``."""
        rec = IngestRecord(event, media_time, language)
        local, seq = self._number(call_id, new=isinstance(event, CallStart) and not event.resume_token)
        return self._writer.put(Pending(call_id, rec, time.time(), kind_of(rec), local, seq))

    def _number(self, call_id: str, *, new: bool, ends: bool = False) -> tuple[int, int]:
        """(this store's number for the call, the event's ordinal in it). ``new``: a call starts
        (a call id seen before gets a new session); ``ends``: its summary (the next event of that
        id starts another call)."""
        with self._calls_lock:
            entry = self._calls.get(call_id)
            if entry is None or (new and entry[1] > 0):
                self._next_local += 1
                entry = self._calls[call_id] = [self._next_local, 0]
            seq = entry[1]
            entry[1] += 1
            if ends:
                del self._calls[call_id]
            return entry[0], seq

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Block until everything recorded so far is committed. False on timeout."""
        return self._writer.flush(timeout)

    def close(self, timeout: float | None = 30.0) -> bool:
        """Flush (retrying an unavailable database up to ``timeout``), stop the writer and
        release the connections. False: events were left unwritten (logged)."""
        ok = self._writer.close(timeout) if self._started else True
        if self._started:
            atexit.unregister(self._at_exit)
        if self._owns_engine:
            self.engine.dispose()
        return ok

    def stats(self) -> StoreStats:
        return self._writer.stats()

    # ---- read side (blocking) ----------------------------------------------------------------
    def list_calls(self, **filters: Any) -> list[StoredCall]:
        return self.reader.list_calls(**filters)

    def get_call(self, call_id: str, session: int | None = None) -> CallDetail | None:
        return self.reader.get_call(call_id, session)

    def alerts(self, **filters: Any) -> list[StoredAlert]:
        return self.reader.alerts(**filters)

    def __enter__(self) -> CallStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _exit_hook(ref: weakref.ref[CallStore]) -> Any:
    def flush_at_exit() -> None:
        store = ref()
        if store is not None:
            store.close(10.0)

    return flush_at_exit


def open_reader(url: str, *, schema: str | None = None) -> StoreReader:
    """A read-only view (no writer thread; the schema must exist). Raises ConfigError, also
    for a SQLite file that does not exist (it is not created)."""
    u = parse_url(url)
    if u.get_backend_name() == "sqlite" and not Path(u.database or "").expanduser().exists():
        raise ConfigError(f"store: no database at {u.database} (store.url {url!r})")
    engine = make_engine(url)
    if schema is not None:
        engine = engine.execution_options(schema_translate_map={None: schema})
    return StoreReader(engine)


__all__ = ["CallStore", "open_reader"]
