"""Deadlines fire on media time but wait for speech already sent to the recogniser: a call
replayed at full speed gets the same deadline alerts as in real time (over a real socket)."""

from __future__ import annotations

import numpy as np
import pytest

from speechiq.audio.wavio import WavAudio
from speechiq.replay.client import replay

pytestmark = pytest.mark.slow


def _labels(res) -> list[str]:
    final = {}
    for a in res.of_type("alert"):
        final[a["alert_id"]] = a
    return [a["label"] for a in final.values() if a["state"] != "retracted"]


@pytest.mark.parametrize("frame_ms", [20, 1000, 5000])
def test_disclosure_said_before_the_deadline_is_never_missed(server, upgrade_call, frame_ms):
    wav, _ = upgrade_call
    res = server.call(replay(server.url(), wav, speed=None, encoding="mulaw", language="en",
                             frame_ms=frame_ms, call_id=f"deadline-ok-{frame_ms}"))
    labels = _labels(res)
    assert "compliance.disclosure" in labels
    assert "process.missing_disclosure" not in labels, [a for a in res.of_type("alert")
                                                        if a["label"] == "process.missing_disclosure"]


def test_missing_disclosure_still_fires_at_full_speed(server, upgrade_call):
    wav, _ = upgrade_call
    samples = wav.samples.copy()
    samples[: int(7.4 * wav.sample_rate), 0] = (np.random.default_rng(1).normal(0, 10, (int(7.4 * wav.sample_rate),))
                                               ).astype(np.int16)  # the agent's opening, with the notice, is gone
    cut = WavAudio(wav.sample_rate, samples, wav.encoding_hint)
    res = server.call(replay(server.url(), cut, speed=None, encoding="mulaw", language="en", call_id="deadline-miss"))
    missing = [a for a in res.of_type("alert") if a["label"] == "process.missing_disclosure"]
    assert missing and "compliance.disclosure" not in _labels(res)
    assert min(a["media_time"] for a in missing) == pytest.approx(20.0, abs=0.05)
