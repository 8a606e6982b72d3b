"""One audio channel of a call: decode → resample to 16 kHz → VAD endpointing, in media time."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..audio.codecs import decode, deinterleave, to_float32
from ..audio.resample import StreamResampler
from ..ingest import ChannelSpec, Encoding
from ..settings import VadSettings
from ..vad.detectors import make_detector
from ..vad.endpointer import Endpointer, Segment

ASR_RATE = 16000


@dataclass
class ChannelState:
    """Per-channel pipeline state owned by a call session (event-loop only)."""

    spec: ChannelSpec
    resampler: StreamResampler
    endpointer: Endpointer
    sample_rate: int  # input rate of the connection feeding this channel
    encoding: Encoding
    segments_out: int = 0  # finals issued so far; the open utterance has this index
    partial_speech_mark: float = 0.0  # speech seconds at the last partial request
    partial_inflight: bool = False
    samples_in: int = 0  # input-rate samples received (media clock of this channel)
    gaps: float = 0.0
    activity: list[tuple[float, float]] = field(default_factory=list)

    @property
    def role(self) -> str:
        return self.spec.role.value

    @property
    def index(self) -> int:
        return self.spec.index

    def utterance_id(self, call_id: str, seg_index: int) -> str:
        return f"{self.spec.index}-{seg_index}"


def make_channel(spec: ChannelSpec, sample_rate: int, vad: VadSettings, encoding: Encoding,
                 offset: float = 0.0) -> ChannelState:
    return ChannelState(
        spec=spec,
        resampler=StreamResampler(sample_rate, ASR_RATE),
        endpointer=Endpointer(vad, make_detector(vad), offset=offset),
        sample_rate=sample_rate,
        encoding=encoding,
    )


def retune_channel(ch: ChannelState, sample_rate: int, encoding: Encoding) -> list[Segment]:
    """A resumed connection sends another rate or encoding: keep the media clock, restart the
    resampler at the new rate (what the old one held is flushed into the endpointer first)."""
    if sample_rate == ch.sample_rate:
        ch.encoding = encoding
        return []
    tail = ch.resampler.flush()
    segs = ch.endpointer.push(tail) if len(tail) else []
    ch.activity.extend(ch.endpointer.activity())
    ch.gaps += ch.samples_in / ch.sample_rate
    ch.samples_in = 0
    ch.sample_rate = sample_rate
    ch.encoding = encoding
    ch.resampler = StreamResampler(sample_rate, ASR_RATE)
    return segs


def split_channels(data: bytes, encoding: Encoding, n_channels: int) -> np.ndarray:
    """Encoded interleaved bytes → float32 array of shape (frames, channels)."""
    samples = decode(data, encoding)
    return to_float32(deinterleave(samples, n_channels))


def feed_channel(ch: ChannelState, samples: np.ndarray) -> list[Segment]:
    """Push float32 samples (input rate) through the channel; returns utterances that ended."""
    ch.samples_in += len(samples)
    audio16 = ch.resampler.process(np.ascontiguousarray(samples, dtype=np.float32))
    segs = ch.endpointer.push(audio16) if len(audio16) else []
    ch.activity.extend(ch.endpointer.activity())
    return segs


def flush_channel(ch: ChannelState) -> list[Segment]:
    tail = ch.resampler.flush()
    segs = ch.endpointer.push(tail) if len(tail) else []
    segs += ch.endpointer.flush()
    ch.activity.extend(ch.endpointer.activity())
    return segs


def gap_channel(ch: ChannelState, seconds: float) -> list[Segment]:
    """Audio the platform dropped or paused: flush what the resampler holds, then skip ahead."""
    tail = ch.resampler.flush()
    segs = ch.endpointer.push(tail) if len(tail) else []
    ch.resampler = StreamResampler(ch.sample_rate, ASR_RATE)
    segs += ch.endpointer.advance(seconds)
    ch.gaps += seconds
    ch.activity.extend(ch.endpointer.activity())
    return segs


def media_time(ch: ChannelState) -> float:
    return ch.samples_in / ch.sample_rate + ch.gaps
