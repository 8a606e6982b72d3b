"""Asterisk AudioSocket over raw TCP, sans-I/O.

Frame = kind (1 byte) + payload length (2 bytes, big-endian) + payload. Asterisk sends the call
UUID (0x01) first, then audio (0x10 slin 8 kHz, 0x11…0x18 higher rates; with a non-slin channel
codec the bytes are that codec while still labelled 0x10, so the codec is configured out of
band), DTMF (0x03), hangup (0x00) or error (0xFF); a normal hangup is simply a TCP close. Bytes
may arrive split or merged anyhow: the parser buffers partial frames across ``feed_bytes`` calls.

Joining two legs (agent / customer snoops) into one call: with ``join_legs`` on, the last hex digit
of the UUID names the leg (1 = customer, 2 = agent, 0 = mixed) and the other 31 digits are the
shared call key, exposed as ``metadata["join_key"]`` / ``metadata["leg_role"]``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from ..errors import ProtocolError
from ..ingest import AudioChunk, CallStart, ChannelSpec, Dtmf, Encoding, IngestEvent, Role
from .base import CLOSE_INVALID_PAYLOAD, CLOSE_POLICY_VIOLATION, CLOSE_UNSUPPORTED_DATA, Adapter
from .roles import parse_role

KIND_HANGUP, KIND_UUID, KIND_DTMF, KIND_ERROR = 0x00, 0x01, 0x03, 0xFF
KIND_RATES = {0x10: 8000, 0x11: 12000, 0x12: 16000, 0x13: 24000, 0x14: 32000, 0x15: 44100,
              0x16: 48000, 0x17: 96000, 0x18: 192000}
CODECS = {"slin": Encoding.PCM16, "ulaw": Encoding.MULAW, "alaw": Encoding.ALAW}
LEG_DIGITS = {"0": Role.MIXED, "1": Role.CUSTOMER, "2": Role.AGENT}
HEADER = 3
_DTMF = frozenset("0123456789ABCDabcd*#")


@dataclass(frozen=True)
class AudioSocketConfig:
    """``codec``: what frames labelled 0x10 really carry (``slin``, ``ulaw`` or ``alaw``)."""

    codec: str = "slin"
    role: str = "mixed"  # role of the connection's single channel when the UUID names no leg
    join_legs: bool = False  # last UUID hex digit names the leg; the rest is the shared call key
    default_language: str = "auto"

    def __post_init__(self) -> None:
        if self.codec not in CODECS:
            raise ValueError(f"unknown AudioSocket codec {self.codec!r}; use one of {sorted(CODECS)}")
        parse_role(self.role)


def _err(code: str, message: str, close: int | None = CLOSE_POLICY_VIOLATION) -> ProtocolError:
    return ProtocolError(code, message, close)


def frame(kind: int, payload: bytes = b"") -> bytes:
    """Encode one AudioSocket frame."""
    if not 0 <= kind <= 0xFF or len(payload) > 0xFFFF:
        raise ValueError("kind must be a byte and payload at most 65535 bytes")
    return bytes((kind,)) + len(payload).to_bytes(2, "big") + payload


def leg_of(call_uuid: str, join_legs: bool) -> tuple[str, str | None, Role | None]:
    """UUID → (call id, join key, leg role). Without ``join_legs`` the UUID is the call id."""
    if not join_legs:
        return call_uuid, None, None
    digit = call_uuid[-1]
    role = LEG_DIGITS.get(digit)
    if role is None:
        return call_uuid, None, None
    stem = call_uuid[:-1]
    return stem + "0", f"audiosocket:{stem}", role


class AudioSocketAdapter(Adapter):
    """One AudioSocket TCP connection = one mono channel (one party, or a mix)."""

    platform = "audiosocket"
    close_after_end = True  # nothing more will come after a hangup/error frame

    def __init__(self, config: AudioSocketConfig | None = None) -> None:
        super().__init__()
        self.config = config or AudioSocketConfig()
        self._buf = bytearray()
        self.uuid: str | None = None
        self.start: CallStart | None = None
        self.rate: int | None = None
        self._carry = b""  # an odd trailing byte of slin audio, kept for the next frame
        self._pending: list[IngestEvent] = []  # DTMF seen before the first audio frame

    @property
    def ignored_dtmf(self) -> int:
        """DTMF frames whose payload is not exactly one DTMF key (ignored, counted)."""
        return self.counts["ignored_dtmf"]

    def feed_text(self, text: str) -> list[IngestEvent]:
        raise _err("text_not_expected", "AudioSocket is a binary protocol", CLOSE_UNSUPPORTED_DATA)

    def feed_bytes(self, data: bytes) -> list[IngestEvent]:
        if self._ended:
            return []
        self._buf += data
        out: list[IngestEvent] = []
        while len(self._buf) >= HEADER and not self._ended:
            kind = self._buf[0]
            length = int.from_bytes(self._buf[1:3], "big")
            if len(self._buf) < HEADER + length:
                break
            payload = bytes(self._buf[HEADER:HEADER + length])
            del self._buf[:HEADER + length]
            out.extend(self._frame(kind, payload))
        return out

    def _frame(self, kind: int, payload: bytes) -> list[IngestEvent]:
        if kind == KIND_UUID:
            if self.uuid is not None:
                raise _err("duplicate_uuid", "a second UUID frame on one connection")
            if len(payload) != 16:
                raise _err("invalid_uuid", f"UUID frame must carry 16 bytes, got {len(payload)}",
                           CLOSE_INVALID_PAYLOAD)
            self.uuid = str(uuid.UUID(bytes=payload))
            return []
        if kind not in KIND_RATES and kind not in (KIND_HANGUP, KIND_DTMF, KIND_ERROR):
            raise _err("unknown_kind", f"unknown AudioSocket frame kind 0x{kind:02x}", CLOSE_UNSUPPORTED_DATA)
        if self.uuid is None:
            raise _err("uuid_expected", f"frame kind 0x{kind:02x} before the UUID frame")
        if kind == KIND_HANGUP:
            return self._pending_flush() + self.end("normal", "audiosocket hangup")
        if kind == KIND_ERROR:
            code = f" code 0x{payload[0]:02x}" if payload else ""
            return self._pending_flush() + self.end("error", f"audiosocket error frame{code}")
        if kind == KIND_DTMF:
            digit = payload[:1].decode("latin-1")
            if len(payload) != 1 or digit not in _DTMF:
                self.count("ignored_dtmf")
                return []
            event = Dtmf(digit=digit, channel=0)
            if self.start is None:
                self._pending.append(event)
                return []
            return [event]
        return self._audio(kind, payload)

    def _audio(self, kind: int, payload: bytes) -> list[IngestEvent]:
        out: list[IngestEvent] = []
        rate = KIND_RATES[kind]
        if self.start is None:
            self.rate = rate
            out.append(self._call_start(rate))
            out.extend(self._pending_flush())
        elif rate != self.rate:
            raise _err("rate_changed", f"audio kind 0x{kind:02x} ({rate} Hz) after {self.rate} Hz audio",
                       CLOSE_UNSUPPORTED_DATA)
        assert self.start is not None
        data = self._carry + payload
        if self.start.encoding is Encoding.PCM16 and len(data) % 2:
            data, self._carry = data[:-1], data[-1:]
        else:
            self._carry = b""
        if data:
            out.append(AudioChunk(data=data, channel=0))
        return out

    def _pending_flush(self) -> list[IngestEvent]:
        out, self._pending = (self._pending if self.start is not None else []), []
        return out

    def _call_start(self, rate: int) -> CallStart:
        assert self.uuid is not None
        call_id, join_key, leg = leg_of(self.uuid, self.config.join_legs)
        role = leg or parse_role(self.config.role)
        meta: dict[str, object] = {"platform": "audiosocket", "uuid": self.uuid, "codec": self.config.codec}
        if join_key:
            meta["join_key"] = join_key
            meta["leg_role"] = role.value
        self.start = CallStart(
            call_id=call_id, encoding=CODECS[self.config.codec], sample_rate=rate,
            channels=(ChannelSpec(index=0, role=role, name=role.value),), language=self.config.default_language,
            platform="audiosocket", metadata=meta, interleaved=False,
        )
        return self.start
