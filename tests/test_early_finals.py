"""Early finals in a live session with the real tiny.en model: an utterance is decoded once its
trailing silence covers the final's pad; the result is published as a partial at once and becomes
the final, without a second decode, when no speech follows before the hangover ends.

The feed pauses while an early decode runs, so whether the final can reuse it does not depend on
this machine's speed: every check here is deterministic.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from speechiq.audio.wavio import WavAudio
from speechiq.events import Transcript
from speechiq.ingest import AudioChunk, CallEnd, Encoding
from speechiq.offline import call_start_for

pytestmark = pytest.mark.slow
STEP_S = 0.02


def _agent(wav: WavAudio, pieces: list[tuple[float, float] | float]) -> WavAudio:
    """The agent channel, as mono: (start, end) slices of it and float seconds of silence."""
    x = wav.samples[:, 0]
    parts = [np.zeros(round(p * wav.sample_rate), x.dtype) if isinstance(p, float)
             else x[round(p[0] * wav.sample_rate):round(p[1] * wav.sample_rate)] for p in pieces]
    return WavAudio(sample_rate=wav.sample_rate, samples=np.concatenate(parts)[:, None],
                    encoding_hint=Encoding.PCM16)


def _count(engine: Any, outcome: str) -> float:
    return engine.metrics.early_finals.labels(outcome)._value.get()


async def _feed(engine: Any, wav: WavAudio, call_id: str, early: bool) -> tuple[list[Any], dict[str, float]]:
    events: list[Any] = []
    binding = engine.open_call(call_start_for(wav, call_id=call_id, roles=["agent"], language="en"), events.append)
    session = binding.session
    session.early.enabled = early
    before = {k: _count(engine, k) for k in ("submitted", "refused", "reused")}
    step = round(wav.sample_rate * STEP_S)
    samples = wav.samples.astype("<i2")
    for i in range(0, len(samples), step):
        binding.handle(AudioChunk(data=samples[i:i + step].tobytes()))
        async with asyncio.timeout(60):
            while session.early._inflight:  # let a running early decode finish before more audio
                await asyncio.sleep(0.005)
        await asyncio.sleep(0)
    await binding.end(CallEnd("normal"))
    return events, {k: _count(engine, k) - v for k, v in before.items()}


def _finals(events: list[Any]) -> list[Transcript]:
    return [e for e in events if isinstance(e, Transcript) and e.is_final]


def test_settled_utterance_is_published_early_and_reused_as_the_final(server, upgrade_call):
    wav, truth = upgrade_call
    agent = [t for t in truth["turns"] if t["speaker"] == "agent"][:2]
    clip = _agent(wav, [0.3, (agent[0]["start"] - 0.3, agent[0]["end"] + 0.3), 1.5,
                        (agent[1]["start"] - 0.3, agent[1]["end"] + 0.3), 1.5])
    events, n = server.call(_feed(server.engine, clip, "early-on", early=True), timeout=240)
    ref, n_ref = server.call(_feed(server.engine, clip, "early-off", early=False), timeout=240)
    finals = _finals(events)
    assert [(f.start, f.end, f.text) for f in finals] == [(f.start, f.end, f.text) for f in _finals(ref)]
    assert len(finals) >= 2 and n_ref == {"submitted": 0, "refused": 0, "reused": 0}
    assert n["refused"] == 0 and n["reused"] == len(finals)  # every final came from its early decode
    assert n["submitted"] >= n["reused"]
    for f in finals:  # ... which was published as a partial of the same words first
        early = [e for e in events if isinstance(e, Transcript) and not e.is_final and e.utterance_id == f.utterance_id
                 and (e.start, e.end) == (f.start, f.end)]
        assert early and early[-1].text == f.text
        assert events.index(early[-1]) < events.index(f)


def _speech(wav: WavAudio) -> list[tuple[float, float]]:
    """Speech bounds of the agent channel as the engine's VAD sees them."""
    from speechiq.audio.codecs import to_float32
    from speechiq.audio.resample import resample
    from speechiq.settings import VadSettings
    from speechiq.vad.detectors import WebRtcDetector
    from speechiq.vad.endpointer import Endpointer

    ep = Endpointer(VadSettings(), WebRtcDetector())
    x = resample(to_float32(wav.samples[:, 0]), wav.sample_rate, 16000)
    return [(s.speech_start, s.speech_end) for s in ep.push(x) + ep.flush()]


def test_speech_after_the_early_decode_gets_its_own_final(server, upgrade_call):
    wav, _ = upgrade_call
    (s0, e0), (s1, e1) = _speech(wav)[:2]
    # 0.35 s between two utterances: the first settles (pad 0.2 s), but the hangover (0.5 s) never ends
    clip = _agent(wav, [0.3, (s0 - 0.1, e0), 0.35, (s1, e1 + 0.3), 1.5])
    cut = 0.3 + e0 - (s0 - 0.1)
    events, n = server.call(_feed(server.engine, clip, "early-resumed", early=True), timeout=240)
    finals = _finals(events)
    joined = [f for f in finals if f.start < cut - 0.5 and f.end > cut + 1.0]
    assert joined, [(f.start, f.end, f.text) for f in finals]
    partials = [e for e in events if isinstance(e, Transcript) and not e.is_final
                and e.utterance_id == joined[0].utterance_id and e.end <= cut + 0.05]
    assert partials  # the early decode of the first part went out as a partial ...
    assert len(joined[0].text) > len(partials[-1].text) + 10  # ... and the final covers both parts
    assert n["submitted"] > n["reused"]
