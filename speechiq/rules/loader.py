"""Read rule packs: YAML with line numbers, validation into :mod:`schema` objects, the version hash.

Every problem found is collected (not just the first) and raised as one ``RuleError``.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from ..errors import RuleError
from . import schema as S
from .normalize import has_cjk, norm


class LineDict(dict):  # type: ignore[type-arg]
    """A YAML mapping that remembers its line and the line of each key (1-based)."""

    line: int = 0

    def __init__(self) -> None:
        super().__init__()
        self.key_lines: dict[Any, int] = {}

    def line_of(self, key: Any) -> int:
        return self.key_lines.get(key, self.line)


class LineList(list):  # type: ignore[type-arg]
    """A YAML sequence that remembers its line and the line of each item (1-based)."""

    line: int = 0

    def __init__(self) -> None:
        super().__init__()
        self.item_lines: list[int] = []

    def line_of(self, index: int) -> int:
        return self.item_lines[index] if 0 <= index < len(self.item_lines) else self.line


class MarkedLoader(yaml.SafeLoader):
    """SafeLoader whose mappings/sequences keep node start lines and report duplicate keys."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self.problems: list[tuple[int | None, str]] = []


def _construct_map(loader: MarkedLoader, node: yaml.MappingNode) -> Iterator[LineDict]:
    data = LineDict()
    data.line = node.start_mark.line + 1
    yield data
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        line = key_node.start_mark.line + 1
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            loader.problems.append((line, "a mapping key must be a plain value"))
            continue
        if key in data:
            loader.problems.append((line, f"duplicate key {key!r}"))
        data[key] = loader.construct_object(value_node, deep=True)
        data.key_lines[key] = line


def _construct_seq(loader: MarkedLoader, node: yaml.SequenceNode) -> Iterator[LineList]:
    data = LineList()
    data.line = node.start_mark.line + 1
    yield data
    for child in node.value:
        data.append(loader.construct_object(child, deep=True))
        data.item_lines.append(child.start_mark.line + 1)


MarkedLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)  # type: ignore[arg-type]
MarkedLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)  # type: ignore[arg-type]


def normalise_bytes(raw: bytes) -> bytes:
    """BOM dropped, CRLF/CR → LF, trailing whitespace per line and trailing blank lines dropped."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    lines = [line.rstrip() for line in raw.split(b"\n")]
    while lines and not lines[-1]:
        lines.pop()
    return b"\n".join(lines) + b"\n" if lines else b""


def pack_version(normalised: list[bytes]) -> str:
    """First 12 hex digits of sha256 over the normalised files (joined by NUL when several)."""
    return hashlib.sha256(b"\0".join(normalised)).hexdigest()[:12]


def read_source(path: str | os.PathLike[str]) -> tuple[bytes, str]:
    """(normalised bytes, decoded text) of a pack file; RuleError when unreadable."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise RuleError(str(p), [(None, f"cannot read pack: {exc.strerror or exc}")]) from exc
    data = normalise_bytes(raw)
    try:
        return data, data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise RuleError(str(p), [(line, "file is not valid UTF-8")]) from exc


def parse_yaml(text: str, source: str) -> Any:
    """YAML → LineDict/LineList tree; syntax errors and duplicate keys raise RuleError."""
    loader = MarkedLoader(text)
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        msg = " ".join(str(x) for x in (exc.context, exc.problem) if x) or "invalid YAML"
        raise RuleError(source, [(line, f"YAML syntax: {msg}")]) from exc
    except yaml.YAMLError as exc:
        raise RuleError(source, [(None, f"YAML: {exc}")]) from exc
    finally:
        loader.dispose()
    if loader.problems:
        raise RuleError(source, sorted(loader.problems, key=lambda p: p[0] or 0))
    return data




_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
_RULE_KEYS = {"id", "label", "category", "severity", "description", "languages", "cooldown_s", "scope",
              "enabled", "when"}
_DEFAULT_KEYS = {"languages", "severity", "cooldown_s", "scope"}


class Validator:
    """Collects (line, message) errors and warnings while turning YAML into schema objects."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.errors: list[tuple[int | None, str]] = []
        self.warnings: list[tuple[int | None, str]] = []

    def err(self, line: int | None, msg: str) -> None:
        self.errors.append((line, msg))

    # ---- scalars -------------------------------------------------------------------------
    def mapping(self, value: Any, line: int, what: str, allowed: set[str], required: set[str] = frozenset()
                ) -> LineDict | None:  # type: ignore[assignment]
        if not isinstance(value, LineDict):
            self.err(line, f"{what} must be a mapping, got {_kind(value)}")
            return None
        for k in value:
            if k not in allowed:
                self.err(value.line_of(k), f"{what}: unknown key {k!r} (allowed: {', '.join(sorted(allowed))})")
        for k in sorted(required - set(value)):
            self.err(value.line, f"{what}: missing required key {k!r}")
        return value

    def number(self, value: Any, line: int, what: str, lo: float | None = None, hi: float | None = None,
               integer: bool = False, lo_open: bool = False) -> float | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
            self.err(line, f"{what} must be {'an integer' if integer else 'a number'}, got {_kind(value)}")
            return None
        if (lo is not None and (value < lo or (lo_open and value == lo))) or (hi is not None and value > hi):
            rng = f"{'>' if lo_open else '≥'} {lo}" if hi is None else f"between {lo} and {hi}"
            self.err(line, f"{what} must be {rng}, got {value}")
            return None
        return float(value) if not integer else value

    def text(self, value: Any, line: int, what: str, choices: tuple[str, ...] | None = None,
             pattern: re.Pattern[str] | None = None) -> str | None:
        if not isinstance(value, str) or not value.strip():
            self.err(line, f"{what} must be a non-empty string, got {_kind(value)}")
            return None
        if choices is not None and value not in choices:
            self.err(line, f"{what} must be one of {', '.join(choices)}, got {value!r}")
            return None
        if pattern is not None and not pattern.match(value):
            self.err(line, f"{what} {value!r} must match {pattern.pattern}")
            return None
        return value

    def lang_texts(self, value: Any, line: int, what: str) -> S.LangTexts | None:
        """A list of strings (all languages) or a mapping en/zh → list of strings."""
        if isinstance(value, LineList):
            items = self._strings(value, what)
            return None if items is None else ((S.ALL_LANGS, items),)
        if isinstance(value, LineDict):
            out: list[tuple[str, tuple[str, ...]]] = []
            for lang, lst in value.items():
                ln = value.line_of(lang)
                if lang not in S.LANGUAGES:
                    self.err(ln, f"{what}: unknown language {lang!r} (use {', '.join(S.LANGUAGES)})")
                    continue
                if not isinstance(lst, LineList):
                    self.err(ln, f"{what}.{lang} must be a list of strings, got {_kind(lst)}")
                    continue
                items = self._strings(lst, f"{what}.{lang}")
                if items is not None:
                    out.append((lang, items))
            if not value:
                self.err(value.line, f"{what} must not be empty")
            return tuple(out)
        self.err(line, f"{what} must be a list of strings or a mapping of language to list, got {_kind(value)}")
        return None

    def _strings(self, lst: LineList, what: str) -> tuple[str, ...] | None:
        if not lst:
            self.err(lst.line, f"{what} must not be empty")
            return None
        out = []
        for i, item in enumerate(lst):
            if isinstance(item, (int, float)) and not isinstance(item, bool):
                item = str(item)
            if not isinstance(item, str) or not item.strip():
                self.err(lst.line_of(i), f"{what}[{i}] must be a non-empty string, got {_kind(item)}")
                continue
            out.append(item)
        return tuple(out)


def _kind(value: Any) -> str:
    if isinstance(value, LineDict):
        return "a mapping"
    if isinstance(value, LineList):
        return "a list"
    if value is None:
        return "nothing"
    return f"{type(value).__name__} {value!r}"


def parse_pack_data(data: Any, source: str, v: Validator) -> tuple[str, str, list[S.Rule]]:
    """Top-level pack mapping → (name, description, rules); problems go to ``v``."""
    from .conditions import parse_condition

    top = v.mapping(data, 1, "pack", {"name", "description", "defaults", "rules"}, {"rules"})
    if top is None:
        return "", "", []
    name = str(top.get("name", "") or "")
    description = str(top.get("description", "") or "")
    defaults: dict[str, Any] = {}
    if "defaults" in top:
        d = v.mapping(top["defaults"], top.line_of("defaults"), "defaults", _DEFAULT_KEYS)
        defaults = dict(d or {})
    rules_node = top.get("rules")
    rules: list[S.Rule] = []
    if "rules" in top and (not isinstance(rules_node, LineList) or not rules_node):
        v.err(top.line_of("rules"), f"rules must be a non-empty list, got {_kind(rules_node)}")
        return name, description, rules
    seen: dict[str, int] = {}
    for i, node in enumerate(rules_node or []):
        line = rules_node.line_of(i)
        r = v.mapping(node, line, f"rule #{i + 1}", _RULE_KEYS, {"id", "label", "category", "when"})
        if r is None:
            continue
        rid = v.text(r.get("id"), r.line_of("id"), "id", pattern=_ID) if "id" in r else None
        where = f"rule {rid!r}" if rid else f"rule #{i + 1}"
        if rid is not None:
            if rid in seen:
                v.err(r.line_of("id"), f"duplicate rule id {rid!r} (first at line {seen[rid]})")
            seen.setdefault(rid, r.line_of("id"))
        merged = {**defaults, **r}
        lines = {k: (r.line_of(k) if k in r else top.line_of("defaults")) for k in merged}
        label = v.text(merged.get("label"), lines.get("label", line), f"{where}: label") if "label" in r else None
        if label is not None and label not in S.LABELS:
            v.warnings.append((lines["label"], f"{where}: label {label!r} is not in the label vocabulary"))
        category = (v.text(merged.get("category"), lines.get("category", line), f"{where}: category",
                           pattern=_SNAKE) if "category" in r else None)
        severity = v.text(merged.get("severity", "medium"), lines.get("severity", line), f"{where}: severity",
                          S.SEVERITIES)
        scope = v.text(merged.get("scope", "utterance"), lines.get("scope", line), f"{where}: scope", S.SCOPES)
        langs = _languages(v, merged.get("languages", list(S.LANGUAGES)), lines.get("languages", line), where)
        cooldown = v.number(merged.get("cooldown_s", 0), lines.get("cooldown_s", line), f"{where}: cooldown_s", 0)
        enabled = merged.get("enabled", True)
        if not isinstance(enabled, bool):
            v.err(lines.get("enabled", line), f"{where}: enabled must be true or false, got {_kind(enabled)}")
        desc = merged.get("description", "")
        if not isinstance(desc, str):
            v.err(lines.get("description", line), f"{where}: description must be a string")
        when = None
        if "when" in r:
            when = parse_condition(v, r["when"], r.line_of("when"), scope or "utterance", f"{where}: when")
        if None in (rid, label, category, severity, scope, langs, cooldown, when):
            continue
        for c in S.walk(when):  # type: ignore[arg-type]
            if isinstance(c, S.AlertOf) and c.rule == rid:
                v.err(c.line, f"{where}: a deadline cannot start from the rule's own alert")
        rules.append(S.Rule(id=rid, label=label, category=category, severity=severity, when=when,  # type: ignore[arg-type]
                            description=desc if isinstance(desc, str) else "", languages=langs,  # type: ignore[arg-type]
                            cooldown_s=cooldown, scope=scope, enabled=bool(enabled), source=source,  # type: ignore[arg-type]
                            line=line))
    return name, description, rules


def _languages(v: Validator, value: Any, line: int, where: str) -> tuple[str, ...] | None:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        v.err(line, f"{where}: languages must be a non-empty list of {', '.join(S.LANGUAGES)}")
        return None
    bad = [x for x in value if x not in S.LANGUAGES]
    if bad:
        v.err(line, f"{where}: unknown language(s) {bad} (use {', '.join(S.LANGUAGES)})")
        return None
    return tuple(dict.fromkeys(value))


def validate_file(path: str | os.PathLike[str]) -> tuple[S.Pack | None, Validator]:
    """Read and validate one pack file; the Pack is None when there were errors."""
    source = str(path)
    v = Validator(source)
    try:
        data, text = read_source(path)
        tree = parse_yaml(text, source)
    except RuleError as exc:
        v.errors.extend(exc.problems)
        return None, v
    name, description, rules = parse_pack_data(tree, source, v)
    ids = {r.id for r in rules}
    for ln, ref in alert_refs(rules):
        if ref not in ids:  # may be defined in another pack loaded together: load_pack decides
            v.warnings.append((ln, f"alert rule {ref!r} is not defined in this pack"))
    if v.errors:
        return None, v
    warnings = tuple(f"{source}:{ln if ln is not None else '?'}: {m}" for ln, m in v.warnings)
    return S.Pack(rules=tuple(rules), version=pack_version([data]), name=name, description=description,
                  sources=(source,), warnings=warnings), v


def load_pack(*paths: str | os.PathLike[str]) -> S.Pack:
    """Load and validate one or more pack files into one Pack; raises RuleError listing every problem."""
    if not paths:
        raise RuleError("<no pack>", [(None, "no rule pack given")])
    packs: list[S.Pack] = []
    blobs: list[bytes] = []
    for p in paths:
        pack, v = validate_file(p)
        if pack is None:
            raise RuleError(v.source, sorted(v.errors, key=lambda e: e[0] or 0))
        packs.append(pack)
        blobs.append(read_source(p)[0])
    seen: dict[str, S.Rule] = {}
    for pk in packs:
        for r in pk.rules:
            if r.id in seen:
                raise RuleError(r.source, [(r.line, f"rule id {r.id!r} already defined in {seen[r.id].source}"
                                                    f":{seen[r.id].line}")])
            seen[r.id] = r
    for r in seen.values():
        missing = [(ln, ref) for ln, ref in alert_refs([r]) if ref not in seen]
        if missing:
            raise RuleError(r.source, [(ln, f"rule {r.id!r}: deadline from alert of unknown rule {ref!r}")
                                       for ln, ref in missing])
    if len(packs) == 1:
        return packs[0]
    name = "+".join(p.name for p in packs if p.name)
    return S.Pack(rules=tuple(seen.values()), version=pack_version(blobs), name=name, description="",
                  sources=tuple(s for p in packs for s in p.sources),
                  warnings=tuple(w for p in packs for w in p.warnings))


def alert_refs(rules: list[S.Rule]) -> list[tuple[int, str]]:
    """(line, rule id) of every ``alert: {rule: ID}`` deadline start in these rules."""
    return [(c.line, c.rule) for r in rules for c in S.walk(r.when) if isinstance(c, S.AlertOf) and c.rule]


def phrase_problems(v: Validator, texts: S.LangTexts, line: int, what: str, pinyin: bool) -> None:
    """Literal phrases must survive normalisation; pinyin needs Chinese phrases."""
    any_cjk = False
    for _lang, items in texts:
        for t in items:
            if not norm(t):
                v.err(line, f"{what}: phrase {t!r} is empty after normalisation")
            any_cjk = any_cjk or has_cjk(t)
    if pinyin and not any_cjk:
        v.warnings.append((line, f"{what}: pinyin: true but no Chinese phrase to match by pinyin"))


__all__ = ["LineDict", "LineList", "MarkedLoader", "Validator", "alert_refs", "load_pack", "normalise_bytes",
           "pack_version", "parse_yaml", "read_source", "validate_file"]
