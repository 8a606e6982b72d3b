"""Per-utterance model work done on the ASR worker thread, so it never runs on the event loop.

The sentiment scorer (VADER + Mandarin lexicon by default, or an ONNX transformer) scores every
recognised text, partials included, and — when the call's rule pack has semantic rules — the
sentence-embedding model embeds finals. Both are thread-safe. A failure leaves the fields empty:
analytics then treats the utterance as it would without the model (neutral / no similarity).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..asr.text import has_cjk

if TYPE_CHECKING:
    from ..asr.decoder import DecodeResult

log = logging.getLogger(__name__)
LANGUAGES = ("en", "zh")
_warned: set[str] = set()


@dataclass(frozen=True)
class Enrichment:
    sentiment: float | None = None
    label: str | None = None
    embedding: np.ndarray | None = None


def utterance_language(text: str, recognised: str, declared: str | None) -> str:
    """The language rules and scorers see: the recogniser's, else the call's, else by script."""
    if recognised in LANGUAGES:
        return recognised
    if declared in LANGUAGES:
        return str(declared)
    return "zh" if has_cjk(text) else "en"


def enrich(engine: Any, analytics: Any, declared: str | None, result: DecodeResult) -> Enrichment:
    if not result.text or analytics is None:
        return Enrichment()
    lang = utterance_language(result.text, result.language, declared)
    score = label = None
    scorer = getattr(engine, "sentiment", None)
    if scorer is not None and engine.settings.analytics.sentiment != "off":
        try:
            s = scorer.score(result.text, lang)
            score, label = round(float(s.score), 4), str(s.label)
        except Exception:
            _warn_once("sentiment", "sentiment scorer failed; the utterance is left unscored")
    embedding = None
    model = getattr(engine, "semantic", None)
    if model is not None and getattr(analytics.pack, "has_semantic", False):
        try:
            embedding = np.asarray(model.embed([result.text])[0], dtype=np.float32)
        except Exception:
            _warn_once("semantic", "sentence embedding failed; semantic rules skip the utterance")
    return Enrichment(score, label, embedding)


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        log.exception(message)
