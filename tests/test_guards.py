"""Hallucination guards (pure functions) and recogniser text clean-up."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from speechiq.asr.guards import SILENCE_PHRASES, compression_ratio, normalize, reject_reason, trim_repetition
from speechiq.asr.text import clean_text, has_cjk, to_simplified

THRESHOLDS = {"no_speech_threshold": 0.6, "logprob_threshold": -1.0, "compression_threshold": 2.4}


def reason(text: str, nsp: float = 0.01, avg: float = -0.2, ratio: float | None = None) -> str | None:
    return reject_reason(text, no_speech_prob=nsp, avg_logprob=avg,
                         compression=compression_ratio(text) if ratio is None else ratio, **THRESHOLDS)


# ---- trim_repetition --------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    # short windows: Whisper restarts the utterance once the real audio ends
    ("Thank you for calling Northwind Telecom. Thank you for calling Northwind Telecom.",
     "Thank you for calling Northwind Telecom."),
    # … or restarts it and stops part-way (truncated restart)
    ("I was charged twice on my last bill. I was charged twice", "I was charged twice on my last bill."),
    ("Let me check the network status in your area. Let me check the network",
     "Let me check the network status in your area."),
    # a sentence loop
    ("Who is this? Who is this? Who is this? Who is this?", "Who is this?"),
    # two-word loops keep two copies ("thank you thank you" is legitimate speech)
    ("Please hold. Please hold. Please hold. Please hold. Please hold.", "Please hold. Please hold."),
    # CJK: repetition counted per character
    ("我想问一下我想问一下我想问一下我想问一下", "我想问一下"),
    ("欢迎大家来体验，欢迎大家来体验，欢迎大家来体验", "欢迎大家来体验"),
    # a one-word loop is cut to a short run
    ("the the the the the the the the the the the", "the the the"),
    # three copies of a short span keep one
    ("Thank you thank you thank you", "Thank you"),
    # an immediate repeat followed by a few stray words
    ("I'll go and look for the form. I'll go and look for the form. That's all,", "I'll go and look for the form."),
])
def test_trim_cuts_repetition(text: str, expected: str) -> None:
    assert trim_repetition(text) == (expected, True)


@pytest.mark.parametrize("text", [
    "No, no, no.",
    "No, no, no, no, I said no.",
    "Thank you thank you.",
    "Thank you, thank you so much, that's great.",
    "Okay okay okay.",
    "It's four four seven one nine two.",
    "Five five five, two one eight, nine zero four six.",
    "My bill went up. Why did my bill go up?",
    "The second one will be refunded in five to seven business days.",
    "谢谢谢谢",
    "",
])
def test_trim_keeps_legitimate_repeats(text: str) -> None:
    assert trim_repetition(text) == (text, False)


def test_trim_three_word_loop_with_short_restart() -> None:
    text = "speaking, who is this? Who is this? Who is this? Speaking, who"
    assert trim_repetition(text) == ("speaking, who is this?", True)


def test_trim_restart_ending_in_a_partial_word() -> None:
    # real tiny.en output (prompted) on the 3.4 s "Hello? Are you still there? …" turn of outage_hold
    text = ("Hello are you still there? I've been waiting for ages. Are you still there? I've been waiting "
            "for ages. Are you still there? I")
    assert trim_repetition(text) == ("Hello are you still there? I've been waiting for ages.", True)


WORDS = st.sampled_from(["no", "yes", "thank", "you", "the", "bill", "is", "it", "safe?", "Okay,", "我", "想", "问"])
TEXTS = (st.lists(WORDS, max_size=24).map(" ".join) | st.text(max_size=60)
         | st.lists(st.sampled_from(["a", "b", "c", "ab"]), max_size=18).map(" ".join))  # many repeats


@settings(max_examples=300, deadline=None)
@given(TEXTS)
def test_trim_never_lengthens(text: str) -> None:
    out, cut = trim_repetition(text)
    assert len(out) <= len(text)
    assert text.startswith(out)
    assert cut == (out != text)


@settings(max_examples=300, deadline=None)
@given(TEXTS)
@example("no no no no no no yes no no no no")  # → "no no no no no no yes" → "no"
@example("b a b a c b a b a b a b a")  # → "b a b a c b a b a" → "b a b a c"
def test_trim_is_idempotent(text: str) -> None:
    once, _ = trim_repetition(text)
    assert trim_repetition(once) == (once, False)


# ---- reject_reason ----------------------------------------------------------------------------
def test_reject_empty() -> None:
    assert reason("") == "empty"
    assert reason("   ") == "empty"


def test_reject_no_speech_needs_both_signals() -> None:
    assert reason("Hello there.", nsp=0.9, avg=-1.5) == "no_speech"
    assert reason("Hello there.", nsp=0.9, avg=-0.3) is None  # confident text: kept
    assert reason("Hello there.", nsp=0.1, avg=-1.5) is None  # low confidence alone: kept
    assert reason("Hello there.", nsp=0.6, avg=-1.5) is None  # thresholds are strict


def test_reject_compression_ratio() -> None:
    loop = "I am sorry. " * 30
    assert compression_ratio(loop) > THRESHOLDS["compression_threshold"]
    assert reason(loop) == "compression_ratio"
    assert reason("Hello there.", ratio=2.5) == "compression_ratio"
    assert reason("Hello there.", ratio=2.4) is None
    # no-speech is checked first
    assert reason(loop, nsp=0.95, avg=-2.0) == "no_speech"


@pytest.mark.parametrize("text", ["Thanks for watching!", "Thank you for watching.", "you", "Bye.",
                                  "Please subscribe", "谢谢观看", "字幕由Amara.org社区提供"])
def test_reject_silence_phrases_when_unsure(text: str) -> None:
    assert normalize(text) in SILENCE_PHRASES
    assert reason(text, nsp=0.5, avg=-0.3) == "silence_phrase"
    assert reason(text, nsp=0.05, avg=-0.8) == "silence_phrase"


def test_silence_phrases_kept_when_confident() -> None:
    assert reason("Bye.", nsp=0.05, avg=-0.2) is None
    assert reason("Thank you for watching.", nsp=0.1, avg=-0.4) is None
    assert reason("Bye for now, have a lovely day.", nsp=0.5, avg=-0.3) is None  # not the bare phrase


def test_compression_ratio_values() -> None:
    assert compression_ratio("") == 0.0
    sentence = "Thank you for calling Northwind Telecom, this call may be recorded for quality purposes."
    assert 0.5 < compression_ratio(sentence) < 2.0
    assert compression_ratio("na " * 100) > 5
    assert compression_ratio("我想问一下" * 20) > compression_ratio("欢迎大家来体验达摩院推出的语音识别模型")


def test_normalize() -> None:
    assert normalize("Thanks for watching!") == "thanks for watching"
    assert normalize("  Subtitles by the Amara.org community ") == "subtitles by the amara org community"
    assert normalize("谢谢观看。") == "谢谢观看"


# ---- text clean-up ----------------------------------------------------------------------------
def test_to_simplified() -> None:
    assert to_simplified("廣州市房地產中介協會") == "广州市房地产中介协会"
    assert to_simplified("欢迎大家") == "欢迎大家"
    assert to_simplified("") == ""


def test_clean_text() -> None:
    assert clean_text("  Hello   there. ", "en") == "Hello there."
    assert clean_text("歡迎 大家 來 體驗", "zh") == "欢迎大家来体验"
    assert clean_text("我 在 Beijing 工作", "en") == "我在 Beijing 工作"  # CJK text is cleaned whatever the tag
    assert clean_text("", "zh") == ""
    assert has_cjk("abc 我") and not has_cjk("abc, déjà")


def test_low_confidence_no_speech():
    from speechiq.asr.guards import low_confidence_no_speech

    kw = {"no_speech_threshold": 0.6, "word_prob_threshold": 0.5}
    assert low_confidence_no_speech(0.87, [0.02, 0.47, 0.89], **kw)  # "Oh, oh, oh" from hold music
    assert not low_confidence_no_speech(0.83, [0.5, 0.52, 0.51], **kw)  # unsure words, but enough
    assert not low_confidence_no_speech(0.4, [0.1, 0.1], **kw)  # Whisper hears speech: kept
    assert low_confidence_no_speech(0.7, None, **kw)  # a partial: the final decides
    assert low_confidence_no_speech(0.7, [], **kw)
