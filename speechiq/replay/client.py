"""``speechiq replay``: stream a WAV to a running engine as a telephony client would.

Paces frames on the media clock (``speed`` × real time, or as fast as the socket takes them),
collects every event with its arrival time, and records when each media instant was sent so
callers can measure utterance-end → final latency.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from ..audio.codecs import encode_alaw, encode_mulaw
from ..audio.wavio import WavAudio

DEFAULT_ROLES = {1: ("mixed",), 2: ("agent", "customer")}


@dataclass
class ReplayResult:
    events: list[dict[str, Any]] = field(default_factory=list)
    sent: list[tuple[float, float]] = field(default_factory=list)  # (media seconds sent, wall time)
    close_code: int | None = None
    close_reason: str = ""
    started_at: float = 0.0
    finished_at: float = 0.0

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == kind]

    @property
    def finals(self) -> list[dict[str, Any]]:
        return [e for e in self.of_type("transcript") if e.get("is_final")]

    @property
    def summary(self) -> dict[str, Any] | None:
        s = self.of_type("summary")
        return s[-1] if s else None

    def wall_when_sent(self, media_t: float) -> float | None:
        """Wall time at which audio up to ``media_t`` had been sent."""
        keys = [m for m, _ in self.sent]
        i = bisect.bisect_left(keys, media_t)
        return self.sent[i][1] if i < len(self.sent) else None

    def final_latencies(self) -> list[float]:
        out = []
        for e in self.finals:
            sent = self.wall_when_sent(e["end"])
            if sent is not None:
                out.append(e["_recv"] - sent)
        return out


def encode(samples: np.ndarray, encoding: str) -> bytes:
    """int16 interleaved samples → wire bytes."""
    flat = np.ascontiguousarray(samples, dtype=np.int16).reshape(-1)
    if encoding == "mulaw":
        return encode_mulaw(flat)
    if encoding == "alaw":
        return encode_alaw(flat)
    return flat.astype("<i2").tobytes()


def start_message(wav: WavAudio, *, encoding: str, call_id: str | None, roles: Sequence[str] | None,
                  language: str, metadata: dict[str, Any] | None, partials: bool,
                  resume_token: str | None = None) -> dict[str, Any]:
    roles = tuple(roles or DEFAULT_ROLES.get(wav.channels, ("mixed",) * wav.channels))
    if len(roles) != wav.channels:
        raise ValueError(f"{wav.channels} channel(s) but {len(roles)} role(s) given")
    msg: dict[str, Any] = {
        "type": "start", "encoding": encoding, "sample_rate": wav.sample_rate,
        "channels": [{"role": r} for r in roles], "language": language,
        "metadata": metadata or {}, "partials": partials,
    }
    if call_id:
        msg["call_id"] = call_id
    if resume_token:
        msg["resume_token"] = resume_token
    return msg


async def replay(
    url: str,
    wav: WavAudio,
    *,
    speed: float | None = 1.0,
    encoding: str = "pcm16",
    frame_ms: int = 20,
    call_id: str | None = None,
    roles: Sequence[str] | None = None,
    language: str = "auto",
    metadata: dict[str, Any] | None = None,
    partials: bool = True,
    api_key: str | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    wait_summary_s: float = 120.0,
) -> ReplayResult:
    """Replay ``wav`` over our protocol. ``speed=None`` sends as fast as the socket allows."""
    result = ReplayResult()
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
    frame = max(1, wav.sample_rate * frame_ms // 1000)
    async with connect(url, additional_headers=headers, max_size=None, compression=None,
                       open_timeout=30) as ws:
        done = asyncio.Event()

        async def receiver() -> None:
            try:
                async for raw in ws:
                    ev = json.loads(raw)
                    ev["_recv"] = time.time()
                    result.events.append(ev)
                    if on_event:
                        on_event(ev)
                    if ev.get("type") == "summary":
                        done.set()
            except ConnectionClosed:
                pass
            finally:
                done.set()

        recv_task = asyncio.create_task(receiver())
        await ws.send(json.dumps(start_message(wav, encoding=encoding, call_id=call_id, roles=roles,
                                               language=language, metadata=metadata, partials=partials)))
        t0 = result.started_at = time.time()
        n = len(wav.samples)
        try:
            for i in range(0, n, frame):
                chunk = wav.samples[i:i + frame]
                media_end = (i + len(chunk)) / wav.sample_rate
                # at full speed still one yield per frame, so concurrent replays interleave
                delay = t0 + (i / wav.sample_rate) / speed - time.time() if speed else 0.0
                await asyncio.sleep(max(delay, 0.0))
                await ws.send(encode(chunk, encoding))
                result.sent.append((media_end, time.time()))
            await ws.send(json.dumps({"type": "stop"}))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(done.wait(), wait_summary_s)
        except ConnectionClosed:
            pass
        finally:
            result.finished_at = time.time()
            with contextlib.suppress(Exception):
                await ws.close()
            recv_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await recv_task
            result.close_code = ws.close_code
            result.close_reason = ws.close_reason or ""
    return result
