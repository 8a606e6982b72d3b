"""Per-connection send queue: the engine never waits on a slow client.

Frames are queued without blocking; a writer task drains them. Partial transcripts are the
first thing dropped when a client falls behind; beyond a hard bound the connection is closed
(1008 slow consumer) rather than letting memory grow.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable

from websockets.exceptions import ConnectionClosed

log = logging.getLogger(__name__)


class Outbound:
    def __init__(self, send: Callable[[str | bytes], object], limit: int = 5000,
                 on_drop: Callable[[str], None] | None = None) -> None:
        self._send = send
        self._queue: deque[str | bytes] = deque()
        self._ready = asyncio.Event()
        self._limit = limit
        self._on_drop = on_drop
        self._closed = False
        self.overflowed = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    def put(self, frame: str | bytes, droppable: bool = False) -> None:
        if self._closed:
            return
        if droppable and len(self._queue) >= self._limit // 2:
            if self._on_drop:
                self._on_drop("partial")
            return
        if len(self._queue) >= self._limit:
            self.overflowed = True
            if self._on_drop:
                self._on_drop("overflow")
            return
        self._queue.append(frame)
        self._ready.set()

    async def _run(self) -> None:
        try:
            while True:
                await self._ready.wait()
                while self._queue:
                    frame = self._queue.popleft()
                    await self._send(frame)  # type: ignore[misc]
                self._ready.clear()
                if self._closed and not self._queue:
                    return
        except ConnectionClosed:
            self._closed = True
        except Exception:
            log.exception("outbound writer failed")
            self._closed = True

    async def drain(self, timeout: float = 10.0) -> None:
        """Stop accepting frames and wait until the queued ones are written."""
        self._closed = True
        self._ready.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            if not self._task.done():
                self._task.cancel()
