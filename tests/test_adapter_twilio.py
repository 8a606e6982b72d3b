"""Twilio Media Streams adapter (and Telnyx / Exotel dialects): conformance, reordering, fuzzing."""

from __future__ import annotations

import base64
import contextlib
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from speechiq.adapters.twilio import TwilioAdapter, TwilioConfig
from speechiq.audio.codecs import decode, encode_mulaw
from speechiq.audio.wavio import WavAudio
from speechiq.errors import AudioFormatError, ProtocolError
from speechiq.ingest import AudioChunk, CallEnd, CallStart, Dtmf, Encoding, Gap, Role
from speechiq.replay.platforms import messages

CONNECTED = {"event": "connected", "protocol": "Call", "version": "1.0.0"}


def start_msg(tracks=("inbound", "outbound"), **fmt) -> dict:
    media_format = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1, **fmt}
    return {"event": "start", "sequenceNumber": "1", "streamSid": "MZ18ad3ab5a668481ce02b83e7395059f0",
            "start": {"streamSid": "MZ18ad3ab5a668481ce02b83e7395059f0",
                      "accountSid": "AC123", "callSid": "CA123", "tracks": list(tracks),
                      "customParameters": {"agent": "alice", "queue": "billing", "language": "en-US"},
                      "mediaFormat": media_format}}


def media(track: str, ts: int, payload: bytes = bytes(160), seq: int = 2) -> str:
    return json.dumps({"event": "media", "sequenceNumber": str(seq), "streamSid": "MZ1",
                       "media": {"track": track, "chunk": str(seq), "timestamp": str(ts),
                                 "payload": base64.b64encode(payload).decode()}})


def started(**cfg) -> TwilioAdapter:
    a = TwilioAdapter(TwilioConfig(**cfg))
    assert a.feed_text(json.dumps(CONNECTED)) == []
    a.feed_text(json.dumps(start_msg()))
    return a


def frame(n: int) -> bytes:
    return bytes([n % 256]) * 160


def test_start_maps_tracks_roles_and_metadata() -> None:
    a = TwilioAdapter()
    a.feed_text(json.dumps(CONNECTED))
    (cs,) = a.feed_text(json.dumps(start_msg()))
    assert isinstance(cs, CallStart)
    assert cs.call_id == "CA123" and cs.platform == "twilio"
    assert cs.encoding is Encoding.MULAW and cs.sample_rate == 8000 and cs.interleaved is False
    assert [(c.index, c.role, c.name) for c in cs.channels] == [
        (0, Role.CUSTOMER, "inbound"), (1, Role.AGENT, "outbound")]
    assert cs.metadata["agent"] == "alice" and cs.metadata["queue"] == "billing"
    assert cs.metadata["stream_sid"].startswith("MZ") and cs.metadata["join_key"] == "twilio:CA123"
    assert cs.language == "en"


def test_inbound_only_and_role_override() -> None:
    a = TwilioAdapter(TwilioConfig(roles={"inbound": "agent"}))
    (cs,) = a.feed_text(json.dumps(start_msg(tracks=["inbound"])))
    assert [(c.role, c.name) for c in cs.channels] == [(Role.AGENT, "inbound")]


def test_first_timestamp_is_an_offset_and_tracks_are_separate_channels() -> None:
    a = started(reorder_window=1)
    assert a.feed_text(media("inbound", 52, frame(1))) == []  # 0..52 ms missing: wait for a reorder
    assert a.feed_text(media("outbound", 0, frame(2))) == [AudioChunk(frame(2), channel=1)]
    out = a.feed_text(media("inbound", 72, frame(3)))  # window overflows: the offset is a gap
    assert out == [Gap(seconds=0.052, channel=0, reason="loss"), AudioChunk(frame(1), channel=0),
                   AudioChunk(frame(3), channel=0)]


def test_the_first_frames_are_reordered_too() -> None:
    a = started()
    assert a.feed_text(media("inbound", 20, frame(1))) == []
    assert a.feed_text(media("inbound", 0, frame(0))) == [AudioChunk(frame(0), 0), AudioChunk(frame(1), 0)]


def test_reorder_within_window_and_gap_for_a_lost_frame() -> None:
    a = started(reorder_window=3)
    a.feed_text(media("inbound", 0, frame(0)))
    assert a.feed_text(media("inbound", 40, frame(2))) == []  # 20 is missing: hold
    assert a.feed_text(media("inbound", 20, frame(1))) == [AudioChunk(frame(1), 0), AudioChunk(frame(2), 0)]
    # 60 never comes: once the window overflows the hole becomes a gap
    assert a.feed_text(media("inbound", 80, frame(4))) == []
    assert a.feed_text(media("inbound", 100, frame(5))) == []
    assert a.feed_text(media("inbound", 120, frame(6))) == []
    out = a.feed_text(media("inbound", 140, frame(7)))
    assert out[0] == Gap(seconds=0.02, channel=0, reason="loss")
    assert [e.data[0] for e in out[1:]] == [4, 5, 6, 7]


def test_duplicates_and_late_frames_are_dropped() -> None:
    a = started()
    a.feed_text(media("inbound", 0, frame(0)))
    a.feed_text(media("inbound", 20, frame(1)))
    assert a.feed_text(media("inbound", 20, frame(1))) == []
    assert a.feed_text(media("inbound", 0, frame(0))) == []
    assert a.late_frames == 2


def test_late_duplicate_and_lost_frames_are_counted() -> None:
    a = started()
    a.take_counts()
    a.feed_text(media("inbound", 0, frame(0), seq=2))
    a.feed_text(media("inbound", 0, frame(0), seq=3))  # a repeated frame (new message)
    a.feed_text(media("inbound", 20, frame(1), seq=4))
    a.feed_text(media("inbound", 40, frame(2), seq=5))
    a.feed_text(media("inbound", 20, frame(1), seq=6))  # older than one passed on
    for i in range(5, 12):  # 60 and 80 ms lost: a gap once the window is full
        a.feed_text(media("inbound", 20 * i, frame(i), seq=2 + i))
    counts = a.take_counts()
    assert counts == {"duplicate_frame": 1, "late_frame": 1, "loss_gap": 1, "loss_ms": 40}
    assert a.late_frames == 2


def _seq_msg(seq: int | str, ts: int) -> str:
    return media("inbound", ts, frame(ts // 20), seq=seq)  # type: ignore[arg-type]


def test_sequence_numbers_detect_missing_reordered_and_repeated_messages() -> None:
    a = started()  # start was sequenceNumber 1
    for seq in (2, 3, 5, 4, 6, 6, 9):
        a.feed_text(_seq_msg(seq, 20 * seq))
    # sequence checks: 4 came after 5, 6 twice; the media timeline is counted on its own:
    # the first frame is at 40 ms (0 and 20 ms lost: one 40 ms gap once the reorder window filled)
    # and the repeated 6 is also a duplicate media frame (ts 120 twice)
    assert a.take_counts() == {"sequence_out_of_order": 1, "sequence_duplicate": 1,
                               "duplicate_frame": 1, "loss_gap": 1, "loss_ms": 40}
    end = a.feed_text(json.dumps({"event": "stop", "sequenceNumber": "10", "streamSid": "MZ1",
                                  "stop": {"callSid": "CA123"}}))
    assert isinstance(end[-1], CallEnd)
    # 7 and 8 never came: two messages missing, and their 140/160 ms of media a 40 ms gap
    assert a.take_counts() == {"sequence_missing": 2, "loss_gap": 1, "loss_ms": 40}


def test_sequence_numbers_far_apart_and_invalid() -> None:
    a = started()
    a.feed_text(_seq_msg(2, 0))
    a.feed_text(_seq_msg(1000, 20))  # 997 messages skipped
    assert a.take_counts() == {"sequence_missing": 997 - 63}  # the last 63 may still arrive
    a.feed_text(_seq_msg(999, 40))
    a.feed_text(_seq_msg(3, 60))  # far behind: counted missing already
    a.feed_text(_seq_msg("x1", 80))  # not a number: counted, the frame is still used
    assert a.take_counts() == {"sequence_out_of_order": 1, "sequence_late": 1, "sequence_invalid": 1}
    a.transport_closed(1000)
    assert a.take_counts() == {"sequence_missing": 62}


def test_telnyx_sequence_number_is_snake_case() -> None:
    a = TwilioAdapter()
    base = {"event": "start", "sequence_number": "1", "stream_id": "s1",
            "start": {"call_control_id": "v3:abc", "media_format": {"encoding": "PCMU", "sample_rate": 8000}}}
    a.feed_text(json.dumps(base))
    a.feed_text(json.dumps({"event": "media", "sequence_number": "3", "stream_id": "s1",
                            "media": {"track": "inbound", "timestamp": "0",
                                      "payload": base64.b64encode(bytes(160)).decode()}}))
    a.transport_closed(1000)
    assert a.take_counts() == {"sequence_missing": 1}


def test_timestamps_lagging_the_sample_count_keep_every_frame() -> None:
    a = started()
    out = []
    for i, ts in enumerate((0, 20, 35, 50, 65, 80)):  # a timestamp clock 25 % slow: jitter, not loss
        out += a.feed_text(media("inbound", ts, frame(i)))
    assert out == [AudioChunk(frame(i), 0) for i in range(6)] and a.late_frames == 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=40), st.lists(st.integers(0, 3), max_size=40),
       st.lists(st.booleans(), max_size=40))
def test_reordered_lost_and_repeated_frames_keep_time_and_order(kept: list[bool], shifts: list[int],
                                                                 repeats: list[bool]) -> None:
    """Any local shuffle (within the window), loss and repetition: audio comes out once, in
    timestamp order, and audio + gaps always cover exactly up to the end of the last frame."""
    kept[0] = True
    sent = [i for i, k in enumerate(kept) if k]
    order = sorted(range(len(sent)), key=lambda j: j + (shifts[j] if j < len(shifts) else 0))
    a = started(reorder_window=5)
    out = []
    for j in order:
        i = sent[j]
        out += a.feed_text(media("inbound", 20 * i, frame(i)))
        if j < len(repeats) and repeats[j]:
            out += a.feed_text(media("inbound", 20 * i, frame(i)))
    out += a.transport_closed(1000)
    audio = [e.data[0] for e in out if isinstance(e, AudioChunk)]
    assert audio == [i % 256 for i in sent]  # displaced by less than the window: nothing is lost
    covered = sum(len(e.data) / 8000 for e in out if isinstance(e, AudioChunk))
    covered += sum(e.seconds for e in out if isinstance(e, Gap))
    last = max(audio)
    assert covered == pytest.approx((last + 1) * 0.02)


def test_stop_flushes_held_frames_then_ends() -> None:
    a = started()
    a.feed_text(media("inbound", 0, frame(0)))
    a.feed_text(media("inbound", 60, frame(3)))  # held: 20 and 40 missing
    out = a.feed_text(json.dumps({"event": "stop", "sequenceNumber": "5", "streamSid": "MZ1",
                                  "stop": {"accountSid": "AC123", "callSid": "CA123"}}))
    assert out == [Gap(seconds=0.04, channel=0, reason="loss"), AudioChunk(frame(3), 0),
                   CallEnd("normal", "stop")]
    assert a.feed_text(media("inbound", 80)) == []  # late frames after stop are ignored
    assert a.transport_closed(1000) == []


def test_bare_close_ends_the_call_once() -> None:
    a = started()
    a.feed_text(media("inbound", 0))
    # Twilio never resumes a stream: a drop is the end of the call, finalised at once
    (end,) = a.transport_closed(1006)
    assert isinstance(end, CallEnd) and end.reason == "transport_closed"
    assert a.transport_closed(None) == []
    assert not TwilioAdapter.resumable
    b = started()
    (clean,) = b.transport_closed(1000)
    assert clean.reason == "remote_hangup"
    c = started()
    c.feed_text(media("inbound", 0, frame(0)))
    c.feed_text(media("inbound", 40, frame(2)))  # held, waiting for 20
    out = c.transport_closed(1011, error="invalid_payload")
    assert out == [Gap(seconds=0.02, channel=0, reason="loss"), AudioChunk(frame(2), 0),
                   CallEnd("error", "invalid_payload")]


def test_dtmf_on_the_inbound_track() -> None:
    a = started()
    out = a.feed_text(json.dumps({"event": "dtmf", "sequenceNumber": "3", "streamSid": "MZ1",
                                  "dtmf": {"track": "inbound_track", "digit": "5"}}))
    assert out == [Dtmf(digit="5", channel=0)]


def test_mark_is_ignored() -> None:
    a = started()
    assert a.feed_text(json.dumps({"event": "mark", "sequenceNumber": "4", "streamSid": "MZ1",
                                   "mark": {"name": "x"}})) == []


@pytest.mark.parametrize(("text", "code"), [
    ("not json", "invalid_json"),
    ("[1, 2]", "invalid_message"),
    ('{"event": "hello"}', "unknown_event"),
    ('{"event": 3}', "invalid_message"),
])
def test_garbage_text(text: str, code: str) -> None:
    with pytest.raises(ProtocolError) as e:
        TwilioAdapter().feed_text(text)
    assert e.value.code == code


def test_media_before_start_bad_payloads_and_binary() -> None:
    with pytest.raises(ProtocolError, match="before 'start'"):
        TwilioAdapter().feed_text(media("inbound", 0))
    a = started()
    bad = json.dumps({"event": "media", "media": {"track": "inbound", "timestamp": "0", "payload": "@@@"}})
    with pytest.raises(ProtocolError) as e:
        a.feed_text(bad)
    assert e.value.code == "invalid_payload" and e.value.close_code == 1007
    with pytest.raises(ProtocolError) as e:
        a.feed_text(json.dumps({"event": "media", "media": {"track": "inbound", "timestamp": "x1",
                                                            "payload": ""}}))
    assert e.value.code == "invalid_field"
    with pytest.raises(ProtocolError) as e:
        a.feed_text(media("inbound", 10**12))
    assert e.value.code == "timestamp_jump"
    with pytest.raises(ProtocolError) as e:
        a.feed_bytes(b"\x00\x01")
    assert e.value.code == "binary_not_expected"
    b = TwilioAdapter()
    b.feed_text(json.dumps(start_msg(tracks=["inbound"])))
    with pytest.raises(ProtocolError) as e:
        b.feed_text(media("outbound", 0))
    assert e.value.code == "unknown_track"


@pytest.mark.parametrize("value", ["²", "١٢", "9" * 5000, " ", "-5", -5, 1e300, 10**16, True, "12.5"])
def test_numeric_fields_are_ascii_bounded_non_negative_integers(value: object) -> None:
    a = started()
    msg = json.loads(media("inbound", 0))
    msg["media"]["timestamp"] = value
    with pytest.raises(ProtocolError) as e:
        a.feed_text(json.dumps(msg))
    assert e.value.code == "invalid_field" and e.value.close_code == 1007


def test_dtmf_digit_and_call_id_must_match_exactly() -> None:
    a = started()
    for digit in ("5\n", "55", ""):
        with pytest.raises(ProtocolError) as e:
            a.feed_text(json.dumps({"event": "dtmf", "dtmf": {"track": "inbound_track", "digit": digit}}))
        assert e.value.code == "invalid_dtmf"
    bad = start_msg()
    bad["start"]["callSid"] = "CA1\n"
    with pytest.raises(ProtocolError) as e:
        TwilioAdapter().feed_text(json.dumps(bad))
    assert e.value.code == "invalid_start"


@pytest.mark.parametrize("encoding", ["audio/x-opus", "G722", "AMR-WB"])
def test_unsupported_codecs_are_refused(encoding: str) -> None:
    with pytest.raises(ProtocolError) as e:
        TwilioAdapter().feed_text(json.dumps(start_msg(encoding=encoding)))
    assert e.value.code == "unsupported_encoding" and e.value.close_code == 1003


def test_telnyx_snake_case_pcma() -> None:
    a = TwilioAdapter()
    a.feed_text(json.dumps({"event": "connected", "version": "1.0.0"}))
    (cs,) = a.feed_text(json.dumps({
        "event": "start", "sequence_number": "1", "stream_id": "32DE0DEA-53CB-4B21-89A4-9E1819C043BC",
        "start": {"user_id": "u1", "call_control_id": "v2:T02llQxIyaRkh", "call_session_id": "ff55a038",
                  "from": "+13122010094", "to": "+13122123456", "custom_parameters": {"customer_id": "c1"},
                  "media_format": {"encoding": "PCMA", "sample_rate": 8000, "channels": 1}}}))
    assert cs.platform == "telnyx" and cs.encoding is Encoding.ALAW
    assert cs.call_id == "v2:T02llQxIyaRkh" and cs.metadata["ani"] == "+13122010094"
    assert cs.metadata["custom_parameters"] == {"customer_id": "c1"}
    assert [c.name for c in cs.channels] == ["inbound", "outbound"]
    out = a.feed_text(json.dumps({"event": "media", "sequence_number": "2", "stream_id": "x",
                                  "media": {"track": "outbound", "chunk": "1", "timestamp": "0",
                                            "payload": base64.b64encode(frame(9)).decode()}}))
    assert out == [AudioChunk(frame(9), channel=1)]
    (end,) = a.feed_text(json.dumps({"event": "error", "sequence_number": "3",
                                     "payload": {"code": 100002, "title": "Unknown error"}}))
    assert end.reason == "error"


def test_exotel_l16_with_string_rates() -> None:
    a = TwilioAdapter()
    (cs,) = a.feed_text(json.dumps({
        "event": "start", "sequence_number": "1", "stream_sid": "s1",
        "start": {"stream_sid": "s1", "call_sid": "c1", "account_sid": "a1", "from": "1", "to": "2",
                  "media_format": {"encoding": "audio/x-raw", "sample_rate": "8000", "bit_rate": "16"}}}))
    assert cs.platform == "exotel" and cs.encoding is Encoding.PCM16 and len(cs.channels) == 1
    pcm = np.arange(800, dtype="<i2").tobytes()  # 100 ms, no track field, no timestamp
    out = a.feed_text(json.dumps({"event": "media", "sequence_number": "2", "stream_sid": "s1",
                                  "media": {"chunk": "1", "payload": base64.b64encode(pcm).decode()}}))
    assert out == [AudioChunk(pcm, channel=0)]
    with pytest.raises(AudioFormatError):
        a.feed_text(json.dumps({"event": "media", "media": {"payload": base64.b64encode(b"abc").decode()}}))


def _wav(seconds: float = 1.0, channels: int = 2) -> WavAudio:
    rng = np.random.default_rng(7)
    samples = (rng.standard_normal((int(8000 * seconds), channels)) * 4000).astype(np.int16)
    return WavAudio(8000, samples, Encoding.PCM16)


@pytest.mark.parametrize("protocol", ["twilio", "telnyx", "signalwire"])
def test_round_trip_reproduces_each_role_within_mulaw_quantisation(protocol: str) -> None:
    wav = _wav()
    a = TwilioAdapter(TwilioConfig(dialect=None if protocol == "twilio" else protocol))
    events = []
    for _t, f in messages(protocol, wav, call_id="CA999", roles=("agent", "customer")):
        assert isinstance(f, str)
        events.extend(a.feed_text(f))
    events.extend(a.transport_closed(1000))
    cs = events[0]
    assert isinstance(cs, CallStart) and isinstance(events[-1], CallEnd) and events[-1].reason == "normal"
    assert not any(isinstance(e, Gap) for e in events)
    by_role = {}
    for spec in cs.channels:
        data = b"".join(e.data for e in events if isinstance(e, AudioChunk) and e.channel == spec.index)
        by_role[spec.role] = decode(data, cs.encoding)
    for i, role in enumerate((Role.AGENT, Role.CUSTOMER)):
        expected = decode(encode_mulaw(wav.samples[:, i].copy()), Encoding.MULAW)
        assert np.array_equal(by_role[role], expected)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_fuzz_text_raises_only_protocol_errors(text: str) -> None:
    a = started()
    with contextlib.suppress(ProtocolError):
        a.feed_text(text)


# values that once crashed int(): non-ASCII digits, numbers beyond int()'s 4300-digit limit, huge floats
TRICKY = ["²", "١٢", "9" * 5000, "5\n", "-1", "1e400", "inbound_track", "PCMU", "audio/x-l16;rate=16000"]
_json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10)
                            | st.sampled_from(TRICKY) | st.sampled_from([1e300, -5, 10**16]),
                            lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
                            max_leaves=10)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["start", "media", "dtmf", "stop", "mark", "connected", "error"]),
       st.dictionaries(st.sampled_from(["media", "dtmf", "start", "stop", "streamSid", "sequenceNumber"]),
                       _json_values, max_size=4),
       st.dictionaries(st.sampled_from(["track", "timestamp", "payload", "digit", "chunk", "tracks",
                                        "mediaFormat", "callSid"]), _json_values, max_size=5))
def test_fuzz_structured_messages(event: str, top: dict, inner: dict) -> None:
    for adapter in (TwilioAdapter(), started()):
        msg = {**top, "event": event, event: inner}
        with contextlib.suppress(ProtocolError):
            adapter.feed_text(json.dumps(msg))
        adapter.transport_closed(1000)
