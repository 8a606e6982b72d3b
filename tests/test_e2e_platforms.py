"""Each telephony platform over a real socket gives the same transcript as our own protocol.

The recogniser's windows depend only on each utterance, so the same audio must produce the same
finals whichever wire format carried it. Platforms get no transcripts back on their own socket,
so the test watches every call on the engine's event tap (``subscribe("*")``).
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from conftest import engine_finals, run_watched

from speechiq.audio.wavio import WavAudio
from speechiq.ingest import Encoding
from speechiq.replay.client import replay
from speechiq.replay.platform_client import replay_platform

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def platform_server():
    from conftest import ServerThread

    st = ServerThread({"server.audiosocket_port": 0, "telephony.audiosocket_join_legs": True}).start()
    yield st
    st.stop()


def mono(wav: WavAudio, channel: int) -> WavAudio:
    return WavAudio(sample_rate=wav.sample_rate, samples=wav.samples[:, channel:channel + 1].copy(),
                    encoding_hint=Encoding.PCM16)


def reference(st, wav, roles):
    res = st.call(replay(st.url(), wav, speed=None, encoding="pcm16", roles=roles, language="en",
                         partials=False), timeout=180)
    assert res.close_code == 1000
    return sorted((e["role"], round(e["start"], 2), round(e["end"], 2), e["text"]) for e in res.finals)


@pytest.mark.parametrize("protocol", ["twilio", "audiohook", "fork", "jambonz"])
def test_stereo_platforms_match_our_protocol(platform_server, upgrade_call, protocol):
    st = platform_server
    wav, _ = upgrade_call
    pcm = WavAudio(sample_rate=wav.sample_rate, samples=wav.samples, encoding_hint=Encoding.PCM16)
    ref = reference(st, pcm, ["agent", "customer"])
    call_id = str(uuid.uuid4())
    res, events = run_watched(st, lambda: replay_platform(
        st.url(f"/v1/{protocol}"), pcm, protocol=protocol, speed=None, call_id=call_id, api_key="test-key"))
    assert res.close_code in (1000, None), (res.close_code, res.close_reason)
    got = engine_finals(events)
    assert got == ref, f"{protocol}: transcripts differ from our protocol"


@pytest.mark.parametrize("protocol", ["asterisk", "vonage"])
def test_mono_platforms_match_our_protocol(platform_server, upgrade_call, protocol):
    st = platform_server
    wav, _ = upgrade_call
    agent = mono(wav, 0)
    ref = reference(st, agent, ["mixed"])
    res, events = run_watched(st, lambda: replay_platform(
        st.url(f"/v1/{protocol}"), agent, protocol=protocol, speed=None, call_id=f"mono-{protocol}"))
    assert res.close_code in (1000, None)
    got = engine_finals(events)
    assert [g[1:] for g in got] == [r[1:] for r in ref]  # same times and text (role naming is per platform)


def test_audiosocket_two_legs_join_into_one_call(platform_server, upgrade_call):
    st = platform_server
    wav, _ = upgrade_call
    pcm = WavAudio(sample_rate=wav.sample_rate, samples=wav.samples, encoding_hint=Encoding.PCM16)
    ref = reference(st, pcm, ["agent", "customer"])
    stem = uuid.uuid4().hex[:-1]
    url = f"tcp://127.0.0.1:{st.srv.audiosocket_port}"

    async def both():
        return await asyncio.gather(
            replay_platform(url, mono(wav, 0), protocol="audiosocket", speed=None, call_id=str(uuid.UUID(stem + "2"))),
            replay_platform(url, mono(wav, 1), protocol="audiosocket", speed=None, call_id=str(uuid.UUID(stem + "1"))),
        )

    _, events = run_watched(st, both, calls=1)
    call_ids = {e.call_id for e in events if getattr(e, "type", "") == "transcript"}
    assert len(call_ids) == 1, call_ids  # one call, two channels
    got = engine_finals(events)
    assert [(g[0], g[3]) for g in got] == [(r[0], r[3]) for r in ref]
    # the second leg's clock starts when it connects (a few ms after the first)
    assert all(abs(g[1] - r[1]) < 0.1 and abs(g[2] - r[2]) < 0.1 for g, r in zip(got, ref, strict=True))
