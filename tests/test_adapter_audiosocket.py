"""Asterisk AudioSocket (TCP TLV) adapter: framing across reads, kinds, codecs, leg joining, fuzzing."""

from __future__ import annotations

import contextlib
import uuid

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from speechiq.adapters.audiosocket import AudioSocketAdapter, AudioSocketConfig, frame, leg_of
from speechiq.audio.codecs import decode, encode_mulaw
from speechiq.audio.wavio import WavAudio
from speechiq.errors import ProtocolError
from speechiq.ingest import AudioChunk, CallEnd, CallStart, Dtmf, Encoding, Role
from speechiq.replay.platforms import messages

UID = uuid.UUID("40325ec2-5efd-4bd3-805f-53576e581d13")


def test_uuid_then_audio_starts_the_call() -> None:
    a = AudioSocketAdapter()
    assert a.feed_bytes(frame(0x01, UID.bytes)) == []
    pcm = np.arange(160, dtype="<i2").tobytes()
    cs, chunk = a.feed_bytes(frame(0x10, pcm))
    assert isinstance(cs, CallStart) and cs.call_id == str(UID) and cs.sample_rate == 8000
    assert cs.encoding is Encoding.PCM16 and cs.channels[0].role is Role.MIXED
    assert cs.metadata["uuid"] == str(UID) and "join_key" not in cs.metadata
    assert chunk == AudioChunk(pcm, channel=0)


def test_frames_split_and_merged_arbitrarily() -> None:
    stream = frame(0x01, UID.bytes) + b"".join(frame(0x10, bytes([i]) * 320) for i in range(5))
    for size in (1, 2, 3, 7, 64, len(stream)):
        a = AudioSocketAdapter()
        events = []
        for i in range(0, len(stream), size):
            events.extend(a.feed_bytes(stream[i:i + size]))
        audio = b"".join(e.data for e in events if isinstance(e, AudioChunk))
        assert audio == b"".join(bytes([i]) * 320 for i in range(5))


@pytest.mark.parametrize(("kind", "rate"), [(0x11, 12000), (0x12, 16000), (0x16, 48000), (0x18, 192000)])
def test_first_audio_kind_fixes_the_rate(kind: int, rate: int) -> None:
    a = AudioSocketAdapter()
    cs, _ = a.feed_bytes(frame(0x01, UID.bytes) + frame(kind, bytes(640)))
    assert cs.sample_rate == rate
    with pytest.raises(ProtocolError) as e:
        a.feed_bytes(frame(0x10, bytes(320)))
    assert e.value.code == "rate_changed"


def test_dtmf_before_and_after_audio_and_hangup() -> None:
    a = AudioSocketAdapter()
    assert a.feed_bytes(frame(0x01, UID.bytes) + frame(0x03, b"5")) == []
    cs, dtmf, _chunk = a.feed_bytes(frame(0x10, bytes(320)))
    assert isinstance(cs, CallStart) and dtmf == Dtmf("5", channel=0)
    assert a.feed_bytes(frame(0x03, b"#")) == [Dtmf("#", channel=0)]
    assert a.feed_bytes(frame(0x03, b"x")) == [] and a.ignored_dtmf == 1
    assert a.feed_bytes(frame(0x00)) == [CallEnd("normal", "audiosocket hangup")]
    assert a.feed_bytes(frame(0x10, bytes(320))) == []
    assert a.transport_closed(1000) == []


def test_error_frame_and_bare_close() -> None:
    a = AudioSocketAdapter()
    a.feed_bytes(frame(0x01, UID.bytes) + frame(0x10, bytes(320)))
    (end,) = a.feed_bytes(frame(0xFF, b"\x01"))
    assert end.reason == "error" and "0x01" in end.detail
    b = AudioSocketAdapter()
    b.feed_bytes(frame(0x01, UID.bytes) + frame(0x10, bytes(320))[:5])  # partial frame at EOF
    (end,) = b.transport_closed(1000)
    assert isinstance(end, CallEnd)


def test_ulaw_labelled_as_slin() -> None:
    a = AudioSocketAdapter(AudioSocketConfig(codec="ulaw"))
    cs, chunk = a.feed_bytes(frame(0x01, UID.bytes) + frame(0x10, bytes(160)))
    assert cs.encoding is Encoding.MULAW and chunk == AudioChunk(bytes(160), channel=0)


def test_odd_slin_payload_is_carried_over() -> None:
    a = AudioSocketAdapter()
    a.feed_bytes(frame(0x01, UID.bytes))
    _cs, c1 = a.feed_bytes(frame(0x10, b"\x01\x02\x03"))
    (c2,) = a.feed_bytes(frame(0x10, b"\x04"))
    assert c1.data + c2.data == b"\x01\x02\x03\x04"


@pytest.mark.parametrize(("stream", "code"), [
    (frame(0x10, bytes(320)), "uuid_expected"),
    (frame(0x01, b"short"), "invalid_uuid"),
    (frame(0x01, UID.bytes) + frame(0x01, UID.bytes), "duplicate_uuid"),
    (frame(0x01, UID.bytes) + frame(0x42, b"?"), "unknown_kind"),
])
def test_protocol_errors(stream: bytes, code: str) -> None:
    with pytest.raises(ProtocolError) as e:
        AudioSocketAdapter().feed_bytes(stream)
    assert e.value.code == code and e.value.close_code is not None
    with pytest.raises(ProtocolError):
        AudioSocketAdapter().feed_text("hello")


def test_joining_two_legs_by_uuid() -> None:
    base = "40325ec2-5efd-4bd3-805f-53576e581d1"
    config = AudioSocketConfig(join_legs=True)
    starts = []
    for digit, role in (("1", Role.CUSTOMER), ("2", Role.AGENT)):
        a = AudioSocketAdapter(config)
        cs, _ = a.feed_bytes(frame(0x01, uuid.UUID(base + digit).bytes) + frame(0x10, bytes(320)))
        assert cs.channels[0].role is role and cs.metadata["leg_role"] == role.value
        starts.append(cs)
    assert starts[0].metadata["join_key"] == starts[1].metadata["join_key"] == f"audiosocket:{base}"
    assert starts[0].call_id == starts[1].call_id == base + "0"
    assert leg_of(base + "f", True) == (base + "f", None, None)
    assert leg_of(base + "1", False) == (base + "1", None, None)


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        AudioSocketConfig(codec="opus")
    assert AudioSocketAdapter(AudioSocketConfig(role="agent")).config.role == "agent"


@pytest.mark.parametrize(("codec", "rate"), [("slin", 8000), ("slin", 16000), ("ulaw", 8000)])
def test_round_trip_from_the_replay_client(codec: str, rate: int) -> None:
    rng = np.random.default_rng(5)
    wav = WavAudio(rate, (rng.standard_normal((rate, 1)) * 3000).astype(np.int16), Encoding.PCM16)
    a = AudioSocketAdapter(AudioSocketConfig(codec=codec))
    stream = b"".join(f for _t, f in messages("audiosocket", wav, call_id=str(UID),
                                                options={"codec": codec, "sample_rate": rate}))
    events = []
    for i in range(0, len(stream), 1000):  # TCP reads do not follow frame borders
        events.extend(a.feed_bytes(stream[i:i + 1000]))
    events.extend(a.transport_closed(1000))
    cs = events[0]
    assert isinstance(cs, CallStart) and cs.call_id == str(UID) and cs.sample_rate == rate
    got = decode(b"".join(e.data for e in events if isinstance(e, AudioChunk)), cs.encoding)
    want = wav.samples[:, 0] if codec == "slin" else decode(encode_mulaw(wav.samples[:, 0].copy()), Encoding.MULAW)
    assert np.array_equal(got, want)
    assert isinstance(events[-1], CallEnd)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.binary(max_size=80), max_size=6), st.booleans())
def test_fuzz_bytes(chunks: list[bytes], with_uuid: bool) -> None:
    a = AudioSocketAdapter()
    prefix = frame(0x01, UID.bytes) if with_uuid else b""
    with contextlib.suppress(ProtocolError):
        for c in [prefix, *chunks]:
            a.feed_bytes(c)
    a.transport_closed(1000)
