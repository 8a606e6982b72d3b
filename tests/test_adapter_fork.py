"""FreeSWITCH mod_audio_fork / mod_audio_stream, jambonz listen and Vonage adapter."""

from __future__ import annotations

import contextlib
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from speechiq.adapters.fork import ForkAdapter, ForkConfig
from speechiq.audio.wavio import WavAudio
from speechiq.errors import ConfigError, ProtocolError
from speechiq.ingest import AudioChunk, CallEnd, CallStart, Dtmf, Encoding, MetadataUpdate, Role
from speechiq.replay.platforms import messages


def test_jambonz_stereo_read_left() -> None:
    a = ForkAdapter()
    (cs,) = a.feed_text(json.dumps({"callSid": "b6f2e3a1", "direction": "inbound", "from": "+15550100",
                                    "sampleRate": 16000, "mixType": "stereo", "metadata": {"queue": "billing"}}))
    assert isinstance(cs, CallStart) and cs.platform == "jambonz" and cs.call_id == "b6f2e3a1"
    assert cs.sample_rate == 16000 and cs.encoding is Encoding.PCM16 and cs.interleaved
    assert [(c.role, c.name) for c in cs.channels] == [(Role.CUSTOMER, "read"), (Role.AGENT, "write")]
    assert cs.metadata["queue"] == "billing" and cs.metadata["direction"] == "inbound"
    assert a.feed_text('{"event": "dtmf", "dtmf": "5", "duration": 120}') == [Dtmf("5", duration_ms=120)]


def test_role_flip_when_the_bug_is_on_the_agent_leg() -> None:
    a = ForkAdapter(ForkConfig(roles={"read": "agent", "write": "customer"}))
    (cs,) = a.feed_text(json.dumps({"callSid": "x", "sampleRate": 8000, "mixType": "stereo"}))
    assert [c.role for c in cs.channels] == [Role.AGENT, Role.CUSTOMER]


def test_vonage_connected_is_mixed_l16() -> None:
    a = ForkAdapter()
    (cs,) = a.feed_text(json.dumps({"event": "websocket:connected", "content-type": "audio/l16;rate=16000",
                                    "conversation_uuid": "CON-123", "agent": "bob"}))
    assert cs.platform == "vonage" and cs.sample_rate == 16000 and cs.call_id == "CON-123"
    assert [c.role for c in cs.channels] == [Role.MIXED] and cs.metadata["agent"] == "bob"
    assert a.feed_bytes(bytes(640)) == [AudioChunk(bytes(640))]
    assert a.feed_text('{"event":"websocket:dtmf","digit":"#","duration":260}') == [Dtmf("#", duration_ms=260)]
    with pytest.raises(ProtocolError) as e:
        ForkAdapter().feed_text(json.dumps({"event": "websocket:connected", "content-type": "audio/opus"}))
    assert e.value.code == "unsupported_encoding"


def test_freeswitch_without_metadata_uses_uri_and_defaults() -> None:
    a = ForkAdapter(params={"call_id": "fs-uuid-1", "rate": "16k", "mix": "mono", "role": "agent"})
    cs, chunk = a.feed_bytes(bytes(640))
    assert cs.call_id == "fs-uuid-1" and cs.sample_rate == 16000 and cs.platform == "fork"
    assert cs.channels[0].role is Role.AGENT and chunk == AudioChunk(bytes(640))


def test_freeswitch_free_text_metadata_and_stop_text() -> None:
    a = ForkAdapter()
    (cs,) = a.feed_text("agent=42;queue=sales")
    assert cs.metadata["fork_metadata"] == {"metadata_text": "agent=42;queue=sales"}
    assert a.feed_text("stop bye") == [] and a.texts_ignored == 1
    (upd,) = a.feed_text('{"note": "wrap-up"}')
    assert isinstance(upd, MetadataUpdate)


def test_odd_frames_are_carried_never_dropped() -> None:
    a = ForkAdapter()
    a.feed_text(json.dumps({"callSid": "c", "sampleRate": 8000, "mixType": "stereo"}))
    pieces = [b"\x01\x02\x03", b"\x04\x05", b"\x06\x07\x08\x09", b"\x0a\x0b\x0c"]
    out = b"".join(e.data for p in pieces for e in a.feed_bytes(p))
    assert out == bytes(range(1, 13)) and all(len(e.data) % 4 == 0 for p in [b"\x00" * 4] for e in a.feed_bytes(p))


def test_join_key_from_uri() -> None:
    a = ForkAdapter(params={"join": "conf-7", "role": "customer"})
    (cs,) = a.feed_text("{}")
    assert cs.metadata["join_key"] == "fork:conf-7" and cs.metadata["leg_role"] == "customer"


@pytest.mark.parametrize(("first", "params", "code"), [
    ('{"callSid": "c", "sampleRate": 11025, "mixType": "mono"}', {}, "unsupported_sample_rate"),
    ('{"callSid": "c", "sampleRate": 8000, "mixType": "quad"}', {}, "unsupported_mix"),
    ("{}", {"call_id": "has spaces"}, "invalid_call_id"),
    ("{}", {"rate": "fast"}, "unsupported_sample_rate"),
    ("{}", {"role": "boss"}, "invalid_role"),
    ('{"sampleRate": "' + "9" * 5000 + '"}', {}, "unsupported_sample_rate"),
    ('{"sampleRate": "\u00b2"}', {}, "unsupported_sample_rate"),
    ("{}", {"call_id": "c1\n"}, "invalid_call_id"),
    ("{}", {"join": "leg\n"}, "invalid_join_key"),
])
def test_errors(first: str, params: dict[str, str], code: str) -> None:
    with pytest.raises(ProtocolError) as e:
        ForkAdapter(params=params).feed_text(first)
    assert e.value.code == code


def test_dtmf_digit_must_be_exactly_one_key() -> None:
    a = ForkAdapter()
    a.feed_text('{"callSid": "c", "sampleRate": 8000, "mixType": "mono"}')
    assert a.feed_text('{"event": "dtmf", "dtmf": "#"}') == [Dtmf(digit="#")]
    for digit in ("5\n", "12", ""):
        with pytest.raises(ProtocolError) as e:
            a.feed_text(json.dumps({"event": "dtmf", "dtmf": digit}))
        assert e.value.code == "invalid_dtmf"


def test_config_validation_and_end() -> None:
    with pytest.raises(ConfigError):
        ForkConfig(mix="surround")
    a = ForkAdapter()
    a.feed_bytes(bytes(320))
    (end,) = a.transport_closed(1000)
    assert isinstance(end, CallEnd)
    assert a.feed_bytes(bytes(320)) == [] and a.feed_text("{}") == []


@pytest.mark.parametrize(("protocol", "channels", "rate"), [
    ("fork", 2, 8000), ("fork", 1, 16000), ("jambonz", 2, 16000), ("jambonz", 1, 8000), ("vonage", 1, 16000)])
def test_round_trip_is_exact(protocol: str, channels: int, rate: int) -> None:
    rng = np.random.default_rng(9)
    wav = WavAudio(rate, (rng.standard_normal((rate, channels)) * 3000).astype(np.int16), Encoding.PCM16)
    roles = ("agent", "customer") if channels == 2 else ("customer",)
    a = ForkAdapter()
    events = []
    for _t, f in messages(protocol, wav, call_id="call-1", roles=roles, frame_ms=30):
        events.extend(a.feed_text(f) if isinstance(f, str) else a.feed_bytes(f))
    cs = events[0]
    assert isinstance(cs, CallStart) and cs.call_id == "call-1" and cs.sample_rate == rate
    got = np.frombuffer(b"".join(e.data for e in events if isinstance(e, AudioChunk)), "<i2").reshape(-1, channels)
    for spec in cs.channels:
        want = wav.samples[:, roles.index(spec.role.value)] if protocol != "vonage" else wav.samples[:, 0]
        assert np.array_equal(got[:, spec.index], want)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=100), st.binary(max_size=50),
                          st.sampled_from(['{"callSid":"c","sampleRate":8000,"mixType":"stereo"}',
                                           '{"event":"dtmf","dtmf":"1"}', '{"event":"websocket:dtmf","digit":1e999}',
                                           '{"event":"websocket:connected","content-type":"audio/l16;rate=9"}'])),
                max_size=6))
def test_fuzz(frames: list[str | bytes]) -> None:
    a = ForkAdapter()
    with contextlib.suppress(ProtocolError):
        for f in frames:
            a.feed_text(f) if isinstance(f, str) else a.feed_bytes(f)
    a.transport_closed(1000)
