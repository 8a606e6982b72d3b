"""Watch one call's events on the engine's call tap (``/v1/calls/{call_id}/events``).

Platform protocols (Twilio, AudioHook, AudioSocket …) carry no transcripts back to the sender, so
``speechiq replay --protocol P`` subscribes to the call tap beside the media stream and prints
what the engine makes of the call, as it would for our own protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

DEFAULT_PORTS = {"ws": 8765, "wss": 8765}


def tap_url(stream_url: str, call_id: str, *, events_url: str | None = None, api_key: str | None = None) -> str:
    """The call tap of ``call_id`` on the engine behind ``stream_url``. A ``tcp://`` stream
    (AudioSocket) says nothing about the WebSocket port: pass ``events_url`` (``ws://host:port``)."""
    base = events_url or stream_url
    u = urlsplit(base)
    if u.scheme not in ("ws", "wss"):
        raise ValueError(f"the call tap is a WebSocket endpoint: give a ws:// URL of the engine (got {base!r})")
    query = urlencode({"api_key": api_key}) if api_key else ""
    return urlunsplit((u.scheme, u.netloc, f"/v1/calls/{quote(call_id, safe='')}/events", query, ""))


class CallWatcher:
    """Subscribes before the call starts; ``on_event`` gets every event; ends at the summary."""

    def __init__(self, url: str, on_event: Callable[[dict[str, Any]], None]) -> None:
        self.url = url
        self.on_event = on_event
        self.summary: dict[str, Any] | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self, timeout_s: float = 10.0) -> CallWatcher:
        self._task = asyncio.create_task(self._run())
        async with asyncio.timeout(timeout_s):
            await self._ready.wait()
        if self._task.done():
            self._task.result()  # the subscription failed: raise why
        return self

    async def _run(self) -> None:
        try:
            async with connect(self.url, max_size=None) as ws:
                await ws.recv()  # the subscription acknowledgement
                self._ready.set()
                with contextlib.suppress(ConnectionClosed):
                    async for raw in ws:
                        ev = json.loads(raw)
                        self.on_event(ev)
                        if ev.get("type") == "summary":
                            self.summary = ev
                            return
        finally:
            self._ready.set()

    async def wait(self, timeout_s: float) -> dict[str, Any] | None:
        """Wait for the call's summary (``None`` if it does not come in time)."""
        if self._task is None:
            return None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._task), timeout_s)
        if not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        return self.summary
