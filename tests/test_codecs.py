"""G.711 / PCM16 codecs: table values, round trips, error cases."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from speechiq.audio.codecs import (
    ALAW_DECODE,
    MULAW_DECODE,
    decode,
    deinterleave,
    encode,
    encode_alaw,
    encode_mulaw,
    to_float32,
    to_int16,
)
from speechiq.errors import AudioFormatError, ProtocolError
from speechiq.ingest import Encoding

ALL_INT16 = np.arange(-32768, 32768, dtype=np.int16)
int16_arrays = hnp.arrays(np.int16, st.integers(0, 400))


def test_mulaw_known_values():
    # ITU-T G.711 / Sun g711.c: 0xFF and 0x7F are the two zeros, 0x00/0x80 the extremes.
    assert MULAW_DECODE[0xFF] == 0 and MULAW_DECODE[0x7F] == 0
    assert MULAW_DECODE[0x00] == -32124 and MULAW_DECODE[0x80] == 32124
    assert MULAW_DECODE[0xFE] == 8 and MULAW_DECODE[0x7E] == -8  # smallest non-zero step
    assert encode_mulaw(np.array([0, 32767, -32768], np.int16)) == b"\xff\x80\x00"


def test_alaw_known_values():
    assert ALAW_DECODE[0xD5] == 8 and ALAW_DECODE[0x55] == -8
    assert ALAW_DECODE[0xAA] == 32256 and ALAW_DECODE[0x2A] == -32256
    assert encode_alaw(np.array([0, 32767, -32768], np.int16)) == b"\xd5\xaa\x2a"


def test_tables_are_odd_symmetric_and_monotonic():
    # μ-law: byte b and b ^ 0x80 decode to opposite values; magnitudes grow as the inverted code grows
    assert np.array_equal(MULAW_DECODE[:128], -MULAW_DECODE[128:])
    assert np.array_equal(ALAW_DECODE[:128], -ALAW_DECODE[128:])
    pos = MULAW_DECODE[0x80:][::-1].astype(int)  # 0xFF → 0 … 0x80 → 32124
    assert pos[0] == 0 and np.all(np.diff(pos) > 0)
    assert len(np.unique(ALAW_DECODE[ALAW_DECODE > 0])) == 128


def test_tables_match_audioop():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")
    every_byte = bytes(range(256))
    assert np.array_equal(np.frombuffer(audioop.ulaw2lin(every_byte, 2), "<i2"), MULAW_DECODE)
    assert np.array_equal(np.frombuffer(audioop.alaw2lin(every_byte, 2), "<i2"), ALAW_DECODE)
    raw = ALL_INT16.astype("<i2").tobytes()
    assert encode_mulaw(ALL_INT16) == audioop.lin2ulaw(raw, 2)
    assert encode_alaw(ALL_INT16) == audioop.lin2alaw(raw, 2)


@pytest.mark.parametrize("enc", [Encoding.MULAW, Encoding.ALAW])
def test_decode_encode_is_identity_on_codewords(enc):
    codes = bytes(range(256))
    once = decode(codes, enc)
    again = decode(encode(once, enc), enc)
    assert np.array_equal(once, again)
    if enc is Encoding.ALAW:
        assert encode(once, enc) == codes  # A-law has no duplicate codes
    else:
        # μ-law has two zeros (0x7F, 0xFF); every other code word survives unchanged
        back = encode(once, enc)
        assert [i for i in range(256) if back[i] != codes[i]] == [0x7F]


@pytest.mark.parametrize("enc", [Encoding.MULAW, Encoding.ALAW])
def test_quantisation_error_is_bounded_and_relative(enc):
    err = np.abs(decode(encode(ALL_INT16, enc), enc).astype(int) - ALL_INT16.astype(int))
    assert err.max() <= 1024
    big = np.abs(ALL_INT16.astype(int)) > 1024
    assert np.max(err[big] / np.abs(ALL_INT16[big].astype(int))) < 0.07  # ~6 % relative (log PCM)


@given(int16_arrays)
def test_pcm16_round_trip(x):
    assert np.array_equal(decode(encode(x, Encoding.PCM16), Encoding.PCM16), x)


@given(int16_arrays, st.sampled_from([Encoding.MULAW, Encoding.ALAW]))
def test_g711_round_trip_is_stable(x, enc):
    once = decode(encode(x, enc), enc)
    assert once.dtype == np.int16 and once.shape == x.shape
    assert np.array_equal(decode(encode(once, enc), enc), once)


def test_decode_pcm16_is_little_endian():
    assert decode(b"\x01\x00\x00\x80\xff\x7f", Encoding.PCM16).tolist() == [1, -32768, 32767]
    assert decode(b"", Encoding.PCM16).shape == (0,)
    assert decode(bytearray(b"\xff"), Encoding.MULAW).tolist() == [0]
    assert decode(memoryview(b"\xd5"), "alaw").tolist() == [8]


def test_decode_returns_writable_copy():
    out = decode(b"\x01\x00", Encoding.PCM16)
    out[0] = 5  # not a read-only view on the bytes


def test_odd_byte_count():
    with pytest.raises(AudioFormatError) as ei:
        decode(b"\x00\x01\x02", Encoding.PCM16)
    assert ei.value.code == "odd_byte_count"
    assert isinstance(ei.value, ProtocolError) and ei.value.close_code == 1007


def test_encode_rejects_non_int16():
    with pytest.raises(TypeError):
        encode_mulaw(np.zeros(4, np.float32))


@given(st.integers(1, 8), st.integers(0, 50))
def test_deinterleave_shape_and_order(channels, frames):
    x = np.arange(channels * frames, dtype=np.int16)
    out = deinterleave(x, channels)
    assert out.shape == (frames, channels)
    for c in range(channels):
        assert np.array_equal(out[:, c], x[c::channels])


def test_deinterleave_partial_frame():
    with pytest.raises(AudioFormatError) as ei:
        deinterleave(np.zeros(5, np.int16), 2)
    assert ei.value.code == "partial_frame"
    with pytest.raises(AudioFormatError):
        deinterleave(np.zeros(4, np.int16), 0)
    with pytest.raises(AudioFormatError):
        deinterleave(np.zeros((2, 2), np.int16), 2)


def test_float_conversion():
    x = np.array([-32768, -1, 0, 1, 32767], np.int16)
    f = to_float32(x)
    assert f.dtype == np.float32
    assert f[0] == -1.0 and f[2] == 0.0 and f.max() < 1.0
    assert np.array_equal(to_int16(f), x)
    assert to_int16(np.array([2.0, -2.0], np.float32)).tolist() == [32767, -32768]
