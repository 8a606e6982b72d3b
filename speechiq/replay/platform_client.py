"""``speechiq replay --protocol X``: play a WAV to a running engine as telephony platform X would.

Sends :func:`speechiq.replay.platforms.messages` over a real WebSocket (or TCP for AudioSocket,
``tcp://host:port``), paced on the media clock, honouring :class:`WaitFor` handshakes, and
records when each media instant was sent like :func:`speechiq.replay.client.replay`. Platform
protocols carry no transcripts back, so ``events`` holds what the server sent (AudioHook control
messages), parsed when it is JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from ..audio.wavio import WavAudio
from .client import ReplayResult
from .platforms import PROTOCOLS, SUBPROTOCOLS, WaitFor, headers, messages

_ALIASES = {"asterisk_ws": "asterisk", "freeswitch": "fork"}


class _Pacer:
    def __init__(self, speed: float | None) -> None:
        self.speed = speed
        self.t0 = time.time()
        self.last = 0.0

    async def before(self, media_t: float) -> None:
        """Wait until the audio ending at ``media_t`` is due (it starts where the previous ended).

        At full speed (``speed=None``) it still yields to the event loop once per frame: a socket
        write rarely blocks on loopback, so without it one replay would send its whole file before
        a concurrent one (the other leg of a joined call, the other calls of a benchmark) sent its
        first frame, unlike live streams, which interleave."""
        delay = self.t0 + self.last / self.speed - time.time() if self.speed else 0.0
        await asyncio.sleep(max(delay, 0.0))
        self.last = media_t


def _record(result: ReplayResult, raw: str | bytes) -> dict[str, Any]:
    try:
        ev = json.loads(raw) if isinstance(raw, str) else {"type": "binary", "bytes": len(raw)}
    except ValueError:
        ev = {"type": "text", "text": raw}
    if not isinstance(ev, dict):
        ev = {"type": "text", "text": raw}
    ev["_recv"] = time.time()
    result.events.append(ev)
    return ev


async def _replay_ws(url: str, wav: WavAudio, protocol: str, speed: float | None, call_id: str | None,
                     api_key: str | None, secret: str | None) -> ReplayResult:
    result = ReplayResult()
    hdrs = headers(protocol, url=url, call_id=call_id, api_key=api_key, secret=secret)
    hdrs.pop("Host", None)  # the client library writes the same Host itself
    seen: dict[str, asyncio.Event] = {}
    last_seq = 0

    def event_for(kind: str) -> asyncio.Event:
        return seen.setdefault(kind, asyncio.Event())

    offer = [SUBPROTOCOLS[protocol]] if protocol in SUBPROTOCOLS else None
    async with connect(url, additional_headers=hdrs or None, subprotocols=offer,  # type: ignore[arg-type]
                       max_size=None, compression=None, open_timeout=30) as ws:

        async def receiver() -> None:
            nonlocal last_seq
            try:
                async for raw in ws:
                    ev = _record(result, raw)
                    if isinstance(ev.get("seq"), int):
                        last_seq = ev["seq"]
                    if isinstance(ev.get("type"), str):
                        event_for(ev["type"]).set()
                    if ev.get("type") == "disconnect":
                        event_for("closed").set()
            except ConnectionClosed:
                pass
            finally:
                for e in seen.values():
                    e.set()
                event_for("opened").set()
                event_for("closed").set()

        recv_task = asyncio.create_task(receiver())
        pacer = _Pacer(speed)
        result.started_at = pacer.t0
        try:
            for media_t, frame in messages(protocol, wav, call_id=call_id):
                if isinstance(frame, WaitFor):
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(event_for(frame.what).wait(), frame.timeout_s)
                    continue
                if isinstance(frame, str) and protocol == "audiohook" and last_seq:
                    msg = json.loads(frame)
                    if msg.get("type") != "open":
                        msg["serverseq"] = last_seq  # the last seq we really received
                        frame = json.dumps(msg)
                if isinstance(frame, bytes) or frame.startswith('{"event": "media"'):
                    await pacer.before(media_t)
                    await ws.send(frame)
                    result.sent.append((media_t, time.time()))
                else:
                    await ws.send(frame)
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


async def _replay_tcp(url: str, wav: WavAudio, speed: float | None, call_id: str | None) -> ReplayResult:
    u = urlsplit(url)
    if u.scheme != "tcp" or not u.hostname or not u.port:
        raise ValueError(f"AudioSocket replay needs a tcp://host:port URL, got {url!r}")
    result = ReplayResult()
    reader, writer = await asyncio.open_connection(u.hostname, u.port)
    pacer = _Pacer(speed)
    result.started_at = pacer.t0
    try:
        for media_t, frame in messages("audiosocket", wav, call_id=call_id):
            assert isinstance(frame, bytes)
            if frame[0] != 0x01:
                await pacer.before(media_t)
            writer.write(frame)
            await writer.drain()
            if frame[0] != 0x01:
                result.sent.append((media_t, time.time()))
        writer.write_eof()  # Asterisk ends a call by closing its side
        with contextlib.suppress(asyncio.TimeoutError, ConnectionError):
            data = await asyncio.wait_for(reader.read(), 60.0)
            if data:
                _record(result, data)
        result.close_code = 1000
    except ConnectionError as exc:
        result.close_code, result.close_reason = 1006, str(exc)
    finally:
        result.finished_at = time.time()
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    return result


async def replay_platform(url: str, wav: WavAudio, *, protocol: str, speed: float | None,
                          call_id: str | None = None, api_key: str | None = None,
                          secret: str | None = None) -> ReplayResult:
    """Replay ``wav`` as ``protocol``. ``speed=None`` sends as fast as the socket allows."""
    protocol = _ALIASES.get(protocol, protocol)
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; one of {PROTOCOLS}")
    if protocol == "audiosocket":
        return await _replay_tcp(url, wav, speed, call_id)
    return await _replay_ws(url, wav, protocol, speed, call_id, api_key, secret)
