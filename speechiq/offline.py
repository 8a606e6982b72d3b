"""Offline processing of a recording through the live pipeline (no sockets): transcribe / analyze."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from .audio.wavio import WavAudio
from .engine import Engine
from .events import Summary
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


async def process_wav(engine: Engine, wav: WavAudio, *, call_id: str = "offline",
                      roles: Sequence[str] | None = None, language: str = "auto",
                      metadata: dict[str, Any] | None = None,
                      on_event: Callable[[Any], None] | None = None) -> Summary:
    """Feed a whole recording through VAD → ASR → analytics; events go to ``on_event``."""
    start = call_start_for(wav, call_id=call_id, roles=roles, language=language, metadata=metadata)
    binding = engine.open_call(start, on_event or (lambda _e: None))
    step = max(1, int(wav.sample_rate * CHUNK_S))
    samples = wav.samples.astype("<i2")
    for i in range(0, len(samples), step):
        binding.handle(AudioChunk(data=samples[i:i + step].tobytes()))
        await asyncio.sleep(0)  # let ASR results flow while we feed
    summary = await binding.end(CallEnd("normal"))
    assert summary is not None
    return summary
