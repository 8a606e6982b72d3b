"""WAV reader/writer: every supported format, odd chunk layouts, clear errors."""

from __future__ import annotations

import io
import struct
import wave
from pathlib import Path

import numpy as np
import pytest
import scipy.io.wavfile as spwav

from speechiq.audio.codecs import ALAW_DECODE, MULAW_DECODE, encode_alaw, encode_mulaw
from speechiq.audio.wavio import WavAudio, read_wav, wav_bytes, write_wav
from speechiq.errors import AudioFormatError
from speechiq.ingest import Encoding

DATA = Path(__file__).parent / "data"
PCM_GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"


def _samples(n: int = 500, ch: int = 2, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((n, ch)) * 4000).astype(np.int16)


def _chunk(cid: bytes, body: bytes) -> bytes:
    return cid + struct.pack("<I", len(body)) + body + (b"\x00" if len(body) & 1 else b"")


def _fmt(tag: int, ch: int, rate: int, width: int, bits: int | None = None, ext: bytes = b"") -> bytes:
    bits = width * 8 if bits is None else bits
    body = struct.pack("<HHIIHH", tag, ch, rate, rate * ch * width, ch * width, bits)
    if ext:
        body += struct.pack("<H", len(ext)) + ext
    return _chunk(b"fmt ", body)


def _riff(*chunks: bytes) -> bytes:
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _extensible(sub_tag: int, valid_bits: int) -> bytes:
    return struct.pack("<HI", valid_bits, 0x3) + struct.pack("<H", sub_tag) + PCM_GUID_TAIL


# ---------------------------------------------------------------- formats


@pytest.mark.parametrize(
    ("dtype", "scale", "tol"),
    [(np.int16, None, 0), (np.int32, 65536, 0), (np.float32, 1 / 32768, 0), (np.float64, 1 / 32768, 0)],
)
def test_scipy_written_files(tmp_path, dtype, scale, tol):
    x = _samples()
    data = x if scale is None else (x.astype(np.float64) * scale).astype(dtype)
    path = tmp_path / "x.wav"
    spwav.write(path, 8000, data)
    w = read_wav(path)
    assert w.sample_rate == 8000 and w.channels == 2 and w.samples.dtype == np.int16
    assert np.abs(w.samples.astype(int) - x).max() <= tol
    assert w.encoding_hint is Encoding.PCM16


def test_unsigned_8bit():
    raw = np.array([0, 128, 255, 1], np.uint8)
    w = read_wav(_riff(_fmt(1, 1, 8000, 1), _chunk(b"data", raw.tobytes())))
    assert w.samples[:, 0].tolist() == [-32768, 0, 32512, -32512]


def test_24bit_pcm_rounds_to_16():
    vals = [0x7FFFFF, -0x800000, 0x000080, -0x000081, 0x123456, 0x1234C0]
    raw = b"".join(struct.pack("<i", v)[:3] for v in vals)
    w = read_wav(_riff(_fmt(1, 1, 16000, 3), _chunk(b"data", raw)))
    assert w.samples[:, 0].tolist() == [32767, -32768, 1, -1, 0x1234, 0x1235]


@pytest.mark.parametrize(("tag", "enc", "encoder", "table"), [
    (7, Encoding.MULAW, encode_mulaw, MULAW_DECODE),
    (6, Encoding.ALAW, encode_alaw, ALAW_DECODE),
])
def test_g711_files(tag, enc, encoder, table):
    x = _samples(ch=1)
    codes = encoder(x)
    blob = _riff(_fmt(tag, 1, 8000, 1, ext=b""), _chunk(b"fact", struct.pack("<I", len(x))), _chunk(b"data", codes))
    w = read_wav(blob)
    assert w.encoding_hint is enc
    assert np.array_equal(w.samples[:, 0], table[np.frombuffer(codes, np.uint8)])


def test_extensible_pcm_24_in_32_and_float():
    x = _samples(ch=2)
    v = (x.astype(np.int32) << 16).astype("<i4").tobytes()
    blob = _riff(_fmt(0xFFFE, 2, 48000, 4, 32, ext=_extensible(1, 24)), _chunk(b"data", v))
    w = read_wav(blob)
    assert w.sample_rate == 48000 and np.array_equal(w.samples, x)
    f = (x / 32768).astype("<f4").tobytes()
    w = read_wav(_riff(_fmt(0xFFFE, 2, 8000, 4, 32, ext=_extensible(3, 32)), _chunk(b"data", f)))
    assert np.array_equal(w.samples, x)
    mu = encode_mulaw(x)
    w = read_wav(_riff(_fmt(0xFFFE, 2, 8000, 1, 8, ext=_extensible(7, 8)), _chunk(b"data", mu)))
    assert w.encoding_hint is Encoding.MULAW and w.samples.shape == (500, 2)


def test_float_is_clipped_and_nan_safe():
    f = np.array([2.0, -2.0, np.nan, np.inf, 0.5], "<f4").tobytes()
    w = read_wav(_riff(_fmt(3, 1, 8000, 4), _chunk(b"data", f)))
    assert w.samples[:, 0].tolist() == [32767, -32768, 0, 32767, 16384]


def test_unknown_chunks_odd_sizes_and_multichannel():
    x = _samples(n=101, ch=3)
    blob = _riff(
        _chunk(b"LIST", b"INFOISFT\x05\x00\x00\x00abcd\x00\x00"),
        _fmt(1, 3, 8000, 2),
        _chunk(b"junk", b"odd"),  # odd size: a pad byte follows
        _chunk(b"data", x.tobytes()),
        _chunk(b"cue ", b"\x00" * 4),
    )
    w = read_wav(blob)
    assert w.channels == 3 and np.array_equal(w.samples, x)
    assert w.frames == 101 and w.duration == pytest.approx(101 / 8000)


def test_truncated_and_streaming_sizes():
    x = _samples(n=100, ch=2)
    good = _riff(_fmt(1, 2, 8000, 2), _chunk(b"data", x.tobytes()))
    w = read_wav(good[:-3])  # cut inside the last frame: the partial frame is dropped
    assert np.array_equal(w.samples, x[:99])
    streamed = bytearray(good)
    streamed[good.index(b"data") + 4 : good.index(b"data") + 8] = b"\xff\xff\xff\xff"
    assert np.array_equal(read_wav(bytes(streamed)).samples, x)


def test_rf64():
    x = _samples(n=50, ch=1)
    ds64 = _chunk(b"ds64", struct.pack("<QQQI", 0, x.nbytes, x.shape[0], 0))
    body = b"WAVE" + ds64 + _fmt(1, 1, 8000, 2) + b"data" + b"\xff\xff\xff\xff" + x.tobytes() + b"tail"
    blob = b"RF64" + b"\xff\xff\xff\xff" + body
    assert np.array_equal(read_wav(blob).samples, x)


def test_stored_call_excerpt():
    w = read_wav(DATA / "vad_call_excerpt.wav")
    assert (w.sample_rate, w.channels, w.encoding_hint) == (8000, 2, Encoding.MULAW)
    assert w.duration == pytest.approx(18.6)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(("blob", "code"), [
    (b"", "not_wav"),
    (b"RIFX\x00\x00\x00\x00WAVE", "not_wav"),
    (b"RIFF\x04\x00\x00\x00AVI ", "not_wav"),
    (_riff(_chunk(b"data", b"\x00\x00")), "bad_wav"),
    (_riff(_fmt(1, 1, 8000, 2)), "bad_wav"),
    (_riff(_chunk(b"fmt ", b"\x01\x00"), _chunk(b"data", b"")), "bad_wav"),
    (_riff(_fmt(0x55, 1, 8000, 2), _chunk(b"data", b"\x00\x00")), "unsupported_wav_format"),
    (_riff(_fmt(0x11, 1, 8000, 1, 4), _chunk(b"data", b"\x00\x00")), "unsupported_wav_format"),
    (_riff(_fmt(1, 0, 8000, 2), _chunk(b"data", b"")), "bad_wav"),
    (_riff(_fmt(1, 1, 0, 2), _chunk(b"data", b"")), "bad_wav"),
    (_riff(_fmt(3, 1, 8000, 2), _chunk(b"data", b"\x00\x00")), "unsupported_wav_format"),
    (_riff(_fmt(0xFFFE, 1, 8000, 2, ext=b"\x10\x00" + b"\x00" * 4 + b"\x01\x00" + b"\x01" * 14),
           _chunk(b"data", b"")), "unsupported_wav_format"),
    (_riff(_fmt(0xFFFE, 1, 8000, 2), _chunk(b"data", b"")), "bad_wav"),
    (b"RF64\xff\xff\xff\xffWAVEfmt ", "bad_wav"),
])
def test_bad_files(blob, code):
    with pytest.raises(AudioFormatError) as ei:
        read_wav(blob)
    assert ei.value.code == code
    assert str(ei.value)


def test_missing_file_is_os_error(tmp_path):
    with pytest.raises(OSError):
        read_wav(tmp_path / "nope.wav")


# ---------------------------------------------------------------- writing


def test_write_read_round_trip(tmp_path):
    x = _samples(ch=2)
    write_wav(tmp_path / "a.wav", x, 16000)
    w = read_wav(str(tmp_path / "a.wav"))
    assert isinstance(w, WavAudio) and w.sample_rate == 16000 and np.array_equal(w.samples, x)
    with wave.open(str(tmp_path / "a.wav")) as ww:  # the stdlib agrees with the header
        assert (ww.getnchannels(), ww.getsampwidth(), ww.getframerate(), ww.getnframes()) == (2, 2, 16000, 500)
    rate, back = spwav.read(tmp_path / "a.wav")
    assert rate == 16000 and np.array_equal(back, x)


def test_write_mono_float_and_file_object():
    buf = io.BytesIO()
    write_wav(buf, np.array([0.0, 0.5, -1.0, 1.5]), 8000)
    w = read_wav(io.BytesIO(buf.getvalue()))
    assert w.samples.shape == (4, 1) and w.samples[:, 0].tolist() == [0, 16384, -32768, 32767]


@pytest.mark.parametrize("enc", [Encoding.MULAW, Encoding.ALAW])
def test_write_g711(enc):
    x = _samples(n=333, ch=1)  # odd payload length: pad byte
    w = read_wav(wav_bytes(x, 8000, enc))
    assert w.encoding_hint is enc and w.samples.shape == (333, 1)
    assert np.abs(w.samples.astype(int) - x).max() < 300


def test_write_rejects_bad_input():
    with pytest.raises(ValueError):
        wav_bytes(np.array([40000]), 8000)
    with pytest.raises(ValueError):
        wav_bytes(np.zeros((2, 2, 2), np.int16), 8000)
    with pytest.raises(TypeError):
        wav_bytes(np.array(["a"]), 8000)
    with pytest.raises(ValueError):
        wav_bytes(np.zeros(4, np.int16), 0)
