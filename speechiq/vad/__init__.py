"""Voice activity detection and per-channel endpointing (16 kHz, media time)."""

from .detectors import SileroDetector, SpeechDetector, WebRtcDetector, make_detector
from .endpointer import Endpointer, Segment

__all__ = ["Endpointer", "Segment", "SileroDetector", "SpeechDetector", "WebRtcDetector", "make_detector"]
