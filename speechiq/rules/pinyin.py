"""Toneless pinyin of normalised Chinese text, syllable-aligned, for homophone-tolerant matching.

Utterances use one reading per character (pypinyin's default, cached per character: cheap);
phrases expand to every combination of their characters' readings (capped), so a polyphonic
character in either side still meets the other (银行 matches yin xing and yin hang).
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass
from functools import lru_cache

from .normalize import has_cjk

MAX_VARIANTS = 16


@lru_cache(maxsize=65536)
def char_pinyin(ch: str) -> str:
    """Default toneless reading of one character (the character itself when it has none)."""
    from pypinyin import Style, lazy_pinyin

    out = lazy_pinyin(ch, style=Style.NORMAL, errors="default")
    return out[0] if out else ch


@lru_cache(maxsize=65536)
def _readings(ch: str) -> tuple[str, ...]:
    from pypinyin import Style, pinyin

    got = pinyin(ch, style=Style.NORMAL, heteronym=True, errors="default")
    seen: dict[str, None] = {char_pinyin(ch): None}
    for r in got[0] if got else ():
        seen.setdefault(r, None)
    return tuple(seen)


def _tokens(text: str) -> list[tuple[str, int, int]]:
    """(syllable-or-word, start, end) over normalised text: one per CJK char, one per other run."""
    out: list[tuple[str, int, int]] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == " ":
            i += 1
        elif has_cjk(ch):
            out.append((char_pinyin(ch), i, i + 1))
            i += 1
        else:
            j = i
            while j < n and text[j] != " " and not has_cjk(text[j]):
                j += 1
            out.append((text[i:j], i, j))
            i = j
    return out


@dataclass(frozen=True)
class PinyinText:
    """`` syl syl syl `` (space-wrapped) plus where each syllable came from in the normalised text."""

    text: str
    offsets: tuple[int, ...]  # start of each token in ``text``
    spans: tuple[tuple[int, int], ...]  # [start, end) of each token in the normalised text

    def source_span(self, start: int, end: int) -> tuple[int, int]:
        """Normalised-text range of the pinyin-text range [start, end) (token aligned)."""
        first = max(0, bisect.bisect_right(self.offsets, start) - 1)
        last = max(first, bisect.bisect_right(self.offsets, max(start, end - 1)) - 1)
        return self.spans[first][0], self.spans[last][1]


def text_pinyin(normalised: str) -> PinyinText:
    toks = _tokens(normalised)
    parts: list[str] = []
    offsets: list[int] = []
    pos = 1
    for syl, _s, _e in toks:
        offsets.append(pos)
        parts.append(syl)
        pos += len(syl) + 1
    return PinyinText(" " + " ".join(parts) + " ", tuple(offsets), tuple((s, e) for _, s, e in toks))


def phrase_pinyin(normalised: str) -> list[str]:
    """Space-wrapped pinyin keys of a normalised phrase: every reading combination, capped."""
    toks = _tokens(normalised)
    if not toks:
        return []
    options = [_readings(normalised[s]) if has_cjk(normalised[s:e]) else (t,) for t, s, e in toks]
    keys = [" " + " ".join(combo) + " " for combo in itertools.islice(itertools.product(*options), MAX_VARIANTS)]
    default = " " + " ".join(t for t, _, _ in toks) + " "
    if default not in keys:
        keys.insert(0, default)
    return keys


__all__ = ["PinyinText", "char_pinyin", "phrase_pinyin", "text_pinyin"]
