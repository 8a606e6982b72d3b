"""Sans-I/O tests of our own protocol parser (no sockets)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from speechiq.adapters.native import NativeAdapter, NativeConfig
from speechiq.errors import ProtocolError
from speechiq.ingest import AudioChunk, CallEnd, CallStart, Dtmf, Encoding, MetadataUpdate, Role


def start(**kw):
    msg = {"type": "start", "call_id": "c1", "encoding": "mulaw", "sample_rate": 8000,
           "channels": [{"role": "agent"}, {"role": "customer"}], "language": "en",
           "metadata": {"queue": "billing"}}
    msg.update(kw)
    return json.dumps(msg)


def started() -> NativeAdapter:
    a = NativeAdapter()
    a.feed_text(start())
    return a


def test_start_produces_call_start():
    a = NativeAdapter()
    (ev,) = a.feed_text(start(hotwords=["Northwind"], prompt="telecom"))
    assert isinstance(ev, CallStart)
    assert ev.call_id == "c1" and ev.encoding is Encoding.MULAW and ev.sample_rate == 8000
    assert [c.role for c in ev.channels] == [Role.AGENT, Role.CUSTOMER]
    assert ev.metadata["queue"] == "billing" and ev.hotwords == ("Northwind",)


def test_audio_dtmf_metadata_stop():
    a = started()
    assert a.feed_bytes(b"\xff" * 320) == [AudioChunk(b"\xff" * 320)]
    assert a.feed_text('{"type":"dtmf","digit":"5"}') == [Dtmf("5")]
    (m,) = a.feed_text('{"type":"metadata","metadata":{"agent_id":"a1"},"language":"zh"}')
    assert isinstance(m, MetadataUpdate) and m.language == "zh" and m.metadata["agent_id"] == "a1"
    (end,) = a.feed_text('{"type":"stop"}')
    assert isinstance(end, CallEnd) and end.reason == "normal"
    assert a.transport_closed(1000) == []  # exactly one CallEnd


@pytest.mark.parametrize(
    ("feed", "code", "close"),
    [
        (lambda a: a.feed_text("{not json"), "invalid_json", 1007),
        (lambda a: a.feed_text("[1,2]"), "invalid_message", 1008),
        (lambda a: a.feed_bytes(b"\x00\x00"), "binary_before_start", 1008),
        (lambda a: a.feed_text('{"type":"stop"}'), "not_started", 1008),
        (lambda a: a.feed_text(start(encoding="opus")), "unsupported_encoding", 1003),
        (lambda a: a.feed_text(start(sample_rate=12345)), "unsupported_sample_rate", 1003),
        (lambda a: a.feed_text(start(sample_rate="8000")), "unsupported_sample_rate", 1003),
        (lambda a: a.feed_text(start(channels=[{"role": "boss"}])), "invalid_start", 1008),
        (lambda a: a.feed_text(start(channels=[])), "invalid_start", 1008),
        (lambda a: a.feed_text(start(language="fr")), "unsupported_language", 1008),
        (lambda a: a.feed_text(start(call_id="bad id!")), "invalid_start", 1008),
        (lambda a: a.feed_text('{"type":"hello"}'), "unknown_type", 1008),
    ],
)
def test_bad_input_before_start(feed, code, close):
    with pytest.raises(ProtocolError) as info:
        feed(NativeAdapter())
    assert info.value.code == code and info.value.close_code == close
    assert info.value.message  # a human sentence


def test_bad_input_after_start():
    a = NativeAdapter(NativeConfig(max_frame_bytes=1024))
    a.feed_text(start(encoding="pcm16"))
    with pytest.raises(ProtocolError) as info:
        a.feed_bytes(b"\x00" * 6)  # 2 channels × 2 bytes: 6 is not a whole frame
    assert info.value.code == "odd_byte_count" and info.value.close_code == 1007
    with pytest.raises(ProtocolError) as info:
        a.feed_bytes(b"\x00" * 2048)
    assert info.value.code == "frame_too_large" and info.value.close_code == 1009
    with pytest.raises(ProtocolError) as info:
        a.feed_text(start())
    assert info.value.code == "duplicate_start"
    with pytest.raises(ProtocolError) as info:
        a.feed_text('{"type":"dtmf","digit":"x"}')
    assert info.value.code == "invalid_dtmf" and info.value.close_code is None  # reported, call goes on


def test_engine_feedback_frames():
    a = started()
    a.on_started("c1", "tok", {"resumed": False, "media_time": 0.0})
    (frame,) = a.outbox()
    assert json.loads(frame) == {"type": "started", "call_id": "c1", "resume_token": "tok", "resumed": False,
                                 "media_time": 0.0}
    assert json.loads(a.error_frame(ProtocolError("x", "msg"))) == {"type": "error", "code": "x",
                                                                   "message": "msg"}


@given(st.one_of(st.text(max_size=200), st.binary(max_size=200)))
def test_fuzz_never_raises_anything_but_protocol_error(data):
    for a in (NativeAdapter(), started()):
        try:
            if isinstance(data, str):
                a.feed_text(data)
            else:
                a.feed_bytes(data)
        except ProtocolError:
            pass
