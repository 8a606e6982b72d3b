"""Call ingest events: what every telephony adapter (sans-I/O) produces for the engine.

An adapter turns platform bytes/messages into these frozen events; the engine's call session
consumes them. Audio stays in the wire encoding here; the session decodes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any


class Role(str, Enum):  # noqa: UP042 (str() and format() of members must stay as they are)
    AGENT = "agent"
    CUSTOMER = "customer"
    MIXED = "mixed"
    UNKNOWN = "unknown"


class Encoding(str, Enum):  # noqa: UP042
    PCM16 = "pcm16"  # signed 16-bit little-endian linear PCM (L16 / slin)
    MULAW = "mulaw"  # G.711 μ-law (PCMU)
    ALAW = "alaw"  # G.711 A-law (PCMA)

    @property
    def sample_width(self) -> int:
        return 2 if self is Encoding.PCM16 else 1


def _frozen(m: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(m or {}))


@dataclass(frozen=True)
class ChannelSpec:
    """One audio channel of a call; ``index`` is its position in interleaved frames."""

    index: int
    role: Role
    name: str = ""


@dataclass(frozen=True)
class CallStart:
    call_id: str
    encoding: Encoding
    sample_rate: int
    channels: tuple[ChannelSpec, ...]
    language: str = "auto"  # en | zh | auto
    platform: str = "speechiq"
    hotwords: tuple[str, ...] = ()
    prompt: str = ""
    metadata: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    resume_token: str | None = None  # set when the client asks to resume a dropped call
    last_seq: int | None = None  # on resume: the highest event ``seq`` the client processed
    interleaved: bool = True  # False: audio arrives per channel (AudioChunk.channel set)

    def __post_init__(self) -> None:
        object.__setattr__(self, "metadata", _frozen(self.metadata))


@dataclass(frozen=True)
class AudioChunk:
    """Encoded audio. ``channel=None``: interleaved frames of all channels; else one channel only."""

    data: bytes
    channel: int | None = None


@dataclass(frozen=True)
class Gap:
    """Audio the platform dropped or paused: advance media time by ``seconds`` (silence)."""

    seconds: float
    channel: int | None = None
    reason: str = "discard"  # discard | pause | loss


@dataclass(frozen=True)
class Dtmf:
    digit: str
    channel: int | None = None
    duration_ms: int | None = None


@dataclass(frozen=True)
class MetadataUpdate:
    metadata: Mapping[str, Any]
    language: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "metadata", _frozen(self.metadata))


@dataclass(frozen=True)
class CallEnd:
    reason: str = "normal"  # normal | remote_hangup | error | transport_lost | reconnect
    detail: str = ""


IngestEvent = CallStart | AudioChunk | Gap | Dtmf | MetadataUpdate | CallEnd
