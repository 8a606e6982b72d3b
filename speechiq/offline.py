"""Offline processing of a recording through the live pipeline (no sockets): transcribe / analyze."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from .audio.wavio import WavAudio
from .engine import Engine
from .events import Alert, Summary, Transcript
from .ingest import AudioChunk, CallEnd, CallStart, ChannelSpec, Encoding, Role

CHUNK_S = 0.5


def call_start_for(wav: WavAudio, *, call_id: str, roles: Sequence[str] | None, language: str,
                   metadata: dict[str, Any] | None = None) -> CallStart:
    if roles is None:
        roles = ("agent", "customer") if wav.channels == 2 else ("mixed",) * wav.channels
    if len(roles) != wav.channels:
        raise ValueError(f"{wav.channels} channel(s) but {len(roles)} role(s) given")
    return CallStart(
        call_id=call_id, encoding=Encoding.PCM16, sample_rate=wav.sample_rate,
        channels=tuple(ChannelSpec(index=i, role=Role(r)) for i, r in enumerate(roles)),
        language=language, platform="offline", metadata=metadata or {},
    )


def _media_key(ev: Any) -> tuple[float, int, int]:
    """Media-time order for a listing: an utterance at its start, an alert right after the
    utterance it cites (alerts carry the start of their evidence), deadlines at the deadline."""
    if isinstance(ev, Transcript):
        return (ev.start, 0, ev.channel)
    start = ev.start if ev.start is not None else ev.media_time
    return (start, 1, 0)


async def process_wav(engine: Engine, wav: WavAudio, *, call_id: str = "offline",
                      roles: Sequence[str] | None = None, language: str = "auto",
                      metadata: dict[str, Any] | None = None,
                      on_event: Callable[[Any], None] | None = None,
                      media_order: bool = False) -> Summary:
    """Feed a whole recording through VAD → ASR → analytics; events go to ``on_event``.

    The live pipeline emits finals as the recogniser finishes them, so the channels interleave by
    completion time. ``media_order``: hold final transcripts and alerts (partials are dropped) and
    deliver them sorted by media time when the recording is done, then the other events in
    arrival order — what a listing wants."""
    sink = on_event or (lambda _e: None)
    held: list[Any] = []
    others: list[Any] = []

    def collect(ev: Any) -> None:
        if isinstance(ev, Transcript):
            if ev.is_final:
                held.append(ev)
        elif isinstance(ev, Alert):
            held.append(ev)
        else:
            others.append(ev)  # the summary and notices keep their order, after the listing

    start = call_start_for(wav, call_id=call_id, roles=roles, language=language, metadata=metadata)
    binding = engine.open_call(start, collect if media_order else sink)
    step = max(1, int(wav.sample_rate * CHUNK_S))
    samples = wav.samples.astype("<i2")
    for i in range(0, len(samples), step):
        binding.handle(AudioChunk(data=samples[i:i + step].tobytes()))
        await asyncio.sleep(0)  # let ASR results flow while we feed
    summary = await binding.end(CallEnd("normal"))
    assert summary is not None
    for ev in [*sorted(held, key=_media_key), *others]:
        sink(ev)
    return summary
