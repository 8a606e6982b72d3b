"""Property tests (hypothesis): normalisation and the phrase matchers against slow references.

Each matcher of :class:`PhraseIndex` (one Aho-Corasick pass for literals, pinyin, regex, fuzzy)
is compared, on generated text, with a direct reference written from its documented meaning
(docs/rules.md): literal = the phrase's normalised words are consecutive words of the normalised
utterance; pinyin = the phrase's readings are consecutive syllables of the utterance; regex =
``re.search`` on the normalised text; fuzzy = rapidfuzz's ``partial_ratio`` ≥ the threshold.
"""

from __future__ import annotations

import re

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pypinyin import Style, lazy_pinyin, pinyin
from rapidfuzz import fuzz

from speechiq.rules import schema as S
from speechiq.rules.matchers import PhraseIndex
from speechiq.rules.normalize import norm, normalize

PROPS = settings(max_examples=150, deadline=None, database=None)

# words with the shapes that normalisation and word boundaries must get right: contractions,
# decimals, number words, currency, case and punctuation around them
WORDS = ["we", "can", "can't", "cannot", "i", "i'm", "guarantee", "guaranteed", "no", "risk", "cancel",
         "cancellation", "account", "my", "your", "supervisor", "super", "visor", "3", "3.5", "35", "ten",
         "twenty", "five", "hundred", "percent", "dollars", "don't", "do", "not", "sure", "o'clock"]
PUNCT = ["", "", "", ",", ".", "!", "?", "…", ";"]
CJK = list("我们可以保证收益是事市没有风险银行音乐你们的主管经理不清楚號碼帳戶萬元十二三两")
FUZZY_WORDS = ["supervisor", "cancellation", "guarantee", "account", "transfer", "manager", "complaint",
               "refund", "warranty", "disclosure", "recorded", "identity"]
FILLER = ["please", "hello", "thanks", "okay", "today", "about", "the", "and", "then"]


def _cased(w: str) -> st.SearchStrategy[str]:
    return st.sampled_from([w, w.upper(), w.capitalize()])


english = st.lists(st.sampled_from(WORDS).flatmap(_cased), min_size=1, max_size=12).flatmap(
    lambda ws: st.tuples(*[st.sampled_from(PUNCT) for _ in ws]).map(
        lambda ps: " ".join(w + p for w, p in zip(ws, ps, strict=True))))
chinese = st.text(st.sampled_from([*CJK, "，", "。", "？", " "]), min_size=1, max_size=20)
mixed = st.lists(st.one_of(english, chinese, st.sampled_from(["$5", "50%", "€20", "1,000", "Ｆｕｌｌ"])),
                 min_size=1, max_size=4).map(" ".join)


def _leaf(literals: tuple[str, ...] = (), regex: tuple[str, ...] = (), fuzzy: int | None = None,
          pinyin_: bool = False) -> S.Phrase:
    return S.Phrase("any", ((S.ALL_LANGS, literals),) if literals else (),
                    ((S.ALL_LANGS, regex),) if regex else (), fuzzy, pinyin_)


def _contains_words(text: str, phrase: str) -> bool:
    """Reference literal match: the phrase's words are consecutive words of the text."""
    t, p = text.split(), phrase.split()
    return bool(p) and any(t[i:i + len(p)] == p for i in range(len(t) - len(p) + 1))


# ---- normalisation ---------------------------------------------------------------------------------
@PROPS
@given(mixed)
def test_normalisation_is_idempotent(text):
    once = norm(text)
    assert norm(once) == once


@PROPS
@given(mixed)
def test_normalised_text_is_lowercase_single_spaced_without_punctuation(text):
    out = norm(text)
    assert out == out.strip() and "  " not in out
    assert out == out.lower()
    assert not re.search(r"[,!?;…，。？]", out)


@PROPS
@given(mixed, st.data())
def test_spans_map_back_inside_the_original(text, data):
    nz = normalize(text)
    assume(nz.text)
    s = data.draw(st.integers(0, len(nz.text) - 1))
    e = data.draw(st.integers(s + 1, len(nz.text)))
    a, b = nz.span(s, e)
    assert 0 <= a < b <= len(text)


# ---- literal phrases ----------------------------------------------------------------------------------
short_phrases = st.lists(st.lists(st.sampled_from(WORDS), min_size=1, max_size=2).map(" ".join),
                         min_size=1, max_size=6, unique=True)


@PROPS
@given(short_phrases, english)
def test_literal_matches_agree_with_the_word_sequence_reference(phrases, text):
    index = PhraseIndex([_leaf((p,)) for p in phrases])
    view = index.scan(text, "en")
    t = norm(text)
    for i, p in enumerate(phrases):
        want = _contains_words(t, norm(p))
        spans = index.match(view, i)
        assert bool(spans) == want, (p, text, t, spans)
        for s, e, key in spans:  # every span is the normalised phrase, at word boundaries
            assert t[s:e] == key == norm(p)
            assert _contains_words(t[max(0, s - 1):e + 1].strip(), key)


# words that are prefixes of other tokens: a phrase must never match inside the longer token
NEAR = ["can", "can't", "i", "i'm", "do", "don't", "3", "3.5", "5", "no", "risk", "guarantee", "guaranteed", "o'clock"]
near_text = st.lists(st.sampled_from(NEAR), min_size=1, max_size=8).map(" ".join)


@PROPS
@given(near_text, st.data())
def test_literal_near_misses_agree_with_the_word_sequence_reference(text, data):
    words = text.split()
    i = data.draw(st.integers(0, len(words) - 1))
    j = data.draw(st.integers(i + 1, min(len(words), i + 3)))
    window = [data.draw(st.sampled_from(NEAR)) if data.draw(st.booleans()) else w for w in words[i:j]]
    phrase = " ".join(window)
    index = PhraseIndex([_leaf((phrase,))])
    got = index.match(index.scan(text, "en"), 0)
    assert bool(got) == _contains_words(norm(text), norm(phrase)), (phrase, text, got)


@PROPS
@given(english, english, english)
def test_a_phrase_said_inside_any_sentence_matches(before, phrase, after):
    index = PhraseIndex([_leaf((phrase,))])
    assert index.match(index.scan(f"{before}, {phrase}. {after}", "en"), 0)


# ---- pinyin ----------------------------------------------------------------------------------------
PINYIN_CJK = list("保宝证正收手益意银音行是事市没有风险主管")


def _py_reference(text: str, phrase: str) -> bool:
    """Consecutive syllables of the text (default readings) equal one reading of each phrase
    character, or the phrase is a substring."""
    t, p = norm(text), norm(phrase)
    if p in t:
        return True
    syl = [lazy_pinyin(c, style=Style.NORMAL)[0] for c in t if c != " "]
    readings = [set(pinyin(c, style=Style.NORMAL, heteronym=True)[0]) | {lazy_pinyin(c, style=Style.NORMAL)[0]}
                for c in p]
    n = len(readings)
    return any(all(syl[i + k] in readings[k] for k in range(n)) for i in range(len(syl) - n + 1))


@PROPS
@given(st.text(st.sampled_from(PINYIN_CJK), min_size=2, max_size=3),
       st.text(st.sampled_from([*PINYIN_CJK, "，", " "]), min_size=1, max_size=16))
def test_pinyin_matches_agree_with_the_syllable_reference(phrase, text):
    index = PhraseIndex([_leaf((phrase,), pinyin_=True)])
    view = index.scan(text, "zh")
    assert bool(index.match(view, 0)) == _py_reference(text, phrase), (phrase, text)


@PROPS
@given(st.text(st.sampled_from(PINYIN_CJK), min_size=2, max_size=3),
       st.text(st.sampled_from(PINYIN_CJK), min_size=1, max_size=16))
def test_without_pinyin_a_chinese_phrase_matches_only_itself(phrase, text):
    index = PhraseIndex([_leaf((phrase,))])
    assert bool(index.match(index.scan(text, "zh"), 0)) == (norm(phrase) in norm(text))


# ---- regex -----------------------------------------------------------------------------------------
regexes = st.lists(st.sampled_from(["can", "can't", "guarantee[sd]?", "no risk", r"\d+", r"\d+(\.\d+)? percent",
                                    "(super ?visor|manager)", "i'?m not sure", r"\bdo\b", "x*"]),
                   min_size=1, max_size=3).map(lambda parts: "|".join(parts))


@PROPS
@given(regexes, english)
def test_regex_matches_agree_with_re_search_on_the_normalised_text(rx, text):
    index = PhraseIndex([_leaf(regex=(rx,))])
    t = norm(text)
    want = [(m.start(), m.end()) for m in re.finditer(rx, t) if m.end() > m.start()]
    got = [(s, e) for s, e, _ in index.match(index.scan(text, "en"), 0)]
    assert got == want


# ---- fuzzy -----------------------------------------------------------------------------------------
def _garble(word: str, pos: int, ch: str) -> str:
    """One substitution inside the word, its first and last 3 letters kept (the prefilter's keys)."""
    if len(word) < 7:
        return word
    i = 3 + pos % (len(word) - 6)
    return word[:i] + ch + word[i + 1:]


@PROPS
@given(st.lists(st.sampled_from(FUZZY_WORDS), min_size=1, max_size=3),
       st.lists(st.tuples(st.integers(0, 20), st.sampled_from("aeiouxz")), min_size=3, max_size=3),
       st.lists(st.sampled_from(FILLER), max_size=5), st.lists(st.sampled_from(FILLER), max_size=5),
       st.integers(75, 95))
def test_fuzzy_matches_agree_with_partial_ratio(words, edits, before, after, score):
    phrase = " ".join(words)
    said = " ".join(_garble(w, p, c) for w, (p, c) in zip(words, edits, strict=False))
    text = " ".join([*before, said, *after])
    index = PhraseIndex([_leaf((phrase,), fuzzy=score)])
    got = index.match(index.scan(text, "en"), 0)
    ratio = fuzz.partial_ratio(phrase, text)
    assert bool(got) == (ratio >= score or _contains_words(text, phrase)), (phrase, text, ratio)


@PROPS
@given(st.lists(st.sampled_from(FUZZY_WORDS), min_size=1, max_size=3), english, st.integers(75, 95))
def test_fuzzy_hits_are_sound(words, text, score):
    phrase = " ".join(words)
    index = PhraseIndex([_leaf((phrase,), fuzzy=score)])
    for s, e, _ in index.match(index.scan(text, "en"), 0):
        assert fuzz.partial_ratio(phrase, norm(text)[s:e]) >= score or norm(text)[s:e] == phrase
