"""Shared fixtures: one real engine (real tiny.en model) and a real server per test session."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).parent / "data"
# The store is on by default (sqlite:///speechiq.db in the working directory): the suite keeps it on
# (the production path) but writes to a temporary directory, never into the checkout.
STORE_DIR = tempfile.mkdtemp(prefix="speechiq-test-store-")
os.environ.setdefault("SPEECHIQ_STORE__URL", f"sqlite:///{STORE_DIR}/cli.db")  # cli.main() reads os.environ


def load_truth(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))


class ServerThread:
    """A real speechiq server on an ephemeral port, running its own event loop in a thread."""

    def __init__(self, overrides: dict[str, Any] | None = None) -> None:
        from speechiq.settings import load_settings

        base = {"server.port": 0, "server.resume_grace_s": 2.0, "asr.model": "tiny.en",
                "store.url": f"sqlite:///{STORE_DIR}/suite.db"}
        base.update(overrides or {})
        self.settings = load_settings(None, base, environ={})
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.srv: Any = None
        self.error: BaseException | None = None

    def _run(self) -> None:
        from speechiq.engine import Engine
        from speechiq.server.app import SpeechIQServer

        asyncio.set_event_loop(self.loop)
        try:
            engine = Engine(self.settings).load()
            self.srv = self.loop.run_until_complete(SpeechIQServer(engine).start())
        except BaseException as exc:  # surfaced to the test
            self.error = exc
            self.ready.set()
            return
        self.ready.set()
        self.loop.run_forever()

    def start(self) -> ServerThread:
        self.thread.start()
        self.ready.wait(300)
        if self.error:
            raise self.error
        return self

    @property
    def engine(self) -> Any:
        return self.srv.engine

    def url(self, path: str = "/v1/calls") -> str:
        return f"ws://127.0.0.1:{self.srv.port}{path}"

    def call(self, coro: Any, timeout: float = 120) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        if self.srv is not None:
            self.call(self.srv.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)


def engine_finals(events: list[Any], call_id: str | None = None) -> list[tuple[str, float, float, str]]:
    """(role, start, end, text) of the final transcripts among engine events, sorted."""
    out = [e for e in events if getattr(e, "type", "") == "transcript" and e.is_final
           and (call_id is None or e.call_id == call_id)]
    return sorted((e.role, round(e.start, 2), round(e.end, 2), e.text) for e in out)


def run_watched(st: ServerThread, coro_factory: Any, calls: int = 1) -> tuple[Any, list[Any]]:
    """Run a client coroutine on ``st``'s loop; collect every engine event (from the call tap)
    until ``calls`` summaries arrived. Returns (the coroutine's result, the events)."""

    async def go() -> tuple[Any, list[Any]]:
        sub = st.engine.tap.subscribe("*")
        try:
            result = await coro_factory()
            events, summaries = [], 0
            async with asyncio.timeout(120):
                while summaries < calls:
                    ev = await sub.get()
                    events.append(ev)
                    summaries += getattr(ev, "type", "") == "summary"
            return result, events
        finally:
            st.engine.tap.unsubscribe(sub)

    return st.call(go(), timeout=180)


@pytest.fixture(scope="session")
def server() -> Iterator[ServerThread]:
    st = ServerThread().start()
    yield st
    st.stop()


@pytest.fixture(scope="session")
def upgrade_call() -> tuple[Any, dict[str, Any]]:
    from speechiq.audio.wavio import read_wav

    return read_wav(DATA / "call_upgrade_opportunity.wav"), load_truth("call_upgrade_opportunity")
