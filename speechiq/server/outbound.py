"""Per-connection send queue: the engine never waits on a slow client.

Frames are queued without blocking; a writer task drains them to the socket. When a client falls
behind, the cheapest frames go first and nothing that matters is lost silently:

1. past half the bound (``limit // 2`` queued frames), new *droppable* frames (partial
   transcripts) are refused and counted (``on_drop("partial", n)``);
2. at the bound, the partials still queued are evicted (counted the same way) to make room for a
   final, alert or summary;
3. if the queue is still full, the client cannot keep up: the queue stops accepting frames and
   ``on_overflow()`` tells the owner, which closes the connection (1008 "client too slow") rather
   than letting memory grow or dropping a final unnoticed. :meth:`discard` hands back the
   ``event`` tags of the frames that were not sent (the refused one included), so the owner can
   keep them for a resuming connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.exceptions import ConnectionClosed

from ..pipeline.outlet import BACKLOG_LIMIT

log = logging.getLogger(__name__)
# A resume delivers the call's kept events (up to BACKLOG_LIMIT) in one go, before the writer
# gets a turn: the queue must hold them all, or a resume after a long backlog would be closed
# as too slow at once.
DEFAULT_LIMIT = BACKLOG_LIMIT + 2000


class Outbound:
    def __init__(self, send: Callable[[str | bytes], Awaitable[object]], limit: int = DEFAULT_LIMIT,
                 on_drop: Callable[[str, int], None] | None = None,
                 on_overflow: Callable[[], None] | None = None) -> None:
        if limit < 2:
            raise ValueError("the outbound queue needs a limit of at least 2 frames")
        self._send = send
        self._queue: deque[tuple[str | bytes, bool, Any]] = deque()  # (frame, droppable, event tag)
        self._droppable = 0  # droppable frames currently queued
        self._ready = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._limit = limit
        self._on_drop = on_drop
        self._on_overflow = on_overflow
        self._closed = False
        self.overflowed = False
        self._refused: list[Any] = []  # the event of the frame that overflowed the queue
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    def put(self, frame: str | bytes, droppable: bool = False, event: Any = None) -> bool:
        """Queue ``frame``; ``False`` if it was refused (dropped partial, overflow, closed).
        ``event``: what the frame carries, handed back by :meth:`discard` if it is never sent."""
        if self._closed:
            return False
        if droppable:
            if len(self._queue) >= self._limit // 2:
                self._dropped("partial", 1)
                return False
        elif len(self._queue) >= self._limit:
            if self._droppable:
                self._evict_droppable()
            if len(self._queue) >= self._limit:
                self.overflowed = True
                self._closed = True
                log.warning("client too slow: %d frames queued", len(self._queue))
                self._refused.append(event)  # not sent either: discard() reports it
                if self._on_overflow:
                    self._on_overflow()
                return False
        self._queue.append((frame, droppable, event))
        self._droppable += droppable
        self._idle.clear()
        self._ready.set()
        return True

    def _evict_droppable(self) -> None:
        n = self._droppable
        self._queue = deque(item for item in self._queue if not item[1])
        self._droppable = 0
        self._dropped("partial", n)

    def _dropped(self, kind: str, n: int) -> None:
        if self._on_drop and n:
            self._on_drop(kind, n)

    def discard(self) -> list[Any]:
        """Stop accepting frames and forget the queued ones (the connection is being closed);
        returns the ``event`` tags of the frames not sent, oldest first (``None`` for untagged)."""
        self._closed = True
        unsent = [event for _, _, event in self._queue] + self._refused
        self._refused = []
        self._queue.clear()
        self._droppable = 0
        self._ready.set()
        return unsent

    async def _run(self) -> None:
        try:
            while True:
                await self._ready.wait()
                while self._queue:
                    frame, droppable, _ = self._queue.popleft()
                    self._droppable -= droppable
                    await self._send(frame)
                self._ready.clear()
                self._idle.set()
                if self._closed:
                    return
        except ConnectionClosed:
            self._closed = True
        except Exception:
            log.exception("outbound writer failed")
            self._closed = True
        finally:
            self._idle.set()

    async def flush(self, timeout: float) -> bool:
        """Wait until everything queued so far is written (keeps accepting frames)."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def drain(self, timeout: float = 10.0) -> None:
        """Stop accepting frames and wait until the queued ones are written."""
        self._closed = True
        self._ready.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            if not self._task.done():
                self._task.cancel()
