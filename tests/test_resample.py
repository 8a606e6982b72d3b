"""Streaming resampler: chunking invariance, media-time sample counts, spectral sanity."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from speechiq.audio.resample import StreamResampler, resample
from speechiq.errors import AudioFormatError

RATES = [8000, 11025, 16000, 22050, 24000, 44100, 48000]


def _noise(n: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(n) * 0.1).astype(np.float32)


def _stream(x: np.ndarray, sizes: list[int], rs: StreamResampler) -> np.ndarray:
    out, i, k = [], 0, 0
    while i < len(x):
        n = sizes[k % len(sizes)]
        out.append(rs.process(x[i : i + n]))
        i, k = i + n, k + 1
    out.append(rs.flush())
    return np.concatenate(out)


@pytest.mark.parametrize("in_rate", RATES)
def test_chunked_equals_one_shot(in_rate):
    x = _noise(in_rate // 2 + 37)
    one = resample(x, in_rate, 16000)
    for sizes in ([1, 7, 160], [160], [4000], [len(x)]):
        got = _stream(x, sizes, StreamResampler(in_rate))
        assert got.shape == one.shape
        np.testing.assert_allclose(got, one, atol=1e-5)


@given(st.sampled_from(RATES), st.integers(0, 5000), st.lists(st.integers(1, 900), min_size=1, max_size=5))
@settings(max_examples=40, deadline=None)
def test_output_count_tracks_media_time(in_rate, n, sizes):
    rs = StreamResampler(in_rate, 16000)
    out = _stream(_noise(n), sizes, rs)
    assert abs(len(out) - round(n * 16000 / in_rate)) <= 1
    assert rs.samples_in == n and rs.samples_out == len(out)


def test_identity_when_rates_match():
    x = _noise(1000)
    rs = StreamResampler(16000, 16000)
    assert rs.identity
    y = rs.process(x)
    assert np.array_equal(y, x) and y is not x
    assert rs.flush().shape == (0,)
    assert np.array_equal(resample(x, 16000, 16000), x)


def test_stream_holds_back_little():
    # 20 ms chunks at 8 kHz: the stream lags its input by well under 150 ms of output
    rs = StreamResampler(8000)
    x = _noise(8000 * 3)
    lags = []
    produced = 0
    for i in range(0, len(x), 160):
        produced += len(rs.process(x[i : i + 160]))
        lags.append((i + 160) * 2 - produced)
    assert max(lags[20:]) < 0.15 * 16000


def test_tone_keeps_frequency_and_level():
    t = np.arange(8000) / 8000
    x = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    y = resample(x, 8000, 16000)[2000:-2000]
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    freqs = np.fft.rfftfreq(len(y), 1 / 16000)
    assert abs(freqs[np.argmax(spec)] - 1000) < 5
    assert abs(np.sqrt(np.mean(y**2)) - 0.5 / np.sqrt(2)) < 0.01
    image = spec[np.argmin(abs(freqs - 7000))] / spec.max()  # 8 kHz − 1 kHz image
    assert image < 1e-4


def test_downsampling_removes_content_above_nyquist():
    t = np.arange(48000) / 48000
    x = (0.5 * np.sin(2 * np.pi * 11000 * t)).astype(np.float32)  # above 8 kHz: must vanish
    y = resample(x, 48000, 16000)[1000:-1000]
    assert np.sqrt(np.mean(y**2)) < 1e-3


def test_stereo_stream():
    x = np.stack([_noise(4000, 1), _noise(4000, 2)], axis=1)
    rs = StreamResampler(8000, 16000, channels=2)
    y = np.concatenate([rs.process(x[:1234]), rs.process(x[1234:]), rs.flush()])
    assert y.shape == (8000, 2)
    np.testing.assert_allclose(y[:, 1], resample(x[:, 1], 8000, 16000), atol=1e-5)


def test_empty_and_restart():
    rs = StreamResampler(8000)
    assert rs.process(np.zeros(0, np.float32)).shape == (0,)
    assert rs.flush().shape == (0,)
    a = _stream(_noise(800), [160], rs)
    b = _stream(_noise(800), [160], rs)  # after flush a new stream starts cleanly
    np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("rate", [0, -8000, 999, 10**7, 8000.5, True])
def test_bad_rates(rate):
    with pytest.raises(AudioFormatError) as ei:
        StreamResampler(rate)
    assert ei.value.code == "bad_sample_rate"


def test_bad_shapes_and_quality():
    with pytest.raises(AudioFormatError):
        StreamResampler(8000).process(np.zeros((10, 2), np.float32))
    with pytest.raises(AudioFormatError):
        StreamResampler(8000, channels=2).process(np.zeros(10, np.float32))
    with pytest.raises(ValueError):
        StreamResampler(8000, quality="best")
