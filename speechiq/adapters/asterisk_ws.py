"""Asterisk chan_websocket (``Dial(WebSocket/…)`` / ARI externalMedia ``transport=websocket``), sans-I/O.

Text frames are control events, in the plain-text form
(``MEDIA_START connection_id:… channel:… format:ulaw optimal_frame_size:160 ptime:20``) or the
JSON form (``{"event": "MEDIA_START", …, "channel_variables": {…}}``); binary frames are raw
media in the ``format`` MEDIA_START named. There is no end event: the WebSocket close ends the call.
Events this parser does not know (a newer Asterisk may add some) are ignored and counted
(``unknown_event``), so an upgrade never breaks calls.

Joining two connections (agent and customer snoops) into one call: put ``join=<call key>`` and
``role=agent|customer`` in the URI (``v(join=…,role=…)``) or set the channel variables
``SPEECHIQ_JOIN`` / ``SPEECHIQ_ROLE`` (JSON control form).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError, ProtocolError
from ..ingest import AudioChunk, CallStart, ChannelSpec, Dtmf, Encoding, IngestEvent
from .base import (
    CLOSE_INVALID_PAYLOAD,
    CLOSE_POLICY_VIOLATION,
    CLOSE_TOO_BIG,
    CLOSE_UNSUPPORTED_DATA,
    Adapter,
    utf8_size_over,
)
from .roles import parse_role

FORMATS: dict[str, tuple[Encoding, int]] = {
    "ulaw": (Encoding.MULAW, 8000), "alaw": (Encoding.ALAW, 8000), "slin": (Encoding.PCM16, 8000),
    "slin12": (Encoding.PCM16, 12000), "slin16": (Encoding.PCM16, 16000), "slin24": (Encoding.PCM16, 24000),
    "slin32": (Encoding.PCM16, 32000), "slin44": (Encoding.PCM16, 44100), "slin48": (Encoding.PCM16, 48000),
    "slin96": (Encoding.PCM16, 96000), "slin192": (Encoding.PCM16, 192000),
}
EVENTS = frozenset({"MEDIA_START", "DTMF_END", "DTMF_BEGIN", "MEDIA_XOFF", "MEDIA_XON", "STATUS",
                    "MEDIA_BUFFERING_COMPLETED", "MEDIA_MARK_PROCESSED", "QUEUE_DRAINED", "ERROR"})
MAX_MESSAGE = 65500  # bytes: Asterisk hangs up on a larger message too
_KEY = re.compile(r"[A-Za-z0-9_.:@+-]{1,128}")
_DTMF = re.compile(r"[0-9A-Da-d*#]")


@dataclass(frozen=True)
class AsteriskWsConfig:
    default_format: str = "ulaw"  # when MEDIA_START names none
    role: str = "mixed"  # role when neither URI nor channel variables name one
    default_language: str = "auto"


def _err(code: str, message: str, close: int | None = CLOSE_POLICY_VIOLATION) -> ProtocolError:
    return ProtocolError(code, message, close)


def parse_control(text: str) -> dict[str, Any]:
    """A control frame in either form → dict with ``event`` and the fields as strings/objects."""
    s = text.strip()
    if s.startswith("{"):
        try:
            msg = json.loads(s)
        except ValueError as exc:
            raise _err("invalid_json", f"control frame is not valid JSON: {exc}", CLOSE_INVALID_PAYLOAD) from exc
        if not isinstance(msg, dict) or not isinstance(msg.get("event"), str):
            raise _err("invalid_message", "a JSON control frame must be an object with a string 'event'")
        return msg
    parts = s.split()
    if not parts:
        raise _err("invalid_message", "empty control frame")
    msg: dict[str, Any] = {"event": parts[0]}
    rest = []
    for part in parts[1:]:
        key, sep, value = part.partition(":")
        if sep and key:
            msg[key] = value
        else:
            rest.append(part)
    if rest:
        msg["args"] = rest
    return msg


class AsteriskWsAdapter(Adapter):
    """One chan_websocket media connection (mono). ``params``: the connection URI's query parameters."""

    platform = "asterisk"

    def __init__(self, config: AsteriskWsConfig | None = None, params: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.config = config or AsteriskWsConfig()
        self.params = {str(k).lower(): str(v) for k, v in (params or {}).items()}
        self.start: CallStart | None = None
        self.flow_paused = False
        self.errors: list[str] = []
        self._width = 1
        self._carry = b""

    def feed_text(self, text: str) -> list[IngestEvent]:
        size = utf8_size_over(text, MAX_MESSAGE)
        if size is not None:
            raise _err("text_too_large", f"control frame of {size} bytes exceeds {MAX_MESSAGE}", CLOSE_TOO_BIG)
        msg = parse_control(text)
        event = msg["event"]
        if event not in EVENTS:
            self.count("unknown_event")  # a newer Asterisk's event: nothing we need
            return []
        if self._ended:
            return []
        if event == "MEDIA_START":
            return [self._on_start(msg)]
        if self.start is None:
            raise _err("not_started", f"{event} before MEDIA_START")
        if event == "DTMF_END":
            digit = str(msg.get("digit", ""))
            if not _DTMF.fullmatch(digit):
                raise _err("invalid_dtmf", f"DTMF digit must be one of 0-9 A-D * #, got {digit!r}",
                           CLOSE_INVALID_PAYLOAD)
            return [Dtmf(digit=digit, channel=0)]
        if event in ("MEDIA_XOFF", "MEDIA_XON"):
            self.flow_paused = event == "MEDIA_XOFF"  # about our outbound queue; we send no media
        elif event == "ERROR":
            self.errors.append(str(msg.get("error_text", msg.get("args", "")))[:500])
            self.count("platform_error")
        return []

    def _on_start(self, msg: dict[str, Any]) -> CallStart:
        if self.start is not None:
            raise _err("duplicate_start", "a second MEDIA_START on one connection")
        fmt = str(msg.get("format") or self.config.default_format).lower()
        if fmt not in FORMATS:
            raise _err("unsupported_format", f"media format {fmt!r} is not supported; use c(ulaw), c(alaw) "
                       "or c(slin…)", CLOSE_UNSUPPORTED_DATA)
        encoding, rate = FORMATS[fmt]
        self._width = encoding.sample_width
        variables = msg.get("channel_variables")
        variables = {str(k).upper(): str(v) for k, v in variables.items()} if isinstance(variables, dict) else {}
        join = self.params.get("join") or variables.get("SPEECHIQ_JOIN")
        role_name = self.params.get("role") or variables.get("SPEECHIQ_ROLE") or self.config.role
        try:
            role = parse_role(role_name)
        except ConfigError as exc:
            raise _err("invalid_role", str(exc)) from exc
        connection = str(msg.get("connection_id") or "")
        channel_id = str(msg.get("channel_id") or "")
        if join is not None and not _KEY.fullmatch(join):
            raise _err("invalid_join_key", "join key must be 1-128 characters of A-Z a-z 0-9 _ . : @ + -")
        call_id = join or channel_id or connection
        if not call_id or not _KEY.fullmatch(call_id):
            raise _err("invalid_start", "MEDIA_START names no usable connection_id/channel_id")
        meta: dict[str, Any] = {
            "platform": "asterisk", "connection_id": connection, "channel": msg.get("channel"),
            "channel_id": channel_id, "format": fmt, "optimal_frame_size": msg.get("optimal_frame_size"),
            "ptime": msg.get("ptime"), "channel_variables": variables,
        }
        for key in ("agent", "queue", "direction", "ani", "dnis"):
            if self.params.get(key):
                meta[key] = self.params[key]
        if join:
            meta["join_key"] = f"asterisk:{join}"
            meta["leg_role"] = role.value
        self.start = CallStart(
            call_id=call_id, encoding=encoding, sample_rate=rate,
            channels=(ChannelSpec(index=0, role=role, name=role.value),),
            language=self.config.default_language, platform="asterisk",
            metadata={k: v for k, v in meta.items() if v is not None}, interleaved=False,
        )
        return self.start

    def feed_bytes(self, data: bytes) -> list[IngestEvent]:
        if self._ended:
            return []
        if self.start is None:
            raise _err("media_before_start", "binary media before MEDIA_START")
        if len(data) > MAX_MESSAGE:
            raise _err("frame_too_large", f"binary frame of {len(data)} bytes exceeds {MAX_MESSAGE}", CLOSE_TOO_BIG)
        data = self._carry + data
        cut = len(data) - len(data) % self._width
        data, self._carry = data[:cut], data[cut:]
        return [AudioChunk(data=data, channel=0)] if data else []
