"""WAV reading (own RIFF/RF64 chunk parser) and writing.

Reads PCM 8/16/24/32-bit, IEEE float 32/64, A-law, μ-law and WAVE_FORMAT_EXTENSIBLE wrappers of
those, any channel count; unknown chunks are skipped. Everything is returned as int16. Writes
PCM16 (or G.711 when asked), mono or multi-channel.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from ..errors import AudioFormatError
from ..ingest import Encoding
from .codecs import ALAW_DECODE, MULAW_DECODE, encode

__all__ = ["WavAudio", "read_wav", "wav_bytes", "write_wav"]

PCM, IEEE_FLOAT, ALAW, MULAW, EXTENSIBLE = 1, 3, 6, 7, 0xFFFE
_GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
_MAX_CHANNELS = 64


@dataclass(frozen=True, eq=False)
class WavAudio:
    """Decoded WAV audio; ``samples`` is int16 shaped ``(n_frames, channels)``."""

    sample_rate: int
    samples: np.ndarray
    encoding_hint: Encoding

    @property
    def channels(self) -> int:
        return int(self.samples.shape[1])

    @property
    def duration(self) -> float:
        return self.samples.shape[0] / self.sample_rate

    @property
    def frames(self) -> int:
        return int(self.samples.shape[0])


def _bad(code: str, msg: str) -> AudioFormatError:
    return AudioFormatError(code, msg)


def _chunks(buf: memoryview, start: int, rf64_data_size: int | None):
    """Yield ``(id, offset, size)``; sizes are clipped to the bytes present (truncated files)."""
    pos = start
    while pos + 8 <= len(buf):
        cid = bytes(buf[pos : pos + 4])
        (size,) = struct.unpack_from("<I", buf, pos + 4)
        body = pos + 8
        if cid == b"data" and rf64_data_size is not None and size == 0xFFFFFFFF:
            size = rf64_data_size
        size = min(size, len(buf) - body)
        yield cid, body, size
        pos = body + size + (size & 1)


def _parse_fmt(buf: memoryview, off: int, size: int) -> tuple[int, int, int, int, int]:
    """Return (format tag, channels, rate, block_align, container bits)."""
    if size < 16:
        raise _bad("bad_wav", f"fmt chunk is {size} bytes, needs at least 16")
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", buf, off)
    if tag == EXTENSIBLE:
        if size < 40:
            raise _bad("bad_wav", "WAVE_FORMAT_EXTENSIBLE fmt chunk shorter than 40 bytes")
        guid = bytes(buf[off + 24 : off + 40])
        if guid[2:] != _GUID_TAIL:
            msg = f"unsupported WAVE_FORMAT_EXTENSIBLE sub-format {guid.hex()}"
            raise _bad("unsupported_wav_format", msg)
        (tag,) = struct.unpack_from("<H", guid, 0)
    return tag, channels, rate, block_align, bits


def _decode_frames(raw: memoryview, tag: int, width: int, channels: int) -> tuple[np.ndarray, Encoding]:
    n = len(raw) // (width * channels) * width * channels  # drop a truncated trailing frame
    b = np.frombuffer(raw[:n], dtype=np.uint8)
    if tag == MULAW and width == 1:
        return MULAW_DECODE[b], Encoding.MULAW
    if tag == ALAW and width == 1:
        return ALAW_DECODE[b], Encoding.ALAW
    if tag == PCM and width == 1:
        return ((b.astype(np.int16) - 128) << 8).astype(np.int16), Encoding.PCM16
    if tag == PCM and width == 2:
        return np.frombuffer(raw[:n], dtype="<i2").astype(np.int16), Encoding.PCM16
    if tag == PCM and width in (3, 4):
        if width == 3:
            t = b.reshape(-1, 3).astype(np.int32)
            v = (t[:, 0] | (t[:, 1] << 8) | (t[:, 2] << 16)) << 8  # top-aligned signed 32-bit
        else:
            v = np.frombuffer(raw[:n], dtype="<i4")
        out = (v.astype(np.int64) + (1 << 15)) >> 16  # round to nearest
        return np.minimum(out, 32767).astype(np.int16), Encoding.PCM16
    if tag == IEEE_FLOAT and width in (4, 8):
        f = np.frombuffer(raw[:n], dtype="<f4" if width == 4 else "<f8").astype(np.float64)
        f = np.nan_to_num(f, nan=0.0, posinf=1.0, neginf=-1.0)
        return np.clip(np.rint(f * 32768.0), -32768, 32767).astype(np.int16), Encoding.PCM16
    raise _bad("unsupported_wav_format", f"unsupported WAV format tag {tag:#x} with {width * 8}-bit samples")


def read_wav(source: str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO) -> WavAudio:
    """Parse a WAV file (path, bytes or binary file object) into int16 ``(n, channels)`` samples."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif hasattr(source, "read"):
        data = source.read()
    else:
        with open(source, "rb") as fh:
            data = fh.read()
    buf = memoryview(data)
    if len(buf) < 12 or bytes(buf[8:12]) != b"WAVE" or bytes(buf[:4]) not in (b"RIFF", b"RF64"):
        raise _bad("not_wav", "not a RIFF/WAVE file")
    rf64_size = None
    if bytes(buf[:4]) == b"RF64":
        if len(buf) < 36 or bytes(buf[12:16]) != b"ds64":
            raise _bad("bad_wav", "RF64 file without a ds64 chunk")
        (rf64_size,) = struct.unpack_from("<Q", buf, 28)
    fmt = None
    data_chunk = None
    for cid, off, size in _chunks(buf, 12, rf64_size):
        if cid == b"fmt ":
            fmt = _parse_fmt(buf, off, size)
        elif cid == b"data":
            data_chunk = (off, size)
            break
    if fmt is None:
        raise _bad("bad_wav", "WAV file has no fmt chunk before its data")
    if data_chunk is None:
        raise _bad("bad_wav", "WAV file has no data chunk")
    tag, channels, rate, block_align, bits = fmt
    if not 1 <= channels <= _MAX_CHANNELS:
        raise _bad("bad_wav", f"unsupported channel count {channels}")
    if not 1000 <= rate <= 384_000:
        raise _bad("bad_wav", f"unsupported sample rate {rate}")
    if block_align == 0 or block_align % channels:
        raise _bad("bad_wav", f"block align {block_align} does not fit {channels} channels")
    width = block_align // channels
    if width > 8 or (bits and bits > width * 8):
        raise _bad("bad_wav", f"{bits} bits per sample do not fit a {width}-byte container")
    off, size = data_chunk
    flat, hint = _decode_frames(buf[off : off + size], tag, width, channels)
    return WavAudio(sample_rate=rate, samples=flat.reshape(-1, channels), encoding_hint=hint)


def _prepare(samples: np.ndarray) -> np.ndarray:
    a = np.asarray(samples)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[1] < 1:
        raise ValueError(f"samples must be 1-D or (n, channels), got shape {a.shape}")
    if a.dtype.kind == "f":
        a = np.clip(np.rint(a.astype(np.float64) * 32768.0), -32768, 32767)
    elif a.dtype.kind not in "iu":
        raise TypeError(f"samples must be int16 or float, got {a.dtype}")
    elif a.size and (a.min() < -32768 or a.max() > 32767):
        raise ValueError("integer samples out of int16 range")
    return np.ascontiguousarray(a, dtype=np.int16)


def wav_bytes(samples: np.ndarray, sample_rate: int, encoding: Encoding = Encoding.PCM16) -> bytes:
    """Serialise samples (int16, or float in [-1, 1)) as a WAV file in ``encoding``."""
    a = _prepare(samples)
    if not 1 <= int(sample_rate) <= 0xFFFFFFFF:
        raise ValueError(f"bad sample rate {sample_rate!r}")
    encoding = Encoding(encoding)
    channels = a.shape[1]
    payload = encode(a, encoding)
    width = encoding.sample_width
    tag = {Encoding.PCM16: PCM, Encoding.ALAW: ALAW, Encoding.MULAW: MULAW}[encoding]
    rate, align = int(sample_rate), width * channels
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, width * 8)
    if tag != PCM:
        fmt += b"\x00\x00"  # cbSize for non-PCM formats
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    if tag != PCM:
        body += b"fact" + struct.pack("<II", 4, a.shape[0])
    body += b"data" + struct.pack("<I", len(payload)) + payload + (b"\x00" if len(payload) & 1 else b"")
    return b"RIFF" + struct.pack("<I", len(body)) + body


def write_wav(
    path: str | os.PathLike[str] | BinaryIO,
    samples_int16: np.ndarray,
    sample_rate: int,
    encoding: Encoding = Encoding.PCM16,
) -> None:
    """Write samples (1-D or ``(n, channels)``) as a PCM16 WAV file (or G.711 when asked)."""
    blob = wav_bytes(samples_int16, sample_rate, encoding)
    if hasattr(path, "write"):
        path.write(blob)  # type: ignore[union-attr]
        return
    with open(path, "wb") as fh:
        fh.write(blob)
