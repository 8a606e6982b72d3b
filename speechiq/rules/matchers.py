"""Phrase matching for a whole pack: one Aho-Corasick pass per utterance, pinyin, fuzzy, regex.

Compile once (:class:`PhraseIndex`), then :meth:`PhraseIndex.scan` each utterance into a
:class:`TextView` holding the literal and pinyin hits of every phrase leaf. Regex and fuzzy
leaves are evaluated lazily, only when a rule reaches them.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

import ahocorasick
import numpy as np
from rapidfuzz import fuzz

from . import schema as S
from .normalize import Normalized, has_cjk, norm, normalize
from .pinyin import PinyinText, phrase_pinyin, text_pinyin

MIN_FUZZY_CHARS = 4

Span = tuple[int, int, str]  # [start, end) in the normalised text, what matched


def _langs(lang: str) -> tuple[str, ...]:
    return S.LANGUAGES if lang == S.ALL_LANGS else (lang,)


def _is_word(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


@dataclass
class _Fuzzy:
    leaf: int
    phrase: str
    score: int
    need: int  # shared character trigrams required before rapidfuzz runs


@dataclass
class TextView:
    """One utterance as the matchers see it."""

    norm: Normalized
    lang: str
    hits: dict[int, list[Span]] = field(default_factory=dict)  # literal + pinyin hits per leaf
    _fuzzy: dict[int, list[Span]] | None = None
    _regex: dict[int, list[Span]] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.norm.text

    def original_spans(self, spans: list[Span]) -> tuple[tuple[int, int], ...]:
        out = sorted({self.norm.span(s, e) for s, e, _ in spans})
        return tuple(out)


class PhraseIndex:
    """Every phrase leaf of a pack, compiled: literal/pinyin automata, fuzzy entries, regexes."""

    def __init__(self, leaves: list[S.Phrase]) -> None:
        self.leaves = leaves
        self._keys: dict[str, dict[str, list[int]]] = {lang: defaultdict(list) for lang in S.LANGUAGES}
        self._py_keys: dict[str, list[int]] = defaultdict(list)
        self._fuzzy: dict[str, list[_Fuzzy]] = {lang: [] for lang in S.LANGUAGES}
        self._regex: dict[int, dict[str, list[re.Pattern[str]]]] = {}
        self.literal_only: set[int] = set()  # leaves whose every match comes from the automata
        for i, leaf in enumerate(leaves):
            for lang, items in leaf.literals:
                for item in items:
                    n = norm(item)
                    if not n:
                        continue
                    for lg in _langs(lang):
                        if i not in self._keys[lg][n]:
                            self._keys[lg][n].append(i)
                        if leaf.fuzzy is not None and len(n) >= MIN_FUZZY_CHARS:
                            self._fuzzy[lg].append(_Fuzzy(i, n, leaf.fuzzy, _need(n, leaf.fuzzy)))
                    if leaf.pinyin and has_cjk(n) and "zh" in _langs(lang):
                        for key in phrase_pinyin(n):
                            if i not in self._py_keys[key]:
                                self._py_keys[key].append(i)
            for lang, items in leaf.regex:
                for pat in items:
                    for lg in _langs(lang):
                        self._regex.setdefault(i, {}).setdefault(lg, []).append(re.compile(pat))
            if not leaf.regex and leaf.fuzzy is None:
                self.literal_only.add(i)
        self._ac = {lang: _automaton(keys) for lang, keys in self._keys.items()}
        self._py_ac = _automaton(self._py_keys)
        self._fuzzy_post: dict[str, tuple[dict[str, np.ndarray], np.ndarray]] = {
            lang: _trigram_postings(entries) for lang, entries in self._fuzzy.items()}
        self.has_pinyin = bool(self._py_keys)

    # ---- per utterance ---------------------------------------------------------------------
    def scan(self, text: str, lang: str, normalized: Normalized | None = None) -> TextView:
        """Normalise once, run the literal automaton (and the pinyin one for Chinese)."""
        nz = normalized or normalize(text)
        view = TextView(nz, lang)
        t = nz.text
        ac = self._ac.get(lang)
        if ac is not None and t:
            for end, key in ac.iter(t):
                start = end - len(key) + 1
                if (_is_word(key[0]) and start > 0 and _is_word(t[start - 1])) or (
                        _is_word(key[-1]) and end + 1 < len(t) and _is_word(t[end + 1])):
                    continue
                for leaf in self._keys[lang][key]:
                    view.hits.setdefault(leaf, []).append((start, end + 1, key))
        if lang == "zh" and self._py_ac is not None and has_cjk(t):
            py: PinyinText = text_pinyin(t)
            for end, key in self._py_ac.iter(py.text):
                s, e = py.source_span(end - len(key) + 2, end)
                for leaf in self._py_keys[key]:
                    view.hits.setdefault(leaf, []).append((s, e, t[s:e]))
        return view

    def match(self, view: TextView, leaf: int) -> list[Span]:
        """All spans of phrase leaf ``leaf`` in the utterance ([] = no match)."""
        spans = list(view.hits.get(leaf, ()))
        if leaf in self.literal_only:
            return spans
        pats = self._regex.get(leaf, {}).get(view.lang)
        if pats:
            if leaf not in view._regex:
                view._regex[leaf] = [(m.start(), m.end(), m.group()) for p in pats for m in p.finditer(view.text)
                                     if m.end() > m.start()]
            spans.extend(view._regex[leaf])
        if self.leaves[leaf].fuzzy is not None and not spans:
            if view._fuzzy is None:
                view._fuzzy = self._fuzzy_all(view)
            spans.extend(view._fuzzy.get(leaf, ()))
        return spans

    def _fuzzy_all(self, view: TextView) -> dict[int, list[Span]]:
        out: dict[int, list[Span]] = {}
        entries = self._fuzzy.get(view.lang) or []
        t = view.text
        if not entries or len(t) < MIN_FUZZY_CHARS:
            return out
        post, need = self._fuzzy_post[view.lang]
        arrs = [post[g] for g in {t[i:i + 3] for i in range(len(t) - 2)} if g in post]
        if not arrs:
            return out
        counts = np.bincount(np.concatenate(arrs), minlength=len(entries))
        for idx in np.nonzero(counts >= need)[0]:
            e = entries[int(idx)]
            if out.get(e.leaf):
                continue
            al = fuzz.partial_ratio_alignment(e.phrase, t, score_cutoff=e.score)
            if al is not None and al.score >= e.score:
                s, en = _widen(t, al.dest_start, al.dest_end)
                out.setdefault(e.leaf, []).append((s, en, t[s:en]))
        return out


def _widen(t: str, s: int, e: int) -> tuple[int, int]:
    """Grow a fuzzy alignment to whole words (English) for readable highlights."""
    while s > 0 and _is_word(t[s - 1]) and _is_word(t[s]):
        s -= 1
    while e < len(t) and e > 0 and _is_word(t[e]) and _is_word(t[e - 1]):
        e += 1
    return s, e


def _need(phrase: str, score: int) -> int:
    """Trigrams a phrase keeps when ``partial_ratio`` ≥ score (substitution errors, 3 trigrams each)."""
    m = len(phrase)
    k = int((1 - score / 100) * m)
    return max(1, (m - 2) - 3 * k)


def _trigram_postings(entries: list[_Fuzzy]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    post: dict[str, list[int]] = defaultdict(list)
    for i, e in enumerate(entries):
        for g in {e.phrase[j:j + 3] for j in range(len(e.phrase) - 2)}:
            post[g].append(i)
    need = np.array([e.need for e in entries], dtype=np.int64)
    return {g: np.array(ix, dtype=np.int64) for g, ix in post.items()}, need


def _automaton(keys: dict[str, list[int]]) -> ahocorasick.Automaton | None:
    if not keys:
        return None
    a = ahocorasick.Automaton()
    for k in keys:
        a.add_word(k, k)
    a.make_automaton()
    return a


__all__ = ["PhraseIndex", "Span", "TextView"]
