"""Phrase matching for a whole pack: one Aho-Corasick pass per utterance, pinyin, fuzzy, regex.

Compile once (:class:`PhraseIndex`), then :meth:`PhraseIndex.scan` each utterance into a
:class:`TextView` holding the hits of every phrase leaf: literal and pinyin (one automaton pass
each), every distinct regex once, fuzzy after a cheap word-affix prefilter. All of it runs in the
scan, eagerly, so rules can be indexed by the leaves that hit. Given the utterance's role, the
scan skips the regex and fuzzy work of leaves of the other role (they can never hold on it);
regex and fuzzy are most of a scan's cost.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from itertools import chain

import ahocorasick
from rapidfuzz import fuzz

from . import schema as S
from .normalize import Normalized, has_cjk, norm, normalize
from .pinyin import PinyinText, phrase_pinyin, text_pinyin

MIN_FUZZY_CHARS = 4
PARTY_ROLES = ("agent", "customer")  # utterance roles with their own leaves; any other role sees "any" leaves only

Span = tuple[int, int, str]  # [start, end) in the normalised text, what matched


def role_key(role: str) -> str:
    """The per-role index key of an utterance's role: agent, customer, or "" for any other role."""
    return role if role in PARTY_ROLES else ""


def _langs(lang: str) -> tuple[str, ...]:
    return S.LANGUAGES if lang == S.ALL_LANGS else (lang,)


def _is_word(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def _joins(ch: str) -> bool:
    """Part of the same token as a neighbouring letter or digit in normalised text: a non-CJK
    letter or digit, or the apostrophe / decimal point that normalisation keeps only inside a
    token (so ``can`` is not found in ``can't``, ``3`` not in ``3.5``, ``cafe`` not in ``cafés``)."""
    return ch in "'." or (ch.isalnum() and not has_cjk(ch))


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
    hits: dict[int, list[Span]] = field(default_factory=dict)  # every phrase leaf's hits

    @property
    def text(self) -> str:
        return self.norm.text

    def original_spans(self, spans: list[Span]) -> tuple[tuple[int, int], ...]:
        """Spans as offsets into the original text, overlapping ones merged."""
        out: list[tuple[int, int]] = []
        for s, e in sorted({self.norm.span(s, e) for s, e, _ in spans}):
            if out and s <= out[-1][1]:
                out[-1] = (out[-1][0], max(out[-1][1], e))
            else:
                out.append((s, e))
        return tuple(out)


class PhraseIndex:
    """Every phrase leaf of a pack, compiled: literal/pinyin automata, fuzzy entries, regexes.

    :meth:`scan` computes every leaf's hits in one go (literal, pinyin, each distinct regex once,
    fuzzy after a word prefix/suffix prefilter), so a phrase leaf is fully known from the scan and
    rules can be indexed by the leaves that hit.
    """

    def __init__(self, leaves: list[S.Phrase]) -> None:
        self.leaves = leaves
        self._keys: dict[str, dict[str, list[int]]] = {lang: defaultdict(list) for lang in S.LANGUAGES}
        self._py_keys: dict[str, list[int]] = defaultdict(list)
        self._fuzzy: dict[str, list[_Fuzzy]] = {lang: [] for lang in S.LANGUAGES}
        self._regex: dict[str, dict[str, list[int]]] = {lang: defaultdict(list) for lang in S.LANGUAGES}
        self._compiled: dict[str, re.Pattern[str]] = {}
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
                            self._fuzzy[lg].append(_Fuzzy(i, n, leaf.fuzzy, _need(n)))
                    if leaf.pinyin and has_cjk(n) and "zh" in _langs(lang):
                        for key in phrase_pinyin(n):
                            if i not in self._py_keys[key]:
                                self._py_keys[key].append(i)
            for lang, items in leaf.regex:
                for pat in items:
                    self._compiled.setdefault(pat, re.compile(pat))
                    for lg in _langs(lang):
                        if i not in self._regex[lg][pat]:
                            self._regex[lg][pat].append(i)
        self._ac = {lang: _automaton(keys) for lang, keys in self._keys.items()}
        self._py_ac = _automaton(self._py_keys)
        # per language and utterance role (None = every leaf): the regexes and fuzzy entries to run
        self._regex_for: dict[tuple[str, str | None], list[tuple[re.Pattern[str], list[int]]]] = {}
        self._fuzzy_for: dict[tuple[str, str | None], tuple[list[_Fuzzy], dict[str, tuple[int, ...]],
                                                                tuple[int, ...]]] = {}
        for lang in S.LANGUAGES:
            for role in (None, *PARTY_ROLES, ""):
                ok = [role is None or leaf.role in ("any", role) for leaf in leaves]
                self._regex_for[(lang, role)] = [
                    (self._compiled[pat], [i for i in ls if ok[i]]) for pat, ls in self._regex[lang].items()
                    if any(ok[i] for i in ls)]
                entries = [e for e in self._fuzzy[lang] if ok[e.leaf]]
                self._fuzzy_for[(lang, role)] = (entries, *_affix_postings(entries))
        self.has_pinyin = bool(self._py_keys)

    # ---- per utterance ---------------------------------------------------------------------
    def scan(self, text: str, lang: str, normalized: Normalized | None = None, role: str | None = None) -> TextView:
        """Normalise once and find every phrase leaf's hits (see the class docstring). With the
        utterance's ``role``, regex and fuzzy leaves of the other role are not run (their hits
        could never count: a phrase leaf holds only on its role's utterances)."""
        nz = normalized or normalize(text)
        view = TextView(nz, lang)
        t = nz.text
        if not t:
            return view
        hits = view.hits
        ac = self._ac.get(lang)
        if ac is not None:
            keys = self._keys[lang]
            for end, key in ac.iter(t):
                start = end - len(key) + 1
                if (_joins(key[0]) and start > 0 and _joins(t[start - 1])) or (
                        _joins(key[-1]) and end + 1 < len(t) and _joins(t[end + 1])):
                    continue
                for leaf in keys[key]:
                    hits.setdefault(leaf, []).append((start, end + 1, key))
        if lang == "zh" and self._py_ac is not None and has_cjk(t):
            py: PinyinText = text_pinyin(t)
            for end, key in self._py_ac.iter(py.text):
                s, e = py.source_span(end - len(key) + 2, end)
                for leaf in self._py_keys[key]:
                    hits.setdefault(leaf, []).append((s, e, t[s:e]))
        key = (lang, None if role is None else role_key(role))
        for rx, leaves in self._regex_for.get(key, ()):
            found = [(m.start(), m.end(), m.group()) for m in rx.finditer(t) if m.end() > m.start()]
            if found:
                for leaf in leaves:
                    hits.setdefault(leaf, []).extend(found)
        fuzzy = self._fuzzy_for.get(key)
        if fuzzy is not None and fuzzy[0] and len(t) >= MIN_FUZZY_CHARS:
            self._scan_fuzzy(view, *fuzzy)
        return view

    def match(self, view: TextView, leaf: int) -> list[Span]:
        """All spans of phrase leaf ``leaf`` in the utterance ([] = no match)."""
        return view.hits.get(leaf, [])

    def _scan_fuzzy(self, view: TextView, entries: list[_Fuzzy], post: dict[str, tuple[int, ...]],
                    need: tuple[int, ...]) -> None:
        t = view.text
        words = set(t.split())
        arrs = [post[k] for w in words if len(w) >= 3 for k in (w[:3], "~" + w[-3:]) if k in post]
        if not arrs:
            return
        counts = Counter(chain.from_iterable(arrs))  # a few dozen postings: cheaper than numpy here
        hits = view.hits
        for idx in sorted(i for i, n in counts.items() if n >= need[i]):
            e = entries[idx]
            if e.leaf in hits:
                continue
            al = fuzz.partial_ratio_alignment(e.phrase, t, score_cutoff=e.score)  # None below the cutoff
            if al is not None and al.score >= e.score:
                s, en = _widen(t, al.dest_start, al.dest_end)
                hits[e.leaf] = [(s, en, t[s:en])]


def _widen(t: str, s: int, e: int) -> tuple[int, int]:
    """Grow a fuzzy alignment to whole words (English) for readable highlights."""
    while s > 0 and _is_word(t[s - 1]) and _is_word(t[s]):
        s -= 1
    while e < len(t) and e > 0 and _is_word(t[e]) and _is_word(t[e - 1]):
        e += 1
    return s, e


def _affixes(phrase: str) -> set[str]:
    """3-letter prefixes and (~-marked) suffixes of the phrase's words of 4+ characters."""
    return {k for w in phrase.split() if len(w) >= 4 for k in (w[:3], "~" + w[-3:])}


def _need(phrase: str) -> int:
    """Affix keys an utterance must share before rapidfuzz runs: half the phrase's words."""
    n = sum(1 for w in phrase.split() if len(w) >= 4)
    return max(1, (n + 1) // 2)


def _affix_postings(entries: list[_Fuzzy]) -> tuple[dict[str, tuple[int, ...]], tuple[int, ...]]:
    post: dict[str, list[int]] = defaultdict(list)
    for i, e in enumerate(entries):
        keys = _affixes(e.phrase) or {e.phrase[:3]}
        for k in keys:
            post[k].append(i)
    return {k: tuple(ix) for k, ix in post.items()}, tuple(e.need for e in entries)


def _automaton(keys: dict[str, list[int]]) -> ahocorasick.Automaton | None:
    if not keys:
        return None
    a = ahocorasick.Automaton()
    for k in keys:
        a.add_word(k, k)
    a.make_automaton()
    return a


__all__ = ["PARTY_ROLES", "PhraseIndex", "Span", "TextView", "role_key"]
