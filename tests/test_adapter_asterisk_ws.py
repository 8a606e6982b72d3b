"""Asterisk chan_websocket adapter: plain-text and JSON control, media formats, joining legs, fuzzing."""

from __future__ import annotations

import contextlib
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from speechiq.adapters.asterisk_ws import AsteriskWsAdapter, parse_control
from speechiq.audio.codecs import decode, encode_mulaw
from speechiq.audio.wavio import WavAudio
from speechiq.errors import ProtocolError
from speechiq.ingest import AudioChunk, CallEnd, CallStart, Dtmf, Encoding, Role
from speechiq.replay.platforms import messages

PLAIN = ("MEDIA_START connection_id:e226e283-c90a-4ea9-9e37-389000b9ef47 channel:WebSocket/connection1-0000001 "
         "channel_id:1761245643.1 format:ulaw optimal_frame_size:160 ptime:20")


def test_plain_text_media_start() -> None:
    a = AsteriskWsAdapter()
    (cs,) = a.feed_text(PLAIN)
    assert isinstance(cs, CallStart) and cs.platform == "asterisk"
    assert cs.call_id == "1761245643.1" and cs.encoding is Encoding.MULAW and cs.sample_rate == 8000
    assert cs.metadata["connection_id"] == "e226e283-c90a-4ea9-9e37-389000b9ef47"
    assert cs.metadata["optimal_frame_size"] == "160" and cs.channels[0].role is Role.MIXED
    assert a.feed_bytes(bytes(160)) == [AudioChunk(bytes(160), channel=0)]
    assert a.feed_text("DTMF_END digit:7") == [Dtmf("7", channel=0)]
    assert a.feed_text("MEDIA_XOFF") == [] and a.flow_paused
    assert a.feed_text("STATUS queue_length:43 xon_level:800 xoff_level:900 queue_full:false") == []
    (end,) = a.transport_closed(1000)
    assert isinstance(end, CallEnd) and a.transport_closed(1000) == []


def test_json_media_start_with_channel_variables_joins_legs() -> None:
    starts = []
    for role in ("customer", "agent"):
        a = AsteriskWsAdapter()
        (cs,) = a.feed_text(json.dumps({
            "event": "MEDIA_START", "connection_id": f"c-{role}", "channel": "WebSocket/x", "channel_id": f"id-{role}",
            "format": "slin16", "optimal_frame_size": 640, "ptime": 20,
            "channel_variables": {"SPEECHIQ_JOIN": "call-42", "SPEECHIQ_ROLE": role}}))
        assert cs.encoding is Encoding.PCM16 and cs.sample_rate == 16000
        assert cs.channels[0].role is Role(role) and cs.metadata["leg_role"] == role
        assert a.feed_text('{"event": "DTMF_END", "digit": "#", "channel_id": "x"}') == [Dtmf("#", channel=0)]
        starts.append(cs)
    assert starts[0].metadata["join_key"] == starts[1].metadata["join_key"] == "asterisk:call-42"


def test_uri_parameters_name_the_leg() -> None:
    a = AsteriskWsAdapter(params={"join": "abc", "role": "agent", "queue": "sales"})
    (cs,) = a.feed_text(PLAIN)
    assert cs.call_id == "abc" and cs.channels[0].role is Role.AGENT and cs.metadata["queue"] == "sales"
    with pytest.raises(ProtocolError) as e:
        AsteriskWsAdapter(params={"role": "boss"}).feed_text(PLAIN)
    assert e.value.code == "invalid_role"


def test_slin_partial_sample_is_carried() -> None:
    a = AsteriskWsAdapter()
    a.feed_text(PLAIN.replace("format:ulaw", "format:slin"))
    (c1,) = a.feed_bytes(b"\x01\x02\x03")
    (c2,) = a.feed_bytes(b"\x04\x05\x06")
    assert c1.data + c2.data == b"\x01\x02\x03\x04\x05\x06" and len(c1.data) == 2


@pytest.mark.parametrize(("first", "code"), [
    ("MEDIA_START connection_id:x format:opus", "unsupported_format"),
    ("DTMF_END digit:1", "not_started"),
    ("{bad json", "invalid_json"),
    ('{"no_event": 1}', "invalid_message"),
    ("   ", "invalid_message"),
    ("MEDIA_START format:ulaw", "invalid_start"),
    ('{"event": "MEDIA_START", "connection_id": "c1\\n", "format": "ulaw"}', "invalid_start"),
])
def test_errors(first: str, code: str) -> None:
    with pytest.raises(ProtocolError) as e:
        AsteriskWsAdapter().feed_text(first)
    assert e.value.code == code


def test_unknown_events_are_ignored_and_counted() -> None:
    """A newer Asterisk may add events: they must not break the call (before or after MEDIA_START)."""
    a = AsteriskWsAdapter()
    assert a.feed_text("HELLO there") == []
    (start,) = a.feed_text(PLAIN)
    assert isinstance(start, CallStart)
    assert a.feed_text('{"event": "MEDIA_SOMETHING_NEW", "channel_id": "x"}') == []
    assert a.feed_bytes(bytes(160)) == [AudioChunk(bytes(160), 0)]
    assert a.counts["unknown_event"] == 2 and a.take_counts() == {"unknown_event": 2}
    assert a.take_counts() == {}
    a.feed_text("ERROR error_text:boom")
    assert a.errors == ["boom"] and a.take_counts() == {"platform_error": 1}


def test_control_frame_limit_counts_bytes() -> None:
    a = AsteriskWsAdapter()
    a.feed_text(PLAIN)
    text = "STATUS " + "é" * 33000  # 33 007 characters, 66 007 bytes: over Asterisk's 65 500-byte limit
    with pytest.raises(ProtocolError) as e:
        a.feed_text(text)
    assert e.value.code == "text_too_large" and "66007 bytes" in e.value.message
    assert a.feed_text("STATUS " + "e" * 33000) == []


def test_media_before_start_and_second_start() -> None:
    with pytest.raises(ProtocolError) as e:
        AsteriskWsAdapter().feed_bytes(bytes(160))
    assert e.value.code == "media_before_start"
    a = AsteriskWsAdapter()
    a.feed_text(PLAIN)
    with pytest.raises(ProtocolError, match="second MEDIA_START"):
        a.feed_text(PLAIN)
    with pytest.raises(ProtocolError, match="DTMF"):
        a.feed_text("DTMF_END digit:xx")
    with pytest.raises(ProtocolError, match="DTMF"):
        a.feed_text('{"event": "DTMF_END", "digit": "5\\n"}')
    with pytest.raises(ProtocolError) as e:
        AsteriskWsAdapter(params={"join": "call-1\n"}).feed_text(PLAIN)
    assert e.value.code == "invalid_join_key"


def test_parse_control_forms() -> None:
    assert parse_control("MEDIA_BUFFERING_COMPLETED id-1") == {"event": "MEDIA_BUFFERING_COMPLETED", "args": ["id-1"]}
    assert parse_control("ERROR error_text:boom") == {"event": "ERROR", "error_text": "boom"}


@pytest.mark.parametrize(("fmt", "control"), [("ulaw", "plain-text"), ("slin", "json"), ("slin16", "plain-text")])
def test_round_trip_from_the_replay_client(fmt: str, control: str) -> None:
    rng = np.random.default_rng(11)
    rate = 16000 if fmt == "slin16" else 8000
    wav = WavAudio(rate, (rng.standard_normal((rate, 1)) * 3000).astype(np.int16), Encoding.PCM16)
    a = AsteriskWsAdapter()
    events = []
    for _t, f in messages("asterisk", wav, call_id="chan-1", options={"format": fmt, "control": control}):
        events.extend(a.feed_text(f) if isinstance(f, str) else a.feed_bytes(f))
    events.extend(a.transport_closed(1000))
    cs = events[0]
    assert isinstance(cs, CallStart) and cs.sample_rate == rate and isinstance(events[-1], CallEnd)
    got = decode(b"".join(e.data for e in events if isinstance(e, AudioChunk)), cs.encoding)
    want = decode(encode_mulaw(wav.samples[:, 0].copy()), Encoding.MULAW) if fmt == "ulaw" else wav.samples[:, 0]
    assert np.array_equal(got, want)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=120), st.binary(max_size=50),
                          st.sampled_from([PLAIN, "DTMF_END digit:1", "MEDIA_XON", '{"event":"MEDIA_START"}'])),
                max_size=6))
def test_fuzz(frames: list[str | bytes]) -> None:
    a = AsteriskWsAdapter()
    with contextlib.suppress(ProtocolError):
        for f in frames:
            a.feed_text(f) if isinstance(f, str) else a.feed_bytes(f)
    a.transport_closed(1000)
