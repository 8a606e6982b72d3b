"""Genesys AudioHook v2 adapter: conformance expectations from the protocol specification."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from speechiq.adapters.audiohook import (
    AudioHookAdapter,
    AudioHookConfig,
    engine_language,
    format_duration,
    parse_duration,
)
from speechiq.audio.codecs import decode, encode_mulaw
from speechiq.audio.wavio import WavAudio
from speechiq.errors import AudioFormatError, ProtocolError
from speechiq.events import Summary
from speechiq.ingest import AudioChunk, CallEnd, CallStart, Encoding, Gap, MetadataUpdate, Role
from speechiq.replay.platforms import WaitFor, messages

SID = "7b1c4a6e-1f7e-4f6e-9b8a-0c2d3e4f5a6b"
ORG = "d7934305-0972-4844-938e-9060eef73d05"
NIL = "00000000-0000-0000-0000-000000000000"
STEREO = {"type": "audio", "format": "PCMU", "channels": ["external", "internal"], "rate": 8000}
MONO_EXT = {"type": "audio", "format": "PCMU", "channels": ["external"], "rate": 8000}
MONO_INT = {"type": "audio", "format": "PCMU", "channels": ["internal"], "rate": 8000}
SUMMARY = Summary(call_id=SID, duration=1.0, utterances=0, roles={})


class Client:
    """Builds client messages with correct numbering (like the reference client)."""

    def __init__(self, adapter: AudioHookAdapter, session: str = SID) -> None:
        self.a, self.session, self.seq, self.position = adapter, session, 0, 0.0

    def msg(self, kind: str, params: dict[str, Any] | None = None, **override: Any) -> str:
        self.seq += 1
        body = {"version": "2", "id": self.session, "type": kind, "seq": self.seq,
                "serverseq": self.a.seq, "position": format_duration(self.position), "parameters": params or {}}
        body.update(override)
        return json.dumps(body)

    def send(self, kind: str, params: dict[str, Any] | None = None, **override: Any) -> list[Any]:
        return self.a.feed_text(self.msg(kind, params, **override))

    def open(self, media: list[dict[str, Any]] | None = None, **extra: Any) -> list[Any]:
        params = {"organizationId": ORG, "conversationId": "090eaa2f-72fa-480a-83e0-8667ff89c0ec",
                  "participant": {"id": "883efee8-3d6c-4537-b500-6d7ca4b92fa0", "ani": "+15550100",
                                  "aniName": "J. Doe", "dnis": "+18005550199"},
                  "media": [STEREO, MONO_EXT, MONO_INT] if media is None else media,
                  "language": "en-US", **extra}
        return self.send("open", params)


def replies(a: AudioHookAdapter) -> list[dict[str, Any]]:
    return [json.loads(f) for f in a.outbox()]


def opened(**cfg: Any) -> tuple[AudioHookAdapter, Client]:
    a = AudioHookAdapter(AudioHookConfig(**cfg))
    c = Client(a)
    c.open()
    a.outbox()
    return a, c


def test_open_answers_opened_at_once_with_one_stereo_offer() -> None:
    a = AudioHookAdapter()
    c = Client(a)
    (cs,) = c.open()
    (op,) = replies(a)
    assert op["type"] == "opened" and op["seq"] == 1 and op["clientseq"] == 1 and op["id"] == SID
    assert op["parameters"]["media"] == [STEREO] and op["parameters"]["startPaused"] is False
    assert isinstance(cs, CallStart) and cs.call_id == SID and cs.platform == "audiohook"
    assert cs.encoding is Encoding.MULAW and cs.sample_rate == 8000 and cs.interleaved
    assert [(ch.index, ch.role, ch.name) for ch in cs.channels] == [
        (0, Role.CUSTOMER, "external"), (1, Role.AGENT, "internal")]
    assert cs.metadata["ani"] == "+15550100" and cs.metadata["organization_id"] == ORG
    assert cs.language == "en" and cs.resume_token == SID


def test_inverted_channel_order_follows_the_offer() -> None:
    a = AudioHookAdapter()
    inverted = {**STEREO, "channels": ["internal", "external"]}
    (cs,) = Client(a).open([inverted])
    assert [ch.role for ch in cs.channels] == [Role.AGENT, Role.CUSTOMER]
    assert replies(a)[0]["parameters"]["media"] == [inverted]


def test_mono_and_l16_selection() -> None:
    a = AudioHookAdapter()
    (cs,) = Client(a).open([MONO_INT, {**STEREO, "format": "OPUS"}])
    assert [ch.role for ch in cs.channels] == [Role.AGENT]
    b = AudioHookAdapter()
    (cs,) = Client(b).open([{**STEREO, "format": "L16"}])
    assert cs.encoding is Encoding.PCM16


def test_ping_pong_sequence_numbers() -> None:
    a, c = opened()
    assert c.send("ping", {"rtt": "PT0.05S"}) == []
    (pong,) = replies(a)
    assert pong["type"] == "pong" and pong["seq"] == 2 and pong["clientseq"] == 2 == c.seq


def test_sequence_violations() -> None:
    a, c = opened()
    c.seq += 1  # skip one
    with pytest.raises(ProtocolError) as e:
        c.send("ping")
    assert e.value.code == "seq_mismatch"
    frame = json.loads(a.error_frame(e.value))
    assert frame["type"] == "disconnect" and frame["parameters"]["reason"] == "error" and frame["seq"] == 2
    a, c = opened()
    with pytest.raises(ProtocolError, match="serverseq"):
        c.send("ping", serverseq=5)
    a, c = opened()
    with pytest.raises(ProtocolError) as e:
        c.send("ping", id="00000000-0000-0000-0000-000000000001")
    assert e.value.code == "session_id_mismatch"


def test_organization_must_match_the_upgrade_header() -> None:
    a = AudioHookAdapter(upgrade_headers={"Audiohook-Organization-Id": "other", "Audiohook-Session-Id": SID})
    with pytest.raises(ProtocolError) as e:
        Client(a).open()
    assert e.value.code == "unauthorized"
    assert json.loads(a.error_frame(e.value))["parameters"]["reason"] == "unauthorized"


def test_update_discarded_paused_resumed_error() -> None:
    a, c = opened()
    (upd,) = c.send("update", {"language": "zh-CN"})
    assert isinstance(upd, MetadataUpdate) and upd.language == "zh"
    assert c.send("discarded", {"start": "PT1S", "discarded": "PT0.5S"}) == [Gap(0.5, reason="discard")]
    assert c.send("paused") == [] and a.state == "paused"
    assert c.send("resumed", {"start": "PT2S", "discarded": "PT3.25S"}) == [Gap(3.25, reason="pause")]
    assert a.state == "active" and a.discarded == pytest.approx(3.75)
    assert c.send("error", {"code": 429, "message": "slow down", "retryAfter": "PT1S"}) == []
    assert a.client_errors[0]["code"] == 429
    with pytest.raises(ProtocolError, match="duration"):
        c.send("discarded", {"start": "PT1S", "discarded": "1 second"})


def test_close_then_closed_only_after_the_summary() -> None:
    a, c = opened()
    assert a.feed_bytes(bytes(1600)) == [AudioChunk(bytes(1600))]
    (end,) = c.send("close", {"reason": "end"})
    assert end == CallEnd("normal", "audiohook close: end")
    assert a.outbox() == []  # not before the call is flushed
    assert a.feed_bytes(bytes(16)) == []  # no audio after close
    a.on_summary(SUMMARY)
    (closed,) = replies(a)
    assert closed["type"] == "closed" and closed["seq"] == 2 and closed["clientseq"] == c.seq
    a.on_summary(SUMMARY)
    assert a.outbox() == []
    assert a.feed_text(c.msg("ping")) == []  # after closed: ignored


def test_reconnect_close_answers_at_once_and_keeps_the_call() -> None:
    a, c = opened()
    (end,) = c.send("close", {"reason": "reconnect"})
    assert end.reason == "reconnect" and replies(a)[0]["type"] == "closed"


def test_connection_probe() -> None:
    a = AudioHookAdapter()
    c = Client(a)
    params = {"organizationId": ORG, "conversationId": NIL, "participant": {"id": NIL, "ani": "", "aniName": "",
                                                                            "dnis": ""},
              "media": [STEREO]}
    assert c.send("open", params) == []
    assert replies(a)[0]["type"] == "opened"
    (end,) = c.send("close", {"reason": "end"})
    assert isinstance(end, CallEnd) and replies(a)[0]["type"] == "closed"


def test_no_media_and_unsupported_media() -> None:
    a = AudioHookAdapter()
    assert Client(a).open([]) == []
    assert replies(a)[0]["parameters"]["media"] == []
    b = AudioHookAdapter()
    c = Client(b)
    assert c.open([{**STEREO, "rate": 44100}]) == []  # refused in-protocol: opened (no media), disconnect
    assert [(m["type"], m["seq"], m["parameters"].get("media")) for m in replies(b)] == [
        ("opened", 1, []), ("disconnect", 2, None)]
    assert b.refusal == "no_supported_media"
    with pytest.raises(ProtocolError) as e:
        b.feed_bytes(bytes(2))
    assert e.value.code == "unexpected_audio"
    (end,) = c.send("close", {"reason": "disconnect"})
    assert isinstance(end, CallEnd) and [m["type"] for m in replies(b)] == ["closed"]


def test_supported_languages_and_continued_sessions() -> None:
    a = AudioHookAdapter(AudioHookConfig(supported_languages=("en-US",)))
    (cs,) = Client(a).open(supportedLanguages=True,
                           continuedSessions=[{"id": "11111111-2222-3333-4444-555555555555",
                                               "serverseq": 3, "clientseq": 7}])
    assert replies(a)[0]["parameters"]["supportedLanguages"] == ["en-US"]
    assert cs.resume_token == "11111111-2222-3333-4444-555555555555"


def test_server_pause_resume() -> None:
    a, _ = opened()
    a.pause()
    a.resume()
    assert [(m["type"], m["seq"]) for m in replies(a)] == [("pause", 2), ("resume", 3)]


def test_bad_audio_and_order() -> None:
    with pytest.raises(ProtocolError) as e:
        AudioHookAdapter().feed_bytes(bytes(10))
    assert e.value.code == "audio_before_open"
    a, _ = opened()
    with pytest.raises(AudioFormatError):
        a.feed_bytes(bytes(3))  # stereo PCMU: frames are 2 bytes
    with pytest.raises(ProtocolError) as e:
        Client(AudioHookAdapter()).send("ping")
    assert e.value.code == "not_opened"
    a, c = opened()
    with pytest.raises(ProtocolError, match="already open"):
        c.open()
    for text, code in (("{", "invalid_json"), ('{"version": "1"}', "unsupported_version"),
                       ('{"version": "2", "type": "opened", "id": "x", "parameters": {}}', "unknown_type")):
        with pytest.raises(ProtocolError) as e:
            AudioHookAdapter().feed_text(text)
        assert e.value.code == code


def test_position_is_required_and_the_session_id_must_be_usable() -> None:
    a, _ = opened()
    with pytest.raises(ProtocolError) as e:
        a.feed_text(json.dumps({"version": "2", "id": SID, "type": "ping", "seq": 2, "serverseq": 1,
                                "parameters": {}}))
    assert e.value.code == "invalid_message"
    bad = AudioHookAdapter()
    with pytest.raises(ProtocolError) as e:
        Client(bad, session="a b\n").open()
    assert e.value.code == "invalid_open"


def test_transport_loss_without_close() -> None:
    a, _ = opened()
    (end,) = a.transport_closed(1006)
    assert end.reason == "transport_lost"
    a.on_summary(SUMMARY)
    assert a.outbox() == []  # no close transaction to complete
    b, _ = opened()
    (clean,) = b.transport_closed(1000)  # a clean WebSocket close without `close` is still a drop
    assert clean.reason == "transport_lost" and AudioHookAdapter.resumable
    c, cl = opened()
    cl.send("close", {"reason": "end"})
    assert c.transport_closed(1000) == []  # the close transaction already ended the call
    d, _ = opened()
    (err,) = d.transport_closed(1007, error="partial_frame")
    assert err == CallEnd("error", "partial_frame")


def test_client_errors_are_counted() -> None:
    a, c = opened()
    c.send("error", {"code": 500, "message": "internal"})
    c.send("error", {"code": 408, "message": "timeout"})
    assert a.take_counts() == {"client_error": 2} and len(a.client_errors) == 2


def _continued(position: float, **cfg: Any) -> tuple[AudioHookAdapter, Client, CallStart]:
    a = AudioHookAdapter(AudioHookConfig(**cfg))
    c = Client(a, session="22222222-3333-4444-5555-666666666666")
    c.position = position
    (cs,) = c.open([STEREO], continuedSessions=[{"id": SID, "serverseq": 4, "clientseq": 9}])
    a.outbox()
    return a, c, cs


def test_reconnect_ahead_of_the_call_is_a_gap() -> None:
    a, _, cs = _continued(16.25)
    assert cs.resume_token == SID and a.continued
    (gap,) = a.on_started(SID, "tok", {"resumed": True, "media_time": 16.0})
    assert gap == Gap(seconds=0.25, reason="loss")
    assert a.feed_bytes(bytes(320)) == [AudioChunk(bytes(320))]
    assert a.take_counts() == {"reconnect_gap": 1}


def test_reconnect_behind_the_call_drops_the_overlap() -> None:
    a, _, _ = _continued(15.99)
    assert a.on_started(SID, "tok", {"resumed": True, "media_time": 16.0}) == []
    # 10 ms = 80 stereo PCMU sample frames (160 bytes) are audio the call already has
    assert a.feed_bytes(bytes(100)) == []
    (chunk,) = a.feed_bytes(bytes(range(100)))
    assert chunk == AudioChunk(bytes(range(60, 100)))
    assert a.feed_bytes(bytes(8)) == [AudioChunk(bytes(8))]
    assert a.take_counts() == {"reconnect_overlap": 1}


def test_reconnect_positions_that_cannot_be_trusted_change_nothing() -> None:
    a, _, _ = _continued(0.0)  # no position carried over
    assert a.on_started(SID, "tok", {"resumed": True, "media_time": 16.0}) == []
    assert a.feed_bytes(bytes(4)) == [AudioChunk(bytes(4))]
    b, _, _ = _continued(1.0, max_resend_s=10.0)  # 15 s behind: not a resend
    assert b.on_started(SID, "tok", {"resumed": True, "media_time": 16.0}) == []
    assert b.feed_bytes(bytes(4)) == [AudioChunk(bytes(4))]
    assert b.take_counts() == {"reconnect_position_mismatch": 1}
    c, _, _ = _continued(16.0)  # exactly where the call is
    assert c.on_started(SID, "tok", {"resumed": True, "media_time": 16.0}) == []
    d, _, _ = _continued(20.0)  # the old session had already ended: a new call, nothing to line up
    assert d.on_started("2222", "tok", {"resumed": False, "media_time": 0.0}) == []
    e, _ = opened()  # not a continued session
    assert e.on_started(SID, "tok", {"resumed": True, "media_time": 3.0}) == []


@pytest.mark.parametrize(("text", "seconds"), [("PT0S", 0.0), ("PT12.34S", 12.34), ("PT1M2S", 62.0),
                                               ("PT1H", 3600.0), ("P1DT1S", 86401.0)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)


@pytest.mark.parametrize(("text", "seconds"), [("PT.5S", 0.5), ("PT5.S", 5.0)])
def test_durations_the_reference_also_reads(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "P", "PT", "12S", "PT-1S", "PTS", None, 5, "PT1S\n", "PT\u0661S",
                                  "PT" + "9" * 400 + "S", "P" + "9" * 5000 + "D", "PT10000000S"])
def test_bad_durations(text: Any) -> None:
    with pytest.raises(ProtocolError):
        parse_duration(text)


def test_language_mapping() -> None:
    assert engine_language("en-GB") == "en" and engine_language("cmn-Hans-CN") == "zh"
    assert engine_language("de-DE") == "auto" and engine_language(None, "en") == "en"


@pytest.mark.parametrize("roles", [("agent", "customer"), ("customer", "agent")])
def test_round_trip_from_the_replay_client(roles: tuple[str, str]) -> None:
    rng = np.random.default_rng(3)
    wav = WavAudio(8000, (rng.standard_normal((12000, 2)) * 3000).astype(np.int16), Encoding.PCM16)
    a = AudioHookAdapter()
    events: list[Any] = []
    waits = []
    for _t, frame in messages("audiohook", wav, call_id=SID, roles=roles, frame_ms=200,
                              options={"ping_every_s": 0.5}):
        if isinstance(frame, WaitFor):
            waits.append(frame.what)
            sent = replies(a)
            assert any(m["type"] == frame.what for m in sent) or frame.what == "closed"
            if frame.what == "closed":
                a.on_summary(SUMMARY)
                assert replies(a)[-1]["type"] == "closed"
            continue
        events.extend(a.feed_text(frame) if isinstance(frame, str) else a.feed_bytes(frame))
    assert waits == ["opened", "closed"]
    cs = events[0]
    assert isinstance(cs, CallStart) and isinstance(events[-1], CallEnd)
    data = decode(b"".join(e.data for e in events if isinstance(e, AudioChunk)), Encoding.MULAW)
    got = data.reshape(-1, len(cs.channels))
    for spec in cs.channels:
        src = roles.index(spec.role.value)
        assert np.array_equal(got[:, spec.index], decode(encode_mulaw(wav.samples[:, src].copy()), Encoding.MULAW))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300), st.binary(max_size=64))
def test_fuzz_never_raises_anything_but_protocol_errors(text: str, data: bytes) -> None:
    for a in (AudioHookAdapter(), opened()[0]):
        with contextlib.suppress(ProtocolError):
            a.feed_text(text)
        with contextlib.suppress(ProtocolError):
            a.feed_bytes(data)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["open", "ping", "close", "paused", "resumed", "discarded", "update", "error"]),
       st.dictionaries(st.sampled_from(["start", "discarded", "language", "media", "reason", "organizationId",
                                        "conversationId", "participant", "code", "continuedSessions"]),
                       st.none() | st.integers() | st.text(max_size=12) | st.lists(st.integers(), max_size=2)
                       | st.sampled_from(["PT" + "9" * 400 + "S", "P" + "9" * 5000 + "D", "PT\u00b2S", "PT0.3S"])
                       | st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2), max_size=5))
def test_fuzz_parameters(kind: str, params: dict[str, Any]) -> None:
    fresh = AudioHookAdapter()
    for _a, c in (opened(), (fresh, Client(fresh))):
        with contextlib.suppress(ProtocolError):
            c.send(kind, params)
