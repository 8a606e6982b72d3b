"""Per-utterance sentiment: a score in [-1, 1] and a label.

Backends: ``lexicon`` (default, offline): VADER for English, adapted to service calls (courtesy
words such as "please"/"yes"/"I'd like" weigh little, complaint words and phrases added), and a
Mandarin lexicon (zh_lexicon.py) with negators, intensifiers and "but" clauses (``jieba``, when
installed, keeps one-character entries out of other words: 快 in 快递, 差 in 出差); ``onnx``: any
Hugging Face sequence-classification model exported to ONNX, run with the ``transformers``
tokenizer and ``onnxruntime`` (point ``analytics.sentiment_onnx_model`` at it).
Labels: positive ≥ 0.3, negative ≤ −0.25, else neutral (docs/metrics.md explains the cut).
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import ConfigError, ModelError
from ..settings import AnalyticsSettings
from . import zh_lexicon as zl

POSITIVE_AT = 0.3
NEGATIVE_AT = -0.25
# VADER scale (about -4 … +4). Words VADER misses or under-weights in service calls:
EN_WORDS = {
    "overcharged": -2.2, "unacceptable": -2.5, "ridiculous": -2.2, "frustrated": -2.2, "frustrating": -2.2,
    "annoyed": -2.0, "cancel": -0.8, "lawyer": -1.2, "sue": -1.8, "outage": -1.5, "broken": -1.8,
    "useless": -2.2, "recommend": 1.6, "helpful": 1.8, "appreciate": 1.8, "interested": 1.2, "thrilled": 2.5,
    "ugh": -2.0, "worried": -2.0, "scared": -2.2, "upset": -2.2, "angry": -2.5,
}
# Courtesy and request words that VADER scores positive but that are formulaic in service calls
# ("please", "yes", "I'd like", "can you help", "what kind of", "customer care", "account credit"):
EN_FORMULAIC = {
    "please": 0.2, "yes": 0.3, "okay": 0.2, "ok": 0.2, "sure": 0.3, "fine": 0.2, "well": 0.2, "help": 0.3,
    "like": 0.3, "pretty": 0.3, "honestly": 0.2, "kind": 0.3, "care": 0.3, "credit": 0.3, "free": 0.6,
    "hoping": 0.3, "hope": 0.5,
}
# Multi-word cues (VADER scores single tokens only), matched on word boundaries:
EN_PHRASES = {
    "charged twice": -2.0, "double charged": -2.0, "still waiting": -2.0, "been waiting": -1.8,
    "on hold forever": -2.5, "not working": -2.0, "doesn't work": -2.0, "stopped working": -2.2,
    "is down": -2.0, "been down": -2.2, "keeps dropping": -2.0, "too expensive": -2.0, "too much": -1.6,
    "can't afford": -2.2, "third time": -1.8, "again and again": -1.8, "waste of time": -2.4,
}
_EN_NEGATORS = frozenset({"not", "never", "no", "isn't", "wasn't", "don't", "didn't", "nothing"})
_EN_PHRASE_RX = re.compile(r"\b(" + "|".join(re.escape(k) for k in EN_PHRASES) + r")\b", re.I)


@dataclass(frozen=True)
class Sentiment:
    score: float  # [-1, 1]
    label: str  # positive | negative | neutral


def label_of(score: float) -> str:
    return "positive" if score >= POSITIVE_AT else "negative" if score <= NEGATIVE_AT else "neutral"


class SentimentScorer(Protocol):
    def score(self, text: str, language: str) -> Sentiment: ...


def _is_zh(text: str, language: str) -> bool:
    """Declared language wins (``zh``, ``zh-CN``, ``cmn`` …); ``auto`` or unknown: ≥ 30 % CJK characters."""
    base = (language or "auto").lower().replace("_", "-").split("-")[0]
    if base in ("zh", "cmn", "yue", "en"):
        return base != "en"
    cjk = sum(1 for c in text if "\u3400" <= c <= "\u9fff")
    return cjk > 0 and cjk >= len(text.replace(" ", "")) * 0.3


@lru_cache(maxsize=1)
def _vader() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    analyzer.lexicon.update(EN_WORDS)
    analyzer.lexicon.update(EN_FORMULAIC)
    return analyzer


class LexiconSentiment:
    """VADER (English) + a compact Mandarin lexicon; thread-safe, no model files."""

    def score(self, text: str, language: str = "auto") -> Sentiment:
        if not text.strip():
            return Sentiment(0.0, "neutral")
        s = score_zh(text) if _is_zh(text, language) else self._en(text)
        s = max(-1.0, min(1.0, s))
        return Sentiment(round(s, 4), label_of(s))

    def _en(self, text: str) -> float:
        compound = float(_vader().polarity_scores(text)["compound"])
        extra = 0.0
        for m in _EN_PHRASE_RX.finditer(text):
            before = text[max(0, m.start() - 30):m.start()].lower().split()[-3:]
            negated = any(w in _EN_NEGATORS or w.endswith("n't") for w in before)
            extra += EN_PHRASES[m.group(1).lower()] * (-0.74 if negated else 1.0)  # VADER's negation scalar
        return math.tanh(math.atanh(max(-0.999, min(0.999, compound))) + extra / 4) if extra else compound


_PREFIX_RX = re.compile("(?:" + "|".join(sorted((*zl.NEGATORS, *zl.INTENSIFIERS), key=len, reverse=True)) + ")*")
_SUFFIX_RX = re.compile("(?:了|的|啊|呀|吧|呢|嘛|死|人|我)*")
_seg_lock = threading.Lock()
_seg: list[Any] = []  # [jieba.Tokenizer | None] once loaded


def _segmenter() -> Any | None:
    """A private jieba tokenizer (the process-wide one is left alone), or None without jieba."""
    if not _seg:
        with _seg_lock:
            if not _seg:
                try:
                    import jieba
                except ImportError:
                    _seg.append(None)
                else:
                    jieba.setLogLevel(logging.WARNING)
                    tk = jieba.Tokenizer()
                    tk.initialize()
                    _seg.append(tk)
    return _seg[0]


def preload() -> None:
    """Load the Mandarin segmenter now (about 1 s, once per process) rather than on the first utterance."""
    _segmenter()


def _single_ok(text: str) -> Any:
    """``ok(i)``: may the one-character entry at ``text[i]`` count? Single characters hide in other
    words (快递, 出差, 差点, 恐怕, 慢慢来 …), so with jieba it counts only as a word of its own, or
    inside a word that adds just negators/degree adverbs before it and particles after (很着急,
    太慢了, 真棒). Multi-character entries are matched anywhere (exceptions: ``zl.NEUTRAL``)."""
    spans: list[tuple[int, int]] = []

    def ok(i: int) -> bool:
        if not spans:  # segment on the first single-character hit only
            tk = _segmenter()
            if tk is None:
                return True
            pos = 0
            for w in tk.lcut(text, HMM=False):
                spans.append((pos, pos + len(w)))
                pos += len(w)
        for a, b in spans:
            if a <= i < b:
                return (_PREFIX_RX.fullmatch(text[a:i]) is not None
                        and _SUFFIX_RX.fullmatch(text[i + 1:b]) is not None)
        return False

    return ok


def score_zh(text: str) -> float:
    """Lexicon score: longest match (one-character entries only as words), negator/intensifier
    look-back, the clause after 但是 weighs double."""
    clauses = [text]
    for c in zl.CONTRASTS:
        if c in text:
            before, _, after = text.partition(c)
            clauses = [before, after]
            break
    total = 0.0
    for ci, clause in enumerate(clauses):
        weight = 2.0 if len(clauses) == 2 and ci == 1 else 1.0
        single_ok = _single_ok(clause)
        i = 0
        while i < len(clause):
            hit = None
            for n in range(min(6, len(clause) - i), 0, -1):
                w = clause[i:i + n]
                if (w in zl.POSITIVE or w in zl.NEGATIVE or w in zl.NEUTRAL) and (n > 1 or single_ok(i)):
                    hit = w
                    break
            if hit is None or hit in zl.NEUTRAL:
                i += len(hit) if hit else 1
                continue
            value = zl.POSITIVE.get(hit, zl.NEGATIVE.get(hit, 0.0))
            before = clause[max(0, i - 4):i]
            bare = before
            for adv, k in sorted(zl.INTENSIFIERS.items(), key=lambda kv: -len(kv[0])):
                if adv in bare:
                    value *= k
                    bare = bare.replace(adv, "")
                    break
            if any(neg in bare[-2:] for neg in zl.NEGATORS) and not hit.startswith(("不", "没")):
                value *= -0.75
            total += value * weight
            i += len(hit)
    if not total:
        return 0.0
    return total / math.sqrt(total * total + 15.0)  # VADER's normalisation


class OnnxSentiment:
    """A Hugging Face sequence-classification model exported to ONNX (model.onnx + tokenizer)."""

    def __init__(self, model_dir: str | Path) -> None:
        try:
            import onnxruntime as ort
            from transformers import AutoTokenizer
        except ImportError as exc:
            raise ConfigError(f"the onnx sentiment backend needs onnxruntime and transformers: {exc}") from exc

        d = Path(model_dir)
        onnx_path, config_path = d / "model.onnx", d / "config.json"
        for p in (onnx_path, config_path):
            if not p.exists():
                raise ConfigError(f"{p} not found: export the model with its config.json and tokenizer to {d}")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(d))
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1
            self.session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except Exception as exc:  # corrupt files, unknown tokenizer …
            raise ModelError(f"cannot load the sentiment model in {d}: {exc}") from exc
        self.inputs = {i.name for i in self.session.get_inputs()}
        labels = config.get("id2label") or {}
        n = len(labels) or self.session.get_outputs()[0].shape[-1]
        if not isinstance(n, int) or n < 2:
            raise ConfigError(f"{config_path}: id2label is missing and the model's output size is unknown")
        self.values = np.array([_label_value(str(labels.get(str(i), labels.get(i, f"LABEL_{i}"))), i, n)
                                for i in range(n)], dtype=np.float32)
        self._lock = threading.Lock()

    def score(self, text: str, language: str = "auto") -> Sentiment:
        if not text.strip():
            return Sentiment(0.0, "neutral")
        enc = self.tokenizer(text, return_tensors="np", truncation=True, max_length=256)
        feeds = {k: v.astype(np.int64) for k, v in enc.items() if k in self.inputs}
        try:
            with self._lock:
                logits = np.asarray(self.session.run(None, feeds)[0][0], dtype=np.float64)
        except Exception as exc:
            raise ModelError(f"sentiment model failed: {exc}") from exc
        p = np.exp(logits - logits.max())
        p /= p.sum()
        s = float(np.clip(p @ self.values, -1.0, 1.0))
        return Sentiment(round(s, 4), label_of(s))


def _label_value(name: str, index: int, n: int) -> float:
    low = name.lower()
    if "neg" in low:
        return -1.0
    if "neu" in low:
        return 0.0
    if "pos" in low:
        return 1.0
    digits = "".join(ch for ch in low if ch.isdigit())
    if "star" in low and digits:
        return (int(digits) - 3) / 2.0
    return -1.0 + 2.0 * index / (n - 1) if n > 1 else 0.0  # LABEL_0 … LABEL_k, negative → positive


class _Off:
    def score(self, text: str, language: str = "auto") -> Sentiment:
        return Sentiment(0.0, "neutral")


def make_scorer(settings: AnalyticsSettings) -> SentimentScorer:
    if settings.sentiment == "off":
        return _Off()
    if settings.sentiment == "onnx":
        if not settings.sentiment_onnx_model:
            raise ConfigError("analytics.sentiment is 'onnx' but analytics.sentiment_onnx_model is not set")
        return OnnxSentiment(settings.sentiment_onnx_model)
    preload()  # the engine builds its scorer at startup: load jieba there, not on a call's first utterance
    return LexiconSentiment()
