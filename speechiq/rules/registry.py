"""Compiled packs with hot reload: a changed file is re-read and swapped in only when it is valid.

Running calls keep the :class:`CompiledPack` they started with (their alerts keep its version);
calls started after a swap get the new pack. An invalid edit is logged and the old pack stays.
"""

from __future__ import annotations

import logging
import os
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

    def __init__(self, paths: Sequence[str | os.PathLike[str]] = ()) -> None:
        self.paths = [Path(p) for p in paths] or [DEFAULT_PACK]
        self._stamp = self._stat()
        self._current = compile_pack(load_pack(*self.paths))
        self.reloads = 0
        self.last_error: RuleError | None = None
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

    def maybe_reload(self) -> bool:
        """Re-read the files when one changed; True when a new pack was swapped in."""
        stamp = self._stat()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
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


__all__ = ["DEFAULT_PACK", "PackRegistry", "default_pack_path", "load_default_pack"]
