"""Text normalisation shared by rule phrases and transcripts, with offsets back to the original text.

NFKC + case folding, traditional → simplified Chinese (OpenCC), punctuation → space, English and
Chinese number words → digits, currency symbols → words. Phrases and utterances go through the
same function, so they match whatever form the recogniser wrote. See docs/rules.md.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass, field
from functools import lru_cache

_CJK_RANGES = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3007"
_CJK = re.compile(f"[{_CJK_RANGES}]")
_WORDCH = rf"[^\W_{_CJK_RANGES}\u3000-\u303f]"
_TOKEN = re.compile(
    rf"(?P<cjk>[{_CJK_RANGES}])"
    rf"|(?P<word>{_WORDCH}(?:{_WORDCH}|'(?={_WORDCH})|(?<=\d)\.(?=\d)|(?<=\d),(?=\d{{3}}(?!\d)))*)"
    r"|(?P<cur>[$€£])"
    r"|(?P<pct>%)"
)
_ASCII_TOKEN = re.compile(  # the same tokens for ASCII text, cheaper
    r"(?P<word>[a-z0-9]+(?:'[a-z0-9]+)*(?:(?<=[0-9])(?:\.|,(?=[0-9]{3}(?![0-9])))[0-9]+)*)|(?P<cur>[$])|(?P<pct>%)")
_ASCII_WORDS = re.compile(  # the word tokens of _ASCII_TOKEN alone
    r"[a-z0-9]+(?:'[a-z0-9]+)*(?:(?<=[0-9])(?:\.|,(?=[0-9]{3}(?![0-9])))[0-9]+)*")
_NEEDS_TOKENS = re.compile(r"[$%]|[0-9],[0-9]")  # ASCII text the fast path of normalize() does not take
_THOUSANDS = re.compile(r"^\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_APOS = str.maketrans({"’": "'", "‘": "'", "`": "'", "ʼ": "'"})

CURRENCY = {"$": "dollars", "€": "euros", "£": "pounds"}

UNITS = {w: i for i, w in enumerate(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])}
TEENS = {w: 10 + i for i, w in enumerate(
    ["ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"])}
TENS = {w: 10 * (i + 2) for i, w in enumerate(
    ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"])}
SCALES = {"thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
NUMBER_WORDS = {**UNITS, **TEENS, **TENS, "hundred": 100, **SCALES}

CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5,
             "六": 6, "七": 7, "八": 8, "九": 9}
CN_SMALL = {"十": 10, "百": 100, "千": 1000}
CN_BIG = {"万": 10_000, "亿": 100_000_000}
CN_NUMERALS = {**CN_DIGITS, **CN_SMALL, **CN_BIG}
CN_MEASURE = set("块元角毛分个月天年号次位岁张台部条周点秒")
CN_IDIOMS = {"万一", "千万", "一一"}


def has_cjk(text: str) -> bool:
    return _CJK.search(text) is not None


@lru_cache(maxsize=1)
def _t2s() -> object:
    import opencc

    return opencc.OpenCC("t2s")


@dataclass(slots=True)
class _Tok:
    text: str
    start: int  # offsets into the *folded* string
    end: int
    kind: str  # cjk | word | num | cur | pct
    identity: bool = True  # text equals folded[start:end]


@dataclass
class Normalized:
    """Normalised text plus the map from its characters back to the original text."""

    text: str
    original: str
    _toks: list[_Tok] | None = field(repr=False, default=None)  # None: plain ASCII, tokenised on demand
    _fold_map: list[int] | None = field(repr=False, default=None)
    _folded: str = field(repr=False, default="")
    _pieces: list[tuple[str, int, int, bool]] | None = field(repr=False, default=None)
    _pstart: list[int] | None = field(repr=False, default=None)  # normalised offset of each piece

    def _build(self) -> None:
        if self._toks is None:  # the fast path of normalize(): the tokens are the ASCII matches as they are
            self._toks = [_Tok(m.group(), m.start(), m.end(), "word") for m in _ASCII_WORDS.finditer(self._folded)]
        pieces = _pieces(self._toks)
        pstart: list[int] = []
        at = 0
        for p in pieces:
            pstart.append(at)
            at += len(p[0])
        self._pieces, self._pstart = pieces, pstart

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Original-text [start, end) of the normalised range [start, end): the smallest range
        covering every character's source (``$5`` → ``5 dollars`` puts the number before the
        sign, so the sources of a range are not in order)."""
        if self._pieces is None:
            self._build()
        assert self._pieces is not None and self._pstart is not None
        n = len(self.text)
        if not n or end <= start:
            return (0, 0)
        start = max(0, min(start, n - 1))
        end = max(start + 1, min(end, n))
        pieces, pstart = self._pieces, self._pstart
        k = max(0, bisect_right(pstart, start) - 1)
        lo, hi = n + len(self.original) + 1, -1
        while k < len(pieces) and pstart[k] < end:
            text, s, e, identity = pieces[k]
            a, b = pstart[k], pstart[k] + len(text)
            if b > start:
                if identity and e - s == len(text):  # character for character
                    lo, hi = min(lo, s + max(start, a) - a), max(hi, s + min(end, b) - a)
                else:  # every character of the piece comes from the whole source range
                    lo, hi = min(lo, s), max(hi, e)
            k += 1
        fm = self._fold_map
        if fm is not None:  # folded -> original offsets (a monotone map)
            lo, hi = fm[lo], (fm[hi - 1] + 1 if hi > 0 else 0)
        return (lo, hi)


def _fold(text: str) -> tuple[str, list[int] | None]:
    """NFKC + casefold + simplified Chinese; a per-character map when lengths change."""
    if text.isascii():
        return text.replace("`", "'").lower(), None
    text = text.translate(_APOS)
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    fmap: list[int] | None = None
    if len(folded) != len(text):
        parts: list[str] = []
        fmap = []
        for i, ch in enumerate(text):
            f = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", ch).casefold())
            parts.append(f)
            fmap.extend([i] * len(f))
        folded = "".join(parts)
    if has_cjk(folded):
        simp = _t2s().convert(folded)  # type: ignore[attr-defined]
        if len(simp) == len(folded):
            folded = simp
        else:
            folded = "".join(c if len(s := _t2s().convert(c)) != 1 else s for c in folded)  # type: ignore[attr-defined]
    return folded, fmap


_RUN_JOINERS = frozenset(" -\u2010\u2011\u2012\u2013")  # may stand between the words of one spelled number


def _english_numbers(toks: list[_Tok], folded: str) -> list[_Tok]:
    """Spelled-out English numbers → digits. A number's words are separated by spaces or hyphens
    only (a comma is allowed after thousand/million/billion): ``one, two, three`` stays a list,
    ``I am twenty. Five of us`` two numbers, ``twenty-five`` and ``two thousand, three hundred``
    one."""
    out: list[_Tok] = []
    i, n = 0, len(toks)
    while i < n:
        w = toks[i].text
        if w not in NUMBER_WORDS and w != "a":  # fast path: most words are not numbers
            out.append(toks[i])
            i += 1
            continue
        j = i
        while j < n and _is_num_word(toks, j, i) and (j == i or _joined(toks[j - 1], toks[j], folded)):
            j += 1
        if j == i:
            out.append(toks[i])
            i += 1
            continue
        out.extend(_parse_run(toks[i:j]))
        i = j
    return out


def _joined(a: _Tok, b: _Tok, folded: str) -> bool:
    between = folded[a.end:b.start]
    if a.text in SCALES:
        between = between.replace(",", "", 1)
    return all(c in _RUN_JOINERS for c in between)


def _is_num_word(toks: list[_Tok], j: int, run_start: int) -> bool:
    w = toks[j].text
    if toks[j].kind != "word":
        return False
    nxt = toks[j + 1].text if j + 1 < len(toks) and toks[j + 1].kind == "word" else ""
    if w in NUMBER_WORDS:
        return not (j == run_start and (w == "hundred" or w in SCALES))
    if w == "a":
        return j == run_start and (nxt == "hundred" or nxt in SCALES)
    if w == "and":
        prev = toks[j - 1].text if j > run_start else ""
        return (prev == "hundred" or prev in SCALES) and (nxt in UNITS or nxt in TEENS or nxt in TENS)
    return False


def _parse_run(run: list[_Tok]) -> list[_Tok]:
    words = [t.text for t in run]
    if len(words) >= 2 and all(w in UNITS for w in words):
        return [_Tok("".join(str(UNITS[w]) for w in words), run[0].start, run[-1].end, "num", False)]
    out: list[_Tok] = []
    total = group = 0
    last = ""
    last_scale = 10**12
    has_hundred = False
    first: _Tok | None = None
    prev: _Tok | None = None

    def flush() -> None:
        nonlocal total, group, last, last_scale, has_hundred, first
        if first is not None and prev is not None:
            out.append(_Tok(str(total + group), first.start, prev.end, "num", False))
        total = group = 0
        last, last_scale, has_hundred, first = "", 10**12, False, None

    for tok in run:
        w = tok.text
        if w == "and":
            prev = tok
            continue
        if w == "a":
            cat, v = "unit", 1
        elif w in UNITS:
            cat, v = "unit", UNITS[w]
        elif w in TEENS:
            cat, v = "teen", TEENS[w]
        elif w in TENS:
            cat, v = "tens", TENS[w]
        elif w == "hundred":
            cat, v = "hundred", 100
        else:
            cat, v = "scale", SCALES[w]
        if cat in ("unit", "teen"):
            ok = last in ("", "hundred", "scale") or (last == "tens" and cat == "unit")
        elif cat == "tens":
            ok = last in ("", "hundred", "scale")
        elif cat == "hundred":
            ok = last in ("unit", "teen") and not has_hundred
        else:
            ok = last in ("unit", "teen", "tens", "hundred") and v < last_scale
        if not ok:
            flush()
            if cat in ("hundred", "scale"):  # cannot start a number: keep the word
                out.append(tok)
                prev = None
                continue
        if first is None:
            first = tok
        if cat in ("unit", "teen", "tens"):
            group += v
        elif cat == "hundred":
            group *= 100
            has_hundred = True
        else:
            total += group * v
            group, last_scale, has_hundred = 0, v, False
        last = cat
        prev = tok
    flush()
    return out


def cn_to_int(s: str) -> int:
    """Value of a Chinese numeral string (一百二十三 → 123, 两千零五 → 2005, 一百二 → 120)."""
    total = section = number = 0
    last_unit = 0
    for ch in s:
        if ch in CN_DIGITS:
            number = CN_DIGITS[ch]
            if ch in "零〇":
                last_unit = 0
        elif ch in CN_SMALL:
            u = CN_SMALL[ch]
            section += (number or (1 if u == 10 and section == 0 else 0)) * u
            number, last_unit = 0, u
        else:
            section = (section + number) * CN_BIG[ch]
            total += section
            section = number = 0
            last_unit = 0
    if number and last_unit >= 100 and s[-2] in CN_SMALL:  # 一百二 = 120, 三千五 = 3500
        number *= last_unit // 10
    return total + section + number


def _chinese_numbers(toks: list[_Tok]) -> list[_Tok]:
    out: list[_Tok] = []
    i, n = 0, len(toks)
    while i < n:
        if toks[i].kind != "cjk" or toks[i].text not in CN_NUMERALS:
            out.append(toks[i])
            i += 1
            continue
        j = i
        while j < n and toks[j].kind == "cjk" and toks[j].text in CN_NUMERALS:  # joined in the output too
            j += 1
        run = "".join(t.text for t in toks[i:j])
        after = toks[j].text if j < n else ""
        before = toks[i - 1].text if i > 0 else ""
        convert = (len(run) >= 2 and run not in CN_IDIOMS) or (
            len(run) == 1 and (after in CN_MEASURE or before == "第") and run in CN_DIGITS | CN_SMALL)
        if not convert:
            out.extend(toks[i:j])
        elif not any(c in CN_SMALL or c in CN_BIG for c in run):
            out.append(_Tok("".join(str(CN_DIGITS[c]) for c in run), toks[i].start, toks[j - 1].end, "num", False))
        else:
            out.append(_Tok(str(cn_to_int(run)), toks[i].start, toks[j - 1].end, "num", False))
        i = j
    return out


def _symbols(toks: list[_Tok]) -> list[_Tok]:
    out: list[_Tok] = []
    i = 0
    while i < len(toks):
        t = toks[i]
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        if t.kind == "cur":
            if nxt is not None and _numeric(nxt):
                out.append(nxt)
                out.append(_Tok(CURRENCY[t.text], t.start, t.end, "word", False))
                i += 2
                continue
        elif t.kind == "pct":
            if out and _numeric(out[-1]):
                out.append(_Tok("percent", t.start, t.end, "word", False))
        else:
            out.append(t)
        i += 1
    return out


def _drop_loose_symbols(toks: list[_Tok]) -> list[_Tok]:
    """Currency signs not before a number and % not after one are punctuation."""
    def starts_number(t: _Tok | None) -> bool:
        return t is not None and (_numeric(t) or t.text in UNITS or t.text in TEENS or t.text in TENS)

    def ends_number(t: _Tok | None) -> bool:
        return t is not None and (_numeric(t) or (t.kind == "word" and t.text in NUMBER_WORDS))

    out: list[_Tok] = []
    for i, t in enumerate(toks):
        if t.kind == "cur" and not starts_number(toks[i + 1] if i + 1 < len(toks) else None):
            continue
        if t.kind == "pct" and not ends_number(out[-1] if out else None):
            continue
        out.append(t)
    return out


def _numeric(t: _Tok) -> bool:
    return t.kind == "num" or (t.kind == "word" and t.text[:1].isdigit() and t.text.replace(".", "").isdigit())


def _pieces(toks: list[_Tok]) -> list[tuple[str, int, int, bool]]:
    """(text, start, end, identity) of every output piece, separators included."""
    out: list[tuple[str, int, int, bool]] = []
    prev_cjk = False
    for t in toks:
        cjk = t.kind == "cjk"
        if out and not (cjk and prev_cjk):
            out.append((" ", t.start, t.start + 1, False))
        out.append((t.text, t.start, t.end, t.identity))
        prev_cjk = cjk
    return out


def normalize(text: str) -> Normalized:
    """Normalise ``text`` (see the module docstring); keeps offsets into the original."""
    folded, fmap = _fold(text)
    if fmap is None and folded.isascii() and _NEEDS_TOKENS.search(folded) is None:
        # plain ASCII without symbols or digit groups: the words as they are, unless numbers are spelled
        words = _ASCII_WORDS.findall(folded)
        if NUMBER_WORDS.keys().isdisjoint(words):
            return Normalized(" ".join(words), text, None, None, folded)
    return _tokenized(text, folded, fmap)


def _tokenized(text: str, folded: str, fmap: list[int] | None) -> Normalized:
    """The general path of :func:`normalize`: tokens, then numbers, digit groups and symbols."""
    rx = _ASCII_TOKEN if fmap is None and folded.isascii() else _TOKEN
    toks = [_Tok(m.group(), m.start(), m.end(), m.lastgroup or "word") for m in rx.finditer(folded)]
    if "," in folded:
        for t in toks:
            if t.kind == "word" and "," in t.text and _THOUSANDS.match(t.text):
                t.text, t.identity = t.text.replace(",", ""), False
    symbols = any(c in folded for c in "$€£%")
    if symbols:
        toks = _drop_loose_symbols(toks)
    if not NUMBER_WORDS.keys().isdisjoint([t.text for t in toks]):
        toks = _english_numbers(toks, folded)
    cjk = has_cjk(folded)
    if cjk and any(t.kind == "cjk" and t.text in CN_NUMERALS for t in toks):
        toks = _chinese_numbers(toks)
    if symbols:
        toks = _symbols(toks)
    out = "".join([p[0] for p in _pieces(toks)]) if cjk else " ".join([t.text for t in toks])
    return Normalized(out, text, toks, fmap)


def norm(text: str) -> str:
    """Just the normalised string."""
    return normalize(text).text


__all__ = ["Normalized", "cn_to_int", "has_cjk", "norm", "normalize"]
