"""Client-side platform generators and the replay client over real sockets (adapter-only peers)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.server import ServerConnection, serve

from speechiq.adapters import httpsig
from speechiq.adapters.audiohook import AudioHookAdapter, AudioHookConfig, check_upgrade
from speechiq.adapters.audiosocket import AudioSocketAdapter
from speechiq.adapters.base import Adapter
from speechiq.adapters.fork import ForkAdapter
from speechiq.adapters.twilio import TwilioAdapter
from speechiq.audio.wavio import WavAudio
from speechiq.events import Summary
from speechiq.ingest import AudioChunk, CallEnd, CallStart, Encoding
from speechiq.replay.platform_client import replay_platform
from speechiq.replay.platforms import PROTOCOLS, WaitFor, headers, messages

API_KEY = "SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh"
SECRET = "TXlTdXBlclNlY3JldEtleVRlbGxOby0xITJAMyM0JDU="


def wav(rate: int = 8000, seconds: float = 0.5, channels: int = 2) -> WavAudio:
    rng = np.random.default_rng(1)
    return WavAudio(rate, (rng.standard_normal((int(rate * seconds), channels)) * 2000).astype(np.int16),
                    Encoding.PCM16)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_media_times_are_monotonic_and_end_at_the_duration(protocol: str) -> None:
    w = wav()
    frames = list(messages(protocol, w, call_id="c-1"))
    times = [t for t, _ in frames]
    assert times == sorted(times) and times[-1] == pytest.approx(w.duration, abs=1e-3)
    assert times[0] == 0.0


def test_audiohook_handshake_points() -> None:
    frames = [f for _t, f in messages("audiohook", wav(), call_id="c-1")]
    assert isinstance(frames[0], str) and '"type": "open"' in frames[0]
    assert frames[1] == WaitFor("opened")
    assert isinstance(frames[-1], WaitFor) and frames[-1].what == "closed"
    assert '"type": "close"' in frames[-2]
    probe = [f for _t, f in messages("audiohook", wav(), options={"probe": True})]
    assert len(probe) == 4 and not any(isinstance(f, bytes) for f in probe)


def test_resampling_to_the_platform_rate() -> None:
    w = wav(rate=16000, seconds=0.5)
    twilio = [f for _t, f in messages("twilio", w) if isinstance(f, str) and '"media"' in f]
    assert len(twilio) == 2 * 25  # two tracks × 25 frames of 20 ms at 8 kHz
    vonage = [f for _t, f in messages("vonage", w) if isinstance(f, bytes)]
    assert {len(f) for f in vonage} == {640}


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="protocol"):
        list(messages("sip", wav()))
    with pytest.raises(ValueError, match="role"):
        list(messages("twilio", wav(), roles=("agent",)))
    with pytest.raises(ValueError, match="inbound"):
        list(messages("twilio", wav(), roles=("customer", "customer")))
    with pytest.raises(ValueError):
        list(messages("audiosocket", wav(), options={"sample_rate": 11025}))


def test_audiohook_headers_are_signed_and_accepted() -> None:
    now = time.time()
    h = headers("audiohook", url="wss://speechiq.example.com/v1/audiohook", call_id="call-9", api_key=API_KEY,
                secret=SECRET, now=now)
    assert h["Audiohook-Session-Id"] == str(uuid.uuid5(uuid.NAMESPACE_URL, "call-9"))
    config = AudioHookConfig(api_keys={API_KEY: SECRET})
    assert check_upgrade("/v1/audiohook", h, now, config) is None
    assert check_upgrade("/v1/other", h, now, config) is not None
    assert httpsig.header_dict(h)["signature-input"].startswith("sig1=(")
    assert headers("twilio", url="ws://x/v1/twilio", api_key="k") == {"Authorization": "Bearer k"}


# ---- real sockets: a minimal shell that runs one adapter per connection ------------------------------
class Peer:
    def __init__(self, make: Any) -> None:
        self.make = make
        self.events: list[Any] = []
        self.done = asyncio.Event()

    async def ws_handler(self, ws: ServerConnection) -> None:
        adapter: Adapter = self.make(ws)
        try:
            async for msg in ws:
                events = adapter.feed_text(msg) if isinstance(msg, str) else adapter.feed_bytes(msg)
                self.events.extend(events)
                if any(isinstance(e, CallEnd) for e in events):
                    adapter.on_summary(Summary(call_id="x", duration=0.0, utterances=0, roles={}))
                for frame in adapter.outbox():
                    await ws.send(frame)
        finally:
            self.events.extend(adapter.transport_closed(ws.close_code))
            self.done.set()


def _audio_seconds(events: list[Any]) -> float:
    start = next(e for e in events if isinstance(e, CallStart))
    width = start.encoding.sample_width * (len(start.channels) if start.interleaved else 1)
    per_channel = len(start.channels) if not start.interleaved else 1
    n = sum(len(e.data) for e in events if isinstance(e, AudioChunk))
    return n / width / per_channel / start.sample_rate


@pytest.mark.parametrize(("protocol", "make"), [
    ("twilio", lambda ws: TwilioAdapter()),
    ("jambonz", lambda ws: ForkAdapter()),
    ("audiohook", lambda ws: AudioHookAdapter(upgrade_headers=ws.request.headers)),
])
def test_replay_platform_over_a_real_websocket(protocol: str, make: Any) -> None:
    w = wav(seconds=0.4)

    async def run() -> tuple[Any, Peer]:
        peer = Peer(make)
        async with serve(peer.ws_handler, "127.0.0.1", 0) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            result = await replay_platform(f"ws://127.0.0.1:{port}/v1/{protocol}", w, protocol=protocol,
                                           speed=None, call_id="rt-1", api_key=API_KEY, secret=SECRET)
            await asyncio.wait_for(peer.done.wait(), 10)
        return result, peer

    result, peer = asyncio.run(run())
    assert result.close_code == 1000
    assert result.sent and result.sent[-1][0] == pytest.approx(w.duration)
    assert _audio_seconds(peer.events) == pytest.approx(w.duration)
    assert sum(isinstance(e, CallEnd) for e in peer.events) == 1
    if protocol == "audiohook":
        assert [e["type"] for e in result.events if "type" in e][:1] == ["opened"]
        assert result.events[-1]["type"] == "closed"


def test_replay_audiosocket_over_tcp() -> None:
    w = wav(seconds=0.3, channels=1)

    async def run() -> tuple[Any, list[Any]]:
        events: list[Any] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            a = AudioSocketAdapter()
            while data := await reader.read(777):
                events.extend(a.feed_bytes(data))
            events.extend(a.transport_closed(1000))
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            result = await replay_platform(f"tcp://127.0.0.1:{port}", w, protocol="audiosocket", speed=None)
        return result, events

    result, events = asyncio.run(run())
    assert result.close_code == 1000 and result.sent[-1][0] == pytest.approx(w.duration)
    assert _audio_seconds(events) == pytest.approx(w.duration)
    assert isinstance(events[-1], CallEnd)
    with pytest.raises(ValueError, match="tcp://"):
        asyncio.run(replay_platform("ws://127.0.0.1:1/x", w, protocol="audiosocket", speed=None))


# ---- the route registry the server imports -------------------------------------------------------------
def test_registry_routes_and_telephony_settings() -> None:
    from types import SimpleNamespace

    from speechiq.adapters import registry
    from speechiq.adapters.asterisk_ws import AsteriskWsAdapter
    from speechiq.errors import ConfigError

    assert {"/v1/twilio", "/v1/audiohook", "/v1/asterisk", "/v1/fork"} <= set(registry.ROUTES)
    engine = SimpleNamespace(settings=SimpleNamespace(asr=SimpleNamespace(language="en"),
                                                      server=SimpleNamespace(max_frame_bytes=4096)))
    request = SimpleNamespace(path="/v1/asterisk?join=k1&role=agent", headers={})
    adapter = registry.ROUTES["/v1/asterisk"](engine, request)
    assert isinstance(adapter, AsteriskWsAdapter) and adapter.params == {"join": "k1", "role": "agent"}
    assert isinstance(registry.ROUTES["/v1/twilio"](engine, request), TwilioAdapter)
    fork = registry.ROUTES["/v1/fork"](engine, SimpleNamespace(path="/v1/fork?call_id=c9&rate=16000", headers={}))
    assert isinstance(fork, ForkAdapter) and fork.config.max_frame_bytes == 4096

    from speechiq.settings import load_settings

    # telephony configuration comes from the settings tree, here through its environment variables
    settings = load_settings(None, environ={
        "SPEECHIQ_TELEPHONY__AUDIOHOOK_KEYS": f'{{"{API_KEY}": "{SECRET}"}}',
        "SPEECHIQ_TELEPHONY__ROLES": '{"twilio": {"inbound": "agent", "outbound": "customer"}}',
        "SPEECHIQ_TELEPHONY__AUDIOSOCKET_CODEC": "ulaw", "SPEECHIQ_TELEPHONY__AUDIOSOCKET_JOIN_LEGS": "true"})
    configured = SimpleNamespace(settings=settings)
    route = registry.ROUTES["/v1/audiohook"]
    now = time.time()
    signed = headers("audiohook", url="ws://127.0.0.1:1/v1/audiohook", api_key=API_KEY, secret=SECRET, now=now)
    assert route.check_upgrade(configured, SimpleNamespace(path="/v1/audiohook", headers=signed)) is None  # type: ignore[attr-defined]
    refusal = route.check_upgrade(configured, SimpleNamespace(path="/v1/audiohook", headers={"X-API-KEY": "x"}))  # type: ignore[attr-defined]
    assert refusal is not None and refusal[0] == 400
    assert isinstance(route(configured, SimpleNamespace(path="/v1/audiohook", headers=signed)), AudioHookAdapter)
    twilio = registry.ROUTES["/v1/twilio"](configured, request)
    assert isinstance(twilio, TwilioAdapter) and twilio.config.roles == {"inbound": "agent", "outbound": "customer"}
    cfg = registry.audiosocket_config(configured)
    assert cfg.codec == "ulaw" and cfg.join_legs
    for bad in ({"SPEECHIQ_TELEPHONY__AUDIOHOOK_KEYS": '{"k": "not base64!"}'},
                {"SPEECHIQ_TELEPHONY__AUDIOHOOK_KEYS": "[1]"},
                {"SPEECHIQ_TELEPHONY__AUDIOSOCKET_CODEC": "gsm"},
                {"SPEECHIQ_TELEPHONY__ROLES": '{"twilio": {"inbound": "boss"}}'},
                {"SPEECHIQ_TELEPHONY__ROLES": '{"skype": {"inbound": "agent"}}'}):
        with pytest.raises(ConfigError):
            load_settings(None, environ=bad)

    # no AudioHook keys: the server's API keys apply (unsigned); an engine without settings: defaults
    server_keys = SimpleNamespace(settings=SimpleNamespace(asr=engine.settings.asr,
                                                           server=SimpleNamespace(max_frame_bytes=4096,
                                                                                  api_keys=("k1",))))
    assert registry.audiohook_config(server_keys).api_keys == {"k1": ""}
    assert registry.audiosocket_config(engine).codec == "slin"
    assert isinstance(registry.audiosocket_factory(engine), AudioSocketAdapter)
