"""Genesys Cloud AudioHook protocol v2, sans-I/O (server side).

Genesys opens the WebSocket (signed upgrade, checked by :func:`check_upgrade`), sends ``open``;
we answer ``opened`` at once with exactly one of its media offers (stereo PCMU preferred), then
binary frames of interleaved samples in the offer's ``channels`` order flow. ``ping`` → ``pong``,
``paused``/``resumed``/``discarded`` advance media time by the discarded duration, ``update``
changes the language, ``close`` ends the call and ``closed`` is sent once the call is finalised.
Text messages are numbered per side (``seq``); the client's must go 1, 2, 3 … without gaps.

Reconnect: a session that ends with ``close`` reason ``reconnect`` — or whose socket drops without
``close`` — keeps its call for the resume grace window; an ``open`` whose ``continuedSessions``
names it continues the same call. The new session's ``open`` ``position`` is the client's stream
position; it is reconciled with the media time the call already received: a client ahead of it
lost audio in between (a :class:`Gap` of that length keeps the timeline), a client behind it
resends audio the call already has (that overlap is dropped). ``PT0S`` (no position carried over)
and overlaps longer than ``max_resend_s`` continue at the call's media time unchanged.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import AudioFormatError, ProtocolError
from ..events import Summary
from ..ingest import AudioChunk, CallStart, ChannelSpec, Encoding, Gap, IngestEvent, MetadataUpdate, Role
from .base import (
    CLOSE_INVALID_PAYLOAD,
    CLOSE_POLICY_VIOLATION,
    CLOSE_TOO_BIG,
    CLOSE_UNSUPPORTED_DATA,
    Adapter,
    utf8_size_over,
)
from .roles import lookup, role_map

log = logging.getLogger(__name__)

VERSION = "2"
NIL_UUID = "00000000-0000-0000-0000-000000000000"
CLIENT_TYPES = frozenset({"open", "close", "ping", "paused", "resumed", "discarded", "update", "error"})
FORMATS = {"PCMU": Encoding.MULAW, "L16": Encoding.PCM16}
SAMPLE_RATES = (8000, 16000)
CHANNEL_NAMES = ("external", "internal")
REQUIRED_HEADERS = ("audiohook-organization-id", "audiohook-session-id", "audiohook-correlation-id", "x-api-key")
# PT12.34S as Genesys writes it (the reference also reads "PT5.S" and "PT.5S"); D/H/M tolerated.
_DURATION = re.compile(r"P(?:([0-9]{1,9})D)?(?:T(?:([0-9]{1,9})H)?(?:([0-9]{1,9})M)?"
                       r"(?:([0-9]{1,15}(?:\.[0-9]{0,12})?|\.[0-9]{1,12})S)?)?")
MAX_DURATION_S = (2**53 - 1) / 1e9  # the reference's limit: a safe integer of nanoseconds (~104 days)
_SESSION_ID = re.compile(r"[A-Za-z0-9_.:@+-]{1,128}")


@dataclass(frozen=True)
class AudioHookConfig:
    """``api_keys``: API key → base64 client secret (``""``: unsigned requests allowed for that key).
    An empty mapping disables authentication (development only)."""

    api_keys: Mapping[str, str] = field(default_factory=dict)
    roles: Mapping[str, str] = field(default_factory=dict)
    formats: tuple[str, ...] = ("PCMU", "L16")  # preference order
    supported_languages: tuple[str, ...] = ("en-US", "zh-CN")
    max_signature_age_s: float = 10.0
    clock_skew_s: float = 3.0
    max_text_bytes: int = 65535
    max_frame_bytes: int = 1 << 20
    default_language: str = "auto"
    max_resend_s: float = 60.0  # a reconnecting client this far behind the call is not trusted to resend


def _err(code: str, message: str, close: int | None = CLOSE_POLICY_VIOLATION) -> ProtocolError:
    return ProtocolError(code, message, close)


def parse_duration(value: Any) -> float:
    """ISO-8601 duration as AudioHook writes it (``PT12.34S``, ``PT1M2S``) → seconds."""
    m = _DURATION.fullmatch(value) if isinstance(value, str) else None
    if m is None or value in ("P", "PT") or value.endswith("T"):
        raise _err("invalid_duration", f"not an ISO-8601 duration: {str(value)[:40]!r}", CLOSE_INVALID_PAYLOAD)
    d, h, mi, sec = m.groups()
    seconds = int(d or 0) * 86400 + int(h or 0) * 3600 + int(mi or 0) * 60 + float(sec or 0)
    if not seconds < MAX_DURATION_S:
        raise _err("invalid_duration", f"duration {value!r} is too large", CLOSE_INVALID_PAYLOAD)
    return seconds


def format_duration(seconds: float) -> str:
    return f"PT{max(seconds, 0.0):.3f}".rstrip("0").rstrip(".") + "S"


def engine_language(tag: Any, default: str = "auto") -> str:
    """BCP-47 tag → speechiq language (en / zh / auto)."""
    t = str(tag or "").lower()
    if t.startswith("en"):
        return "en"
    if t.startswith(("zh", "cmn", "yue")):
        return "zh"
    return default


def check_upgrade(path: str, headers: Any, now: float, config: AudioHookConfig) -> tuple[int, str] | None:
    """Authenticate the upgrade request: ``None`` to accept, else ``(http_status, reason)``."""
    from . import httpsig  # http-sf is only needed once a request is actually checked

    hdrs = httpsig.header_dict(headers)
    missing = [h for h in REQUIRED_HEADERS if not hdrs.get(h)]
    if missing:
        return 400, f"missing AudioHook header(s): {', '.join(missing)}"
    if not config.api_keys:
        return None
    key = hdrs["x-api-key"]
    secret_b64 = config.api_keys.get(key)
    if secret_b64 is None:
        return 401, "unknown API key"
    try:
        secret = httpsig.decode_secret(secret_b64) if secret_b64 else None
    except ValueError:
        return 500, "the AudioHook client secret configured for this API key is not valid base64"
    result = httpsig.verify(
        hdrs, request_target=path, now=now, max_age_s=config.max_signature_age_s, skew_s=config.clock_skew_s,
        secret_for=lambda keyid: secret if keyid == key else None,
    )
    if result.code == "unsigned":
        return None if secret is None else (401, "request must be signed for this API key")
    if result.ok and result.keyid == key:
        return None
    if result.code in ("invalid", "unsupported"):
        return 400 if result.code == "invalid" else 401, f"signature rejected: {result.reason}"
    return 401, f"signature rejected: {result.reason or result.code}"


def select_media(offers: Any, formats: tuple[str, ...]) -> dict[str, Any] | None:
    """Exactly one offer: stereo before mono, then by ``formats`` preference, then offer order."""
    if not isinstance(offers, list):
        raise _err("invalid_open", "open.parameters.media must be a list")
    best: tuple[tuple[int, int, int], dict[str, Any]] | None = None
    for i, offer in enumerate(offers):
        if not isinstance(offer, dict) or offer.get("type") != "audio":
            continue
        fmt, rate, chans = offer.get("format"), offer.get("rate"), offer.get("channels")
        if fmt not in formats or fmt not in FORMATS or rate not in SAMPLE_RATES or isinstance(rate, bool):
            continue
        if not isinstance(chans, list) or not 1 <= len(chans) <= 2 or len(set(map(str, chans))) != len(chans):
            continue
        if any(c not in CHANNEL_NAMES for c in chans):
            continue
        key = (-len(chans), formats.index(fmt), i)
        if best is None or key < best[0]:
            best = (key, offer)
    return best[1] if best else None


class AudioHookAdapter(Adapter):
    """One AudioHook session. ``upgrade_headers``: the upgrade request's headers (ids cross-checked)."""

    platform = "audiohook"
    resumable = True  # `close` reason reconnect, or a drop: an `open` with continuedSessions continues

    def __init__(self, config: AudioHookConfig | None = None, upgrade_headers: Any = None) -> None:
        super().__init__()
        self.config = config or AudioHookConfig()
        items = upgrade_headers.raw_items() if hasattr(upgrade_headers, "raw_items") else \
            dict(upgrade_headers or {}).items()
        hdrs = {str(k).lower(): str(v).strip() for k, v in items}
        self.org_id = hdrs.get("audiohook-organization-id")
        self.session_id: str | None = hdrs.get("audiohook-session-id")
        self.correlation_id = hdrs.get("audiohook-correlation-id")
        self.state = "idle"  # idle → active ⇄ paused → closing → closed
        self.seq = 0  # last seq we sent
        self.clientseq = 0  # last seq we received
        self.media: dict[str, Any] | None = None
        self.start: CallStart | None = None
        self.position = 0.0  # client's last reported stream position (s)
        self.samples = 0  # sample frames received
        self.discarded = 0.0
        self.client_errors: list[dict[str, Any]] = []
        self.close_reason = ""
        self.refusal = ""  # why we sent `disconnect` after `opened` (the session carries no call)
        self._frame_bytes = 1
        self._closed_sent = False
        self.continued = False  # this session continues an earlier one (continuedSessions)
        self.open_position = 0.0  # the client's stream position on `open`
        self._skip_frames = 0  # sample frames to drop: a reconnecting client resending what we have

    # ---- output ------------------------------------------------------------------------------
    def _message(self, kind: str, parameters: dict[str, Any]) -> str:
        self.seq += 1
        return json.dumps({"version": VERSION, "id": self.session_id or NIL_UUID, "type": kind,
                           "seq": self.seq, "clientseq": self.clientseq, "parameters": parameters})

    def _send(self, kind: str, parameters: dict[str, Any]) -> None:
        self.send(self._message(kind, parameters))

    def pause(self) -> None:
        """Ask the client to stop sending audio (idempotent)."""
        if self.state in ("active", "paused"):
            self._send("pause", {})

    def resume(self) -> None:
        if self.state in ("active", "paused"):
            self._send("resume", {})

    def error_frame(self, exc: ProtocolError) -> str:
        reason = "unauthorized" if exc.code == "unauthorized" else "error"
        self.state = "closed"
        return self._message("disconnect", {"reason": reason, "info": f"{exc.code}: {exc.message}"[:500]})

    def _send_closed(self) -> None:
        if not self._closed_sent:
            self._closed_sent = True
            self._send("closed", {})
            self.state = "closed"

    # ---- text --------------------------------------------------------------------------------
    def feed_text(self, text: str) -> list[IngestEvent]:
        size = utf8_size_over(text, self.config.max_text_bytes)
        if size is not None:
            raise _err("text_too_large", f"text message of {size} bytes exceeds "
                       f"{self.config.max_text_bytes}", CLOSE_TOO_BIG)
        try:
            msg = json.loads(text)
        except ValueError as exc:
            raise _err("invalid_json", f"text message is not valid JSON: {exc}", CLOSE_INVALID_PAYLOAD) from exc
        if self.state == "closed":
            return []
        self._check_envelope(msg)
        kind, params = msg["type"], msg["parameters"]
        self.position = parse_duration(msg["position"])
        if kind == "open":
            return self._on_open(msg)
        if self.state == "idle":
            raise _err("not_opened", f"'{kind}' before 'open'")
        if kind == "ping":
            self._send("pong", {})
            return []
        if kind == "close":
            return self._on_close(params)
        if self.state == "closing":
            return []
        if kind == "paused":
            self.state = "paused"
            return []
        if kind in ("resumed", "discarded"):
            if kind == "resumed":
                self.state = "active"
            parse_duration(params.get("start"))
            lost = parse_duration(params.get("discarded"))
            self.discarded += lost
            return [Gap(seconds=lost, reason="pause" if kind == "resumed" else "discard")] if lost > 0 else []
        if kind == "update":
            lang = params.get("language")
            if not isinstance(lang, str):
                raise _err("invalid_update", "update.parameters.language must be a string", CLOSE_INVALID_PAYLOAD)
            return [MetadataUpdate(metadata={"language_tag": lang},
                                   language=engine_language(lang, self.config.default_language))]
        # error: the client reports a problem; it follows up with close
        report = {"code": params.get("code"), "message": str(params.get("message", ""))[:500]}
        self.client_errors.append(report)
        self.count("client_error")
        log.warning("audiohook session %s: client error %s: %s", self.session_id, str(report["code"])[:8],
                    report["message"][:200])
        return []

    def _check_envelope(self, msg: Any) -> None:
        if not isinstance(msg, dict):
            raise _err("invalid_message", "an AudioHook message must be a JSON object")
        if msg.get("version") != VERSION:
            raise _err("unsupported_version", f"protocol version must be {VERSION!r}, got {msg.get('version')!r}")
        kind, seq, sseq = msg.get("type"), msg.get("seq"), msg.get("serverseq")
        if isinstance(kind, str) and kind not in CLIENT_TYPES:
            raise _err("unknown_type", f"{kind[:40]!r} is not a client message type")
        if not (isinstance(kind, str) and isinstance(msg.get("id"), str) and isinstance(msg.get("parameters"), dict)
                and isinstance(msg.get("position"), str)):
            raise _err("invalid_message", "a client message needs string 'type', 'id' and 'position' and an "
                       "object 'parameters'")
        for name, value in (("seq", seq), ("serverseq", sseq)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise _err("invalid_message", f"'{name}' must be a non-negative integer")
        if seq != self.clientseq + 1:
            raise _err("seq_mismatch", f"seq {seq} after {self.clientseq}: client seq must increase by one")
        if sseq > self.seq:
            raise _err("bad_serverseq", f"serverseq {sseq} exceeds the last seq we sent ({self.seq})")
        if self.session_id is None:
            self.session_id = msg["id"]
        elif msg["id"] != self.session_id:
            raise _err("session_id_mismatch", f"message id {msg['id']!r} is not the session id {self.session_id!r}")
        self.clientseq = seq

    def _on_open(self, msg: dict[str, Any]) -> list[IngestEvent]:
        if self.state != "idle":
            raise _err("duplicate_open", "the session is already open")
        if not _SESSION_ID.fullmatch(str(self.session_id)):
            raise _err("invalid_open", "the session id must be 1-128 characters of A-Z a-z 0-9 _ . : @ + -")
        p = msg["parameters"]
        org, conv = p.get("organizationId"), p.get("conversationId")
        participant = p.get("participant") or {}
        if not isinstance(org, str) or not isinstance(conv, str) or not isinstance(participant, dict):
            raise _err("invalid_open", "open needs organizationId, conversationId and a participant object")
        if self.org_id is not None and org != self.org_id:
            raise _err("unauthorized", "open.organizationId does not match the Audiohook-Organization-Id header",
                       CLOSE_POLICY_VIOLATION)
        offers = p.get("media")
        self.media = select_media(offers, self.config.formats)
        opened: dict[str, Any] = {"startPaused": False, "media": [self.media] if self.media else []}
        if p.get("supportedLanguages") is True:
            opened["supportedLanguages"] = list(self.config.supported_languages)
        self._send("opened", opened)
        self.state = "active"
        probe = conv == NIL_UUID and participant.get("id") == NIL_UUID
        if self.media is None:
            if not (probe or offers == []):
                # `opened` (no media) is already queued, so refuse in-protocol: the client then closes
                self.refusal = "no_supported_media"
                self._send("disconnect", {"reason": "error", "info": "no offered media is PCMU/L16 8 or 16 kHz "
                                          "with external/internal channels"})
            return []  # connection probe / no audio wanted / refused: nothing for the engine
        if probe:
            return []
        encoding = FORMATS[self.media["format"]]
        names = [str(c) for c in self.media["channels"]]
        self._frame_bytes = encoding.sample_width * len(names)
        roles = role_map("audiohook", self.config.roles)
        channels = tuple(ChannelSpec(index=i, role=lookup(roles, n, Role.UNKNOWN), name=n)
                         for i, n in enumerate(names))
        continued = p.get("continuedSessions")
        resume_from = self.session_id
        if isinstance(continued, list) and continued and isinstance(continued[0], dict) and continued[0].get("id"):
            resume_from = str(continued[0]["id"])
            self.continued = True
            self.open_position = self.position
        meta: dict[str, Any] = {
            "platform": "audiohook", "session_id": self.session_id, "organization_id": org,
            "conversation_id": conv, "correlation_id": self.correlation_id,
            "participant_id": participant.get("id"), "ani": participant.get("ani"),
            "ani_name": participant.get("aniName"), "dnis": participant.get("dnis"),
            "language_tag": p.get("language"), "media": dict(self.media),
        }
        if isinstance(p.get("customConfig"), dict):
            meta["custom_config"] = p["customConfig"]
        if isinstance(p.get("inputVariables"), dict):
            meta["input_variables"] = p["inputVariables"]
        if isinstance(continued, list):
            meta["continued_sessions"] = [c.get("id") for c in continued if isinstance(c, dict)]
        self.start = CallStart(
            call_id=str(self.session_id), encoding=encoding, sample_rate=int(self.media["rate"]),
            channels=channels, language=engine_language(p.get("language"), self.config.default_language),
            platform="audiohook", metadata={k: v for k, v in meta.items() if v is not None},
            resume_token=resume_from, interleaved=True,
        )
        return [self.start]

    def _on_close(self, params: dict[str, Any]) -> list[IngestEvent]:
        if self.state == "closing":
            return []
        self.state = "closing"
        self.close_reason = str(params.get("reason", "end"))
        if self.start is None or self.close_reason == "reconnect":
            # nothing to flush (probe / no media), or the call lives on in a new session
            self._send_closed()
        reason = {"end": "normal", "reconnect": "reconnect", "error": "error"}.get(self.close_reason, "normal")
        return self.end(reason, f"audiohook close: {self.close_reason}")

    def transport_closed(self, code: int | None = None, error: str = "") -> list[IngestEvent]:
        """Without a `close` transaction any end of the socket, even a clean 1000, is a drop: the
        call waits for a reconnect (``transport_lost``)."""
        if not error and self.start is not None and self.state not in ("closing", "closed"):
            return self.end("transport_lost", f"socket closed ({code}) without an AudioHook close")
        return super().transport_closed(code, error)

    # ---- binary ------------------------------------------------------------------------------
    def feed_bytes(self, data: bytes) -> list[IngestEvent]:
        if self.state in ("closing", "closed"):
            return []
        if self.state == "idle":
            raise _err("audio_before_open", "binary audio before 'open'")
        if self.start is None:
            raise _err("unexpected_audio", "binary audio although no media was selected", CLOSE_UNSUPPORTED_DATA)
        if len(data) > self.config.max_frame_bytes:
            raise _err("frame_too_large", f"binary frame of {len(data)} bytes exceeds "
                       f"{self.config.max_frame_bytes}", CLOSE_TOO_BIG)
        if len(data) % self._frame_bytes:
            raise AudioFormatError("partial_frame", f"audio frame of {len(data)} bytes is not a whole number of "
                                   f"{self._frame_bytes}-byte sample frames")
        self.samples += len(data) // self._frame_bytes
        if self._skip_frames:
            skip = min(self._skip_frames, len(data) // self._frame_bytes)
            self._skip_frames -= skip
            data = data[skip * self._frame_bytes:]
        return [AudioChunk(data=data)] if data else []

    # ---- engine feedback ---------------------------------------------------------------------
    def on_started(self, call_id: str, resume_token: str, info: dict[str, Any]) -> list[IngestEvent]:
        """A continued session re-attached to its call: line the client's position up with the
        media time the call has already received (see the module docstring)."""
        if not (self.continued and info.get("resumed")) or self.start is None or self.open_position <= 0:
            return []
        delta = self.open_position - float(info.get("media_time", 0.0))
        rate = self.start.sample_rate
        frames = round(abs(delta) * rate)
        if frames == 0:
            return []
        if delta > 0:  # the client is ahead: audio between was lost
            self.count("reconnect_gap")
            log.info("audiohook session %s: reconnect %.3f s ahead of the call: gap", self.session_id, delta)
            return [Gap(seconds=frames / rate, reason="loss")]
        if -delta > self.config.max_resend_s:
            self.count("reconnect_position_mismatch")
            log.warning("audiohook session %s: reconnect position %.3f s is %.1f s behind the call; "
                        "continuing at the call's media time", self.session_id, self.open_position, -delta)
            return []
        self.count("reconnect_overlap")
        self._skip_frames = frames  # the client resends audio the call already has
        return []

    def on_summary(self, summary: Summary) -> None:
        """The call is finalised: complete the client's close transaction."""
        if self.state == "closing":
            self._send_closed()
