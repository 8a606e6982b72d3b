"""BatchDecoder with real Whisper models (tiny.en; base for Mandarin) on real utterances."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import replace
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from speechiq.asr.decoder import FULL_FRAMES, BatchDecoder, DecodeRequest, DecodeResult
from speechiq.asr.models import load_model
from speechiq.asr.text import has_cjk, to_simplified
from speechiq.audio.resample import resample
from speechiq.audio.wavio import read_wav
from speechiq.evaluation import error_rate
from speechiq.settings import AsrSettings

pytestmark = pytest.mark.slow
DATA = Path(__file__).parent / "data"
OFFSET = 100.0  # media time of the first item: word times must be shifted by the request offset
REJECTED = {"empty", "no_speech", "silence_phrase", "compression_ratio"}


def _settings(**kw: Any) -> AsrSettings:
    return AsrSettings(model=kw.pop("model", "tiny.en"), workers=1, **kw)


@pytest.fixture(scope="module")
def en_items() -> list[tuple[str, str, DecodeRequest]]:
    """(kind, reference, request) for each item of asr_en_utterances (8 kHz μ-law → 16 kHz)."""
    meta = json.loads((DATA / "asr_en_utterances.json").read_text(encoding="utf-8"))
    wav = read_wav(DATA / "asr_en_utterances.wav")
    x = wav.samples[:, 0].astype(np.float32) / 32768.0
    out = []
    for it in meta["items"]:
        piece = x[round(it["start"] * wav.sample_rate):round(it["end"] * wav.sample_rate)]
        req = DecodeRequest(resample(piece, wav.sample_rate, 16000), language="en", offset=OFFSET + it["start"])
        out.append((it["kind"], it["text"], req))
    return out


@pytest.fixture(scope="module")
def speech(en_items: list[tuple[str, str, DecodeRequest]]) -> list[tuple[str, DecodeRequest]]:
    return [(ref, req) for kind, ref, req in en_items if kind == "speech"]


@pytest.fixture(scope="module")
def tiny_model() -> Any:
    model, info = load_model(_settings())
    assert not info.multilingual
    return model


@pytest.fixture(scope="module")
def tiny(tiny_model: Any) -> BatchDecoder:
    return BatchDecoder(tiny_model, _settings(), multilingual=False)


@pytest.fixture(scope="module")
def alone(tiny: BatchDecoder, speech: list[tuple[str, DecodeRequest]]) -> list[DecodeResult]:
    """Each speech utterance decoded on its own."""
    return [tiny.decode([req])[0] for _, req in speech]


def wer(refs: list[str], results: list[DecodeResult]) -> float:
    return error_rate(refs, [r.text for r in results])


# ---- English --------------------------------------------------------------------------------
def test_english_utterances(tiny: BatchDecoder, speech: list[tuple[str, DecodeRequest]],
                            alone: list[DecodeResult]) -> None:
    assert wer([ref for ref, _ in speech], alone) <= 0.12
    for (ref, req), res in zip(speech, alone, strict=True):
        assert res.rejected is None, (ref, res)
        assert res.language == "en"
        assert not res.fallback
        assert res.window_frames == tiny.bucket_of(req) < FULL_FRAMES
        assert res.window_frames >= (req.duration + tiny.settings.window_pad_s) * 100
        assert -1.0 < res.avg_logprob <= 0.0
        assert 0.0 <= res.no_speech_prob < 0.5
        assert error_rate([ref], [res.text]) <= 0.3, (ref, res.text)


def test_word_timestamps(speech: list[tuple[str, DecodeRequest]], alone: list[DecodeResult]) -> None:
    for (_, req), res in zip(speech, alone, strict=True):
        words = res.words
        assert words, res
        assert " ".join(w.text for w in words) == res.text
        for w in words:
            assert req.offset <= w.start <= w.end <= req.offset + req.duration, (w, req.offset, req.duration)
            assert 0.0 <= w.probability <= 1.0
        for a, b in pairwise(words):
            assert a.start <= b.start and a.end <= b.start + 1e-6, (a, b)
        # speech fills the cut turn: words span most of it
        assert words[-1].end - words[0].start > 0.5 * req.duration


def test_no_word_timestamps_when_not_asked(tiny: BatchDecoder, speech: list[tuple[str, DecodeRequest]],
                                           alone: list[DecodeResult]) -> None:
    req = replace(speech[2][1], word_timestamps=False)
    res = tiny.decode([req])[0]
    assert res.words == ()
    assert res.text == alone[2].text


def test_line_noise_and_silence_are_rejected(tiny: BatchDecoder,
                                             en_items: list[tuple[str, str, DecodeRequest]]) -> None:
    noise = [req for kind, _, req in en_items if kind == "noise"]
    assert noise
    level = 20 * np.log10(np.sqrt(np.mean(noise[0].audio ** 2)))
    assert -53 < level < -47  # the calls' line noise: about -50 dBFS
    reqs = [*noise, DecodeRequest(np.zeros(2 * 16000, np.float32), language="en"),
            DecodeRequest(np.zeros(8000, np.float32), language="en")]
    for res in tiny.decode(reqs) + [tiny.decode([r])[0] for r in reqs]:
        assert res.text == "" and res.words == ()
        assert res.rejected in REJECTED


def test_same_bucket_batch_equals_alone(tiny: BatchDecoder, speech: list[tuple[str, DecodeRequest]],
                                        alone: list[DecodeResult]) -> None:
    groups: dict[int, list[int]] = defaultdict(list)
    for i, (_, req) in enumerate(speech):
        groups[tiny.bucket_of(req)].append(i)
    batched = [idx for idx in groups.values() if len(idx) > 1]
    assert batched and max(len(idx) for idx in batched) >= 3  # the data gives real batches
    for idx in batched:
        results = tiny.decode([speech[i][1] for i in idx])
        for i, res in zip(idx, results, strict=True):
            ref = alone[i]
            assert res.text == ref.text
            assert res.window_frames == ref.window_frames
            assert [(w.text, w.start, w.end) for w in res.words] == [(w.text, w.start, w.end) for w in ref.words]
            assert np.allclose([w.probability for w in res.words], [w.probability for w in ref.words], atol=0.05)
    # batch order does not matter either
    idx = max(batched, key=len)
    rev = tiny.decode([speech[i][1] for i in reversed(idx)])
    assert [r.text for r in reversed(rev)] == [alone[i].text for i in idx]


def test_mixed_bucket_batch(tiny: BatchDecoder, speech: list[tuple[str, DecodeRequest]]) -> None:
    reqs = [req for _, req in speech]
    assert len({tiny.bucket_of(r) for r in reqs}) >= 3
    results = tiny.decode(reqs)
    assert len(results) == len(reqs)
    assert {r.window_frames for r in results} == {max(tiny.bucket_of(r) for r in reqs)}
    assert all(r.rejected is None and r.words for r in results)
    assert wer([ref for ref, _ in speech], results) <= 0.15


def test_full_30s_window(tiny_model: Any, speech: list[tuple[str, DecodeRequest]]) -> None:
    dec = BatchDecoder(tiny_model, _settings(short_windows=False), multilingual=False)
    reqs = [req for _, req in speech]
    assert {dec.bucket_of(r) for r in reqs} == {FULL_FRAMES}
    results = dec.decode(reqs)
    assert all(r.window_frames == FULL_FRAMES and not r.fallback and r.rejected is None for r in results)
    assert wer([ref for ref, _ in speech], results) <= 0.15
    for (_, req), res in zip(speech, results, strict=True):
        assert all(req.offset <= w.start <= w.end <= req.offset + req.duration for w in res.words)


def test_compression_fallback_uses_the_full_window(tiny_model: Any, speech: list[tuple[str, DecodeRequest]]) -> None:
    # a threshold every real text trips: each request is re-decoded once with the 30 s window
    dec = BatchDecoder(tiny_model, _settings(compression_ratio_threshold=0.01), multilingual=False)
    reqs = [req for _, req in speech[:3]]
    results = dec.decode(reqs)
    assert dec.fallbacks == len(reqs)
    for res in results:
        assert res.fallback and res.window_frames == FULL_FRAMES
        assert res.rejected == "compression_ratio" and res.text == "" and res.words == ()


def test_bucket_of_depends_on_duration_only(tiny: BatchDecoder) -> None:
    pad = tiny.settings.window_pad_s
    frames = [tiny.bucket_of(DecodeRequest(np.zeros(round(s * 16000), np.float32))) for s in
              (0.1, 1.0, 2.0, 4.0, 8.0, 15.0, 25.0, 29.5, 45.0)]
    assert frames == sorted(frames)
    assert all(f % 100 == 0 and f <= FULL_FRAMES for f in frames)
    assert frames[-1] == FULL_FRAMES
    for s, f in zip((0.1, 1.0, 2.0, 4.0, 8.0, 15.0), frames, strict=False):
        assert f >= (s + pad) * 100
    req = DecodeRequest(np.zeros(3 * 16000, np.float32))
    assert tiny.bucket_of(req) == tiny.bucket_of(replace(req, prompt="x", language="zh", offset=55.0))


def test_prompt_hotwords_and_edge_inputs(tiny: BatchDecoder, speech: list[tuple[str, DecodeRequest]]) -> None:
    assert tiny.decode([]) == []
    ref, req = speech[1]
    res = tiny.decode([replace(req, prompt="Customer support call about a bill.", hotwords=("Northwind",))])[0]
    assert error_rate([ref], [res.text]) <= 0.3
    long_prompt = " ".join(r for r, _ in speech) * 3  # over the 223-token prompt limit: cut, not an error
    res = tiny.decode([replace(req, prompt=long_prompt, hotwords=("Northwind", "autopay"))])[0]
    assert error_rate([ref], [res.text]) <= 0.3
    # an English-only model answers "en" whatever the request says
    assert tiny.decode([replace(req, language="zh")])[0].language == "en"
    # very short and longer-than-window audio decode without error
    tiny_clip = tiny.decode([DecodeRequest(req.audio[:1600], language="en")])[0]
    assert isinstance(tiny_clip.text, str)
    long = np.concatenate([r.audio for _, r in speech] * 2)
    assert len(long) > 30 * 16000
    res = tiny.decode([DecodeRequest(long, language="en")])[0]
    assert res.window_frames == FULL_FRAMES
    assert all(w.end <= len(long) / 16000 for w in res.words)


# ---- Mandarin (multilingual base) ------------------------------------------------------------
ZH_CLIPS = ("asr_zh_funasr_example", "asr_zh_aishell_example")


@pytest.fixture(scope="module")
def zh_results() -> list[tuple[str, DecodeRequest, DecodeResult]]:
    """Both real Mandarin clips decoded together (language auto) with the multilingual base model."""
    settings = _settings(model="base")
    model, info = load_model(settings)
    assert info.multilingual
    refs, reqs = [], []
    for name in ZH_CLIPS:
        wav = read_wav(DATA / f"{name}.wav")
        assert wav.sample_rate == 16000
        refs.append((DATA / f"{name}.txt").read_text(encoding="utf-8").strip())
        reqs.append(DecodeRequest(wav.samples[:, 0].astype(np.float32) / 32768.0, language="auto", offset=7.0))
    results = BatchDecoder(model, settings, multilingual=True).decode(reqs)
    return list(zip(refs, reqs, results, strict=True))


def test_mandarin_detected_and_simplified(zh_results: list[tuple[str, DecodeRequest, DecodeResult]]) -> None:
    for ref, req, res in zh_results:
        assert res.language == "zh"
        assert res.rejected is None
        assert has_cjk(res.text) and " " not in res.text
        assert to_simplified(res.text) == res.text  # no traditional characters left
        assert error_rate([ref], [res.text], language="zh") <= 0.3, (ref, res.text)
        assert res.words
        assert all(req.offset <= w.start <= w.end <= req.offset + req.duration for w in res.words)
        assert all(a.start <= b.start for a, b in pairwise(res.words))
    assert error_rate([r for r, _, _ in zh_results], [res.text for _, _, res in zh_results], language="zh") <= 0.25


def test_mandarin_words_are_simplified_too(zh_results: list[tuple[str, DecodeRequest, DecodeResult]]) -> None:
    for _, _, res in zh_results:
        words = "".join(w.text for w in res.words)
        assert words == res.text


def test_a_prompt_does_not_turn_hold_music_into_words(tiny: BatchDecoder,
                                                      speech: list[tuple[str, DecodeRequest]]) -> None:
    """A prompt makes Whisper expect speech (its no-speech probability drops, and it echoes the
    prompt over music); the guards judge the audio by the unprompted no-speech probability."""
    from test_vad import hold_music

    music = resample(hold_music(6.0, seed=3).astype(np.float32) / 32768.0, 8000, 16000)
    bare = tiny.decode([DecodeRequest(music, language="en")])[0]
    prompted = tiny.decode([DecodeRequest(music, language="en", prompt="Customer service call.")])[0]
    assert bare.text == "" and prompted.text == "", (bare, prompted)
    assert prompted.no_speech_prob >= bare.no_speech_prob - 1e-6
    ref, req = speech[1]  # speech batched with music: still transcribed, whatever its neighbour
    both = tiny.decode([replace(req, prompt="Customer service call."), DecodeRequest(music, language="en",
                                                                                     prompt="Customer service call.")])
    assert error_rate([ref], [both[0].text]) <= 0.3 and both[1].text == ""
