"""Speech detectors, and VAD quality on real material: a stored call excerpt (turn truth), a real
conversation (RTTM truth), line noise and synthetic hold music."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import butter, sosfilt

from speechiq.audio.codecs import to_float32
from speechiq.audio.resample import StreamResampler, resample
from speechiq.audio.wavio import read_wav
from speechiq.settings import VadSettings
from speechiq.vad.detectors import SileroDetector, SpeechDetector, WebRtcDetector, make_detector
from speechiq.vad.endpointer import Endpointer, Segment

SR = 16000
DATA = Path(__file__).parent / "data"
ROLES = ("agent", "customer")


def _excerpt() -> tuple[np.ndarray, int, dict]:
    w = read_wav(DATA / "vad_call_excerpt.wav")
    return w.samples, w.sample_rate, json.loads((DATA / "vad_call_excerpt.json").read_text())


def _conv() -> tuple[np.ndarray, dict]:
    w = read_wav(DATA / "vad_conv_excerpt.wav")
    assert w.sample_rate == SR
    return to_float32(w.samples[:, 0]), json.loads((DATA / "vad_conv_excerpt.json").read_text())


def _stream_segments(x8k: np.ndarray, settings: VadSettings, rate: int = 8000) -> tuple[list[Segment], Endpointer]:
    """The live path: 20 ms chunks → streaming resampler → endpointer."""
    rs = StreamResampler(rate, SR)
    ep = Endpointer(settings, make_detector(settings))
    segs: list[Segment] = []
    step = rate // 50
    for i in range(0, len(x8k), step):
        segs += ep.push(rs.process(x8k[i : i + step]))
    segs += ep.push(rs.flush())
    segs += ep.flush()
    return segs, ep


def line_noise(seconds: float, dbfs: float = -50.0, seed: int = 0) -> np.ndarray:
    """Band-limited (300–3400 Hz) Gaussian line noise at 8 kHz with the given RMS."""
    x = np.random.default_rng(seed).standard_normal(round(seconds * 8000))
    x = sosfilt(butter(4, [300, 3400], btype="band", fs=8000, output="sos"), x)
    return (x * 10 ** (dbfs / 20) / np.sqrt(np.mean(x**2))).astype(np.float32)


def hold_music(seconds: float, dbfs: float = -20.0, note_s: float = 0.4, seed: int = 0) -> np.ndarray:
    """Synthetic hold music at 8 kHz: three-note chords of harmonic tones, one chord per ``note_s``."""
    rng = np.random.default_rng(seed)
    n, step = round(seconds * 8000), round(note_s * 8000)
    t = np.arange(n) / 8000
    x = np.zeros(n)
    notes = 261.63 * 2 ** (np.arange(13) / 12)
    for s in range(0, n, step):
        tt = t[s : s + step]
        env = np.minimum(1.0, np.minimum((tt - tt[0]) * 50, (tt[-1] - tt + 1e-3) * 50))
        for f in rng.choice(notes, 3, replace=False):
            for h, a in ((1, 1.0), (2, 0.5), (3, 0.25)):
                x[s : s + step] += a * np.sin(2 * np.pi * f * h * tt) * env
    return (x * 10 ** (dbfs / 20) / np.sqrt(np.mean(x**2))).astype(np.float32)


# ---------------------------------------------------------------- detectors


def test_detectors_satisfy_protocol():
    for d in (WebRtcDetector(), SileroDetector()):
        assert isinstance(d, SpeechDetector) and d.sample_rate == SR
    assert WebRtcDetector(frame_ms=10).frame_samples == 160
    assert WebRtcDetector(frame_ms=20).frame_samples == 320
    assert SileroDetector().frame_samples == 512


def test_make_detector_follows_settings():
    d = make_detector(VadSettings(backend="webrtc", aggressiveness=1, frame_ms=20))
    assert isinstance(d, WebRtcDetector) and d.aggressiveness == 1 and d.frame_samples == 320
    s = make_detector(VadSettings(backend="silero", threshold=0.3))
    assert isinstance(s, SileroDetector) and s.threshold == 0.3


def test_detector_argument_checks():
    with pytest.raises(ValueError):
        WebRtcDetector(aggressiveness=4)
    with pytest.raises(ValueError):
        WebRtcDetector(frame_ms=25)
    with pytest.raises(ValueError):
        SileroDetector(threshold=1.5)
    for d in (WebRtcDetector(), SileroDetector()):
        with pytest.raises(ValueError):
            d.speech_prob(np.zeros(d.frame_samples + 1, np.float32))


@pytest.mark.parametrize("cls", [WebRtcDetector, SileroDetector])
def test_detectors_separate_speech_from_silence(cls):
    x, _ = _conv()
    d = cls()
    n = d.frame_samples
    probs = np.array([d.speech_prob(x[i : i + n]) for i in range(0, len(x) - n + 1, n)])
    t = np.arange(len(probs)) * n / SR
    assert probs[t < 3.0].mean() < 0.2  # the recording opens without speech
    talk = (t > 8.0) & (t < 11.5)  # both RTTM speakers agree someone talks throughout
    assert probs[talk].mean() > 0.6
    d.reset()
    assert d.speech_prob(np.zeros(n, np.float32)) < 0.5


def test_silero_matches_faster_whisper_batch_model():
    from faster_whisper.vad import get_vad_model

    x, _ = _conv()
    n = len(x) // 512 * 512
    ref = np.asarray(get_vad_model()(x[:n])).ravel()
    d = SileroDetector()
    got = np.array([d.speech_prob(x[i : i + 512]) for i in range(0, n, 512)])
    np.testing.assert_allclose(got, ref, atol=1e-4)


def test_silero_state_is_per_instance_and_session_shared():
    x, _ = _conv()
    a, b = SileroDetector(), SileroDetector()
    assert a._session is b._session
    frames = [x[i : i + 512] for i in range(0, 512 * 200, 512)]
    other = [np.ascontiguousarray(f[::-1]) for f in frames]
    ref = SileroDetector()
    solo = [ref.speech_prob(f) for f in frames]
    interleaved = []
    for f, g in zip(frames, other, strict=True):
        interleaved.append(a.speech_prob(f))
        b.speech_prob(g)
    np.testing.assert_allclose(interleaved, solo, atol=1e-6)


def test_silero_is_safe_across_threads():
    x, _ = _conv()
    frames = [x[i : i + 512] for i in range(0, 512 * 150, 512)]
    ref_det = SileroDetector()
    ref = [ref_det.speech_prob(f) for f in frames]
    results: list[list[float]] = [[] for _ in range(4)]

    def work(k: int) -> None:
        d = SileroDetector()
        results[k] = [d.speech_prob(f) for f in frames]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for r in results:
        np.testing.assert_allclose(r, ref, atol=1e-6)


# ---------------------------------------------------------------- quality on real material


@pytest.mark.parametrize("ch", [0, 1])
def test_webrtc_segments_match_call_turns(ch):
    samples, rate, truth = _excerpt()
    role = ROLES[ch]
    turns = [(t["start"], t["end"]) for t in truth["turns"] if t["speaker"] == role]
    segs, ep = _stream_segments(to_float32(samples[:, ch]), VadSettings(backend="webrtc"), rate)
    assert len(segs) == len(turns) and ep.dropped == 0
    for s, (a, b) in zip(segs, turns, strict=True):
        assert abs(s.speech_start - a) <= 0.5, (role, s.speech_start, a)
        assert abs(s.speech_end - b) <= 0.5, (role, s.speech_end, b)
        assert s.start <= s.speech_start < s.speech_end <= s.end
        assert len(s.audio) == round((s.end - s.start) * SR)
    # noise-only stretches (line noise at about -50 dBFS) produce no speech at all
    for a, b in ep.activity():
        assert any(a < tb + 0.5 and b > ta - 0.5 for ta, tb in turns)


def test_webrtc_segments_carry_the_right_audio():
    samples, rate, _ = _excerpt()
    x16 = resample(to_float32(samples[:, 0]), rate, SR)
    segs, _ = _stream_segments(to_float32(samples[:, 0]), VadSettings(), rate)
    for s in segs:
        ref = x16[round(s.start * SR) : round(s.end * SR)]
        np.testing.assert_allclose(s.audio, ref, atol=1e-5)


def test_silero_on_real_conversation():
    x, truth = _conv()
    ep = Endpointer(VadSettings(backend="silero"), SileroDetector())
    segs = ep.push(x) + ep.flush()
    assert segs and segs[0].speech_start >= 3.0  # nothing in the 3.7 s of non-speech
    speech = np.zeros(len(x) // 160, bool)
    for t in truth["turns"]:
        speech[round(t["start"] * 100) : round(t["end"] * 100)] = True
    found = np.zeros_like(speech)
    for s in segs:
        found[round(s.speech_start * 100) : round(s.speech_end * 100)] = True
    assert (found & speech).sum() / speech.sum() > 0.85  # recall
    assert (found & ~speech).sum() / max(found.sum(), 1) < 0.1  # precision


@pytest.mark.parametrize("backend", ["webrtc", "silero"])
@pytest.mark.parametrize("dbfs", [-50.0, -45.5])
def test_line_noise_gives_no_segments(backend, dbfs):
    segs, ep = _stream_segments(line_noise(20.0, dbfs), VadSettings(backend=backend))
    assert segs == [] and ep.activity() == []


def test_silero_rejects_synthetic_hold_music():
    music = hold_music(20.0) + line_noise(20.0)
    segs, _ = _stream_segments(music, VadSettings(backend="silero"))
    assert sum(s.speech_end - s.speech_start for s in segs) < 2.0  # < 10 % of the music


@pytest.mark.xfail(strict=True, reason="known gap: webrtcvad flags sustained harmonic tones as speech; "
                   "a spectral-stationarity check did not separate them from real speech reliably")
def test_webrtc_rejects_synthetic_hold_music():
    music = hold_music(20.0) + line_noise(20.0)
    segs, _ = _stream_segments(music, VadSettings(backend="webrtc"))
    assert segs == []
