"""Open speech reaches the analytics from the live session: over a real socket, a real call whose
turns last 4–7 s with 0.5 s between them never trips a 3 s silence rule (without the session's
open-speech reports the silence would run on through each turn until it closes)."""

from __future__ import annotations

import pytest

from speechiq.replay.client import replay

pytestmark = pytest.mark.slow

PACK = """
name: live-session
rules:
  - id: silence_3s
    label: process.long_silence
    category: process_error
    when: {metric: {name: current_silence, op: gt, value: 3.0}}
  - id: silence_at_start
    label: process.long_silence
    category: process_error
    when: {metric: {name: current_silence, op: gt, value: 0.9}}
"""


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    from conftest import ServerThread

    path = tmp_path_factory.mktemp("pack") / "live.yaml"
    path.write_text(PACK, encoding="utf-8")
    st = ServerThread({"analytics.rule_packs": str(path)}).start()
    yield st
    st.stop()


def test_open_speech_stops_the_live_silence(live_server, upgrade_call):
    wav, truth = upgrade_call
    assert max(t["end"] - t["start"] for t in truth["turns"]) > 6  # long turns: the case that matters
    res = live_server.call(replay(live_server.url(), wav, speed=None, encoding="mulaw", call_id="live-speech",
                                  language="en"))
    alerts = [a for a in res.of_type("alert") if a["state"] == "confirmed"]
    start = [a["media_time"] for a in alerts if a["rule_id"] == "silence_at_start"]
    assert start and start[0] < 1.2  # the rules run live on the media clock (1.1 s before the agent speaks)
    assert [a["media_time"] for a in alerts if a["rule_id"] == "silence_3s"] == []
    assert res.summary["analytics"]["talk"]["longest_silence"] < 3.0
