"""AsrScheduler policy with a recording decoder (scheduling, not recognition), then once for real.

The recording decoder can hold the single worker inside ``decode`` so the queue is built up
deterministically while it waits; the time-based shedding constants are patched per test.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from speechiq.asr import scheduler as sched_mod
from speechiq.asr.decoder import DecodeRequest, DecodeResult
from speechiq.asr.scheduler import AsrJob, AsrScheduler
from speechiq.settings import AsrSettings

WAIT = 30.0  # generous bound for events that happen at once; never a timing assertion


class RecordingDecoder:
    """bucket = the request's length in samples; the label of a request is its prompt."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def hold(self) -> None:
        self.gate.clear()
        self.entered.clear()

    def bucket_of(self, request: DecodeRequest) -> int:
        return len(request.audio)

    def decode(self, requests: list[DecodeRequest]) -> list[DecodeResult]:
        labels = [r.prompt for r in requests]
        self.batches.append(labels)
        self.entered.set()
        assert self.gate.wait(WAIT)
        if any(label.startswith("boom") for label in labels):
            raise RuntimeError("bad utterance")
        return [DecodeResult(text=f"text:{r.prompt}", words=(), language="en", avg_logprob=-0.1,
                             no_speech_prob=0.0, compression_ratio=1.0) for r in requests]


class Calls:
    """Collects scheduler callbacks: label → (result text or None, error)."""

    def __init__(self) -> None:
        self.got: dict[str, tuple[str | None, str | None]] = {}
        self.order: list[str] = []
        self.cond = threading.Condition()

    def __call__(self, job: AsrJob, result: DecodeResult | None, error: str | None) -> None:
        with self.cond:
            label = job.request.prompt
            self.got[label] = (result.text if result else None, error)
            self.order.append(label)
            self.cond.notify_all()

    def wait_for(self, *labels: str) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: all(lb in self.got for lb in labels), WAIT), (labels, self.got)


@pytest.fixture
def patient(monkeypatch: pytest.MonkeyPatch) -> None:
    """No time-based shedding unless a test asks for it."""
    monkeypatch.setattr(sched_mod, "BUSY_WAIT_S", 1e9)
    monkeypatch.setattr(sched_mod, "OVERLOAD_WAIT_S", 1e9)
    monkeypatch.setattr(sched_mod, "PARTIAL_MAX_UTIL", float("inf"))
    monkeypatch.setattr(sched_mod, "EARLY_MAX_UTIL", float("inf"))


@pytest.fixture
def dec() -> RecordingDecoder:
    return RecordingDecoder()


@pytest.fixture
def calls() -> Calls:
    return Calls()


def make(dec: Any, **kw: Any) -> AsrScheduler:
    opts: dict[str, Any] = {"workers": 1, "batch_size": 8, "max_queue": 64, "partial_interval_s": 1e6}
    opts.update(kw)
    return AsrScheduler(dec, AsrSettings(**opts))


@pytest.fixture
def start(dec: RecordingDecoder) -> Iterator[Callable[..., AsrScheduler]]:
    """Start a one-worker scheduler over the recording decoder; stopped at teardown."""
    started: list[AsrScheduler] = []

    def _start(**kw: Any) -> AsrScheduler:
        s = make(dec, **kw)
        s.start()
        started.append(s)
        return s

    yield _start
    dec.gate.set()
    for s in started:
        s.stop(WAIT)


@pytest.fixture
def running(start: Callable[..., AsrScheduler]) -> AsrScheduler:
    return start()


def job(calls: Calls, label: str, bucket: int = 100, final: bool = True, call_id: str = "c1",
        key: str | None = None) -> AsrJob:
    req = DecodeRequest(np.zeros(bucket, np.float32), prompt=label)
    return AsrJob(call_id=call_id, channel=0, request=req, is_final=final, callback=calls,
                  key=key if key is not None else f"{call_id}:{label}")


def block(s: AsrScheduler, dec: RecordingDecoder, calls: Calls) -> None:
    """Occupy the single worker with a final of its own bucket until ``dec.gate`` is set."""
    dec.hold()
    assert s.submit(job(calls, "block", bucket=1))
    assert dec.entered.wait(WAIT)


# ---- ordering and batching -------------------------------------------------------------------
def test_finals_first_fifo_and_same_bucket_batches(patient: None, running: AsrScheduler, dec: RecordingDecoder,
                                                   calls: Calls) -> None:
    block(running, dec, calls)
    assert running.submit(job(calls, "pA1", bucket=100, final=False, call_id="c9"))
    assert running.submit(job(calls, "pB1", bucket=200, final=False, call_id="c8"))
    assert running.submit(job(calls, "fA1", bucket=100, call_id="c1"))
    assert running.submit(job(calls, "fB1", bucket=200, call_id="c2"))
    assert running.submit(job(calls, "fA2", bucket=100, call_id="c3"))
    assert running.submit(job(calls, "fC1", bucket=300, call_id="c1"))
    assert running.submit(job(calls, "fB2", bucket=200, call_id="c1"))
    assert (running.pending_finals, running.pending_partials, running.depth) == (5, 2, 7)
    dec.gate.set()
    calls.wait_for("fA1", "fA2", "fB1", "fB2", "fC1", "pA1", "pB1")
    # the oldest final picks the bucket; its bucket's finals across calls (FIFO), then its partials
    assert dec.batches == [["block"], ["fA1", "fA2", "pA1"], ["fB1", "fB2", "pB1"], ["fC1"]]
    assert all(calls.got[lb] == (f"text:{lb}", None) for lb in ("fA1", "pA1", "fC1"))
    stats = running.stats()
    assert stats["batches"] == 4 and stats["mean_batch"] == 2.0 and stats["depth"] == 0
    assert stats["errors"] == stats["shed_partials"] == stats["refused_finals"] == 0


def test_batch_size_cap(patient: None, start: Callable[..., AsrScheduler], dec: RecordingDecoder, calls: Calls) -> None:
    running = start(batch_size=3)
    block(running, dec, calls)
    labels = [f"f{i}" for i in range(7)]
    for i, lb in enumerate(labels):
        assert running.submit(job(calls, lb, call_id=f"call{i}"))
    dec.gate.set()
    calls.wait_for(*labels)
    assert dec.batches[1:] == [["f0", "f1", "f2"], ["f3", "f4", "f5"], ["f6"]]


def test_plain_decoder_mode_decodes_one_at_a_time(patient: None, dec: RecordingDecoder, calls: Calls) -> None:
    s = make(dec, decoder="plain")
    s.start()
    try:
        block(s, dec, calls)
        for lb in ("f0", "f1", "f2"):
            assert s.submit(job(calls, lb))
        dec.gate.set()
        calls.wait_for("f0", "f1", "f2")
    finally:
        dec.gate.set()
        s.stop(WAIT)
    assert dec.batches == [["block"], ["f0"], ["f1"], ["f2"]]


def test_partials_only_are_decoded(patient: None, running: AsrScheduler, dec: RecordingDecoder,
                                   calls: Calls) -> None:
    assert running.submit(job(calls, "p1", final=False))
    calls.wait_for("p1")
    assert calls.got["p1"] == ("text:p1", None)


# ---- partial shedding ------------------------------------------------------------------------
def test_newer_partial_supersedes_queued_one(patient: None, running: AsrScheduler, dec: RecordingDecoder,
                                             calls: Calls) -> None:
    block(running, dec, calls)
    assert running.submit(job(calls, "p1", final=False, key="c1:0:4:p"))
    assert running.submit(job(calls, "p2", final=False, key="c1:0:4:p"))
    assert running.submit(job(calls, "other", final=False, key="c2:0:1:p"))
    calls.wait_for("p1")
    assert calls.got["p1"] == (None, "superseded")  # replaced, not shed for load
    assert running.pending_partials == 2
    # the final of an utterance makes its queued partial moot
    assert running.submit(job(calls, "final", key="c2:0:1"))
    calls.wait_for("other")
    assert calls.got["other"] == (None, "superseded")
    dec.gate.set()
    calls.wait_for("p2", "final")
    assert calls.got["p2"] == ("text:p2", None)
    assert running.metrics.superseded_partials == 2 and running.metrics.shed_partials == 0
    decoded = [label for batch in dec.batches for label in batch]
    assert "p1" not in decoded and "other" not in decoded


def test_early_final_queues_with_finals_and_supersedes_its_partial(patient: None, running: AsrScheduler,
                                                                   dec: RecordingDecoder, calls: Calls) -> None:
    block(running, dec, calls)
    assert running.submit(job(calls, "p-other", bucket=100, final=False, key="c2:0:0:p"))
    assert running.submit(job(calls, "p-mine", bucket=100, final=False, key="c1:0:3:p"))
    early = job(calls, "early", bucket=100, final=False, key="c1:0:3:e")
    early.early = True
    assert running.submit(early)
    calls.wait_for("p-mine")
    assert calls.got["p-mine"] == (None, "superseded")  # the early decode covers that audio
    assert (running.pending_finals, running.pending_partials) == (1, 1)
    dec.gate.set()
    calls.wait_for("early", "p-other")
    assert dec.batches[1] == ["early", "p-other"]  # final priority, batched with its bucket's partials
    stats = running.stats()
    assert stats["early_finals"] == 1 and stats["refused_early"] == 0 and running.metrics.submitted_finals == 1


def test_early_final_refused_while_finals_wait(monkeypatch: pytest.MonkeyPatch, running: AsrScheduler,
                                              dec: RecordingDecoder, calls: Calls) -> None:
    monkeypatch.setattr(sched_mod, "BUSY_WAIT_S", 0.0)
    monkeypatch.setattr(sched_mod, "PARTIAL_MAX_UTIL", float("inf"))
    early = job(calls, "e-idle", final=False, key="c1:0:0:e")
    early.early = True
    assert running.submit(early)  # idle: taken, although workers would refuse a partial when busy
    calls.wait_for("e-idle")
    block(running, dec, calls)
    assert running.submit(job(calls, "f1"))
    threading.Event().wait(0.01)
    late = job(calls, "e-late", final=False, key="c1:0:1:e")
    late.early = True
    assert running.submit(late) is False  # finals wait: the final will be decoded as usual
    assert running.metrics.refused_early == 1 and running.metrics.shed_partials == 0
    dec.gate.set()
    calls.wait_for("f1")
    assert "e-late" not in calls.got


def test_stale_partials_are_shed(patient: None, start: Callable[..., AsrScheduler], dec: RecordingDecoder,
                                 calls: Calls) -> None:
    running = start(partial_interval_s=0.05)
    block(running, dec, calls)
    assert running.submit(job(calls, "p-old", final=False))
    assert running.submit(job(calls, "f1"))
    threading.Event().wait(0.3)  # let the queued partial outlive its interval
    dec.gate.set()
    calls.wait_for("p-old", "f1")
    assert calls.got["p-old"] == (None, "shed")
    assert calls.got["f1"] == ("text:f1", None)
    assert ["f1"] in dec.batches


def test_partials_refused_while_finals_wait(monkeypatch: pytest.MonkeyPatch, running: AsrScheduler,
                                           dec: RecordingDecoder, calls: Calls) -> None:
    monkeypatch.setattr(sched_mod, "BUSY_WAIT_S", 0.0)
    monkeypatch.setattr(sched_mod, "OVERLOAD_WAIT_S", 0.0)
    monkeypatch.setattr(sched_mod, "PARTIAL_MAX_UTIL", float("inf"))
    assert running.submit(job(calls, "p-idle", final=False))  # idle: partials welcome
    calls.wait_for("p-idle")
    block(running, dec, calls)
    assert running.submit(job(calls, "f1"))
    threading.Event().wait(0.01)
    assert running.overloaded
    assert running.submit(job(calls, "p1", final=False)) is False
    assert running.metrics.shed_partials == 1
    assert running.submit(job(calls, "f2"))  # finals are still taken
    dec.gate.set()
    calls.wait_for("f1", "f2")
    assert "p1" not in calls.got
    assert not running.overloaded


def test_partials_refused_when_workers_are_busy(monkeypatch: pytest.MonkeyPatch, running: AsrScheduler,
                                               calls: Calls) -> None:
    monkeypatch.setattr(sched_mod, "BUSY_WAIT_S", 1e9)
    monkeypatch.setattr(sched_mod, "PARTIAL_MAX_UTIL", -1.0)  # any utilisation counts as busy
    assert running.submit(job(calls, "p1", final=False)) is False
    assert running.submit(job(calls, "f1"))
    calls.wait_for("f1")


def test_overloaded_at_high_water(patient: None, start: Callable[..., AsrScheduler], dec: RecordingDecoder,
                                  calls: Calls) -> None:
    running = start(max_queue=4)
    block(running, dec, calls)
    assert running.high_water == 3
    for i in range(2):
        assert running.submit(job(calls, f"f{i}"))
    assert not running.overloaded
    assert running.submit(job(calls, "f2"))
    assert running.overloaded
    dec.gate.set()
    calls.wait_for("f0", "f1", "f2")
    assert not running.overloaded


def test_partials_refused_at_high_water(patient: None, start: Callable[..., AsrScheduler], dec: RecordingDecoder,
                                        calls: Calls) -> None:
    running = start(max_queue=4)
    block(running, dec, calls)
    for i in range(3):
        assert running.submit(job(calls, f"f{i}"))
    assert running.overloaded
    assert running.submit(job(calls, "p1", final=False)) is False


def test_finals_refused_only_when_queue_is_full(patient: None, start: Callable[..., AsrScheduler],
                                                dec: RecordingDecoder, calls: Calls) -> None:
    running = start(max_queue=3)
    block(running, dec, calls)
    assert [running.submit(job(calls, f"f{i}")) for i in range(3)] == [True] * 3
    assert running.submit(job(calls, "f3")) is False
    assert running.submit(job(calls, "f4")) is False
    assert running.metrics.refused_finals == 2
    dec.gate.set()
    calls.wait_for("f0", "f1", "f2")
    assert running.submit(job(calls, "f3"))  # the caller's retry is accepted once there is room
    calls.wait_for("f3")
    assert "f4" not in calls.got


# ---- failures and shutdown -------------------------------------------------------------------
def test_decode_error_reaches_callback_and_worker_survives(patient: None, running: AsrScheduler,
                                                           dec: RecordingDecoder, calls: Calls) -> None:
    block(running, dec, calls)
    assert running.submit(job(calls, "boom", bucket=100))
    assert running.submit(job(calls, "ok1", bucket=100))  # same batch: gets the error too
    assert running.submit(job(calls, "ok2", bucket=200))
    dec.gate.set()
    calls.wait_for("boom", "ok1", "ok2")
    result, error = calls.got["boom"]
    assert result is None and error is not None and error.startswith("decode_failed") and "bad utterance" in error
    assert calls.got["ok1"][0] is None
    assert calls.got["ok2"] == ("text:ok2", None)
    assert running.submit(job(calls, "after"))
    calls.wait_for("after")
    assert calls.got["after"] == ("text:after", None)
    assert running.metrics.errors == 1


def test_failing_callback_does_not_kill_the_worker(patient: None, running: AsrScheduler, calls: Calls) -> None:
    def bad(job: AsrJob, result: DecodeResult | None, error: str | None) -> None:
        raise ValueError("callback bug")

    bad_job = job(calls, "bad")
    bad_job.callback = bad
    assert running.submit(bad_job)
    assert running.submit(job(calls, "next"))
    calls.wait_for("next")
    assert calls.got["next"] == ("text:next", None)


def test_stop_drains_finals_and_sheds_partials(patient: None, dec: RecordingDecoder, calls: Calls) -> None:
    s = make(dec)
    s.start()
    block(s, dec, calls)
    for lb, bucket in (("f1", 100), ("f2", 200), ("f3", 100)):
        assert s.submit(job(calls, lb, bucket=bucket))
    assert s.submit(job(calls, "p1", final=False, bucket=300))
    stopper = threading.Thread(target=s.stop, args=(WAIT,))
    stopper.start()
    calls.wait_for("p1")  # shed by stop() before it waits for the workers
    assert calls.got["p1"] == (None, "shed")
    assert s.submit(job(calls, "p2", final=False)) is False
    dec.gate.set()
    stopper.join(WAIT)
    assert not stopper.is_alive()
    assert all(calls.got[lb] == (f"text:{lb}", None) for lb in ("block", "f1", "f2", "f3"))
    assert not any(t.is_alive() for t in s._threads)
    assert s.depth == 0


# ---- with the real decoder -------------------------------------------------------------------
@pytest.mark.slow
def test_real_decoder_across_calls() -> None:
    from speechiq.asr.decoder import BatchDecoder
    from speechiq.asr.models import load_model
    from speechiq.audio.resample import resample
    from speechiq.audio.wavio import read_wav
    from speechiq.evaluation import error_rate

    data = Path(__file__).parent / "data"
    meta = json.loads((data / "asr_en_utterances.json").read_text(encoding="utf-8"))
    wav = read_wav(data / "asr_en_utterances.wav")
    x = wav.samples[:, 0].astype(np.float32) / 32768.0
    settings = AsrSettings(model="tiny.en", workers=1, batch_size=4)
    model, info = load_model(settings)
    decoder = BatchDecoder(model, settings, info.multilingual)
    s = AsrScheduler(decoder, settings)
    s.start()
    got: dict[str, DecodeResult | None] = {}
    done = threading.Condition()

    def on_result(job: AsrJob, result: DecodeResult | None, error: str | None) -> None:
        with done:
            assert error is None
            got[job.key] = result
            done.notify_all()

    refs: dict[str, str] = {}
    try:
        for i, it in enumerate(meta["items"]):
            piece = x[round(it["start"] * 8000):round(it["end"] * 8000)]
            req = DecodeRequest(resample(piece, 8000, 16000), language="en", offset=it["start"])
            key = f"call{i % 3}:{i % 2}:{i}"
            refs[key] = it["text"]
            assert s.submit(AsrJob(call_id=f"call{i % 3}", channel=i % 2, request=req, is_final=True,
                                   callback=on_result, key=key))
        with done:
            assert done.wait_for(lambda: len(got) == len(refs), 120)
    finally:
        s.stop(WAIT)
    keys = sorted(refs)
    results = [got[k] for k in keys]
    assert all(r is not None for r in results)
    assert error_rate([refs[k] for k in keys], [r.text for r in results if r is not None]) <= 0.15
    noise = [k for k in keys if not refs[k]]
    assert noise and all(got[k] is not None and got[k].text == "" for k in noise)  # type: ignore[union-attr]
    stats = s.stats()
    assert stats["errors"] == 0 and stats["depth"] == 0
    assert 1 <= stats["batches"] <= len(refs)
    assert stats["decoded_audio_s"] == pytest.approx(meta["items"][-1]["end"], abs=0.05)


def test_early_final_refused_when_the_workers_were_busy(patient: None, monkeypatch: pytest.MonkeyPatch,
                                                        running: AsrScheduler, dec: RecordingDecoder,
                                                        calls: Calls) -> None:
    monkeypatch.setattr(sched_mod, "EARLY_MAX_UTIL", 0.8)
    monkeypatch.setattr(running, "utilisation", lambda: 0.85)
    early = job(calls, "e-busy", final=False, key="c1:0:0:e")
    early.early = True
    assert running.submit(early) is False  # near saturation: speculative work goes first
    assert running.submit(job(calls, "f1"))  # a final is always taken
    monkeypatch.setattr(running, "utilisation", lambda: 0.5)
    idle = job(calls, "e-idle", final=False, key="c1:0:1:e")
    idle.early = True
    assert running.submit(idle)
    calls.wait_for("f1", "e-idle")
    assert running.metrics.refused_early == 1 and "e-busy" not in calls.got

