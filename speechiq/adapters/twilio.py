"""Twilio Media Streams (and the Twilio-shaped Telnyx / SignalWire / Exotel dialects), sans-I/O.

All messages are JSON text frames keyed by ``event``: ``connected``, ``start``, ``media``, ``dtmf``,
``mark``, ``stop`` (+ Telnyx ``error``). Audio is base64 in ``media.payload``, one message per track,
so each track becomes one channel (``interleaved=False``). Media time comes from ``media.timestamp``
(ms since stream start) per track: small reorders are undone in a window of a few frames, holes
become :class:`Gap` events, duplicates and frames older than the window are dropped.

``sequenceNumber`` (Telnyx/Exotel ``sequence_number``: "1" on ``start``, +1 per message) is checked
per stream: missing, out-of-order and repeated messages are counted (``sequence_missing``,
``sequence_out_of_order``, ``sequence_duplicate``, ``sequence_late``), never fatal — the media
timeline itself comes from the timestamps.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import AudioFormatError, ProtocolError
from ..ingest import AudioChunk, CallStart, ChannelSpec, Dtmf, Encoding, Gap, IngestEvent, Role
from .base import (
    CLOSE_INVALID_PAYLOAD,
    CLOSE_POLICY_VIOLATION,
    CLOSE_TOO_BIG,
    CLOSE_UNSUPPORTED_DATA,
    Adapter,
    utf8_size_over,
)
from .roles import lookup, role_map

DIALECTS = ("twilio", "signalwire", "telnyx", "exotel")
EVENTS = frozenset({"connected", "start", "media", "dtmf", "mark", "stop", "error"})
SAMPLE_RATES = (8000, 16000, 24000, 32000, 44100, 48000)
_DTMF = re.compile(r"[0-9A-Da-d*#]")
_DIGITS = re.compile(r"[0-9]{1,15}")  # ASCII only: str.isdigit() also accepts '²' and 5000-digit numbers
_MAX_INT = 10**15
_CALL_ID = re.compile(r"[A-Za-z0-9_.:@+-]{1,128}")
_LANGS = {"en": "en", "zh": "zh", "auto": "auto"}
_LIFTED = ("agent", "agent_id", "queue", "direction", "ani", "dnis", "campaign", "language")
SEQ_WINDOW = 64  # a message this far behind the highest sequence number seen is no longer waited for


@dataclass(frozen=True)
class TwilioConfig:
    """``dialect=None`` detects it from the ``start`` message's field names."""

    roles: Mapping[str, str] = field(default_factory=dict)
    dialect: str | None = None
    reorder_window: int = 5  # frames held per track while waiting for a missing one
    use_timestamps: bool = True  # False: media time from sample counts only
    default_tracks: tuple[str, ...] = ("inbound", "outbound")  # when ``start`` lists none (Telnyx)
    join_by_call: bool = True  # streams of one call (per-track forks) merge into one engine call
    max_gap_s: float = 4 * 3600.0  # a larger timestamp jump (> Twilio's longest call) is a protocol error
    max_text_bytes: int = 256 * 1024
    default_language: str = "auto"


def _err(code: str, message: str, close: int | None = CLOSE_POLICY_VIOLATION) -> ProtocolError:
    return ProtocolError(code, message, close)


def _get(d: Mapping[str, Any], *names: str) -> Any:
    for n in names:
        if n in d and d[n] is not None:
            return d[n]
    return None


def _int(value: Any, what: str) -> int | None:
    """JSON numbers and numeric strings (Twilio sends numbers as strings) → int; absent → None."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_INT:
        return value
    if isinstance(value, float) and value.is_integer() and 0 <= value <= _MAX_INT:
        return int(value)
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        return int(value.strip())
    raise _err("invalid_field", f"{what} must be a non-negative integer, got {str(value)[:40]!r}",
               CLOSE_INVALID_PAYLOAD)


def parse_media_format(fmt: Mapping[str, Any]) -> tuple[Encoding, int]:
    """``mediaFormat`` / ``media_format`` → (encoding, sample rate); codec labels vary by platform."""
    name = str(_get(fmt, "encoding") or "audio/x-mulaw").strip().lower().replace(" ", "")
    rate = _int(_get(fmt, "sampleRate", "sample_rate"), "sample rate")
    m = re.search(r"rate=(\d+)", name)
    if rate is None and m:
        rate = int(m.group(1))
    base = name.split(";")[0]
    if base in ("audio/x-mulaw", "audio/mulaw", "audio/pcmu", "pcmu", "mulaw", "ulaw", "g711_ulaw"):
        enc = Encoding.MULAW
    elif base in ("audio/x-alaw", "audio/alaw", "audio/pcma", "pcma", "alaw", "g711_alaw"):
        enc = Encoding.ALAW
    elif base in ("audio/x-l16", "audio/l16", "l16", "audio/x-raw", "linear16", "pcm16", "slin"):
        bits = _int(_get(fmt, "bit_rate", "bitRate", "bits"), "bit rate")
        if bits not in (None, 16):
            raise _err("unsupported_encoding", f"only 16-bit linear PCM is supported, got {bits} bits",
                       CLOSE_UNSUPPORTED_DATA)
        enc = Encoding.PCM16
    else:
        raise _err("unsupported_encoding", f"media encoding {name!r} is not supported; use PCMU, PCMA or L16",
                   CLOSE_UNSUPPORTED_DATA)
    rate = rate or 8000
    if rate not in SAMPLE_RATES:
        raise _err("unsupported_sample_rate", f"sample rate {rate} is not one of {SAMPLE_RATES}",
                   CLOSE_UNSUPPORTED_DATA)
    channels = _int(_get(fmt, "channels"), "channels")
    if channels not in (None, 1):
        raise _err("unsupported_channels", f"each media message must be mono, got {channels} channels",
                   CLOSE_UNSUPPORTED_DATA)
    return enc, rate


def _track_name(raw: Any) -> str:
    name = str(raw or "inbound").lower()
    return name[: -len("_track")] if name.endswith("_track") else name


class _Track:
    __slots__ = ("channel", "dropped", "expected", "last_ts", "pending")

    def __init__(self, channel: int) -> None:
        self.channel = channel
        self.expected: float | None = None  # ms of the next sample we expect
        self.last_ts = -1  # timestamp of the last frame passed on
        self.pending: dict[int, bytes] = {}
        self.dropped = 0


class TwilioAdapter(Adapter):
    """One Twilio-shaped media stream (one WebSocket = one stream of one call)."""

    platform = "twilio"

    def __init__(self, config: TwilioConfig | None = None) -> None:
        super().__init__()
        self.config = config or TwilioConfig()
        if self.config.dialect is not None and self.config.dialect not in DIALECTS:
            raise ValueError(f"unknown dialect {self.config.dialect!r}; one of {DIALECTS}")
        self.dialect = self.config.dialect
        self.start: CallStart | None = None
        self.stream_id = ""
        self.tracks: dict[str, _Track] = {}
        self._seq_high = 0  # highest sequence number seen
        self._seq_missing: set[int] = set()  # skipped numbers still within SEQ_WINDOW
        self._width = 1
        self._rate = 8000

    @property
    def late_frames(self) -> int:
        """Media frames dropped as duplicates or as older than a frame already passed on."""
        return self.counts["duplicate_frame"] + self.counts["late_frame"]

    # ---- text --------------------------------------------------------------------------------
    def feed_text(self, text: str) -> list[IngestEvent]:
        size = utf8_size_over(text, self.config.max_text_bytes)
        if size is not None:
            raise _err("text_too_large", f"text frame of {size} bytes exceeds "
                       f"{self.config.max_text_bytes}", CLOSE_TOO_BIG)
        try:
            msg = json.loads(text)
        except ValueError as exc:
            raise _err("invalid_json", f"text frame is not valid JSON: {exc}", CLOSE_INVALID_PAYLOAD) from exc
        if not isinstance(msg, dict) or not isinstance(msg.get("event"), str):
            raise _err("invalid_message", "a message must be a JSON object with a string 'event'")
        event = msg["event"]
        if event not in EVENTS:
            raise _err("unknown_event", f"unknown event {event!r}; expected one of {sorted(EVENTS)}")
        if self._ended:
            return []  # late frames after stop/close are ignored
        self._sequence(msg)
        if event == "connected":
            if self.start is not None:
                raise _err("unexpected_connected", "'connected' after 'start'")
            return []
        if event == "start":
            return [self._on_start(msg)]
        if self.start is None:
            raise _err("not_started", f"'{event}' before 'start'")
        if event == "media":
            return self._on_media(msg)
        if event == "dtmf":
            return self._on_dtmf(msg)
        if event == "stop":
            return [*self._flush_all(), *self.end("normal", "stop")]
        if event == "error":
            detail = json.dumps(_get(msg, "payload", "error") or {}, ensure_ascii=False)[:200]
            return [*self._flush_all(), *self.end("error", f"platform error {detail}")]
        return []  # mark: echo of our own mark (bidirectional streams only)

    def feed_bytes(self, data: bytes) -> list[IngestEvent]:
        raise _err("binary_not_expected", "this protocol sends JSON text frames only", CLOSE_UNSUPPORTED_DATA)

    def transport_closed(self, code: int | None = None, error: str = "") -> list[IngestEvent]:
        flushed = self._flush_all() if self.start is not None and not self._ended else []
        return [*flushed, *super().transport_closed(code, error)]

    # ---- sequence numbers ----------------------------------------------------------------------
    def _sequence(self, msg: Mapping[str, Any]) -> None:
        raw = _get(msg, "sequenceNumber", "sequence_number")
        if raw is None:
            return  # `connected` carries none
        try:
            seq = _int(raw, "sequenceNumber")
        except ProtocolError:
            self.count("sequence_invalid")
            return
        assert seq is not None
        if seq > self._seq_high:
            first = max(self._seq_high + 1, seq - SEQ_WINDOW + 1)
            if first - self._seq_high - 1 > 0:  # skipped beyond the window: missing for good
                self.count("sequence_missing", first - self._seq_high - 1)
            self._seq_missing.update(range(first, seq))
            self._seq_high = seq
            stale = [k for k in self._seq_missing if k <= seq - SEQ_WINDOW]
            if stale:
                self._seq_missing.difference_update(stale)
                self.count("sequence_missing", len(stale))
        elif seq in self._seq_missing:
            self._seq_missing.discard(seq)
            self.count("sequence_out_of_order")
        elif seq <= self._seq_high - SEQ_WINDOW:
            self.count("sequence_late")  # already counted missing
        else:
            self.count("sequence_duplicate")

    def _sequence_done(self) -> None:
        if self._seq_missing:
            self.count("sequence_missing", len(self._seq_missing))
            self._seq_missing.clear()

    # ---- start -------------------------------------------------------------------------------
    def _detect(self, msg: Mapping[str, Any], start: Mapping[str, Any]) -> str:
        if self.dialect:
            return self.dialect
        if "streamSid" in msg or "mediaFormat" in start or "callSid" in start:
            return "twilio"
        if "stream_id" in msg or "call_control_id" in start:
            return "telnyx"
        if "stream_sid" in msg or "call_sid" in start:
            return "exotel"
        return "twilio"

    def _on_start(self, msg: dict[str, Any]) -> CallStart:
        if self.start is not None:
            raise _err("duplicate_start", "the stream has already started")
        start = msg.get("start")
        if not isinstance(start, dict):
            raise _err("invalid_start", "'start' must carry a 'start' object")
        self.dialect = self._detect(msg, start)
        self.platform = self.dialect
        fmt = _get(start, "mediaFormat", "media_format") or {}
        if not isinstance(fmt, dict):
            raise _err("invalid_start", "mediaFormat must be an object")
        encoding, rate = parse_media_format(fmt)
        self._width, self._rate = encoding.sample_width, rate
        self.stream_id = str(_get(msg, "streamSid", "stream_id", "stream_sid")
                             or _get(start, "streamSid", "stream_id", "stream_sid") or "")
        call_sid = str(_get(start, "callSid", "call_sid", "call_control_id") or "")
        call_id = call_sid or self.stream_id
        if not _CALL_ID.fullmatch(call_id):
            raise _err("invalid_start", "start needs a call id or stream id of 1-128 characters of "
                       "A-Z a-z 0-9 _ . : @ + -")
        raw_tracks = start.get("tracks")
        if raw_tracks is None:
            names = ["inbound"] if self.dialect == "exotel" else list(self.config.default_tracks)
        elif isinstance(raw_tracks, list) and raw_tracks and all(isinstance(t, str) for t in raw_tracks):
            names = list(dict.fromkeys(_track_name(t) for t in raw_tracks))
        else:
            raise _err("invalid_start", "start.tracks must be a non-empty list of track names")
        if not 1 <= len(names) <= 2 or any(n not in ("inbound", "outbound") for n in names):
            raise _err("invalid_start", f"tracks must be inbound and/or outbound, got {names}")
        names.sort(key=("inbound", "outbound").index)
        roles = role_map(self.dialect, self.config.roles)
        self.tracks = {n: _Track(i) for i, n in enumerate(names)}
        channels = tuple(ChannelSpec(index=i, role=lookup(roles, n, Role.UNKNOWN), name=n)
                         for i, n in enumerate(names))
        custom = _get(start, "customParameters", "custom_parameters") or {}
        if not isinstance(custom, dict):
            custom = {}
        meta: dict[str, Any] = {
            "platform": self.dialect, "call_sid": call_sid, "stream_sid": self.stream_id,
            "tracks": names, "custom_parameters": custom,
        }
        for key in ("accountSid", "account_sid", "user_id", "call_session_id", "call_control_id",
                    "client_state", "tags"):
            if start.get(key) is not None:
                meta[key] = start[key]
        if start.get("from") is not None:
            meta["ani"] = start["from"]
        if start.get("to") is not None:
            meta["dnis"] = start["to"]
        for key in _LIFTED:
            if isinstance(custom.get(key), (str, int, float)):
                meta.setdefault(key, custom[key])
        if self.config.join_by_call and call_sid:
            meta["join_key"] = f"{self.dialect}:{call_sid}"
        language = _LANGS.get(str(custom.get("language", "")).lower()[:2], self.config.default_language)
        self.start = CallStart(call_id=call_id, encoding=encoding, sample_rate=rate, channels=channels,
                               language=language, platform=self.dialect, metadata=meta, interleaved=False)
        return self.start

    # ---- media -------------------------------------------------------------------------------
    def _on_media(self, msg: dict[str, Any]) -> list[IngestEvent]:
        media = msg.get("media")
        if not isinstance(media, dict):
            raise _err("invalid_media", "'media' must carry a 'media' object", CLOSE_INVALID_PAYLOAD)
        name = _track_name(media.get("track")) if media.get("track") else next(iter(self.tracks))
        track = self.tracks.get(name)
        if track is None:
            raise _err("unknown_track", f"media for track {name!r}, which 'start' did not announce")
        payload = media.get("payload")
        if not isinstance(payload, str):
            raise _err("invalid_media", "media.payload must be a base64 string", CLOSE_INVALID_PAYLOAD)
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise _err("invalid_payload", f"media.payload is not valid base64: {exc}", CLOSE_INVALID_PAYLOAD) from exc
        if len(data) % self._width:
            raise AudioFormatError("odd_byte_count", f"media payload of {len(data)} bytes is not a whole "
                                   f"number of {self._width}-byte samples")
        ts = _int(media.get("timestamp"), "media.timestamp") if self.config.use_timestamps else None
        if not data:
            return []
        return self._accept(track, ts, data)

    def _dur_ms(self, data: bytes) -> float:
        return len(data) / self._width / self._rate * 1000.0

    def _accept(self, track: _Track, ts: int | None, data: bytes) -> list[IngestEvent]:
        if track.expected is None:
            # the stream starts at 0 ms; a first timestamp later than that (Twilio's is often 52)
            # is a hole like any other, so the first frames are reordered too
            track.expected = 0.0
        out: list[IngestEvent] = []
        if ts is None:
            ts = max(round(track.expected), track.last_ts + 1)
        if ts <= track.last_ts or ts in track.pending:
            # a duplicate, or older than a frame already passed on (beyond the reorder window);
            # a timestamp merely lagging the sample count (jitter) is kept and played in order
            track.dropped += 1
            self.count("duplicate_frame" if ts == track.last_ts or ts in track.pending else "late_frame")
            return out
        self._check_gap(ts - track.expected)
        track.pending[ts] = data
        return self._drain(track, force=False)

    def _drain(self, track: _Track, *, force: bool) -> list[IngestEvent]:
        out: list[IngestEvent] = []
        while track.pending:
            ts = min(track.pending)
            data = track.pending[ts]
            assert track.expected is not None
            hole = ts - track.expected
            if hole >= self._dur_ms(data) / 2:
                if not force and len(track.pending) <= self.config.reorder_window:
                    break  # wait: the missing frame may still arrive
                out.append(Gap(seconds=hole / 1000.0, channel=track.channel, reason="loss"))
                self.count("loss_gap")
                self.count("loss_ms", round(hole))
                track.expected = float(ts)
            del track.pending[ts]
            track.last_ts = ts
            track.expected += self._dur_ms(data)
            out.append(AudioChunk(data=data, channel=track.channel))
        return out

    def _check_gap(self, ms: float) -> None:
        if ms > self.config.max_gap_s * 1000.0:
            raise _err("timestamp_jump", f"media.timestamp jumps {ms / 1000.0:.1f} s ahead "
                       f"(limit {self.config.max_gap_s:g} s)", CLOSE_INVALID_PAYLOAD)

    def _flush_all(self) -> list[IngestEvent]:
        out: list[IngestEvent] = []
        for track in self.tracks.values():
            out.extend(self._drain(track, force=True))
        self._sequence_done()
        return out

    # ---- dtmf --------------------------------------------------------------------------------
    def _on_dtmf(self, msg: dict[str, Any]) -> list[IngestEvent]:
        body = msg.get("dtmf")
        if not isinstance(body, dict):
            raise _err("invalid_dtmf", "'dtmf' must carry a 'dtmf' object", CLOSE_INVALID_PAYLOAD)
        digit = str(body.get("digit", ""))
        if not _DTMF.fullmatch(digit):
            raise _err("invalid_dtmf", f"dtmf digit must be one of 0-9 A-D * #, got {digit!r}",
                       CLOSE_INVALID_PAYLOAD)
        track = self.tracks.get(_track_name(body.get("track")))
        duration = body.get("duration")
        return [Dtmf(digit=digit, channel=track.channel if track else None,
                     duration_ms=_int(duration, "dtmf.duration") if duration is not None else None)]
