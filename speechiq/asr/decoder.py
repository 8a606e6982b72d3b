"""Batched Whisper decoding with windows sized to the utterance (not padded to 30 s).

A request's prompt (and hotwords) bias the words; the no-speech probability the guards read is
the larger of the prompted one and one unprompted decoder step, since a prompt makes Whisper
expect speech and echo the prompt over hold music or line noise.

One encoder call and one ``generate`` call per batch. Each request's window is a deterministic
function of its own duration (rounded up to a bucket, plus ``window_pad_s`` of silence), so a
transcript never depends on what it was batched with; the scheduler batches same-bucket requests.
Called from worker threads only (CTranslate2 releases the GIL).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import ctranslate2
import numpy as np
from faster_whisper.tokenizer import Tokenizer

from ..events import Word
from ..settings import AsrSettings
from .guards import compression_ratio, low_confidence_no_speech, reject_reason, trim_repetition
from .text import clean_text, to_simplified

SAMPLE_RATE = 16000
HOP = 160  # samples per mel frame (10 ms)
FULL_FRAMES = 3000  # Whisper's 30 s window
# Encoder windows (seconds). Coarse on purpose: padding costs little (the decoder dominates),
# and utterances of one bucket batch together across calls.
BUCKETS_S = (3, 5, 7, 9, 12, 16, 20, 30)
MAX_PROMPT_TOKENS = 223
TOKENS_PER_SECOND_CAP = 10  # generous: fast Mandarin is ~8 tokens/s
DETECTABLE = ("en", "zh")


@dataclass(frozen=True)
class DecodeRequest:
    audio: np.ndarray  # float32, 16 kHz mono
    language: str = "auto"
    prompt: str = ""
    hotwords: tuple[str, ...] = ()
    word_timestamps: bool = True
    offset: float = 0.0  # media time of audio[0]

    @property
    def duration(self) -> float:
        return len(self.audio) / SAMPLE_RATE


@dataclass(frozen=True)
class DecodeResult:
    text: str
    words: tuple[Word, ...]
    language: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    rejected: str | None = None
    fallback: bool = False
    window_frames: int = 0


class BatchDecoder:
    def __init__(self, model: Any, settings: AsrSettings, multilingual: bool) -> None:
        self.model = model  # faster_whisper.WhisperModel
        self.settings = settings
        self.multilingual = multilingual
        self.fe = model.feature_extractor
        self._tokenizers: dict[str, Tokenizer] = {}
        self.fallbacks = 0

    # ---- windows -----------------------------------------------------------------------------
    def bucket_of(self, request: DecodeRequest) -> int:
        """Encoder window (mel frames) for a request: depends on its own duration only."""
        if not self.settings.short_windows:
            return FULL_FRAMES
        need = request.duration + self.settings.window_pad_s
        seconds = next((b for b in BUCKETS_S if b >= need), BUCKETS_S[-1])
        return min(FULL_FRAMES, seconds * 100)

    def _features(self, audio: np.ndarray, frames: int) -> np.ndarray:
        n = frames * HOP
        x = np.zeros(n, dtype=np.float32)
        clip = audio[:n]
        x[: len(clip)] = clip
        feats = self.fe(x, padding=0)
        if feats.shape[1] < frames:
            feats = np.pad(feats, ((0, 0), (0, frames - feats.shape[1])), mode="edge")
        return feats[:, :frames]

    # ---- tokens ------------------------------------------------------------------------------
    def tokenizer(self, language: str) -> Tokenizer:
        tok = self._tokenizers.get(language)
        if tok is None:
            tok = Tokenizer(self.model.hf_tokenizer, self.multilingual, task="transcribe",
                            language=language if self.multilingual else "en")
            self._tokenizers[language] = tok
        return tok

    def _prompt(self, tok: Tokenizer, req: DecodeRequest) -> list[int]:
        prompt: list[int] = []
        context = " ".join(p for p in (req.prompt.strip(), ", ".join(req.hotwords)) if p)
        if context:
            prompt = [tok.sot_prev, *tok.encode(" " + context)[-MAX_PROMPT_TOKENS:]]
        return [*prompt, *tok.sot_sequence, tok.no_timestamps]

    def _languages(self, reqs: list[DecodeRequest], enc: ctranslate2.StorageView) -> list[str]:
        if not self.multilingual:
            return ["en"] * len(reqs)
        langs = [r.language if r.language != "auto" else "" for r in reqs]
        if all(langs):
            return langs
        detected = self.model.model.detect_language(enc)
        for i, ranked in enumerate(detected):
            if not langs[i]:
                probs = {tok[2:-2]: p for tok, p in ranked}
                langs[i] = max(DETECTABLE, key=lambda code: probs.get(code, 0.0))
        return langs

    # ---- decoding ----------------------------------------------------------------------------
    def decode(self, requests: list[DecodeRequest]) -> list[DecodeResult]:
        if not requests:
            return []
        frames = max(self.bucket_of(r) for r in requests)
        return self._decode_window(requests, frames, allow_fallback=True)

    def _decode_window(self, reqs: list[DecodeRequest], frames: int, allow_fallback: bool) -> list[DecodeResult]:
        feats = np.stack([self._features(r.audio, frames) for r in reqs])
        enc = self.model.model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(feats)),
                                      to_cpu=True)
        langs = self._languages(reqs, enc)
        toks = [self.tokenizer(lang) for lang in langs]
        prompts = [self._prompt(t, r) for t, r in zip(toks, reqs, strict=True)]
        longest = max(len(p) for p in prompts)
        budget = max(int(max(r.duration for r in reqs) * TOKENS_PER_SECOND_CAP) + 16, 24)
        s = self.settings
        out = self.model.model.generate(
            enc, prompts, beam_size=s.beam_size, return_scores=True, return_no_speech_prob=True,
            max_length=min(448, longest + budget), suppress_blank=True, suppress_tokens=[-1],
        )
        no_speech = self._unprompted_no_speech(reqs, toks, enc, [float(r.no_speech_prob) for r in out])
        results: list[DecodeResult | None] = []
        texts: list[list[int]] = []
        for tok, res, lang in zip(toks, out, langs, strict=True):
            ids = [t for t in res.sequences_ids[0] if t < tok.eot]
            text = clean_text(tok.decode(ids), lang)
            trimmed, cut = trim_repetition(text)
            if cut:
                ids = tok.encode(" " + trimmed.strip()) if trimmed else []
                text = trimmed
            avg = float(res.scores[0]) if res.scores else 0.0
            ratio = compression_ratio(text)
            reason = reject_reason(text, no_speech_prob=no_speech[len(results)], avg_logprob=avg, compression=ratio,
                                   no_speech_threshold=s.no_speech_threshold,
                                   logprob_threshold=s.logprob_threshold,
                                   compression_threshold=s.compression_ratio_threshold)
            if reason == "compression_ratio" and allow_fallback and frames < FULL_FRAMES:
                results.append(None)  # re-decode below with the full 30 s window
                texts.append([])
                continue
            results.append(DecodeResult(text="" if reason else text, words=(), language=lang, avg_logprob=avg,
                                        no_speech_prob=no_speech[len(results)], compression_ratio=ratio,
                                        rejected=reason, fallback=not allow_fallback, window_frames=frames))
            texts.append(ids if not reason else [])
        self._add_words(reqs, toks, texts, results, enc, frames)
        for i, r in enumerate(results):
            if r is not None and not r.rejected and s.word_prob_threshold > 0 and low_confidence_no_speech(
                    r.no_speech_prob, [w.probability for w in r.words] if reqs[i].word_timestamps else None,
                    no_speech_threshold=s.no_speech_threshold, word_prob_threshold=s.word_prob_threshold):
                results[i] = dataclasses.replace(r, text="", words=(), rejected="no_speech_low_confidence")
        for i, r in enumerate(results):
            if r is None:
                self.fallbacks += 1
                results[i] = self._decode_window([reqs[i]], FULL_FRAMES, allow_fallback=False)[0]
        return results  # type: ignore[return-value]

    def _unprompted_no_speech(self, reqs: list[DecodeRequest], toks: list[Tokenizer], enc: ctranslate2.StorageView,
                              prompted: list[float]) -> list[float]:
        """No-speech probability of each request as the model sees the audio alone: a prompt lowers
        it (the model expects speech), so prompted requests get one extra unprompted step."""
        idx = [i for i, r in enumerate(reqs) if r.prompt.strip() or r.hotwords]
        if not idx:
            return prompted
        sub = enc if len(idx) == len(reqs) else ctranslate2.StorageView.from_array(np.asarray(enc)[idx])
        starts = [[*toks[i].sot_sequence, toks[i].no_timestamps] for i in idx]
        bare = self.model.model.generate(sub, starts, max_length=max(len(p) for p in starts) + 1,
                                         return_no_speech_prob=True)
        out = list(prompted)
        for i, r in zip(idx, bare, strict=True):
            out[i] = max(out[i], float(r.no_speech_prob))
        return out

    def _add_words(self, reqs: list[DecodeRequest], toks: list[Tokenizer], texts: list[list[int]],
                   results: list[DecodeResult | None], enc: ctranslate2.StorageView, frames: int) -> None:
        idx = [i for i, r in enumerate(results) if r is not None and texts[i] and reqs[i].word_timestamps]
        if not idx:
            return
        sub = enc if len(idx) == len(reqs) else ctranslate2.StorageView.from_array(np.asarray(enc)[idx])
        num_frames = [min(frames, int(reqs[i].duration * 100) + 1) for i in idx]
        by_lang: dict[str, list[int]] = {}
        for j, i in enumerate(idx):
            by_lang.setdefault(toks[i].language_code, []).append(j)
        for positions in by_lang.values():
            tok = toks[idx[positions[0]]]
            part = sub if len(positions) == len(idx) else ctranslate2.StorageView.from_array(
                np.asarray(sub)[positions])
            aligned = self.model.model.align(part, tok.sot_sequence, [texts[idx[j]] for j in positions],
                                             [num_frames[j] for j in positions], median_filter_width=7)
            for j, al in zip(positions, aligned, strict=True):
                i = idx[j]
                words = _words(tok, texts[i], al, reqs[i].offset, reqs[i].duration)
                r = results[i]
                assert r is not None
                results[i] = DecodeResult(r.text, words, r.language, r.avg_logprob, r.no_speech_prob,
                                          r.compression_ratio, r.rejected, r.fallback, r.window_frames)


def _words(tok: Tokenizer, ids: list[int], al: Any, offset: float, duration: float) -> tuple[Word, ...]:
    """Word times from a CTranslate2 alignment (same method as faster-whisper's find_alignment)."""
    words, word_tokens = tok.split_to_word_tokens([*ids, tok.eot])
    if len(word_tokens) <= 1:
        return ()
    text_idx = np.array([p[0] for p in al.alignments])
    time_idx = np.array([p[1] for p in al.alignments])
    probs = al.text_token_probs
    bounds = np.pad(np.cumsum([len(t) for t in word_tokens[:-1]]), (1, 0))
    jumps = np.pad(np.diff(text_idx), (1, 0), constant_values=1).astype(bool)
    jump_times = time_idx[jumps] / 50.0  # 50 encoder positions per second
    out = []
    for k, (w, start_b, end_b) in enumerate(zip(words[:-1], bounds[:-1], bounds[1:], strict=False)):
        if start_b >= len(jump_times):
            break
        start = float(jump_times[start_b])
        end = float(jump_times[min(end_b, len(jump_times) - 1)])
        p = float(np.mean(probs[start_b:end_b])) if end_b > start_b else 0.0
        text = w.strip()
        if not text:
            continue
        if _is_cjk(text):
            text = to_simplified(text)
        if out and not w.startswith(" ") and k > 0 and not _is_cjk(text):  # punctuation: merge left
            last = out[-1]
            out[-1] = Word(last.text + text, last.start, max(last.end, offset + min(end, duration)),
                           last.probability)
            continue
        out.append(Word(text, round(offset + min(start, duration), 3), round(offset + min(end, duration), 3),
                        round(p, 3)))
    return tuple(out)


def _is_cjk(text: str) -> bool:
    return any("\u3400" <= c <= "\u9fff" for c in text)
