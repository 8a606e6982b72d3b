"""Phrase matching: one automaton pass with word boundaries, fuzzy, pinyin homophones, regex, spans."""

from __future__ import annotations

import pytest

from speechiq.rules import schema as S
from speechiq.rules.matchers import PhraseIndex
from speechiq.rules.pinyin import phrase_pinyin, text_pinyin


def leaf(literals=None, regex=None, fuzzy=None, pinyin=False, role="any") -> S.Phrase:
    lit = tuple(literals.items()) if isinstance(literals, dict) else ((S.ALL_LANGS, tuple(literals or ())),)
    rx = tuple(regex.items()) if isinstance(regex, dict) else (((S.ALL_LANGS, tuple(regex)),) if regex else ())
    return S.Phrase(role, lit if literals else (), rx, fuzzy, pinyin)


def matched(index: PhraseIndex, text: str, lang: str = "en") -> dict[int, set[str]]:
    view = index.scan(text, lang)
    out = {}
    for i in range(len(index.leaves)):
        spans = index.match(view, i)
        if spans:
            out[i] = {text[s:e] for s, e in view.original_spans(spans)}
    return out


def test_literal_word_boundaries_and_shared_automaton():
    idx = PhraseIndex([leaf(["cancel"]), leaf(["cancel my account", "close my account"]), leaf(["10"])])
    assert matched(idx, "I want to CANCEL my account!") == {0: {"CANCEL"}, 1: {"CANCEL my account"}}
    assert matched(idx, "what is the cancellation fee") == {}
    assert matched(idx, "it's 100 dollars") == {} and matched(idx, "it's ten dollars") == {2: {"ten"}}


def test_language_specific_lists():
    idx = PhraseIndex([leaf({"en": ("supervisor",), "zh": ("主管",)})])
    assert matched(idx, "supervisor", "en") == {0: {"supervisor"}}
    assert matched(idx, "主管", "en") == {} and matched(idx, "找你们主管来", "zh") == {0: {"主管"}}
    assert matched(idx, "supervisor", "zh") == {}


@pytest.mark.parametrize(("text", "hit"), [
    ("I want to talk to your super visor now", "super visor"),
    ("please cancel my acount today", "cancel my acount"),
    ("can I speak to your supervisr", "supervisr"),
])
def test_fuzzy_tolerates_asr_errors(text, hit):
    idx = PhraseIndex([leaf(["supervisor", "cancel my account"], fuzzy=85)])
    got = matched(idx, text)
    assert got and any(hit in h for h in got[0]), got


def test_fuzzy_rejects_distant_text_and_short_phrases():
    idx = PhraseIndex([leaf(["supervisor"], fuzzy=85), leaf(["sue"], fuzzy=60)])
    assert matched(idx, "the weather is super nice over there") == {}
    assert matched(idx, "we will use it") == {}  # 'sue' < 4 characters: literal only


@pytest.mark.parametrize(("phrase", "text", "hit"), [
    ("投诉", "我要投素", "投素"),
    ("主管", "让你们主馆来", "主馆"),
    ("银行", "我去银航办", "银航"),
    ("投诉", "我要投訴", "投訴"),
    ("一百块", "多收了我100块钱", "100块"),
])
def test_pinyin_homophones(phrase, text, hit):
    idx = PhraseIndex([leaf([phrase], pinyin=True)])
    assert matched(idx, text, "zh") == {0: {hit}}


def test_pinyin_off_means_characters_must_match():
    idx = PhraseIndex([leaf(["投诉"])])
    assert matched(idx, "我要投素", "zh") == {}


def test_pinyin_is_syllable_aligned():
    assert " tou su " in phrase_pinyin("投诉")
    p = text_pinyin("我要投诉")
    assert p.text == " wo yao tou su "
    i = p.text.index("tou")
    assert p.source_span(i, i + len("tou su")) == (2, 4)
    # "an" must not match inside "xian": syllables are space-delimited keys
    idx = PhraseIndex([leaf(["安"], pinyin=True)])
    assert matched(idx, "现在", "zh") == {}


def test_regex_runs_on_normalised_text():
    idx = PhraseIndex([leaf(regex=[r"\b\d{6}\b"]), leaf(regex={"en": [r"refund within \d+ hours"]})])
    text = "my account is four four seven one nine two"
    assert matched(idx, text) == {0: {"four four seven one nine two"}}
    assert matched(idx, "You get a refund within forty-eight hours.") == {1: {"refund within forty-eight hours"}}
    assert matched(idx, "refund within 48 hours", "zh") == {}


def test_role_aware_scan_skips_only_what_cannot_hold():
    # regex and fuzzy-only leaves (literal hits are one automaton pass and always recorded)
    idx = PhraseIndex([leaf(regex=[r"\bcancel\b"], role="customer"), leaf(["supervisorr"], fuzzy=85, role="customer"),
                       leaf(regex=[r"\bcancel\b"], role="agent"), leaf(["supervisr"], fuzzy=85, role="any")])
    text = "cancel it and get the supervisor"
    full = idx.scan(text, "en").hits
    assert set(full) == {0, 1, 2, 3}
    agent = idx.scan(text, "en", role="agent").hits
    assert set(agent) == {2, 3} and agent[2] == full[2] and agent[3] == full[3]  # customer leaves skipped
    customer = idx.scan(text, "en", role="customer").hits
    assert set(customer) == {0, 1, 3} and all(customer[i] == full[i] for i in customer)
    mixed = idx.scan(text, "en", role="mixed").hits  # neither party: only role-any leaves can hold
    assert set(mixed) == {3}


def test_a_literal_never_matches_inside_a_longer_token():
    # found by tests/test_props_matchers.py: "i can" matched "I can't", "3" matched "3.5"
    idx = PhraseIndex([leaf(["i can"]), leaf(["3"]), leaf(["cafe"]), leaf(["can"])])
    assert matched(idx, "I can't do that") == {}
    assert matched(idx, "it is 3.5 percent") == {} and matched(idx, "it is 3 percent") == {1: {"3"}}
    assert matched(idx, "two cafés") == {}
    assert matched(idx, "I can do that") == {0: {"I can"}, 3: {"can"}}
