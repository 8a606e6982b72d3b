"""The benchmark baseline: plain faster-whisper ``WhisperModel.transcribe`` per utterance.

No cross-utterance batching, Whisper's 30 s window for every utterance, faster-whisper's own
decoding loop. Same interface as :class:`BatchDecoder` so the scheduler can drive it (batch 1).
"""

from __future__ import annotations

from typing import Any

from ..events import Word
from ..settings import AsrSettings
from .decoder import FULL_FRAMES, DecodeRequest, DecodeResult
from .guards import compression_ratio
from .text import clean_text


class PlainDecoder:
    def __init__(self, model: Any, settings: AsrSettings, multilingual: bool) -> None:
        self.model = model
        self.settings = settings
        self.multilingual = multilingual
        self.fallbacks = 0

    def bucket_of(self, request: DecodeRequest) -> int:
        return FULL_FRAMES

    def decode(self, requests: list[DecodeRequest]) -> list[DecodeResult]:
        return [self._one(r) for r in requests]

    def _one(self, req: DecodeRequest) -> DecodeResult:
        lang = None if req.language == "auto" or not self.multilingual else req.language
        if not self.multilingual:
            lang = "en"
        segments, info = self.model.transcribe(
            req.audio, language=lang, beam_size=self.settings.beam_size, word_timestamps=req.word_timestamps,
            condition_on_previous_text=False, initial_prompt=req.prompt or None,
            hotwords=", ".join(req.hotwords) or None, vad_filter=False,
        )
        segs = list(segments)
        text = clean_text(" ".join(s.text.strip() for s in segs), info.language)
        words = tuple(Word(w.word.strip(), round(req.offset + w.start, 3), round(req.offset + w.end, 3),
                           round(w.probability, 3)) for s in segs for w in (s.words or []))
        avg = sum(s.avg_logprob for s in segs) / len(segs) if segs else 0.0
        nsp = max((s.no_speech_prob for s in segs), default=1.0)
        return DecodeResult(text=text, words=words, language=info.language, avg_logprob=avg, no_speech_prob=nsp,
                            compression_ratio=compression_ratio(text), rejected=None if text else "empty",
                            window_frames=FULL_FRAMES)
