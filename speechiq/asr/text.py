"""Text clean-up of recogniser output (Chinese → simplified characters)."""

from __future__ import annotations

import re
from functools import lru_cache

_CJK = r"\u3400-\u9fff\u3000-\u303f\uff00-\uffef"
_SPACE_BETWEEN_CJK = re.compile(rf"(?<=[{_CJK}])\s+(?=[{_CJK}])")


@lru_cache(maxsize=1)
def _t2s():  # type: ignore[no-untyped-def]
    import opencc

    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    return _t2s().convert(text) if text else text


def has_cjk(text: str) -> bool:
    return any("\u3400" <= ch <= "\u9fff" for ch in text)


def clean_text(text: str, language: str) -> str:
    text = " ".join(text.split())
    if language == "zh" or has_cjk(text):
        text = _SPACE_BETWEEN_CJK.sub("", to_simplified(text))
    return text
