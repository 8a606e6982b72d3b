"""The background writer: a bounded in-memory queue drained by one thread in batched transactions.

``put`` runs on the event loop and only appends to a deque (no I/O, no waiting). The thread
takes up to ``batch_rows`` events every ``batch_ms`` (sooner when that many are waiting or on
``flush``), converts them and writes them in one transaction. Events leave the queue only once
their transaction has committed, so a database that is down, locked or read-only costs retries
(exponential backoff up to ``max_backoff_s``), never rows. The queue is bounded by
``max_pending``: past it new events are refused, counted (``dropped``) and logged — low-priority
kinds (notices, DTMF, metadata) already at 90 % so transcripts, alerts and summaries keep room.

An event that can never be written (the database refuses *it*, not the connection) would block
every later one: after ``poison_attempts`` failed tries the batch is written one event at a
time, and an event failing alone that often is logged with its content and counted as ``failed``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice

import sqlalchemy as sa
import sqlalchemy.exc as sa_exc

from . import schema as S
from .batch import BatchWriter, Pending
from .convert import LOW_PRIORITY, to_ops

log = logging.getLogger(__name__)
LOG_EVERY_S = 30.0


@dataclass(frozen=True)
class StoreStats:
    enqueued: int  # events accepted by record()
    events_written: int  # events committed
    rows_written: int  # rows inserted or updated
    batches: int  # committed transactions
    retries: int  # failed attempts that were retried
    pending: int  # accepted and not yet committed (queued or in flight)
    dropped: int  # refused by record(): queue full, or the store closed
    failed: int  # accepted but not storable (logged with their content)
    last_error: str | None  # the latest write error, while the store is failing; None when healthy


def transient(exc: BaseException) -> bool:
    """The connection or the database is unavailable (retry as long as it takes) — as opposed
    to the database refusing this data."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.DisconnectionError
                      | sa_exc.TimeoutError | ConnectionError | TimeoutError)


class StoreWriter:
    def __init__(self, engine: sa.Engine, *, writer_id: str, batch_ms: float = 150.0, batch_rows: int = 500,
                 max_pending: int = 200_000, max_backoff_s: float = 5.0, poison_attempts: int = 3,
                 connect: Callable[[], sa.engine.Connection] | None = None, pg_schema: str | None = None) -> None:
        if batch_rows < 1 or max_pending < 1 or batch_ms <= 0:
            raise ValueError("batch_rows, max_pending and batch_ms must be positive")
        self.engine = engine
        self.pg_schema = pg_schema
        self.batch_s = batch_ms / 1000.0
        self.batch_rows = int(batch_rows)
        self.max_pending = int(max_pending)
        self.low_water = max(1, int(self.max_pending * 0.9))
        self.max_backoff_s = max_backoff_s
        self.poison_attempts = max(1, poison_attempts)
        self._begin = connect or engine.begin  # type: ignore[assignment]
        self._batches = BatchWriter(writer_id)
        self._queue: deque[Pending] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._wake = threading.Event()
        self._abort = threading.Event()
        self._closing = False
        self._enqueued = self._resolved = 0
        self._events = self._rows = self._batch_count = self._retries = self._dropped = self._failed = 0
        self._last_error: str | None = None
        self._schema_ready = False
        self._last_drop_log = 0.0
        self._thread = threading.Thread(target=self._run, name="speechiq-store", daemon=True)

    def start(self) -> StoreWriter:
        self._thread.start()
        return self

    # ---- producer side (event loop) ----------------------------------------------------------
    def put(self, item: Pending) -> bool:
        with self._cond:
            n = len(self._queue)
            if self._closing or n >= self.max_pending or (n >= self.low_water and item.kind in LOW_PRIORITY):
                self._dropped += 1
                why = "closed" if self._closing else f"{n} events pending"
                drops = self._dropped
            else:
                self._queue.append(item)
                self._enqueued += 1
                if n + 1 >= self.batch_rows:
                    self._wake.set()
                return True
        now = time.monotonic()
        if now - self._last_drop_log >= LOG_EVERY_S or drops == 1:
            self._last_drop_log = now
            log.error("store: %s event of call %s not kept (%s); %d refused so far", item.kind, item.call_id,
                      why, drops)
        return False

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every event accepted so far is committed (or counted failed)."""
        with self._cond:
            target = self._enqueued
            if self._resolved >= target:
                return True
        self._wake.set()
        with self._cond:
            return self._cond.wait_for(lambda: self._resolved >= target or not self._thread.is_alive(), timeout) \
                and self._resolved >= target

    def close(self, timeout: float | None = 30.0) -> bool:
        """Refuse new events, write what is queued (retrying up to ``timeout``) and stop. Returns
        False, and logs how many events are lost, when the database stayed unavailable."""
        with self._cond:
            self._closing = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
            if self._thread.is_alive():
                self._abort.set()
                self._wake.set()
                self._thread.join(max(5.0, self.max_backoff_s + 1.0))
        with self._cond:
            left = len(self._queue)
        if left:
            log.error("store: closed with %d events not written (%s)", left, self._last_error or "writer stopped")
        return left == 0

    def stats(self) -> StoreStats:
        with self._cond:
            return StoreStats(enqueued=self._enqueued, events_written=self._events, rows_written=self._rows,
                              batches=self._batch_count, retries=self._retries, pending=len(self._queue),
                              dropped=self._dropped, failed=self._failed, last_error=self._last_error)

    # ---- writer thread -----------------------------------------------------------------------
    def _run(self) -> None:
        attempts = 0  # consecutive failures of the batch at the head
        single = 0  # > 0: isolating a poison event: write this many more batches one event at a time
        failing_since: float | None = None
        last_log = 0.0
        while not self._abort.is_set():
            with self._cond:
                idle = not self._queue
                if idle and self._closing:
                    return
                size = 1 if single else self.batch_rows
                batch = list(islice(self._queue, size))
            if idle:
                self._wake.wait(self.batch_s)
                self._wake.clear()
                continue
            try:
                rows = self._write(batch)
            except Exception as exc:
                attempts += 1
                now = time.monotonic()
                with self._cond:
                    self._retries += 1
                    self._last_error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
                if failing_since is None or now - last_log >= LOG_EVERY_S:
                    log.warning("store: write of %d events failed (attempt %d, %d pending): %s", len(batch),
                                attempts, len(self._queue), self._last_error)
                    last_log = now
                failing_since = failing_since or now
                if not transient(exc) and self._schema_ready and attempts >= self.poison_attempts:
                    if len(batch) > 1:
                        single, attempts = len(batch), 0
                        continue
                    self._give_up(batch[0], exc)
                    attempts, single = 0, max(0, single - 1)
                    continue
                delay = min(self.max_backoff_s, 0.05 * 2 ** min(attempts, 16)) * (0.5 + random.random() / 2)
                self._abort.wait(delay)
                continue
            if failing_since is not None:
                log.warning("store: writing again after %.1f s and %d failed attempts", time.monotonic() -
                            failing_since, attempts)
            failing_since, attempts = None, 0
            single = max(0, single - 1)
            with self._cond:
                for _ in batch:
                    self._queue.popleft()
                self._resolved += len(batch)
                self._events += sum(1 for it in batch if it.ops)
                self._rows += rows
                self._batch_count += 1
                self._last_error = None
                more = len(self._queue) >= self.batch_rows or (self._closing and self._queue)
                self._cond.notify_all()
            if not more:
                self._wake.wait(self.batch_s)
                self._wake.clear()

    def _write(self, batch: list[Pending]) -> int:
        for it in batch:
            if it.ops is None:
                try:
                    it.ops = to_ops(it.event)
                except Exception as exc:  # cannot be stored at all: no retry helps
                    log.error("store: %s event of call %s cannot be stored (%s): %.500r", it.kind, it.call_id,
                              exc, it.event)
                    it.ops = []
                    with self._cond:
                        self._failed += 1
        if not self._schema_ready:
            with self._begin() as conn:
                found = S.ensure_schema(conn, self.pg_schema)
            self._schema_ready = True
            if found < S.SCHEMA_VERSION:
                log.info("store: schema %s (version %d)", "created" if not found else "migrated", S.SCHEMA_VERSION)
        with self._begin() as conn:
            rows, overlay = self._batches.write(conn, batch)
        self._batches.commit(overlay)
        return rows

    def _give_up(self, item: Pending, exc: BaseException) -> None:
        log.error("store: %s event of call %s refused by the database %d times, not stored (%s): %.500r",
                  item.kind, item.call_id, self.poison_attempts, exc, item.event)
        with self._cond:
            self._queue.popleft()
            self._resolved += 1
            self._failed += 1
            self._cond.notify_all()


__all__ = ["StoreStats", "StoreWriter", "transient"]
