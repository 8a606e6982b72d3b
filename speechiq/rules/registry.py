"""Compiled packs with hot reload: a changed file is re-read and swapped in only when it is valid.

Running calls keep the :class:`CompiledPack` they started with (their alerts keep its version);
calls started after a swap get the new pack. An invalid edit is logged and the old pack stays.

Checking is cheap (one ``stat`` per file, at most once per ``check_interval_s``) and compiling
can run off the event loop: :meth:`PackRegistry.poll` starts a compile thread and returns at
once, :meth:`PackRegistry.watch` is an asyncio task that polls and compiles in a worker thread.
The swap is one reference assignment, so :meth:`PackRegistry.current` never blocks and never
sees a half-built pack.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from ..errors import RuleError
from .compiler import CompiledPack, compile_pack
from .loader import load_pack
from .schema import Pack

log = logging.getLogger(__name__)

DEFAULT_PACK = Path(__file__).resolve().parent / "packs" / "default.yaml"


def default_pack_path() -> Path:
    """The bundled pack: speechiq/rules/packs/default.yaml."""
    return DEFAULT_PACK


def load_default_pack() -> Pack:
    """Load the bundled pack (RuleError when it is missing or invalid)."""
    return load_pack(DEFAULT_PACK)


class PackRegistry:
    """The current compiled pack of a set of files (empty = the bundled default pack)."""

    def __init__(self, paths: Sequence[str | os.PathLike[str]] = (), check_interval_s: float = 1.0) -> None:
        self.paths = [Path(p) for p in paths] or [DEFAULT_PACK]
        self.check_interval_s = check_interval_s
        self._stamp = self._stat()
        self._current = compile_pack(load_pack(*self.paths))
        self.reloads = 0
        self.checks = 0  # stat rounds actually made (throttled ones not counted)
        self.last_error: RuleError | None = None
        self._lock = threading.Lock()  # one reload at a time
        self._next_check = time.monotonic() + check_interval_s
        self._thread: threading.Thread | None = None
        for w in self._current.warnings:
            log.warning("rule pack: %s", w)

    def _stat(self) -> tuple[tuple[int, int] | None, ...]:
        out: list[tuple[int, int] | None] = []
        for p in self.paths:
            try:
                st = p.stat()
                out.append((st.st_mtime_ns, st.st_size))
            except OSError:
                out.append(None)
        return tuple(out)

    def current(self) -> CompiledPack:
        return self._current

    def changed(self) -> bool:
        """A file's modification time or size differs from the loaded one (one stat per file)."""
        self.checks += 1
        return self._stat() != self._stamp

    def maybe_reload(self) -> bool:
        """Re-read and compile now, on this thread, when a file changed; True when a new pack was
        swapped in. Not throttled; use :meth:`poll` or :meth:`watch` on a hot path."""
        with self._lock:
            stamp = self._stat()
            if stamp == self._stamp:
                return False
            self._stamp = stamp  # stat before reading: an edit during the read is seen next time
            try:
                pack = load_pack(*self.paths)
                compiled = compile_pack(pack)
            except RuleError as exc:
                self.last_error = exc
                log.error("rule pack reload failed, keeping version %s:\n%s", self._current.version, exc)
                return False
            except Exception as exc:  # never let a reload take the engine down
                self.last_error = RuleError(str(self.paths[0]), [(None, f"{type(exc).__name__}: {exc}")])
                log.exception("rule pack reload failed, keeping version %s", self._current.version)
                return False
            self.last_error = None
            if compiled.version == self._current.version:
                return False
            log.info("rule pack reloaded: %s -> %s (%d rules)", self._current.version, compiled.version,
                     len(compiled.rules))
            self._current = compiled
            self.reloads += 1
            return True

    def poll(self) -> bool:
        """Cheap, non-blocking check for a hot path (e.g. every call start): at most once per
        ``check_interval_s`` stat the files; when one changed, compile in a background thread that
        swaps the pack when done. True when a reload was started; :meth:`current` keeps returning
        the old pack until the new one is ready."""
        now = time.monotonic()
        if now < self._next_check:
            return False
        self._next_check = now + self.check_interval_s
        if (self._thread is not None and self._thread.is_alive()) or not self.changed():
            return False
        self._thread = threading.Thread(target=self.maybe_reload, name="speechiq-pack-reload", daemon=True)
        self._thread.start()
        return True

    def wait_reload(self, timeout: float | None = None) -> bool:
        """Wait for a reload started by :meth:`poll`; False if it is still running after ``timeout``."""
        t = self._thread
        if t is not None:
            t.join(timeout)
            return not t.is_alive()
        return True

    async def reload_async(self) -> bool:
        """:meth:`maybe_reload` in a worker thread, so compiling never blocks the event loop."""
        return await asyncio.to_thread(self.maybe_reload)

    async def watch(self, interval_s: float | None = None) -> None:
        """Run as a task: stat the files every ``interval_s`` (default ``check_interval_s``) and
        reload off the loop when one changed. Cancel the task to stop it."""
        interval = self.check_interval_s if interval_s is None else interval_s
        while True:
            await asyncio.sleep(interval)
            try:
                if self.changed():
                    await self.reload_async()
            except Exception:  # a watcher must outlive any one bad reload
                log.exception("rule pack watcher: reload failed")


__all__ = ["DEFAULT_PACK", "PackRegistry", "default_pack_path", "load_default_pack"]
