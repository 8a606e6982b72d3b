"""AudioHook reconnect over real sockets: the new session's ``open`` ``position`` is honoured.

A call streamed as one AudioHook session is the reference (its finals equal our protocol's, see
test_e2e_platforms.py). Here the same call is split into two sessions at a pause between turns:
the second ``open`` names the first in ``continuedSessions`` and carries the client's stream
position. A client *ahead* of what the call received lost audio in between: the call's timeline
gets a gap of that length, so every later utterance keeps its reference media time. A client
*behind* resends audio the call already has: that overlap is dropped, so nothing is transcribed
twice. Either way one call, one timeline.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from conftest import engine_finals, run_watched
from websockets.asyncio.client import connect

from speechiq.audio.wavio import WavAudio
from speechiq.ingest import Encoding
from speechiq.replay.client import encode
from speechiq.replay.platform_client import replay_platform
from speechiq.replay.platforms import headers

pytestmark = pytest.mark.slow
RATE = 8000
FRAME = 160  # 20 ms
SPLIT_S = 21.3  # after the agent's turn ending 21.15 s and before the customer's at 21.9 s


@pytest.fixture(scope="module")
def server():
    from conftest import ServerThread

    st = ServerThread({"server.resume_grace_s": 10.0}).start()
    yield st
    st.stop()


def _dur(seconds: float) -> str:
    return f"PT{seconds:.3f}S"


class Session:
    """A minimal AudioHook client: one session on one WebSocket."""

    def __init__(self, url: str, session_id: str) -> None:
        self.url, self.id, self.seq, self.serverseq = url, session_id, 0, 0
        self.position = 0.0
        self.received: list[dict[str, Any]] = []

    def msg(self, kind: str, params: dict[str, Any]) -> str:
        self.seq += 1
        return json.dumps({"version": "2", "id": self.id, "type": kind, "seq": self.seq,
                           "serverseq": self.serverseq, "position": _dur(self.position), "parameters": params})

    async def wait_for(self, ws: Any, kind: str) -> dict[str, Any]:
        async with asyncio.timeout(30):
            while True:
                m = json.loads(await ws.recv())
                self.received.append(m)
                self.serverseq = m.get("seq", self.serverseq)
                if m["type"] == kind:
                    return m

    async def run(self, samples: Any, *, position: float, continued: str | None, end: str) -> None:
        hdrs = headers("audiohook", url=self.url, call_id=self.id, api_key="test-key")
        hdrs.pop("Host", None)
        self.position = position
        async with connect(self.url, additional_headers=hdrs, max_size=None, compression=None) as ws:
            params: dict[str, Any] = {
                "organizationId": "11111111-1111-1111-1111-111111111111",
                "conversationId": str(uuid.uuid4()),
                "participant": {"id": str(uuid.uuid4()), "ani": "+15550100", "aniName": "Caller",
                                "dnis": "+18005550199"},
                "media": [{"type": "audio", "format": "PCMU", "channels": ["internal", "external"], "rate": RATE}],
                "language": "en-US"}
            if continued:
                params["continuedSessions"] = [{"id": continued, "serverseq": 1, "clientseq": 2}]
            await ws.send(self.msg("open", params))
            await self.wait_for(ws, "opened")
            for i in range(0, len(samples), FRAME):
                chunk = samples[i:i + FRAME]
                await ws.send(encode(chunk, "mulaw"))  # agent = internal (left), customer = external
                self.position += len(chunk) / RATE
                await asyncio.sleep(0)
            if end == "drop":
                await asyncio.sleep(0.5)  # let the server take the frames in before the socket dies
                ws.transport.abort()
                return
            await ws.send(self.msg("close", {"reason": end}))
            await self.wait_for(ws, "closed")


def counter(st: Any, kind: str) -> float:
    return st.engine.metrics.adapter_events.labels("audiohook", kind)._value.get()


@pytest.fixture(scope="module")
def reference(server, upgrade_call):
    wav, _ = upgrade_call
    pcm = WavAudio(sample_rate=wav.sample_rate, samples=wav.samples, encoding_hint=Encoding.PCM16)
    _, events = run_watched(server, lambda: replay_platform(server.url("/v1/audiohook"), pcm, protocol="audiohook",
                                                   speed=None, call_id=str(uuid.uuid4()), api_key="test-key"))
    return engine_finals(events)


@pytest.mark.parametrize(("end", "shift_s", "kind"), [
    ("reconnect", 0.4, "reconnect_gap"),  # close reason reconnect; 0.4 s lost before the new session
    ("drop", -1.0, "reconnect_overlap"),  # the socket dies; the new session resends the last 1.0 s
])
def test_reconnect_position_keeps_the_media_timeline(server, upgrade_call, reference, end, shift_s, kind):
    wav, _ = upgrade_call
    assert wav.sample_rate == RATE and wav.samples.shape[1] == 2
    split = int(SPLIT_S * RATE)
    resume_at = split + round(shift_s * RATE)  # where the second session's audio starts
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    before = counter(server, kind)

    async def both() -> None:
        await Session(server.url("/v1/audiohook"), first).run(wav.samples[:split], position=0.0, continued=None,
                                                               end=end)
        await Session(server.url("/v1/audiohook"), second).run(wav.samples[resume_at:], position=resume_at / RATE,
                                                                continued=first, end="end")

    _, events = run_watched(server, both)
    assert {e.call_id for e in events if getattr(e, "type", "") == "transcript"} == {first}  # one call
    assert counter(server, kind) == before + 1
    got = engine_finals(events)
    # overlap dropped: exactly the reference, nothing twice; gap: the lost 0.4 s held no speech,
    # so every utterance is the reference's, at its time
    expected = reference if shift_s < 0 else [r for r in reference if r[2] <= SPLIT_S or r[1] >= SPLIT_S + shift_s]
    assert [(g[0], g[3]) for g in got] == [(r[0], r[3]) for r in expected]
    assert all(abs(g[1] - r[1]) <= 0.05 and abs(g[2] - r[2]) <= 0.05 for g, r in zip(got, expected, strict=True))
