"""The rules language: YAML packs → validated, compiled matchers → live alerts (docs/rules.md)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from ..errors import RuleError
from .compiler import CompiledPack, CompiledRule, compile_pack
from .loader import load_pack, validate_file
from .registry import DEFAULT_PACK, PackRegistry, default_pack_path, load_default_pack
from .schema import Pack, Rule


def check_pack(path: str | os.PathLike[str]) -> list[str]:
    """Every problem of one pack as ``path:line: error|warning: message`` (empty = clean)."""
    pack, v = validate_file(path)
    out = [f"{v.source}:{ln if ln is not None else '?'}: error: {m}"
           for ln, m in sorted(v.errors, key=lambda e: e[0] or 0)]
    out += [f"{v.source}:{ln if ln is not None else '?'}: warning: {m}"
            for ln, m in sorted(v.warnings, key=lambda e: e[0] or 0)]
    if pack is not None:
        try:
            compile_pack(pack)
        except Exception as exc:  # a compile failure is a bug, but report it as a problem
            out.append(f"{v.source}:?: error: cannot compile: {type(exc).__name__}: {exc}")
    return out


def rules_check_main(paths: Sequence[str]) -> int:
    """``speechiq rules check``: print OK or the problems; 0 = valid (warnings allowed), 1 = errors."""
    status = 0
    for path in paths:
        problems = check_pack(path)
        errors = [p for p in problems if ": error: " in p]
        for p in problems:
            print(p)
        if errors:
            status = 1
            print(f"{path}: {len(errors)} error(s)")
        else:
            pack = load_pack(path)
            print(f"{path}: OK ({len(pack.rules)} rules, version {pack.version})")
    return status


__all__ = [
    "DEFAULT_PACK", "CompiledPack", "CompiledRule", "Pack", "PackRegistry", "Rule", "RuleError", "check_pack",
    "compile_pack", "default_pack_path", "load_default_pack", "load_pack", "rules_check_main",
]
