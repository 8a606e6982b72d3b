"""Normalisation: idempotent, case/punctuation insensitive, number forms equivalent, offsets exact."""

from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from speechiq.rules.normalize import cn_to_int, norm, normalize

_ONES = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
]
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def en_words(n: int) -> str:
    """English words of 0 <= n < 10**9 (test-side reference, written independently of the parser)."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10 - 2] + ("" if n % 10 == 0 else "-" + _ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " and " + en_words(rest))
    for scale, word in ((10**6, "million"), (1000, "thousand")):
        if n >= scale:
            rest = n % scale
            return en_words(n // scale) + " " + word + ("" if rest == 0 else " " + en_words(rest))
    raise AssertionError(n)


_CN = "零一二三四五六七八九"


def cn_words(n: int) -> str:
    """Chinese numerals of 0 < n < 10**8 (reference implementation for the test)."""
    def section(x: int) -> str:
        out, zero = "", False
        for unit, ch in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
            d = x // unit % 10
            if d:
                out += ("零" if zero and out else "") + _CN[d] + ch
                zero = False
            else:
                zero = True
        return out
    hi, lo = divmod(n, 10000)
    if not hi:
        return section(lo)
    return section(hi) + "万" + (("零" if lo < 1000 else "") + section(lo) if lo else "")


words = st.sampled_from(["i", "want", "to", "speak", "supervisor", "cancel", "my", "account", "the", "bill",
                         "don't", "café", "ok", "ten", "forty", "nine", "hundred", "a", "and", "dollars"])
cjk = st.sampled_from(list("我要投诉让你们主管来电话號碼帳戶一二三百千万两零"))
punct = st.sampled_from(list(",.!?;:-\"()[]…，。！？、 "))
digits = st.integers(0, 10**7).map(str)
pieces = st.lists(st.one_of(words, cjk, punct, digits, st.sampled_from(["$", "%", " ", "  "])), max_size=25)
texts = pieces.map("".join) | pieces.map(" ".join)


@settings(max_examples=300, deadline=None)
@given(texts)
def test_idempotent(text):
    once = norm(text)
    assert norm(once) == once


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=string.printable + "我要投诉一百块钱", max_size=60))
def test_idempotent_on_arbitrary_printable_text(text):
    once = norm(text)
    assert norm(once) == once


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["speak", "to", "your", "supervisor", "now", "please"]), min_size=1, max_size=8),
       st.lists(st.sampled_from(list(",.!?;:-\"'()… ")), min_size=8, max_size=8), st.randoms())
def test_case_and_punctuation_insensitive(ws, seps, rnd):
    plain = " ".join(ws)
    noisy = "".join(w.upper() if rnd.random() < 0.5 else w.capitalize() for w in ws[:1])
    for w, sep in zip(ws[1:], seps, strict=False):
        noisy += (sep if sep.strip() else "") + " " + (w.upper() if rnd.random() < 0.5 else w)
    assert norm(noisy + "?!") == norm(plain)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 999_999_999))
def test_english_number_words_equal_digits(n):
    assert norm(en_words(n)) == norm(str(n)) == str(n)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**6))
def test_currency_forms_equivalent(n):
    assert norm(f"${n}") == norm(f"{n} dollars") == norm(f"{en_words(n)} dollars") == f"{n} dollars"


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 10**8 - 1))
def test_chinese_numerals_equal_digits(n):
    w = cn_words(n)
    assert cn_to_int(w) == n
    if len(w) >= 2:
        assert norm(w + "块") == norm(f"{n}块") == f"{n} 块"


def test_examples():
    assert norm("Hi, I was charged $10 twice!") == "hi i was charged 10 dollars twice"
    assert norm("It's four four seven one nine two.") == "it's 447192"
    assert norm("March third nineteen eighty five") == "march third 19 85"
    assert norm("a hundred and five") == "105"
    assert norm("1,000 and 1,2") == "1000 and 1 2"
    assert norm("我要投訴，讓你們主管來。") == "我要投诉让你们主管来"
    assert norm("三二零五一八") == "320518" and norm("两千零五") == "2005" and norm("一百二") == "120"
    assert norm("万一") == "万一" and norm("第三") == "第 3" and norm("一下") == "一下"
    assert norm("50% off") == "50 percent off"
    assert norm("I DON’T care") == "i don't care"


@settings(max_examples=200, deadline=None)
@given(texts)
def test_offsets_map_back_into_the_original(text):
    n = normalize(text)
    for i in range(len(n.text)):
        s, e = n.span(i, i + 1)
        assert 0 <= s < e <= len(text)


def test_offsets_of_replaced_numbers_cover_the_words():
    text = "I paid forty nine dollars, OK?"
    n = normalize(text)
    i = n.text.index("49 dollars")
    s, e = n.span(i, i + len("49 dollars"))
    assert text[s:e] == "forty nine dollars"
    t2 = "ﬁne SUPERVISOR"  # a ligature changes the length while folding
    n2 = normalize(t2)
    j = n2.text.index("supervisor")
    assert t2[slice(*n2.span(j, j + 10))] == "SUPERVISOR"


def test_spelled_numbers_do_not_join_across_punctuation():
    # found by tests/test_props_matchers.py: "twenty, five" became 25, "one, two, three" 123
    assert norm("one, two, three") == "1 2 3" and norm("nine, one, one") == "9 1 1"
    assert norm("I am twenty. Five of us came") == "i am 20 5 of us came"
    assert norm("twenty-five") == "25" and norm("Twenty–five dollars") == "25 dollars"
    assert norm("two thousand, three hundred") == "2300"  # a comma after a scale word is one number


def test_a_range_spans_every_source_when_symbols_reorder():
    # "$5" is "5 dollars": the number's source comes after the sign's; found by a property test
    text = "三 $5 $5"
    n = normalize(text)
    assert n.text == "三 5 dollars 5 dollars"
    assert text[slice(*n.span(11, 14))] == "$5"
    assert text[slice(*n.span(2, len(n.text)))] == "$5 $5"
