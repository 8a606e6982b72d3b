"""G.711 μ-law / A-law and 16-bit PCM codecs, vectorised with lookup tables.

Tables follow ITU-T G.711 as implemented in the reference Sun ``g711.c`` (the same values as
CPython's ``audioop``): μ-law decodes to ±32124, A-law to ±32256; encoders work on the top 14
(μ-law) or 13 (A-law) bits of the 16-bit sample.
"""

from __future__ import annotations

import numpy as np

from ..errors import AudioFormatError
from ..ingest import Encoding

__all__ = [
    "ALAW_DECODE",
    "ALAW_ENCODE",
    "MULAW_DECODE",
    "MULAW_ENCODE",
    "decode",
    "deinterleave",
    "encode",
    "encode_alaw",
    "encode_mulaw",
    "to_float32",
    "to_int16",
]


def _mulaw_decode_table() -> np.ndarray:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, 0x84 - t, t - 0x84).astype(np.int16)


def _alaw_decode_table() -> np.ndarray:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    seg = (a & 0x70) >> 4
    t = (a & 0x0F) << 4
    t = np.where(seg == 0, t + 8, (t + 0x108) << np.maximum(seg - 1, 0))
    return np.where(a & 0x80, t, -t).astype(np.int16)


def _segment(mag: np.ndarray, seg_end: np.ndarray) -> np.ndarray:
    """Index of the first segment whose upper bound is >= mag (8 = beyond the last)."""
    return np.searchsorted(seg_end, mag, side="left")


def _mulaw_encode_table() -> np.ndarray:
    """Encoded byte for every int16 value, indexed by the value viewed as uint16."""
    x = np.arange(65536, dtype=np.int32)
    x = np.where(x >= 32768, x - 65536, x) >> 2  # 14-bit, arithmetic shift like the C code
    mask = np.where(x < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(x), 8159) + (0x84 >> 2)
    seg = _segment(mag, np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF]))
    uval = (seg << 4) | ((mag >> (np.minimum(seg, 7) + 1)) & 0x0F)
    out = np.where(seg >= 8, 0x7F, uval) ^ mask
    return out.astype(np.uint8)


def _alaw_encode_table() -> np.ndarray:
    x = np.arange(65536, dtype=np.int32)
    x = np.where(x >= 32768, x - 65536, x) >> 3  # 13-bit
    mask = np.where(x >= 0, 0xD5, 0x55)
    mag = np.where(x >= 0, x, -x - 1)
    seg = _segment(mag, np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF]))
    shift = np.where(seg < 2, 1, np.minimum(seg, 7))
    aval = (seg << 4) | ((mag >> shift) & 0x0F)
    out = np.where(seg >= 8, 0x7F, aval) ^ mask
    return out.astype(np.uint8)


MULAW_DECODE: np.ndarray = _mulaw_decode_table()
ALAW_DECODE: np.ndarray = _alaw_decode_table()
MULAW_ENCODE: np.ndarray = _mulaw_encode_table()
ALAW_ENCODE: np.ndarray = _alaw_encode_table()
for _t in (MULAW_DECODE, ALAW_DECODE, MULAW_ENCODE, ALAW_ENCODE):
    _t.flags.writeable = False


def decode(data: bytes | bytearray | memoryview, encoding: Encoding) -> np.ndarray:
    """Decode wire bytes to int16 samples (1-D, interleaved channels kept as given)."""
    encoding = Encoding(encoding)
    width = encoding.sample_width
    if len(data) % width:
        raise AudioFormatError(
            "odd_byte_count",
            f"{len(data)} bytes is not a whole number of {width}-byte {encoding.value} samples",
        )
    if encoding is Encoding.PCM16:
        return np.frombuffer(data, dtype="<i2").astype(np.int16)
    raw = np.frombuffer(data, dtype=np.uint8)
    table = MULAW_DECODE if encoding is Encoding.MULAW else ALAW_DECODE
    return table[raw]


def _as_int16(samples: np.ndarray) -> np.ndarray:
    a = np.asarray(samples)
    if a.dtype != np.int16:
        raise TypeError(f"expected int16 samples, got {a.dtype}")
    return a


def encode_mulaw(samples_int16: np.ndarray) -> bytes:
    """Encode int16 samples (any shape, C order) to G.711 μ-law bytes."""
    return MULAW_ENCODE[_as_int16(samples_int16).view(np.uint16)].tobytes()


def encode_alaw(samples_int16: np.ndarray) -> bytes:
    """Encode int16 samples (any shape, C order) to G.711 A-law bytes."""
    return ALAW_ENCODE[_as_int16(samples_int16).view(np.uint16)].tobytes()


def encode(samples_int16: np.ndarray, encoding: Encoding) -> bytes:
    """Encode int16 samples to ``encoding`` (PCM16 is little-endian)."""
    encoding = Encoding(encoding)
    if encoding is Encoding.MULAW:
        return encode_mulaw(samples_int16)
    if encoding is Encoding.ALAW:
        return encode_alaw(samples_int16)
    return _as_int16(samples_int16).astype("<i2").tobytes()


def deinterleave(samples: np.ndarray, channels: int) -> np.ndarray:
    """View interleaved 1-D samples as ``(n_frames, channels)``."""
    if channels < 1:
        raise AudioFormatError("bad_channels", f"channel count must be >= 1, got {channels}")
    a = np.asarray(samples)
    if a.ndim != 1:
        raise AudioFormatError("bad_shape", f"expected 1-D interleaved samples, got shape {a.shape}")
    if a.size % channels:
        raise AudioFormatError(
            "partial_frame", f"{a.size} samples is not a whole number of {channels}-channel frames"
        )
    return a.reshape(-1, channels)


def to_float32(samples_int16: np.ndarray) -> np.ndarray:
    """int16 → float32 in [-1, 1)."""
    return np.asarray(samples_int16, dtype=np.int16).astype(np.float32) * np.float32(1.0 / 32768.0)


def to_int16(samples_float: np.ndarray) -> np.ndarray:
    """float in [-1, 1) → int16 (rounded, clipped)."""
    x = np.asarray(samples_float, dtype=np.float32) * np.float32(32768.0)
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)
