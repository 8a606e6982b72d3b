"""Endpointer mechanics: opening, hangover, drops, max-utterance split, gaps, flush, chunking.

Most tests use ``AlwaysSpeech`` (probability 1.0 for every frame), which turns the endpointer
into a pure energy gate (``min_energy_dbfs``) so expected times are exact; the real detectors
are exercised here on real audio for chunk-size invariance and in test_vad.py for quality.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from speechiq.audio.codecs import to_float32
from speechiq.audio.resample import resample
from speechiq.audio.wavio import read_wav
from speechiq.settings import VadSettings
from speechiq.vad.detectors import WebRtcDetector
from speechiq.vad.endpointer import Endpointer, Segment

SR = 16000
DATA = Path(__file__).parent / "data"
FRAME = 480 / SR


class AlwaysSpeech:
    sample_rate = 16000
    frame_samples = 480
    threshold = 0.5

    def __init__(self) -> None:
        self.resets = 0

    def speech_prob(self, frame: np.ndarray) -> float:
        assert frame.shape == (self.frame_samples,) and frame.dtype == np.float32
        return 1.0

    def reset(self) -> None:
        self.resets += 1


class Scripted(AlwaysSpeech):
    """Returns the given probabilities frame by frame (then 0.0)."""

    def __init__(self, probs: list[float]) -> None:
        super().__init__()
        self.probs = list(probs)

    def speech_prob(self, frame: np.ndarray) -> float:
        return self.probs.pop(0) if self.probs else 0.0


def burst(seconds: float, level: float = 0.1, seed: int = 0) -> np.ndarray:
    """Loud noise burst (RMS ``level``), well above the energy floor."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(round(seconds * SR)) * level).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * SR), np.float32)


def run(x: np.ndarray, chunk: int | None = None, ep: Endpointer | None = None, **kw) -> tuple[list, Endpointer]:
    ep = ep or Endpointer(VadSettings(**kw), AlwaysSpeech())
    segs: list[Segment] = []
    step = chunk or max(len(x), 1)
    for i in range(0, len(x), step):
        segs += ep.push(x[i : i + step])
    segs += ep.flush()
    return segs, ep


def spans(segs: list[Segment]) -> list[float]:
    return [t for s in segs for t in (s.speech_start, s.speech_end)]


# ---------------------------------------------------------------- basics


def test_one_utterance_bounds_and_audio():
    x = np.concatenate([silence(1.2), burst(2.0), silence(1.0)])
    segs, ep = run(x, chunk=320)
    assert len(segs) == 1
    s = segs[0]
    assert s.seg_index == 0
    assert s.speech_start == pytest.approx(1.2, abs=FRAME)
    assert s.speech_end == pytest.approx(3.2, abs=FRAME)
    assert s.start == pytest.approx(s.speech_start - 0.2) and s.end == pytest.approx(s.speech_end + 0.2)
    assert s.audio.dtype == np.float32 and len(s.audio) == round((s.end - s.start) * SR)
    assert np.array_equal(s.audio, x[round(s.start * SR) : round(s.end * SR)])
    assert ep.now == pytest.approx(len(x) / SR) and ep.dropped == 0


def test_segment_is_returned_after_hangover():
    ep = Endpointer(VadSettings(hangover_ms=500), AlwaysSpeech())
    assert ep.push(burst(1.0)) == []
    assert ep.push(silence(0.45)) == []
    assert len(ep.push(silence(0.1))) == 1


def test_short_pause_keeps_one_utterance_long_pause_splits():
    short = np.concatenate([burst(1.0), silence(0.4), burst(1.0, seed=1), silence(1.0)])
    assert len(run(short)[0]) == 1
    long = np.concatenate([burst(1.0), silence(0.7), burst(1.0, seed=1), silence(1.0)])
    segs, _ = run(long)
    assert len(segs) == 2 and [s.seg_index for s in segs] == [0, 1]
    assert segs[0].end <= segs[1].start  # pads never overlap


def test_too_short_is_dropped_but_reported_as_activity():
    x = np.concatenate([silence(0.5), burst(0.18), silence(1.0), burst(0.4, seed=2), silence(1.0)])
    segs, ep = run(x, min_speech_ms=250)
    assert len(segs) == 1 and segs[0].speech_start == pytest.approx(1.68, abs=FRAME)
    assert ep.dropped == 1
    act = ep.activity()
    assert len(act) == 2 and act[0][0] == pytest.approx(0.5, abs=FRAME)
    assert ep.activity() == []  # cleared


def test_start_ms_needs_enough_speech_in_window():
    # 20 ms clicks touch at most two 30 ms frames; one click per 150 ms window never reaches 90 ms
    clicks = np.concatenate([np.concatenate([burst(0.02, seed=i), silence(0.3)]) for i in range(10)])
    segs, ep = run(clicks, start_ms=90)
    assert segs == [] and ep.dropped == 0 and ep.activity() == []


def test_energy_floor_rejects_line_noise():
    noise = burst(5.0, level=10 ** (-50 / 20))
    segs, ep = run(noise, min_energy_dbfs=-45)
    assert segs == [] and ep.activity() == []
    segs, _ = run(noise, min_energy_dbfs=-60)  # with a lower floor the same noise is "speech"
    assert len(segs) == 1


def test_hysteresis_keeps_speech_through_dips():
    probs = [0.9] * 20 + [0.4] * 30 + [0.1] * 40  # 0.4 ≥ 0.5 − 0.15 while speech continues
    ep = Endpointer(VadSettings(backend="silero"), Scripted(probs))
    segs, _ = run(burst(90 * FRAME), ep=ep)
    assert spans(segs) == [0.0, pytest.approx(50 * FRAME)]
    ep = Endpointer(VadSettings(backend="silero"), Scripted([0.4] * 60))  # never starts below threshold
    assert run(burst(60 * FRAME), ep=ep)[0] == []


def test_offset_shifts_all_times():
    x = np.concatenate([silence(1.0), burst(1.0), silence(1.0)])
    a, _ = run(x)
    b, ep = run(x, ep=Endpointer(VadSettings(), AlwaysSpeech(), offset=100.0))
    assert b[0].start == pytest.approx(a[0].start + 100) and b[0].speech_end == pytest.approx(a[0].speech_end + 100)
    assert ep.now == pytest.approx(103.0)


# ---------------------------------------------------------------- progress, split


def test_in_progress_and_speech_seconds():
    ep = Endpointer(VadSettings(), AlwaysSpeech())
    assert ep.in_progress() is None and ep.speech_seconds_in_progress == 0.0
    ep.push(silence(1.0))
    ep.push(burst(1.5))
    start, audio = ep.in_progress()
    assert start == pytest.approx(0.8, abs=FRAME)
    assert len(audio) / SR == pytest.approx(2.5 - start, abs=FRAME)
    assert ep.speech_seconds_in_progress == pytest.approx(1.5, abs=FRAME)
    ep.push(silence(1.0))
    assert ep.in_progress() is None


def _settle_and_emit(x: np.ndarray, chunk: int, **kw) -> tuple[list[Segment], dict[tuple[int, float], Segment]]:
    """Push ``x`` in chunks; after each, remember the settled segment (by index and speech end)."""
    ep = Endpointer(VadSettings(**kw), AlwaysSpeech())
    segs: list[Segment] = []
    settled: dict[tuple[int, float], Segment] = {}
    for i in range(0, len(x), chunk):
        segs += ep.push(x[i : i + chunk])
        if ep.settled_end is not None:
            s = ep.settled()
            assert s is not None and s.end == ep.settled_end
            settled.setdefault((s.seg_index, s.speech_end), s)
        else:
            assert ep.settled() is None
    return segs + ep.flush(), settled


def test_settled_only_after_the_pad_and_while_silent():
    ep = Endpointer(VadSettings(pad_ms=200, hangover_ms=500), AlwaysSpeech())
    assert ep.settled_end is None
    ep.push(np.concatenate([silence(0.5), burst(1.0)]))
    assert ep.settled_end is None  # still speaking
    ep.push(silence(0.15))
    assert ep.settled_end is None  # the final's trailing pad is not all there yet
    ep.push(silence(0.1))
    assert ep.settled_end == pytest.approx(1.5 + 0.2, abs=FRAME)
    ep.push(burst(0.3, seed=4))
    assert ep.settled_end is None  # speech resumed
    ep.push(silence(0.6))
    assert ep.settled_end is None  # closed


def test_settled_skips_utterances_that_would_be_dropped():
    ep = Endpointer(VadSettings(min_speech_ms=250), AlwaysSpeech())
    ep.push(np.concatenate([silence(0.5), burst(0.15), silence(0.3)]))
    assert ep.settled_end is None and ep.settled() is None


@pytest.mark.parametrize("chunk", [160, 480, 1000, 3999])
def test_settled_segment_is_the_segment_emitted(chunk):
    x = np.concatenate([silence(0.7), burst(1.3), silence(0.3), burst(0.8, seed=1), silence(0.9),
                        burst(2.0, seed=2), silence(0.25), burst(0.5, seed=3)])
    segs, settled = _settle_and_emit(x, chunk)
    assert len(segs) == 2
    # the first closed after its hangover with the audio it had settled on; the pause inside it
    # settled too (speech resumed, so that candidate matches no segment)
    s0 = segs[0]
    c0 = settled[(0, s0.speech_end)]
    assert (c0.start, c0.end, c0.speech_start, c0.speech_end) == (s0.start, s0.end, s0.speech_start, s0.speech_end)
    assert np.array_equal(c0.audio, s0.audio)
    assert sum(k[0] == 0 for k in settled) == 2
    # the last ends at the flush, before its audio settled: no candidate for it
    assert (1, segs[1].speech_end) not in settled


def test_max_utterance_splits_at_quiet_frame():
    loud = burst(12.0, level=0.1)
    dip_at = 6.5  # inside the last 40 % of an 8 s utterance
    i = round(dip_at * SR)
    loud[i : i + 480] *= 0.2  # one quieter (still speech) frame's worth
    x = np.concatenate([silence(0.5), loud, silence(1.0)])
    segs, _ = run(x, chunk=1000, max_utterance_s=8.0)
    assert len(segs) == 2
    a, b = segs
    cut = 0.5 + dip_at
    assert a.end == pytest.approx(cut, abs=FRAME) and a.speech_end == pytest.approx(cut, abs=FRAME)
    assert b.start == a.end and b.speech_start == a.end  # contiguous, no duplicated audio
    joined = np.concatenate([a.audio, b.audio])
    assert np.array_equal(joined, x[round(a.start * SR) : round(b.end * SR)])
    assert a.speech_end - a.speech_start <= 8.0


def test_long_speech_keeps_memory_bounded_and_every_part_under_max():
    x = burst(45.0)
    ep = Endpointer(VadSettings(max_utterance_s=5.0), AlwaysSpeech())
    segs: list[Segment] = []
    for i in range(0, len(x), 4000):
        segs += ep.push(x[i : i + 4000])
        cur = ep.in_progress()
        assert cur is None or len(cur[1]) <= (5.0 + 0.2 + 0.25) * SR
    segs += ep.flush()
    assert all(s.speech_end - s.speech_start <= 5.0 + 1e-9 for s in segs)
    assert sum(len(s.audio) for s in segs) == len(x)  # nothing lost or duplicated
    assert segs[-1].end == pytest.approx(45.0)


# ---------------------------------------------------------------- gaps and flush


def test_advance_closes_and_moves_clock():
    ep = Endpointer(VadSettings(), AlwaysSpeech())
    assert ep.push(burst(1.0)) == []
    segs = ep.advance(2.0)
    assert len(segs) == 1 and segs[0].speech_end == pytest.approx(1.0, abs=FRAME)
    assert ep.now == pytest.approx(3.0) and ep.detector.resets == 1
    segs = ep.push(burst(1.0, seed=3)) + ep.flush()
    assert segs[0].speech_start == pytest.approx(3.0, abs=FRAME)


@pytest.mark.parametrize("gap", [0.0, 0.0123, 0.3, 0.7, 25.0, 3600.0])
def test_advance_equals_pushing_silence(gap):
    head = np.concatenate([silence(0.3), burst(0.8), silence(0.07)])
    tail = np.concatenate([burst(0.6, seed=5), silence(0.6)])
    ep = Endpointer(VadSettings(), AlwaysSpeech())
    a = ep.push(head) + ep.advance(gap) + ep.push(tail) + ep.flush()
    if gap < 60:
        b, _ = run(np.concatenate([head, silence(gap), tail]), chunk=1234)
        assert spans(a) == pytest.approx(spans(b))
        assert [s.start for s in a] == pytest.approx([s.start for s in b])
        assert [s.end for s in a] == pytest.approx([s.end for s in b])
        for s, t in zip(a, b, strict=True):
            assert np.array_equal(s.audio, t.audio)
    assert ep.now == pytest.approx(0.3 + 0.8 + 0.07 + gap + 1.2, abs=1 / SR)


def test_advance_rejects_bad_values():
    ep = Endpointer(VadSettings(), AlwaysSpeech())
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            ep.advance(bad)


def test_flush_emits_open_utterance_truncated_at_end():
    x = np.concatenate([silence(0.5), burst(1.0)])
    ep = Endpointer(VadSettings(), AlwaysSpeech())
    assert ep.push(x[:-100]) == []
    assert ep.push(x[-100:]) == []  # a partial frame is pending
    segs = ep.flush()
    assert len(segs) == 1 and segs[0].end == pytest.approx(1.5) and segs[0].speech_end == pytest.approx(1.5)
    assert len(segs[0].audio) == round((segs[0].end - segs[0].start) * SR)
    assert ep.flush() == [] and ep.in_progress() is None
    segs = ep.push(burst(1.0)) + ep.flush()  # the clock keeps running after a flush
    assert segs[0].speech_start == pytest.approx(1.5, abs=1e-9)


def test_flush_drops_too_short():
    ep = Endpointer(VadSettings(), AlwaysSpeech())
    ep.push(np.concatenate([silence(0.5), burst(0.12)]))
    assert ep.flush() == [] and ep.dropped == 1


# ---------------------------------------------------------------- chunking, inputs


def _call_channel(ch: int) -> np.ndarray:
    w = read_wav(DATA / "vad_call_excerpt.wav")
    return resample(to_float32(w.samples[:, ch]), w.sample_rate, SR)


@pytest.mark.parametrize("ch", [0, 1])
def test_chunk_size_invariance_on_real_call(ch):
    x = _call_channel(ch)
    results = []
    for chunk in (1, 160, 4000, len(x)):
        segs, ep = run(x, chunk=chunk, ep=Endpointer(VadSettings(), WebRtcDetector()))
        results.append((segs, ep.activity(), ep.dropped))
    ref_segs, ref_act, ref_drop = results[0]
    assert len(ref_segs) >= 2
    for segs, act, drop in results[1:]:
        assert [(s.seg_index, s.start, s.end, s.speech_start, s.speech_end) for s in segs] == [
            (s.seg_index, s.start, s.end, s.speech_start, s.speech_end) for s in ref_segs
        ]
        assert all(np.array_equal(s.audio, r.audio) for s, r in zip(segs, ref_segs, strict=True))
        assert act == ref_act and drop == ref_drop


def test_truth_times_json_matches_excerpt():
    truth = json.loads((DATA / "vad_call_excerpt.json").read_text())
    assert truth["duration"] == pytest.approx(len(_call_channel(0)) / SR)


def test_bad_inputs():
    ep = Endpointer(VadSettings(), AlwaysSpeech())
    with pytest.raises(ValueError):
        ep.push(np.zeros((10, 2), np.float32))
    assert ep.push(np.zeros(0, np.float32)) == []
    ep.push(np.zeros(100, np.int16))  # any numeric dtype is accepted as samples

    class Wrong(AlwaysSpeech):
        sample_rate = 8000

    with pytest.raises(ValueError):
        Endpointer(VadSettings(), Wrong())


@settings(max_examples=40, deadline=None)
@given(parts=st.lists(st.tuples(st.floats(0.3, 2.0), st.floats(0.0, 1.2)), min_size=1, max_size=8),
       chunk=st.integers(30, 4000), pad_ms=st.sampled_from([0, 100, 200, 300]))
def test_property_every_hangover_close_was_settled_with_the_same_audio(parts, chunk, pad_ms):
    x = np.concatenate([silence(0.4)] + [np.concatenate([burst(b, seed=i), silence(g)])
                                         for i, (b, g) in enumerate(parts)] + [silence(1.0)])
    segs, settled = _settle_and_emit(x, chunk, pad_ms=pad_ms, hangover_ms=max(pad_ms + 300, 500),
                                     max_utterance_s=60.0)
    assert segs  # the trailing second of silence closes the last one by its hangover too
    for s in segs:
        c = settled[(s.seg_index, s.speech_end)]  # chunks < hangover - pad: a settled moment was seen
        assert (c.start, c.end, c.speech_start, c.speech_end) == (s.start, s.end, s.speech_start, s.speech_end)
        assert np.array_equal(c.audio, s.audio)
