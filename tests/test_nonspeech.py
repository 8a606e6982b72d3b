"""Silence, hold music and line noise produce no text through the whole default pipeline
(webrtcvad → tiny.en → guards), over a real socket.

webrtcvad, the default frame VAD, does flag sustained harmonic tones as speech (see the strict
xfail in test_vad.py); the recogniser's guards must then drop what it makes of them.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_vad import hold_music, line_noise

from speechiq.audio.wavio import WavAudio
from speechiq.ingest import Encoding
from speechiq.replay.client import replay

pytestmark = pytest.mark.slow


def _stereo(left: np.ndarray, right: np.ndarray) -> WavAudio:
    both = np.stack([left, right], axis=1)
    return WavAudio(8000, np.clip(np.rint(both * 32767), -32768, 32767).astype(np.int16), Encoding.PCM16)


CASES = {
    "silence": lambda s: np.zeros(round(s * 8000), dtype=np.float32),
    "line_noise_-35dBFS": lambda s: line_noise(s, dbfs=-35.0, seed=3),
    "line_noise_-25dBFS": lambda s: line_noise(s, dbfs=-25.0, seed=4),
    **{f"hold_music_{seed}_{note}": (lambda s, seed=seed, note=note: hold_music(s, dbfs=-20.0, note_s=note, seed=seed)
                                     + line_noise(s, seed=seed))
       for seed in range(4) for note in (0.25, 0.4, 0.8)},
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_no_text_from_non_speech(server, kind):
    left = CASES[kind](20.0)
    right = line_noise(20.0, seed=11)
    res = server.call(replay(server.url(), _stereo(left, right), speed=None, encoding="pcm16", language="en",
                             call_id=f"nonspeech-{kind}"))
    assert res.close_code == 1000
    assert [e["text"] for e in res.of_type("transcript")] == []
    assert res.summary is not None and res.summary["utterances"] == 0
