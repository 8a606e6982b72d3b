"""Client-side message generators: play a WAV as each telephony platform would send it (sans-I/O).

``messages(protocol, wav, …)`` yields ``(media_time_s, frame)`` in send order: text frames as
``str``, binary frames as ``bytes``, and :class:`WaitFor` sentinels where the platform waits for
the server (AudioHook ``opened`` / ``closed``). ``media_time_s`` is the media time reached once the
frame is sent (0 for handshakes). Closing the connection after the last frame is the caller's job
(Asterisk, FreeSWITCH, jambonz and Vonage end a call by closing the socket).

Roles name each WAV channel (default ``agent, customer`` for stereo, ``mixed`` for mono, as
``speechiq replay`` assumes); each platform puts the customer where its default role map expects.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

PROTOCOLS = ("twilio", "telnyx", "signalwire", "audiohook", "audiosocket", "asterisk", "fork", "jambonz", "vonage")
ROUTES = {"twilio": "/v1/twilio", "telnyx": "/v1/telnyx", "signalwire": "/v1/signalwire",
          "audiohook": "/v1/audiohook", "asterisk": "/v1/asterisk", "fork": "/v1/fork",
          "jambonz": "/v1/jambonz", "vonage": "/v1/vonage"}
# WebSocket subprotocols the real clients offer (Asterisk websocket_client, jambonz, drachtio mod_audio_fork)
SUBPROTOCOLS = {"asterisk": "media", "jambonz": "audio.jambonz.org", "fork": "audiostream.drachtio.org"}
DEFAULT_ROLES = {1: ("mixed",), 2: ("agent", "customer")}
AUDIOSOCKET_KINDS = {8000: 0x10, 12000: 0x11, 16000: 0x12, 24000: 0x13, 32000: 0x14, 44100: 0x15,
                     48000: 0x16, 96000: 0x17, 192000: 0x18}
FORK_RATES = (8000, 16000, 24000, 32000, 48000, 64000)
_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")


class WavLike(Protocol):
    sample_rate: int
    samples: np.ndarray  # int16, (n, channels)


@dataclass(frozen=True)
class WaitFor:
    """Sentinel: wait until the server sent a message of this ``type`` (AudioHook) before going on."""

    what: str
    timeout_s: float = 10.0


Frame = str | bytes | WaitFor


# ---- audio helpers -------------------------------------------------------------------------------
def _resample(samples: np.ndarray, in_rate: int, out_rate: int) -> np.ndarray:
    if in_rate == out_rate:
        return np.ascontiguousarray(samples, dtype=np.int16)
    from ..audio.codecs import to_float32, to_int16
    from ..audio.resample import resample

    return to_int16(resample(to_float32(samples), in_rate, out_rate))


def _mono(samples: np.ndarray, channel: int | None) -> np.ndarray:
    if samples.shape[1] == 1:
        return samples[:, 0]
    if channel is not None:
        return samples[:, channel]
    return np.clip(samples.astype(np.int32).sum(axis=1), -32768, 32767).astype(np.int16)


def _mulaw(samples: np.ndarray) -> bytes:
    from ..audio.codecs import encode_mulaw  # shared G.711 tables

    return encode_mulaw(np.ascontiguousarray(samples, dtype=np.int16))


def _pcm(samples: np.ndarray) -> bytes:
    return np.ascontiguousarray(samples, dtype=np.int16).astype("<i2").tobytes()


def _roles(wav: WavLike, roles: Sequence[str] | None) -> tuple[str, ...]:
    ch = int(wav.samples.shape[1])
    out = tuple(r.lower() for r in (roles or DEFAULT_ROLES.get(ch, ("mixed",) * ch)))
    if len(out) != ch:
        raise ValueError(f"{ch} channel(s) but {len(out)} role(s) given")
    return out


def _frames(n: int, rate: int, frame_ms: int) -> Iterator[tuple[int, int]]:
    step = max(1, rate * frame_ms // 1000)
    for i in range(0, n, step):
        yield i, min(n, i + step)


def _as_uuid(call_id: str | None) -> uuid.UUID:
    if call_id and _UUID_RE.match(call_id):
        return uuid.UUID(call_id)
    return uuid.uuid5(uuid.NAMESPACE_URL, call_id) if call_id else uuid.uuid4()


def _dur(seconds: float) -> str:
    return f"PT{seconds:.3f}".rstrip("0").rstrip(".") + "S"


# ---- per platform --------------------------------------------------------------------------------
def _twilio(wav: WavLike, call_id: str, roles: tuple[str, ...], frame_ms: int,
            opts: Mapping[str, Any], dialect: str) -> Iterator[tuple[float, Frame]]:
    samples = _resample(wav.samples, wav.sample_rate, 8000)
    tracks: dict[str, int] = {}
    for i, role in enumerate(roles):
        name = "outbound" if role == "agent" else "inbound"
        if name in tracks:
            raise ValueError(f"two WAV channels map to the {name} track (roles {roles})")
        tracks[name] = i
    names = [n for n in ("inbound", "outbound") if n in tracks]
    snake = dialect == "telnyx"
    sid_key, seq_key = ("stream_id", "sequence_number") if snake else ("streamSid", "sequenceNumber")
    stream = f"MZ{uuid.uuid5(uuid.NAMESPACE_URL, call_id).hex}"
    seq = 0

    def env(event: str, **body: Any) -> str:
        nonlocal seq
        seq += 1
        return json.dumps({"event": event, seq_key: str(seq), sid_key: stream, **body})

    yield 0.0, json.dumps({"event": "connected", "version": "1.0.0"} if snake else
                          {"event": "connected", "protocol": "Call", "version": "1.0.0"})
    custom = dict(opts.get("custom_parameters", {}))
    if snake:
        start = {"call_control_id": call_id, "call_session_id": call_id, "from": opts.get("ani", "+15550100"),
                 "to": opts.get("dnis", "+18005550199"), "custom_parameters": custom,
                 "media_format": {"encoding": "PCMU", "sample_rate": 8000, "channels": 1}}
    else:
        start = {"streamSid": stream, "accountSid": "AC" + "0" * 32, "callSid": call_id, "tracks": names,
                 "customParameters": custom,
                 "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}
    yield 0.0, env("start", start=start)
    for chunk, (a, b) in enumerate(_frames(len(samples), 8000, frame_ms), start=1):
        for name in names:
            payload = base64.b64encode(_mulaw(samples[a:b, tracks[name]])).decode("ascii")
            media = {"track": name, "chunk": str(chunk), "timestamp": str(a * 1000 // 8000), "payload": payload}
            yield b / 8000, env("media", media=media)
    stop = {"call_control_id": call_id} if snake else {"accountSid": "AC" + "0" * 32, "callSid": call_id}
    yield len(samples) / 8000, env("stop", stop=stop)


def _audiohook(wav: WavLike, call_id: str, roles: tuple[str, ...], frame_ms: int,
               opts: Mapping[str, Any]) -> Iterator[tuple[float, Frame]]:
    samples = _resample(wav.samples, wav.sample_rate, 8000)
    names = ["internal" if r == "agent" else "external" for r in roles]
    if len(set(names)) != len(names):
        raise ValueError(f"roles {roles} map two channels to the same AudioHook channel")
    session = str(_as_uuid(call_id))
    seq, serverseq = 0, 1  # the server answers open with opened (seq 1), each ping with a pong
    total = len(samples) / 8000

    def msg(kind: str, t: float, params: dict[str, Any]) -> str:
        nonlocal seq
        seq += 1
        return json.dumps({"version": "2", "id": session, "type": kind, "seq": seq,
                           "serverseq": 0 if kind == "open" else serverseq, "position": _dur(t),
                           "parameters": params})

    offers = [{"type": "audio", "format": "PCMU", "channels": names, "rate": 8000}]
    offers += [{"type": "audio", "format": "PCMU", "channels": [n], "rate": 8000} for n in names if len(names) > 1]
    nil = "00000000-0000-0000-0000-000000000000"
    probe = bool(opts.get("probe"))
    params: dict[str, Any] = {
        "organizationId": opts.get("organization_id", nil.replace("0", "1")),
        "conversationId": nil if probe else str(opts.get("conversation_id", uuid.uuid5(uuid.NAMESPACE_URL,
                                                                                         "conv:" + call_id))),
        "participant": {"id": nil if probe else str(uuid.uuid5(uuid.NAMESPACE_URL, "part:" + call_id)),
                        "ani": opts.get("ani", "+15550100"), "aniName": opts.get("ani_name", "Replay Caller"),
                        "dnis": opts.get("dnis", "+18005550199")},
        "media": offers, "language": opts.get("language", "en-US"),
    }
    if opts.get("custom_config"):
        params["customConfig"] = opts["custom_config"]
    yield 0.0, msg("open", 0.0, params)
    yield 0.0, WaitFor("opened")
    if probe:
        yield 0.0, msg("close", 0.0, {"reason": "end"})
        yield 0.0, WaitFor("closed")
        return
    ping_every = float(opts.get("ping_every_s", 5.0))
    next_ping = 1.0
    for a, b in _frames(len(samples), 8000, frame_ms):
        yield b / 8000, _mulaw(samples[a:b])  # interleaved in the offer's channel order
        if b / 8000 >= next_ping and b < len(samples):
            yield b / 8000, msg("ping", b / 8000, {})
            serverseq += 1
            next_ping += ping_every
    yield total, msg("close", total, {"reason": "end"})
    yield total, WaitFor("closed", float(opts.get("close_timeout_s", 60.0)))


def _audiosocket(wav: WavLike, call_id: str, roles: tuple[str, ...], frame_ms: int,
                 opts: Mapping[str, Any]) -> Iterator[tuple[float, Frame]]:
    from ..adapters.audiosocket import KIND_UUID, frame

    codec = str(opts.get("codec", "slin"))
    rate = 8000 if codec != "slin" else int(opts.get("sample_rate", 8000))
    if rate not in AUDIOSOCKET_KINDS:
        raise ValueError(f"AudioSocket carries {sorted(AUDIOSOCKET_KINDS)} Hz, not {rate}")
    mono = _resample(_mono(wav.samples, opts.get("channel"))[:, None], wav.sample_rate, rate)[:, 0]
    yield 0.0, frame(KIND_UUID, _as_uuid(call_id).bytes)
    kind = AUDIOSOCKET_KINDS[rate]
    for a, b in _frames(len(mono), rate, frame_ms):
        payload = _mulaw(mono[a:b]) if codec == "ulaw" else _pcm(mono[a:b])
        yield b / rate, frame(kind, payload)


def _asterisk(wav: WavLike, call_id: str, roles: tuple[str, ...], frame_ms: int,
              opts: Mapping[str, Any]) -> Iterator[tuple[float, Frame]]:
    fmt = str(opts.get("format", "ulaw"))
    rates = {"ulaw": 8000, "slin": 8000, "slin16": 16000}
    if fmt not in rates:
        raise ValueError(f"replay supports chan_websocket formats {sorted(rates)}, not {fmt!r}")
    rate = rates[fmt]
    mono = _resample(_mono(wav.samples, opts.get("channel"))[:, None], wav.sample_rate, rate)[:, 0]
    size = rate * frame_ms // 1000 * (1 if fmt == "ulaw" else 2)
    fields = {"connection_id": call_id, "channel": f"WebSocket/replay-{call_id}", "channel_id": call_id,
              "format": fmt, "optimal_frame_size": size, "ptime": frame_ms}
    if opts.get("control", "plain-text") == "json":
        variables = dict(opts.get("channel_variables", {}))
        yield 0.0, json.dumps({"event": "MEDIA_START", **fields, "channel_variables": variables})
    else:
        yield 0.0, "MEDIA_START " + " ".join(f"{k}:{v}" for k, v in fields.items())
    for a, b in _frames(len(mono), rate, frame_ms):
        yield b / rate, _mulaw(mono[a:b]) if fmt == "ulaw" else _pcm(mono[a:b])


def _fork(wav: WavLike, call_id: str, roles: tuple[str, ...], frame_ms: int,
          opts: Mapping[str, Any], flavor: str) -> Iterator[tuple[float, Frame]]:
    rate = int(opts.get("sample_rate", wav.sample_rate if wav.sample_rate in FORK_RATES else 16000))
    if flavor == "vonage":
        rate = rate if rate in (8000, 16000) else 16000
        samples = _resample(_mono(wav.samples, opts.get("channel"))[:, None], wav.sample_rate, rate)
        yield 0.0, json.dumps({"event": "websocket:connected", "content-type": f"audio/l16;rate={rate}",
                               "call_id": call_id, **dict(opts.get("headers", {}))})
    else:
        samples = _resample(wav.samples, wav.sample_rate, rate)
        if samples.shape[1] == 2:  # read (left) = customer, write (right) = agent
            order = sorted(range(2), key=lambda i: 0 if roles[i] == "customer" else 1)
            samples, mix = samples[:, order], "stereo"
        elif samples.shape[1] == 1:
            mix = "mixed" if roles[0] == "mixed" else "mono"
        else:
            raise ValueError("fork replay takes mono or stereo audio")
        meta = dict(opts.get("metadata", {}))
        if flavor == "jambonz":
            yield 0.0, json.dumps({"callSid": call_id, "sampleRate": rate, "mixType": mix, "metadata": meta})
        else:
            yield 0.0, json.dumps({"call_id": call_id, "sample_rate": rate, "mix": mix, **meta})
    for a, b in _frames(len(samples), rate, frame_ms):
        yield b / rate, _pcm(samples[a:b])


def messages(protocol: str, wav: WavLike, *, call_id: str | None = None, frame_ms: int = 20,
             roles: Sequence[str] | None = None, options: Mapping[str, Any] | None = None,
             ) -> Iterator[tuple[float, Frame]]:
    """Frames a ``protocol`` client sends to play ``wav``, in order, with the media time reached."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; one of {PROTOCOLS}")
    if not 5 <= frame_ms <= 1000:
        raise ValueError("frame_ms must be within 5..1000")
    samples = np.asarray(wav.samples)
    if samples.ndim != 2 or samples.dtype != np.int16:
        raise ValueError("wav.samples must be int16 shaped (n, channels)")
    cid = call_id or f"replay-{uuid.uuid4().hex[:12]}"
    role_names = _roles(wav, roles)
    opts = options or {}
    if protocol in ("twilio", "telnyx", "signalwire"):
        return _twilio(wav, cid, role_names, frame_ms, opts, protocol)
    if protocol == "audiohook":
        return _audiohook(wav, cid, role_names, frame_ms, opts)
    if protocol == "audiosocket":
        return _audiosocket(wav, cid, role_names, frame_ms, opts)
    if protocol == "asterisk":
        return _asterisk(wav, cid, role_names, frame_ms, opts)
    return _fork(wav, cid, role_names, frame_ms, opts, "freeswitch" if protocol == "fork" else protocol)


def headers(protocol: str, *, url: str, call_id: str | None = None, api_key: str | None = None,
            secret: str | None = None, organization_id: str | None = None, now: float | None = None,
            nonce: str | None = None) -> dict[str, str]:
    """Upgrade-request headers the platform would send (AudioHook: ids, API key and signature)."""
    if protocol != "audiohook":
        return {"Authorization": f"Bearer {api_key}"} if api_key else {}
    from urllib.parse import urlsplit

    from ..adapters import httpsig

    u = urlsplit(url)
    nil = "00000000-0000-0000-0000-000000000000"
    h = {
        "Host": u.netloc,
        "Audiohook-Organization-Id": organization_id or nil.replace("0", "1"),
        "Audiohook-Session-Id": str(_as_uuid(call_id)),
        "Audiohook-Correlation-Id": str(uuid.uuid4()),
        "X-API-KEY": api_key or "speechiq-replay",  # Genesys always sends one; accepted when no keys are configured
    }
    if secret:
        created = int(time.time() if now is None else now)
        target = u.path + (f"?{u.query}" if u.query else "")
        h.update(httpsig.sign(h, request_target=target or "/", key_id=api_key or "", secret_b64=secret,
                              nonce=nonce or base64.b64encode(uuid.uuid4().bytes).decode("ascii"),
                              created=created, expires=created + 60))
    return h
