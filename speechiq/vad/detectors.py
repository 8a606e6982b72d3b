"""Frame-level speech detectors: WebRTC VAD (GMM, 0/1) and Silero VAD v6 (ONNX, probability).

A detector scores one 16 kHz float32 frame of exactly ``frame_samples`` samples and keeps its own
stream state (``reset`` clears it). Detectors are not thread-safe: use one per channel.
"""

from __future__ import annotations

import os
import threading
from typing import Protocol, runtime_checkable

import numpy as np
import webrtcvad

from ..errors import ModelError
from ..settings import VadSettings

__all__ = ["SileroDetector", "SpeechDetector", "WebRtcDetector", "make_detector", "silero_model_path"]

SAMPLE_RATE = 16000


@runtime_checkable
class SpeechDetector(Protocol):
    sample_rate: int
    frame_samples: int

    def speech_prob(self, frame: np.ndarray) -> float: ...

    def reset(self) -> None: ...


def _check_frame(frame: np.ndarray, n: int) -> np.ndarray:
    a = np.asarray(frame, dtype=np.float32)
    if a.shape != (n,):
        raise ValueError(f"expected a frame of {n} samples, got shape {a.shape}")
    return a


class WebRtcDetector:
    """``webrtcvad`` at 16 kHz; returns 1.0 for speech, 0.0 otherwise."""

    sample_rate = SAMPLE_RATE
    threshold = 0.5

    def __init__(self, aggressiveness: int = 3, frame_ms: int = 30) -> None:
        if aggressiveness not in (0, 1, 2, 3):
            raise ValueError(f"aggressiveness must be 0..3, got {aggressiveness!r}")
        if frame_ms not in (10, 20, 30):
            raise ValueError(f"webrtcvad frames must be 10, 20 or 30 ms, got {frame_ms!r}")
        self.aggressiveness = aggressiveness
        self.frame_ms = frame_ms
        self.frame_samples = SAMPLE_RATE * frame_ms // 1000
        self._vad = webrtcvad.Vad(aggressiveness)

    def speech_prob(self, frame: np.ndarray) -> float:
        a = _check_frame(frame, self.frame_samples)
        pcm = np.clip(np.rint(a * 32768.0), -32768, 32767).astype("<i2").tobytes()
        return 1.0 if self._vad.is_speech(pcm, SAMPLE_RATE) else 0.0

    def reset(self) -> None:
        self._vad = webrtcvad.Vad(self.aggressiveness)


def silero_model_path() -> str:
    """Path of the Silero VAD v6 ONNX file that ships with faster-whisper."""
    try:
        from faster_whisper.utils import get_assets_path
    except ImportError as exc:  # pragma: no cover - faster-whisper is a hard dependency
        raise ModelError("Silero VAD needs faster-whisper, which ships its ONNX file") from exc
    path = os.path.join(get_assets_path(), "silero_vad_v6.onnx")
    if not os.path.isfile(path):
        raise ModelError(f"Silero VAD model not found at {path}")
    return path


_session_lock = threading.Lock()
_session = None


def _silero_session():
    """One InferenceSession per process (``run`` is thread-safe), one intra-op thread."""
    global _session
    with _session_lock:
        if _session is None:
            import onnxruntime

            opts = onnxruntime.SessionOptions()
            opts.intra_op_num_threads = 1
            opts.inter_op_num_threads = 1
            opts.enable_cpu_mem_arena = False
            opts.log_severity_level = 4
            try:
                _session = onnxruntime.InferenceSession(
                    silero_model_path(), sess_options=opts, providers=["CPUExecutionProvider"]
                )
            except ModelError:
                raise
            except Exception as exc:
                raise ModelError(f"cannot load Silero VAD: {exc}") from exc
        return _session


class SileroDetector:
    """Silero VAD v6: 512-sample frames at 16 kHz, each run with the previous frame's last 64 samples
    as context and the LSTM state (h, c) carried from frame to frame."""

    sample_rate = SAMPLE_RATE
    frame_samples = 512
    context_samples = 64

    def __init__(self, threshold: float = 0.5) -> None:
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
        self.threshold = threshold
        self._session = _silero_session()
        self._input = np.zeros((1, self.context_samples + self.frame_samples), dtype=np.float32)
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._input[:] = 0.0

    def speech_prob(self, frame: np.ndarray) -> float:
        a = _check_frame(frame, self.frame_samples)
        self._input[0, self.context_samples :] = a
        prob, self._h, self._c = self._session.run(None, {"input": self._input, "h": self._h, "c": self._c})
        self._input[0, : self.context_samples] = a[-self.context_samples :]
        return float(prob[0])


def make_detector(settings: VadSettings) -> SpeechDetector:
    """The detector ``settings.backend`` names, configured from ``settings``."""
    if settings.backend == "silero":
        return SileroDetector(threshold=settings.threshold)
    return WebRtcDetector(aggressiveness=settings.aggressiveness, frame_ms=settings.frame_ms)
