"""Hallucination guards: pure functions over a decoded hypothesis.

Short (unpadded) windows make Whisper likely to restart the utterance once the real audio ends
("X. X." or "X. X-prefix"); :func:`trim_repetition` cuts such restarts and n-gram loops.
:func:`reject_reason` applies Whisper's own no-speech rule, the compression-ratio rule and a
list of well-known silence hallucinations.
"""

from __future__ import annotations

import re
import zlib

SILENCE_PHRASES = frozenset({
    "thanks for watching", "thank you for watching", "thank you for watching this video",
    "please subscribe", "like and subscribe", "subscribe to my channel", "subtitles by the amara org community",
    "transcription by castingwords", "you", "bye", "字幕由amara org社区提供",
    "请不吝点赞订阅转发打赏支持明镜与点点栏目",
    "谢谢观看", "感谢观看", "字幕", "请订阅", "明镜与点点栏目",
})
_NORM = re.compile(r"[^\w\u3400-\u9fff]+")
_WORD = re.compile(r"\S+")


def normalize(text: str) -> str:
    return " ".join(_NORM.sub(" ", text.lower()).split())


def compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def _tokens(text: str) -> list[tuple[str, int, int]]:
    """(normalised word, start, end) for each whitespace word, or each CJK char."""
    out = []
    for m in _WORD.finditer(text):
        w = m.group()
        if any("\u3400" <= c <= "\u9fff" for c in w):
            for i, c in enumerate(w):
                if "\u3400" <= c <= "\u9fff":
                    out.append((c, m.start() + i, m.start() + i + 1))
        else:
            n = normalize(w)
            if n:
                out.append((n, m.start(), m.end()))
    return out


def trim_repetition(text: str, min_tail: int = 4, min_period: int = 3, max_loops: int = 3) -> tuple[str, bool]:
    """Cut a hypothesis that starts repeating itself; returns (text, trimmed?). Idempotent.

    - a tail of ≥ ``min_tail`` words that repeats the words ``period`` ≥ ``min_period`` positions
      earlier ("X. X." / "X. X-prefix", the last word possibly cut off mid-word) is cut;
    - an immediate repeat of ≥ ``min_tail`` words followed by at most 3 stray words is cut;
    - three copies in a row of a 2+ word span keep one copy; single-word loops longer than
      ``max_loops`` + 2 keep one. "no, no, no" and "thank you thank you" stay.
    """
    out, cut = text, False
    while True:
        nxt, changed = _trim_once(out, min_tail, min_period, max_loops)
        if not changed:
            return out, cut
        out, cut = nxt, True


def _trim_once(text: str, min_tail: int, min_period: int, max_loops: int) -> tuple[str, bool]:
    toks = _tokens(text)
    words = [t[0] for t in toks]
    n = len(words)

    def cut(i: int) -> tuple[str, bool]:
        return text[: toks[i][1]].rstrip(" ,;、，"), True

    def same(a: str, b: str, last: bool) -> bool:
        return a == b or (last and len(b) < len(a) and a.startswith(b))  # b: a word cut off mid-way

    for i in range(min_period, n - min_tail + 1):
        tail = n - i
        for j in range(0, i - min_period + 1):
            if all(same(words[j + k], words[i + k], k == tail - 1) for k in range(tail)):
                return cut(i)
    for p in range(min_tail, n // 2 + 1):
        for i in range(p, n - p + 1):
            if n - (i + p) <= 3 and words[i:i + p] == words[i - p:i]:
                return cut(i)
    for p in range(2, n // 3 + 1):
        for i in range(p, n - 2 * p + 1):
            if words[i - p:i] == words[i:i + p] == words[i + p:i + 2 * p]:
                return cut(i)
    for i in range(0, n - (max_loops + 2)):
        if len(set(words[i:i + max_loops + 3])) == 1:
            return text[: toks[i][2]], True
    return text, False


def reject_reason(text: str, *, no_speech_prob: float, avg_logprob: float, compression: float,
                  no_speech_threshold: float, logprob_threshold: float,
                  compression_threshold: float) -> str | None:
    """Why a hypothesis must be dropped, or ``None`` to keep it."""
    if not text.strip():
        return "empty"
    if no_speech_prob > no_speech_threshold and avg_logprob < logprob_threshold:
        return "no_speech"
    if compression > compression_threshold:
        return "compression_ratio"
    if normalize(text) in SILENCE_PHRASES and (no_speech_prob > 0.2 or avg_logprob < -0.6):
        return "silence_phrase"
    return None


def low_confidence_no_speech(no_speech_prob: float, word_probs: list[float] | None, *,
                             no_speech_threshold: float, word_prob_threshold: float) -> bool:
    """Whisper thinks there is no speech *and* is unsure of its words: hold music and tones that
    the frame VAD passed (webrtcvad flags sustained harmonic tones as speech). Measured on this
    project's material: music hypotheses have no-speech ≥ 0.70 and mean word probability ≤ 0.50;
    real speech with no-speech > 0.6 keeps ≥ 0.51. A partial (no word times yet) is dropped on
    the no-speech probability alone — the final decides."""
    if no_speech_prob <= no_speech_threshold:
        return False
    if word_probs is None:
        return True
    return not word_probs or sum(word_probs) / len(word_probs) < word_prob_threshold

