"""Raw TCP transport (Asterisk AudioSocket) presented with the WebSocket connection's shape."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from ..adapters.base import Adapter
from ..engine import Engine
from .connection import AdapterConnection, TransportClosed

log = logging.getLogger(__name__)
READ_SIZE = 65536


class TcpTransport:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.close_code: int | None = None

    async def recv(self) -> bytes:
        try:
            data = await self.reader.read(READ_SIZE)
        except ConnectionError:
            self.close_code = 1006  # reset: a drop (AudioSocket cannot resume: the call ends at once)
            raise TransportClosed from None
        if not data:
            self.close_code = 1000  # a bare close is the normal end of an AudioSocket call
            raise TransportClosed
        # read() returns buffered data without suspending: a connection with a backlog (a client
        # sending faster than real time) would keep the loop from every other connection, e.g.
        # from starting the other leg of its own call. One yield per read keeps connections fair.
        await asyncio.sleep(0)
        return data

    async def send(self, frame: str | bytes) -> None:
        self.writer.write(frame.encode() if isinstance(frame, str) else frame)
        await self.writer.drain()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """TCP has no close codes: the code is kept for the end-of-call reason, the socket closed."""
        if self.close_code is None:
            self.close_code = code
        with contextlib.suppress(Exception):
            self.writer.close()
            await self.writer.wait_closed()

    @property
    def transport(self) -> asyncio.BaseTransport:
        return self.writer.transport


async def start_tcp_server(engine: Engine, host: str, port: int,
                           factory: Callable[[Engine], Adapter]) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        transport = TcpTransport(reader, writer)
        try:
            await AdapterConnection(transport, factory(engine), engine).run()
        except Exception:
            log.exception("tcp connection failed")

    return await asyncio.start_server(handle, host, port)
