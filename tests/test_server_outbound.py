"""The per-connection send queue under a slow client (speechiq/server/outbound.py).

The writer is the real one; the "socket" is a coroutine that blocks until the test lets it go,
as a client that stopped reading would block ``ws.send``.
"""

from __future__ import annotations

import asyncio

import pytest

from speechiq.server.outbound import Outbound


class Gate:
    """A send coroutine that blocks while closed and records what it sent."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.sent: list[str | bytes] = []

    async def send(self, frame: str | bytes) -> None:
        await self.open.wait()
        self.sent.append(frame)


def test_partials_are_dropped_first_and_finals_are_never_lost_silently() -> None:
    async def run() -> None:
        gate, drops, overflows = Gate(), [], []
        out = Outbound(gate.send, 10, on_drop=lambda kind, n: drops.append((kind, n)),
                       on_overflow=lambda: overflows.append(True))
        out.start()
        out.put("final-0")
        await asyncio.sleep(0)  # the writer takes it and blocks in send
        assert len(out) == 0
        for i in range(6):  # past half the bound new partials are refused
            out.put(f"partial-{i}", droppable=True)
        assert len(out) == 5 and drops == [("partial", 1)]
        for i in range(1, 6):
            assert out.put(f"final-{i}")
        assert len(out) == 10
        assert out.put("final-6")  # full: the queued partials make room for it
        assert drops == [("partial", 1), ("partial", 5)] and len(out) == 6
        for i in range(7, 11):
            assert out.put(f"final-{i}")
        assert not overflows
        assert not out.put("final-11")  # full of finals: the client cannot keep up
        assert overflows == [True] and out.overflowed
        assert not out.put("final-12")  # the queue accepts nothing more
        gate.open.set()
        await out.drain(5)
        # what was sent is in order, nothing after the overflow, and every final before it
        assert gate.sent == [f"final-{i}" for i in range(11)]

    asyncio.run(run())


def test_a_client_that_keeps_up_gets_everything_in_order() -> None:
    async def run() -> None:
        gate = Gate()
        gate.open.set()
        drops: list[tuple[str, int]] = []
        out = Outbound(gate.send, 4, on_drop=lambda kind, n: drops.append((kind, n)))
        out.start()
        for i in range(50):
            out.put(f"p{i}", droppable=True)
            out.put(f"f{i}")
            await asyncio.sleep(0)
        await out.drain(5)
        assert gate.sent == [x for i in range(50) for x in (f"p{i}", f"f{i}")] and not drops

    asyncio.run(run())


def test_flush_waits_for_the_queue_and_a_tiny_limit_is_refused() -> None:
    async def run() -> None:
        gate = Gate()
        out = Outbound(gate.send, 4)
        out.start()
        out.put("a")
        assert not await out.flush(0.05)  # blocked client: not flushed
        gate.open.set()
        assert await out.flush(5) and gate.sent == ["a"]
        assert out.put("b")  # flush keeps accepting frames
        await out.drain(5)
        assert gate.sent == ["a", "b"]

    asyncio.run(run())
    with pytest.raises(ValueError):
        Outbound(Gate().send, 1)


def test_discard_hands_back_the_events_not_sent_the_refused_one_included() -> None:
    async def run() -> None:
        gate, overflows = Gate(), []
        out = Outbound(gate.send, 4, on_overflow=lambda: overflows.append(out.discard()))
        out.start()
        out.put("f0", event="e0")
        await asyncio.sleep(0)  # in flight: the writer holds it
        out.put("p1", droppable=True, event="partial")
        for i in range(1, 5):
            out.put(f"f{i}", event=f"e{i}")
        assert not out.put("f5", event="e5")
        # the partial made room for f4; f5 overflowed: everything not sent comes back, in order
        assert overflows == [["e1", "e2", "e3", "e4", "e5"]]
        assert out.discard() == []  # reported once
        gate.open.set()
        await out.drain(5)
        assert gate.sent == ["f0"]

    asyncio.run(run())
