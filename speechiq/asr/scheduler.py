"""The shared ASR scheduler: one worker pool per device, fed by every call.

A bounded priority queue (finals before partials, FIFO within each), batches built across calls
from requests of the same window bucket, partials shed first: a newer partial of the same
utterance supersedes a queued one, partials that waited longer than their interval are dropped,
and none are accepted while the queue is overloaded. An *early* final (an utterance decoded once
its trailing silence is settled, before the VAD hangover closes it) queues with the finals, since
it usually replaces the final's decode; it is refused whenever finals are waiting or the workers
were more than EARLY_MAX_UTIL busy of late. Finals are never
dropped silently: when the queue is full ``submit`` refuses them and the caller retries (the engine
also stops admitting new calls while ``overloaded``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..settings import AsrSettings
from .decoder import DecodeRequest, DecodeResult

log = logging.getLogger(__name__)
OVERLOAD_WAIT_S = 1.5  # oldest final waiting longer than this: refuse new calls
BUSY_WAIT_S = 0.25  # oldest final waiting longer than this: shed partials
UTIL_WINDOW_S = 5.0  # partials use idle capacity only: admitted while utilisation over
PARTIAL_MAX_UTIL = 0.5  # the last UTIL_WINDOW_S is below this fraction of all workers
# early finals, speculative too, are refused above this: near saturation most are wasted (at 64
# calls on 2 cores, 60 of 185 were reused: speech resumed within the hangover) and displace finals
EARLY_MAX_UTIL = 0.8


@dataclass(eq=False)
class AsrJob:
    call_id: str
    channel: int
    request: DecodeRequest
    is_final: bool
    callback: Callable[[AsrJob, DecodeResult | None, str | None], None]
    key: str = ""
    early: bool = False  # a speculative final: final priority, result is a partial unless reused
    enqueued_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class SchedulerMetrics:
    submitted_finals: int = 0
    submitted_partials: int = 0
    refused_finals: int = 0
    submitted_early: int = 0
    refused_early: int = 0  # not queued because finals were waiting: the final decodes as usual
    shed_partials: int = 0  # dropped for load (busy workers, waited past their interval, shutdown)
    superseded_partials: int = 0  # replaced by a newer partial or by the utterance's final: not load
    batches: int = 0
    batched_jobs: int = 0
    decoded_audio_s: float = 0.0
    busy_s: float = 0.0
    errors: int = 0
    waits: deque[float] = field(default_factory=lambda: deque(maxlen=2000))


class AsrScheduler:
    def __init__(self, decoder: Any, settings: AsrSettings, metrics: SchedulerMetrics | None = None) -> None:
        self.decoder = decoder
        self.settings = settings
        self.metrics = metrics or SchedulerMetrics()
        self.batch_size = settings.batch_size if settings.decoder == "batched" else 1
        self._finals: deque[AsrJob] = deque()
        self._partials: dict[str, AsrJob] = {}  # key → newest partial (insertion-ordered)
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self.high_water = max(1, int(settings.max_queue * 0.75))
        self._partial_workers = 0  # workers busy with batches holding only partials
        self._max_partial_workers = 1
        self._n_workers = 1
        self._recent: deque[tuple[float, float]] = deque()  # (end, seconds busy) of recent batches

    # ---- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        from .models import worker_count

        self._n_workers = worker_count(self.settings)
        for i in range(self._n_workers):
            t = threading.Thread(target=self._worker, name=f"asr-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 30.0) -> None:
        """Finish queued finals (partials are shed), then stop the workers."""
        with self._cond:
            self._stopping = True
            for job in self._partials.values():
                self._shed(job)
            self._partials.clear()
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

    # ---- submission --------------------------------------------------------------------------
    def submit(self, job: AsrJob) -> bool:
        job.enqueued_at = time.monotonic()
        shed: AsrJob | None = None
        with self._cond:
            if self._stopping and (not job.is_final or not any(t.is_alive() for t in self._threads)):
                return False  # stopped: nothing would decode it
            if job.early:
                if (self._finals_waiting_locked() or len(self._finals) >= self.high_water
                        or self.utilisation() > EARLY_MAX_UTIL):
                    self.metrics.refused_early += 1
                    return False
                self._finals.append(job)
                self.metrics.submitted_early += 1
                shed = self._partials.pop(job.key.removesuffix(":e") + ":p", None)  # covers that audio
            elif job.is_final:
                if len(self._finals) >= self.settings.max_queue:
                    self.metrics.refused_finals += 1
                    return False
                self._finals.append(job)
                self.metrics.submitted_finals += 1
                shed = self._partials.pop(job.key + ":p", None)  # its partial is moot now
            else:
                if self._busy_locked() or self.depth >= self.high_water:
                    self.metrics.shed_partials += 1
                    return False
                shed = self._partials.pop(job.key, None)
                self._partials[job.key] = job
                self.metrics.submitted_partials += 1
            self._cond.notify()
        if shed is not None:
            self._shed(shed, "superseded")
        return True

    @property
    def depth(self) -> int:
        return len(self._finals) + len(self._partials)

    @property
    def pending_finals(self) -> int:
        return len(self._finals)

    @property
    def pending_partials(self) -> int:
        return len(self._partials)

    @property
    def overloaded(self) -> bool:
        with self._cond:
            return self._overloaded_locked()

    def utilisation(self) -> float:
        """Fraction of worker time spent decoding over the last UTIL_WINDOW_S seconds."""
        now = time.monotonic()
        while self._recent and self._recent[0][0] < now - UTIL_WINDOW_S:
            self._recent.popleft()
        return sum(b for _, b in self._recent) / (UTIL_WINDOW_S * self._n_workers)

    def _busy_locked(self) -> bool:
        """Partial transcripts are the first work to go: shed them when finals wait or the
        workers are more than half busy."""
        return self._finals_waiting_locked() or self.utilisation() > PARTIAL_MAX_UTIL

    def _finals_waiting_locked(self) -> bool:
        return bool(self._finals) and time.monotonic() - self._finals[0].enqueued_at > BUSY_WAIT_S

    def _overloaded_locked(self) -> bool:
        if len(self._finals) >= self.high_water:
            return True
        return bool(self._finals) and time.monotonic() - self._finals[0].enqueued_at > OVERLOAD_WAIT_S

    # ---- workers -----------------------------------------------------------------------------
    def _shed(self, job: AsrJob, reason: str = "shed") -> None:
        if reason == "shed":
            self.metrics.shed_partials += 1
        else:
            self.metrics.superseded_partials += 1
        try:
            job.callback(job, None, reason)
        except Exception:
            log.exception("shed callback failed")

    def _take_batch(self) -> tuple[list[AsrJob], list[AsrJob]]:
        """Pick a batch (under the lock): the oldest final's bucket, finals first, then partials."""
        stale: list[AsrJob] = []
        now = time.monotonic()
        busy = self._busy_locked()
        for key, job in list(self._partials.items()):
            if busy or now - job.enqueued_at > self.settings.partial_interval_s:
                stale.append(self._partials.pop(key))
        head = self._finals[0] if self._finals else None
        if head is None:
            # partials only: at most one worker on them, so another is always free for finals
            if self._partial_workers >= self._max_partial_workers:
                return [], stale
            head = next(iter(self._partials.values()), None)
            if head is None:
                return [], stale
        bucket = self.decoder.bucket_of(head.request)
        batch: list[AsrJob] = []
        for job in list(self._finals):
            if len(batch) >= self.batch_size:
                break
            if self.decoder.bucket_of(job.request) == bucket:
                batch.append(job)
        for job in batch:
            self._finals.remove(job)
        for key, job in list(self._partials.items()):
            if len(batch) >= self.batch_size:
                break
            if self.decoder.bucket_of(job.request) == bucket:
                batch.append(self._partials.pop(key))
        return batch, stale

    def _worker(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and not self._finals and (
                        not self._partials or self._partial_workers >= self._max_partial_workers):
                    self._cond.wait(0.1)
                if self._stopping and not self._finals:
                    return
                batch, stale = self._take_batch()
                partial_only = bool(batch) and not any(j.is_final or j.early for j in batch)
                if partial_only:
                    self._partial_workers += 1
            for job in stale:
                self._shed(job)
            if batch:
                try:
                    self._run(batch)
                finally:
                    if partial_only:
                        with self._cond:
                            self._partial_workers -= 1
                            self._cond.notify()

    def _run(self, batch: list[AsrJob]) -> None:
        start = time.monotonic()
        for job in batch:
            self.metrics.waits.append(start - job.enqueued_at)
        try:
            results: list[DecodeResult | None] = list(self.decoder.decode([j.request for j in batch]))
            error = None
        except Exception as exc:  # a bad utterance must not kill the worker
            log.exception("decode failed for a batch of %d", len(batch))
            self.metrics.errors += 1
            results, error = [None] * len(batch), f"decode_failed: {exc}"
        m = self.metrics
        m.batches += 1
        m.batched_jobs += len(batch)
        busy = time.monotonic() - start
        m.busy_s += busy
        with self._cond:
            self._recent.append((time.monotonic(), busy))
        m.decoded_audio_s += sum(j.request.duration for j in batch)
        for job, res in zip(batch, results, strict=True):
            try:
                job.callback(job, res, error)
            except Exception:
                log.exception("ASR callback failed")

    def stats(self) -> dict[str, Any]:
        m = self.metrics
        waits = sorted(m.waits)

        def pct(q: float) -> float:
            return waits[min(len(waits) - 1, int(q * len(waits)))] if waits else 0.0

        return {
            "batches": m.batches, "mean_batch": m.batched_jobs / m.batches if m.batches else 0.0,
            "decoded_audio_s": round(m.decoded_audio_s, 2), "busy_s": round(m.busy_s, 2),
            "shed_partials": m.shed_partials, "superseded_partials": m.superseded_partials,
            "refused_finals": m.refused_finals, "early_finals": m.submitted_early,
            "refused_early": m.refused_early, "errors": m.errors,
            "queue_wait_p50_s": round(pct(0.5), 3), "queue_wait_p95_s": round(pct(0.95), 3),
            "depth": self.depth,
        }
