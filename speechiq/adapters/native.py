"""speechiq's own streaming protocol (``/v1/calls``), sans-I/O. See docs/protocol.md.

Client → engine: JSON ``start``, binary frames of interleaved samples, JSON ``dtmf``, ``metadata``,
``stop``. Engine → client: ``started``, ``transcript``, ``alert``, ``notice``, ``error``, ``summary``.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from ..errors import ProtocolError
from ..events import Summary, to_json
from ..ingest import (
    AudioChunk,
    CallStart,
    ChannelSpec,
    Dtmf,
    Encoding,
    IngestEvent,
    MetadataUpdate,
    Role,
)
from .base import (
    CLOSE_INVALID_PAYLOAD,
    CLOSE_POLICY_VIOLATION,
    CLOSE_TOO_BIG,
    CLOSE_UNSUPPORTED_DATA,
    Adapter,
    utf8_size_over,
)

ENCODING_ALIASES = {
    "pcm16": Encoding.PCM16, "l16": Encoding.PCM16, "linear16": Encoding.PCM16, "slin": Encoding.PCM16,
    "mulaw": Encoding.MULAW, "ulaw": Encoding.MULAW, "pcmu": Encoding.MULAW, "audio/x-mulaw": Encoding.MULAW,
    "alaw": Encoding.ALAW, "pcma": Encoding.ALAW, "audio/x-alaw": Encoding.ALAW,
}
SAMPLE_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
LANGUAGES = ("en", "zh", "auto")
MAX_CHANNELS = 8
_CALL_ID = re.compile(r"^[A-Za-z0-9_.:@+-]{1,128}$")
_DTMF = re.compile(r"^[0-9A-Da-d*#]$")


@dataclass(frozen=True)
class NativeConfig:
    max_frame_bytes: int = 1 << 20
    max_text_bytes: int = 64 * 1024
    default_language: str = "auto"


def _err(code: str, message: str, close: int | None = CLOSE_POLICY_VIOLATION) -> ProtocolError:
    return ProtocolError(code, message, close)


class NativeAdapter(Adapter):
    """Parser/state machine for one ``/v1/calls`` connection."""

    platform = "speechiq"
    resumable = True  # a dropped connection can resume with the token from `started`

    def __init__(self, config: NativeConfig | None = None) -> None:
        super().__init__()
        self.config = config or NativeConfig()
        self.start: CallStart | None = None
        self._frame_bytes = 0  # bytes per interleaved sample frame
        self.partials = True

    # ---- text --------------------------------------------------------------------------
    def feed_text(self, text: str) -> list[IngestEvent]:
        size = utf8_size_over(text, self.config.max_text_bytes)
        if size is not None:
            raise _err("text_too_large", f"text frame of {size} bytes exceeds "
                       f"{self.config.max_text_bytes}", CLOSE_TOO_BIG)
        try:
            msg = json.loads(text)
        except ValueError as exc:
            raise _err("invalid_json", f"text frame is not valid JSON: {exc}", CLOSE_INVALID_PAYLOAD) from exc
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            raise _err("invalid_message", "a text frame must be a JSON object with a string 'type'")
        kind = msg["type"]
        if kind not in ("start", "stop", "dtmf", "metadata"):
            raise _err("unknown_type", f"unknown message type {kind!r}; expected start, dtmf, metadata or stop")
        if self._ended:
            raise _err("after_stop", f"'{kind}' received after stop")
        if kind == "start":
            return [self._on_start(msg)]
        if self.start is None:
            raise _err("not_started", f"'{kind}' before 'start': send a start message first")
        if kind == "stop":
            return self.end("normal", "client stop")
        if kind == "dtmf":
            digit = str(msg.get("digit", ""))
            if not _DTMF.fullmatch(digit):
                raise _err("invalid_dtmf", f"dtmf digit must be one of 0-9 A-D * #, got {digit!r}", None)
            return [Dtmf(digit=digit, channel=_opt_int(msg.get("channel")),
                         duration_ms=_opt_int(msg.get("duration_ms")))]
        meta = msg.get("metadata", {})
        if not isinstance(meta, dict):
            raise _err("invalid_metadata", "'metadata' must be a JSON object", None)
        lang = msg.get("language")
        if lang is not None and lang not in LANGUAGES:
            raise _err("unsupported_language", f"language must be one of {LANGUAGES}", None)
        return [MetadataUpdate(metadata=meta, language=lang)]

    def _on_start(self, msg: dict[str, Any]) -> CallStart:
        if self.start is not None:
            raise _err("duplicate_start", "the call has already started")
        call_id = msg.get("call_id") or f"call-{uuid.uuid4().hex[:12]}"
        if not isinstance(call_id, str) or not _CALL_ID.fullmatch(call_id):
            raise _err("invalid_start", "call_id must be 1-128 characters of A-Z a-z 0-9 _ . : @ + -")
        enc_name = str(msg.get("encoding", "pcm16")).lower()
        encoding = ENCODING_ALIASES.get(enc_name)
        if encoding is None:
            raise _err("unsupported_encoding", f"unknown encoding {enc_name!r}; use pcm16, mulaw or alaw",
                       CLOSE_UNSUPPORTED_DATA)
        rate = msg.get("sample_rate", 8000)
        if not isinstance(rate, int) or isinstance(rate, bool) or rate not in SAMPLE_RATES:
            raise _err("unsupported_sample_rate", f"sample_rate must be one of {SAMPLE_RATES}, got {rate!r}",
                       CLOSE_UNSUPPORTED_DATA)
        raw_channels = msg.get("channels", [{"role": "mixed"}])
        if not isinstance(raw_channels, list) or not 1 <= len(raw_channels) <= MAX_CHANNELS:
            raise _err("invalid_start", f"channels must be a list of 1-{MAX_CHANNELS} channel objects")
        channels = []
        for i, ch in enumerate(raw_channels):
            role_name = ch.get("role") if isinstance(ch, dict) else ch
            try:
                role = Role(str(role_name))
            except ValueError:
                raise _err("invalid_start", f"channel {i}: role must be agent, customer or mixed, "
                           f"got {role_name!r}") from None
            name = str(ch.get("name", "")) if isinstance(ch, dict) else ""
            channels.append(ChannelSpec(index=i, role=role, name=name))
        language = msg.get("language", self.config.default_language)
        if language not in LANGUAGES:
            raise _err("unsupported_language", f"language must be one of {LANGUAGES}, got {language!r}")
        hotwords = msg.get("hotwords", [])
        if not isinstance(hotwords, list) or not all(isinstance(h, str) for h in hotwords):
            raise _err("invalid_start", "hotwords must be a list of strings")
        prompt = msg.get("prompt", "")
        metadata = msg.get("metadata", {})
        if not isinstance(prompt, str) or not isinstance(metadata, dict):
            raise _err("invalid_start", "prompt must be a string and metadata an object")
        token = msg.get("resume_token")
        if token is not None and not isinstance(token, str):
            raise _err("invalid_start", "resume_token must be a string")
        last_seq = msg.get("last_seq")
        if last_seq is not None and (isinstance(last_seq, bool) or not isinstance(last_seq, int) or last_seq < 0):
            raise _err("invalid_start", "last_seq must be a non-negative integer (the highest seq received)")
        self.partials = bool(msg.get("partials", True))
        self.start = CallStart(
            call_id=call_id, encoding=encoding, sample_rate=rate, channels=tuple(channels),
            language=language, platform=self.platform, hotwords=tuple(hotwords[:100]), prompt=prompt[:1000],
            metadata=metadata, resume_token=token, last_seq=last_seq if token is not None else None,
        )
        self._frame_bytes = encoding.sample_width * len(channels)
        return self.start

    # ---- binary ------------------------------------------------------------------------
    def feed_bytes(self, data: bytes) -> list[IngestEvent]:
        if self.start is None:
            raise _err("binary_before_start", "binary audio received before 'start'")
        if self._ended:
            raise _err("after_stop", "audio received after stop")
        if len(data) > self.config.max_frame_bytes:
            raise _err("frame_too_large", f"binary frame of {len(data)} bytes exceeds "
                       f"{self.config.max_frame_bytes}", CLOSE_TOO_BIG)
        if len(data) % self._frame_bytes:
            raise _err("odd_byte_count", f"binary frame of {len(data)} bytes is not a whole number of "
                       f"{self._frame_bytes}-byte sample frames ({self.start.encoding.value}, "
                       f"{len(self.start.channels)} channel(s))", CLOSE_INVALID_PAYLOAD)
        return [AudioChunk(data=data)] if data else []

    # ---- engine feedback ---------------------------------------------------------------
    def on_started(self, call_id: str, resume_token: str, info: dict[str, Any]) -> list[IngestEvent]:
        wire = {**info, "media_time": round(float(info.get("media_time", 0.0)), 3)}
        self.send(json.dumps({"type": "started", "call_id": call_id, "resume_token": resume_token, **wire},
                             ensure_ascii=False))
        return []

    def on_engine_event(self, event: Any) -> None:
        if not self.partials and getattr(event, "type", "") == "transcript" and not event.is_final:
            return
        self.send(to_json(event))

    def on_summary(self, summary: Summary) -> None:
        """Nothing to add: the summary already reached this connection as an engine event."""

    def error_frame(self, exc: ProtocolError) -> str:
        return json.dumps({"type": "error", "code": exc.code, "message": exc.message})

    def warning_frame(self, exc: ProtocolError) -> str:
        """Non-fatal errors are ``error`` events too; no close follows (docs/protocol.md)."""
        return self.error_frame(exc)


def _opt_int(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
