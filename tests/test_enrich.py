"""Sentiment (and embeddings) are computed on the ASR worker threads, never on the event loop,
and every transcript event carries its utterance's score and label."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from speechiq.analytics.sentiment import label_of
from speechiq.asr.decoder import DecodeResult
from speechiq.pipeline.enrich import Enrichment, enrich, utterance_language
from speechiq.replay.client import replay


class RecordingScorer:
    def __init__(self, inner):
        self.inner = inner
        self.threads: list[str] = []

    def score(self, text, language="auto"):
        self.threads.append(threading.current_thread().name)
        return self.inner.score(text, language)


@pytest.mark.slow
def test_transcripts_carry_sentiment_scored_off_the_loop(server, upgrade_call):
    wav, _ = upgrade_call
    engine = server.engine
    original = engine.sentiment
    engine.sentiment = rec = RecordingScorer(original)
    try:
        res = server.call(replay(server.url(), wav, speed=None, encoding="mulaw", call_id="enrich-1", language="en"))
    finally:
        engine.sentiment = original
    assert res.finals
    for e in res.of_type("transcript"):
        assert -1.0 <= e["sentiment"] <= 1.0 and e["sentiment_label"] == label_of(e["sentiment"]), e
    assert rec.threads and all(name.startswith("asr-worker") for name in rec.threads), set(rec.threads)
    happy = [e for e in res.finals if "great" in e["text"].lower()]
    assert happy and all(e["sentiment_label"] == "positive" for e in happy)
    # the alerts' evidence uses the same scores
    scores = {e["utterance_id"]: e["sentiment"] for e in res.finals}
    for alert in res.of_type("alert"):
        for ev in alert["evidence"]:
            if ev["utterance_id"] in scores and ev["sentiment"] is not None:
                assert ev["sentiment"] == pytest.approx(scores[ev["utterance_id"]], abs=1e-3)


def _result(text: str, language: str = "en") -> DecodeResult:
    return DecodeResult(text=text, words=(), language=language, avg_logprob=-0.2, no_speech_prob=0.01,
                        compression_ratio=1.2)


class _Engine:
    def __init__(self, scorer, semantic=None, mode="lexicon"):
        from types import SimpleNamespace

        self.sentiment = scorer
        self.semantic = semantic
        self.settings = SimpleNamespace(analytics=SimpleNamespace(sentiment=mode))


class _Analytics:
    def __init__(self, has_semantic):
        from types import SimpleNamespace

        self.pack = SimpleNamespace(has_semantic=has_semantic)


def test_enrich_scores_embeds_and_survives_failures():
    from speechiq.analytics.sentiment import LexiconSentiment

    class Embedder:
        def embed(self, texts):
            return np.ones((len(texts), 4), dtype=np.float32) / 2

    class Broken:
        def score(self, text, language):
            raise RuntimeError("model gone")

        def embed(self, texts):
            raise RuntimeError("model gone")

    e = enrich(_Engine(LexiconSentiment(), Embedder()), _Analytics(True), "en", _result("This is wonderful, thank you"))
    assert e.label == "positive" and e.sentiment > 0 and e.embedding is not None and e.embedding.shape == (4,)
    e = enrich(_Engine(LexiconSentiment(), Embedder()), _Analytics(False), "en", _result("fine"))
    assert e.embedding is None  # no semantic rules in the pack: nothing to embed
    assert enrich(_Engine(Broken(), Broken()), _Analytics(True), "en", _result("hello")) == Enrichment()
    assert enrich(_Engine(LexiconSentiment(), mode="off"), _Analytics(False), "en", _result("awful")).sentiment is None
    assert enrich(_Engine(LexiconSentiment()), None, "en", _result("awful")) == Enrichment()  # analytics off
    zh = enrich(_Engine(LexiconSentiment()), _Analytics(False), "auto", _result("太好了，谢谢你", ""))
    assert zh.label == "positive"


def test_utterance_language():
    assert utterance_language("hello", "en", "zh") == "en"
    assert utterance_language("你好", "", "auto") == "zh"
    assert utterance_language("hello", "", "zh") == "zh"
    assert utterance_language("hello", "fr", None) == "en"
