"""Accuracy helpers shared by tests and benchmarks: normalised WER (English) and CER (Mandarin).

English text goes through Whisper's own English normaliser (case, punctuation, contractions,
spelled-out numbers → digits), so "nineteen eighty five" and "1985" compare equal.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

_CJK = re.compile(r"[\u3400-\u9fff]")
_SPACED_DIGITS = re.compile(r"(?<=\b\d)\s+(?=\d\b)")


@lru_cache(maxsize=1)
def _en_normalizer():  # type: ignore[no-untyped-def]
    from whisper_normalizer.english import EnglishTextNormalizer

    return EnglishTextNormalizer()


def normalize_en(text: str) -> str:
    """Whisper's English normaliser, then adjacent digit groups merged ("4 4 7" → "447"), the
    same form it gives spelled-out digit strings ("four four seven")."""
    text = _SPACED_DIGITS.sub("", text)
    out: list[str] = []
    for tok in _en_normalizer()(text).split():
        if out and tok.isdigit() and out[-1].isdigit():
            out[-1] += tok
        else:
            out.append(tok)
    return " ".join(out)


def normalize_zh(text: str) -> str:
    from .asr.text import to_simplified

    text = to_simplified(unicodedata.normalize("NFKC", text))
    return "".join(ch for ch in text if _CJK.match(ch) or ch.isalnum())


def is_chinese(text: str) -> bool:
    return bool(_CJK.search(text))


def error_rate(references: Sequence[str], hypotheses: Sequence[str], language: str = "en") -> float:
    """Corpus WER (en) or CER (zh) after normalisation; empty references are skipped."""
    import jiwer

    refs, hyps = [], []
    for r, h in zip(references, hypotheses, strict=True):
        if language == "zh":
            r, h = " ".join(normalize_zh(r)), " ".join(normalize_zh(h))
        else:
            r, h = normalize_en(r), normalize_en(h)
        if r.strip():
            refs.append(r)
            hyps.append(h)
    if not refs:
        return 0.0
    return float(jiwer.wer(refs, hyps))
