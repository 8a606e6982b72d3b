"""Per-channel streaming endpointing in media time: 16 kHz audio in, finished utterances out.

Frames of ``detector.frame_samples`` are scored by the detector; a frame counts as speech when its
RMS is at least ``min_energy_dbfs`` and its probability passes the detector's threshold (with a
0.15 hysteresis while speech continues). An utterance opens once ``start_ms`` of speech frames fall
in a short window, ends after ``hangover_ms`` of non-speech, and is dropped when it holds less than
``min_speech_ms`` of speech. Output is a pure function of the samples pushed (any chunking), of
gaps and of flushes, so replayed calls give the same segments as live ones.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from ..settings import VadSettings
from .detectors import SpeechDetector

__all__ = ["SAMPLE_RATE", "Endpointer", "Segment"]

SAMPLE_RATE = 16000
HYSTERESIS = 0.15
SPLIT_TAIL = 0.4  # the max-utterance cut is searched in this trailing share of the utterance


@dataclass(frozen=True, eq=False)
class Segment:
    """One utterance. ``start``/``end`` bound ``audio`` (padded); ``speech_*`` bound detected speech."""

    seg_index: int
    start: float
    end: float
    audio: np.ndarray
    speech_start: float
    speech_end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass
class _Open:
    """The open utterance. Frame stats are kept from the speech start on (for counting and splits)."""

    base: int  # sample index of chunks[0][0]
    chunks: list[np.ndarray]
    speech_start: int
    speech_end: int
    continued: bool = False
    n_speech: int = 0
    silence_run: int = 0
    starts: list[int] = field(default_factory=list)
    rms: list[float] = field(default_factory=list)
    flags: list[bool] = field(default_factory=list)

    def audio(self) -> np.ndarray:
        if len(self.chunks) != 1:
            self.chunks = [np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.float32)]
        return self.chunks[0]


class Endpointer:
    """Streaming endpointer for one channel; ``offset`` is the media time of the first sample."""

    def __init__(self, settings: VadSettings, detector: SpeechDetector, offset: float = 0.0) -> None:
        if detector.sample_rate != SAMPLE_RATE:
            raise ValueError(f"detector must run at {SAMPLE_RATE} Hz, not {detector.sample_rate}")
        self.settings = settings
        self.detector = detector
        self.offset = float(offset)
        self.dropped = 0
        self._f = f = int(detector.frame_samples)
        self._threshold = float(getattr(detector, "threshold", 0.5))
        self._floor = 10.0 ** (settings.min_energy_dbfs / 20.0)
        ms = SAMPLE_RATE // 1000
        self._pad = settings.pad_ms * ms
        self._close_after = max(settings.hangover_ms * ms, self._pad, 1)
        self._min_speech = settings.min_speech_ms * ms
        self._max_len = round(settings.max_utterance_s * SAMPLE_RATE)
        self._need = max(1, math.ceil(settings.start_ms * ms / f))
        window = self._need + max(2, self._need // 2)
        self._flags: deque[tuple[int, bool, float]] = deque(maxlen=window)  # (start, speech, rms)
        self._hist_len = window + math.ceil(self._pad / f) + 1
        self._hist: deque[tuple[int, np.ndarray]] = deque(maxlen=self._hist_len)
        self._zeros = np.zeros(f, dtype=np.float32)
        self._zeros.flags.writeable = False
        self._pending = np.zeros(f, dtype=np.float32)
        self._n_pending = 0
        self._pos = 0  # sample index where the pending frame starts
        self._floor_sample = 0  # audio before this belongs to an emitted segment
        self._prev_speech = False
        self._open: _Open | None = None
        self._next_index = 0
        self._activity: list[tuple[float, float]] = []

    # ------------------------------------------------------------------ public API
    @property
    def now(self) -> float:
        """Media time consumed so far (seconds)."""
        return self._t(self._pos + self._n_pending)

    @property
    def frame_samples(self) -> int:
        return self._f

    @property
    def speech_seconds_in_progress(self) -> float:
        return self._open.n_speech * self._f / SAMPLE_RATE if self._open else 0.0

    def push(self, audio16k: np.ndarray) -> list[Segment]:
        """Feed 16 kHz float32 mono samples (any length); returns utterances that just ended."""
        x = np.asarray(audio16k, dtype=np.float32)
        if x.ndim != 1:
            raise ValueError(f"expected 1-D 16 kHz samples, got shape {x.shape}")
        out: list[Segment] = []
        f, i, n = self._f, 0, x.shape[0]
        while i < n:
            if self._n_pending == 0 and n - i >= f:
                frame = x[i : i + f].copy()
                i += f
            else:
                take = min(f - self._n_pending, n - i)
                self._pending[self._n_pending : self._n_pending + take] = x[i : i + take]
                self._n_pending += take
                i += take
                if self._n_pending < f:
                    break
                frame = self._pending.copy()
                self._n_pending = 0
            out += self._frame(frame, self.detector.speech_prob(frame))
        return out

    def advance(self, seconds: float) -> list[Segment]:
        """A gap without audio: acts like that much digital silence, then resets the detector."""
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"gap must be a finite, non-negative number of seconds, got {seconds!r}")
        gap = round(float(seconds) * SAMPLE_RATE)
        if gap == 0:
            return []
        out: list[Segment] = []
        f = self._f
        if self._n_pending:
            take = min(f - self._n_pending, gap)
            self._pending[self._n_pending : self._n_pending + take] = 0.0
            self._n_pending += take
            gap -= take
            if self._n_pending == f:
                frame = self._pending.copy()
                self._n_pending = 0
                out += self._frame(frame, self.detector.speech_prob(frame))
        frames, rest = divmod(gap, f)
        while frames and self._open is not None:  # silence closes (or splits) the open utterance
            out += self._frame(self._zeros, 0.0)
            frames -= 1
        if frames:  # nothing open: only the recent history matters
            keep = min(frames, self._hist_len)
            self._pos += (frames - keep) * f
            for _ in range(keep):
                self._flags.append((self._pos, False, 0.0))
                self._hist.append((self._pos, self._zeros))
                self._pos += f
        if rest:
            self._pending[:rest] = 0.0
            self._n_pending = rest
        self.detector.reset()
        self._prev_speech = False
        return out

    def flush(self) -> list[Segment]:
        """End of stream: emit the open utterance if long enough; state is reset, the clock kept."""
        out: list[Segment] = []
        tail = self._pending[: self._n_pending].copy()
        if self._open is not None:
            if tail.size:
                self._open.chunks.append(tail)
            end = min(self._open.speech_end + self._pad, self._pos + tail.size)
            out += self._close(end)
        elif tail.size:
            self._hist.append((self._pos, tail))
        self._pos += tail.size
        self._n_pending = 0
        self._flags.clear()
        self._prev_speech = False
        self.detector.reset()
        return out

    @property
    def open_start(self) -> float | None:
        """Start time of the open utterance's audio (as :meth:`in_progress`, without the copy)."""
        return self._t(self._open.base) if self._open is not None else None

    @property
    def settled_end(self) -> float | None:
        """Where the open utterance's audio ends if it closes without more speech, once its
        trailing silence already covers ``pad_ms`` (so that audio is final unless speech
        resumes); None while it is still speaking, would be dropped as too short, or is closed."""
        u = self._open
        if u is None or u.silence_run == 0 or u.n_speech == 0:
            return None
        if u.n_speech * self._f < self._min_speech and not u.continued:
            return None
        end = u.speech_end + self._pad
        return self._t(end) if self._pos >= end else None

    def settled(self) -> Segment | None:
        """The segment the open utterance becomes if no more speech arrives (see
        :attr:`settled_end`): same index, bounds and audio as the one :meth:`push` would emit."""
        if self.settled_end is None:
            return None
        u = self._open
        assert u is not None
        end = u.speech_end + self._pad
        return Segment(seg_index=self._next_index, start=self._t(u.base), end=self._t(end),
                       audio=u.audio()[: end - u.base].copy(), speech_start=self._t(u.speech_start),
                       speech_end=self._t(u.speech_end))

    def in_progress(self) -> tuple[float, np.ndarray] | None:
        """(start time, audio so far) of the open utterance, or None."""
        if self._open is None:
            return None
        return self._t(self._open.base), self._open.audio().copy()

    def activity(self) -> list[tuple[float, float]]:
        """Speech intervals (media seconds) of utterances closed since the last call, short ones too."""
        out, self._activity = self._activity, []
        return out

    # ------------------------------------------------------------------ internals
    def _t(self, sample: int) -> float:
        return self.offset + sample / SAMPLE_RATE

    def _frame(self, frame: np.ndarray, prob: float) -> list[Segment]:
        f = self._f
        start = self._pos
        self._pos += f
        rms = float(np.sqrt(np.mean(np.square(frame, dtype=np.float64))))
        thr = self._threshold - HYSTERESIS if self._prev_speech else self._threshold
        speech = rms >= self._floor and prob >= thr
        self._prev_speech = speech
        self._hist.append((start, frame))
        u = self._open
        if u is None:
            self._flags.append((start, speech, rms))
            if speech and sum(s for _, s, _ in self._flags) >= self._need:
                self._start_utterance(next(t for t, s, _ in self._flags if s))
            return []
        u.chunks.append(frame)
        u.starts.append(start)
        u.rms.append(rms)
        u.flags.append(speech)
        if speech:
            u.n_speech += 1
            u.speech_end = start + f
            u.silence_run = 0
        else:
            u.silence_run += 1
            if u.silence_run * f >= self._close_after:
                return self._close(min(u.speech_end + self._pad, start + f))
        if start + f - u.speech_start >= self._max_len:
            return self._split()
        return []

    def _start_utterance(self, speech_start: int) -> None:
        begin = max(speech_start - self._pad, self._floor_sample)
        chunks: list[np.ndarray] = []
        base = None
        for s, a in self._hist:
            if s + a.shape[0] <= begin:
                continue
            lo = max(0, begin - s)
            base = s + lo if base is None else base
            chunks.append(a[lo:])
        assert base is not None  # the current frame is always in the history
        u = _Open(base=base, chunks=chunks, speech_start=speech_start, speech_end=self._pos)
        for s, flag, rms in self._flags:
            if s >= speech_start:
                u.starts.append(s)
                u.flags.append(flag)
                u.rms.append(rms)
                u.n_speech += flag
        self._flags.clear()
        self._open = u

    def _emit(self, u: _Open, audio: np.ndarray, speech_end: int, n_speech: int) -> list[Segment]:
        if n_speech == 0:
            return []
        self._activity.append((self._t(u.speech_start), self._t(speech_end)))
        if n_speech * self._f < self._min_speech and not u.continued:
            self.dropped += 1
            return []
        seg = Segment(
            seg_index=self._next_index,
            start=self._t(u.base),
            end=self._t(u.base + audio.shape[0]),
            audio=audio,
            speech_start=self._t(u.speech_start),
            speech_end=self._t(speech_end),
        )
        self._next_index += 1
        return [seg]

    def _close(self, end: int) -> list[Segment]:
        u = self._open
        assert u is not None
        self._open = None
        self._floor_sample = end
        self._flags.clear()
        audio = u.audio()[: end - u.base].copy()
        return self._emit(u, audio, u.speech_end, u.n_speech)

    def _split(self) -> list[Segment]:
        """Cut the open utterance in the middle of its quietest frame in the trailing 40 %."""
        u = self._open
        assert u is not None
        f = self._f
        m = len(u.starts)
        lo = min(int(m * (1.0 - SPLIT_TAIL)), m - 1)
        q = lo + int(np.argmin(u.rms[lo:]))
        cut = u.starts[q] + f // 2
        before = [i for i in range(q) if u.flags[i]]
        speech_end = cut if u.flags[q] else (u.starts[before[-1]] + f if before else cut)
        n_first = len(before) + u.flags[q]
        audio = u.audio()
        out = self._emit(u, audio[: cut - u.base].copy(), speech_end, n_first)
        rest_flags = u.flags[q + 1 :]
        last = max((i for i, s in enumerate(rest_flags) if s), default=None)
        rest = _Open(
            base=cut,
            chunks=[audio[cut - u.base :].copy()],
            speech_start=cut,
            speech_end=cut if last is None else u.starts[q + 1 + last] + f,
            continued=True,
            n_speech=sum(rest_flags),
            silence_run=len(rest_flags) - (0 if last is None else last + 1),
            starts=u.starts[q + 1 :],
            rms=u.rms[q + 1 :],
            flags=rest_flags,
        )
        self._open = rest
        self._floor_sample = cut
        return out
