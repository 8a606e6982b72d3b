"""Binary L16 forks: FreeSWITCH mod_audio_fork / mod_audio_stream, jambonz ``listen``, Vonage, sans-I/O.

All three send optional/initial text metadata, then binary 16-bit little-endian PCM:
- FreeSWITCH: optional metadata text first (JSON or free text); mono | mixed | stereo; stereo is
  interleaved read (left: the party on the bugged leg) / write (right: what that leg hears).
- jambonz ``listen``: one JSON text frame first (``callSid``, ``sampleRate``, ``mixType``,
  ``metadata``); DTMF as ``{"event": "dtmf", "dtmf": "5"}``.
- Vonage: ``{"event": "websocket:connected", "content-type": "audio/l16;rate=16000", <headers>}``,
  DTMF ``{"event": "websocket:dtmf", "digit": "5", "duration": 260}``; always the mix.
Rate, mix, call id and join key may also come from the URI query (``?call_id=…&rate=16000&mix=stereo``).
Frames need not hold whole samples: a partial sample frame is carried over to the next frame.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError, ProtocolError
from ..ingest import AudioChunk, CallStart, ChannelSpec, Dtmf, Encoding, IngestEvent, MetadataUpdate, Role
from .base import CLOSE_POLICY_VIOLATION, CLOSE_TOO_BIG, CLOSE_UNSUPPORTED_DATA, Adapter, utf8_size_over
from .roles import lookup, parse_role, role_map

SAMPLE_RATES = (8000, 16000, 24000, 32000, 48000, 64000)
MIXES = ("mono", "mixed", "stereo")
FLAVORS = ("auto", "freeswitch", "jambonz", "vonage")
_KEY = re.compile(r"[A-Za-z0-9_.:@+-]{1,128}")
_DTMF = re.compile(r"[0-9A-Da-d*#]")
_CALL_KEYS = ("call_id", "callSid", "call_sid", "uuid", "call_uuid", "conversation_uuid", "channel_uuid")
_LIFTED = ("agent", "agent_id", "queue", "direction", "ani", "dnis", "from", "to", "campaign")


@dataclass(frozen=True)
class ForkConfig:
    flavor: str = "auto"  # auto-detected from the first text frame
    sample_rate: int = 8000  # when neither metadata nor URI says
    mix: str = "mono"
    roles: Mapping[str, str] = field(default_factory=dict)  # read / write / mixed → role
    max_frame_bytes: int = 1 << 20
    max_text_bytes: int = 64 * 1024
    default_language: str = "auto"

    def __post_init__(self) -> None:
        if self.flavor not in FLAVORS or self.mix not in MIXES or self.sample_rate not in SAMPLE_RATES:
            raise ConfigError(f"fork config: flavor in {FLAVORS}, mix in {MIXES}, sample_rate in {SAMPLE_RATES}")


def _err(code: str, message: str, close: int | None = CLOSE_POLICY_VIOLATION) -> ProtocolError:
    return ProtocolError(code, message, close)


def _rate(value: Any) -> int | None:
    if value is None:
        return None
    m = re.search(r"([0-9]{1,9})\s*(k)?", str(value).lower()[:64])
    if not m:
        raise _err("unsupported_sample_rate", f"sample rate {value!r} is not a number", CLOSE_UNSUPPORTED_DATA)
    rate = int(m.group(1)) * (1000 if m.group(2) else 1)
    if rate not in SAMPLE_RATES:
        raise _err("unsupported_sample_rate", f"sample rate {rate} is not one of {SAMPLE_RATES}",
                   CLOSE_UNSUPPORTED_DATA)
    return rate


class ForkAdapter(Adapter):
    """One forked media connection. ``params``: the connection URI's query parameters."""

    platform = "fork"

    def __init__(self, config: ForkConfig | None = None, params: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.config = config or ForkConfig()
        self.params = {str(k): str(v) for k, v in (params or {}).items()}
        self.flavor = self.config.flavor
        self.start: CallStart | None = None
        self.channels = 1
        self._carry = b""

    @property
    def texts_ignored(self) -> int:
        """Text frames after the start that carry nothing for the call (heartbeats, stop text …)."""
        return self.counts["ignored_text"]

    # ---- text --------------------------------------------------------------------------------
    def feed_text(self, text: str) -> list[IngestEvent]:
        size = utf8_size_over(text, self.config.max_text_bytes)
        if size is not None:
            raise _err("text_too_large", f"text frame of {size} bytes exceeds "
                       f"{self.config.max_text_bytes}", CLOSE_TOO_BIG)
        if self._ended:
            return []
        try:
            msg: Any = json.loads(text)
        except ValueError:
            msg = None
        if self.start is None:
            meta = msg if isinstance(msg, dict) else {"metadata_text": text[:4096]}
            return [self._start(meta)]
        if not isinstance(msg, dict):
            self.count("ignored_text")  # mod_audio_stream "stop <metadata>" text, heartbeats …
            return []
        event = msg.get("event")
        if event in ("dtmf", "websocket:dtmf"):
            digit = str(msg.get("digit", msg.get("dtmf", "")))
            if not _DTMF.fullmatch(digit):
                raise _err("invalid_dtmf", f"dtmf digit must be one of 0-9 A-D * #, got {digit!r}", None)
            duration = msg.get("duration")
            ok = isinstance(duration, (int, float)) and not isinstance(duration, bool) and 0 <= duration < 1e9
            return [Dtmf(digit=digit, duration_ms=int(duration) if ok else None)]
        if event is None and msg:
            return [MetadataUpdate(metadata={"fork_metadata": msg})]
        self.count("ignored_text")
        return []

    def _detect(self, meta: Mapping[str, Any]) -> str:
        if self.flavor != "auto":
            return self.flavor
        if str(meta.get("event", "")).startswith("websocket:"):
            return "vonage"
        if "mixType" in meta or ("callSid" in meta and "sampleRate" in meta):
            return "jambonz"
        return "freeswitch"

    def _start(self, meta: Mapping[str, Any]) -> CallStart:
        flavor = self._detect(meta)
        self.flavor = flavor
        self.platform = "fork" if flavor == "freeswitch" else flavor
        p = self.params
        if flavor == "vonage":
            ctype = str(meta.get("content-type", "audio/l16;rate=8000")).lower().replace(" ", "")
            if not ctype.startswith("audio/l16"):
                raise _err("unsupported_encoding", f"content-type {ctype!r} is not audio/l16", CLOSE_UNSUPPORTED_DATA)
            m = re.search(r"rate=(\d+)", ctype)
            rate = _rate(m.group(1) if m else 8000) or 8000
            mix = "mixed"
        else:
            rate = (_rate(p.get("rate") or p.get("sample_rate"))
                    or _rate(meta.get("sampleRate", meta.get("sample_rate"))) or self.config.sample_rate)
            mix = str(p.get("mix") or meta.get("mixType") or meta.get("mix") or self.config.mix).lower()
            if mix not in MIXES:
                raise _err("unsupported_mix", f"mix must be one of {MIXES}, got {mix!r}", CLOSE_UNSUPPORTED_DATA)
        roles = role_map("jambonz" if flavor == "jambonz" else "fork", self.config.roles)
        if mix == "stereo":
            channels: tuple[ChannelSpec, ...] = (
                ChannelSpec(index=0, role=lookup(roles, "read", Role.UNKNOWN), name="read"),
                ChannelSpec(index=1, role=lookup(roles, "write", Role.UNKNOWN), name="write"),
            )
        elif mix == "mixed":
            channels = (ChannelSpec(index=0, role=lookup(roles, "mixed", Role.MIXED), name="mixed"),)
        else:
            role = lookup(roles, "read", Role.UNKNOWN)
            if p.get("role"):
                try:
                    role = parse_role(p["role"])
                except ConfigError as exc:
                    raise _err("invalid_role", str(exc)) from exc
            channels = (ChannelSpec(index=0, role=role, name="read"),)
        self.channels = len(channels)
        call_id = p.get("call_id") or next((str(meta[k]) for k in _CALL_KEYS if meta.get(k)), "")
        if not call_id:
            call_id = f"{self.platform}-{uuid.uuid4().hex[:12]}"
        if not _KEY.fullmatch(call_id):
            raise _err("invalid_call_id", "call id must be 1-128 characters of A-Z a-z 0-9 _ . : @ + -")
        metadata: dict[str, Any] = {"platform": self.platform, "mix": mix,
                                    "fork_metadata": {k: v for k, v in meta.items() if k != "event"}}
        inner = meta.get("metadata")
        for source in (meta, inner if isinstance(inner, dict) else {}, p):
            for key in _LIFTED:
                if isinstance(source.get(key), (str, int, float)) and not isinstance(source.get(key), bool):
                    metadata.setdefault(key, source[key])
        join = p.get("join") or (inner.get("join_key") if isinstance(inner, dict) else None)
        if join:
            if not isinstance(join, str) or not _KEY.fullmatch(join):
                raise _err("invalid_join_key", "join key must be 1-128 characters of A-Z a-z 0-9 _ . : @ + -")
            metadata["join_key"] = f"fork:{join}"
            metadata["leg_role"] = channels[0].role.value if len(channels) == 1 else "stereo"
        language = str(p.get("language") or meta.get("language") or self.config.default_language)[:2].lower()
        self.start = CallStart(
            call_id=call_id, encoding=Encoding.PCM16, sample_rate=rate, channels=channels,
            language=language if language in ("en", "zh", "auto") else self.config.default_language,
            platform=self.platform, metadata=metadata, interleaved=True,
        )
        return self.start

    # ---- binary ------------------------------------------------------------------------------
    def feed_bytes(self, data: bytes) -> list[IngestEvent]:
        if self._ended:
            return []
        if len(data) > self.config.max_frame_bytes:
            raise _err("frame_too_large", f"binary frame of {len(data)} bytes exceeds "
                       f"{self.config.max_frame_bytes}", CLOSE_TOO_BIG)
        out: list[IngestEvent] = []
        if self.start is None:  # no metadata frame: start with URI/config defaults
            out.append(self._start({}))
        data = self._carry + data
        frame = 2 * self.channels
        cut = len(data) - len(data) % frame
        data, self._carry = data[:cut], data[cut:]
        if data:
            out.append(AudioChunk(data=data))
        return out
