"""``speechiq replay --protocol P`` against a real server: the platform stream is played as that
platform would, and the engine's transcript of the call is printed from its call tap (platform
sockets carry none back)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from speechiq.cli import main
from speechiq.replay.watch import tap_url

DEMO = Path(__file__).parents[1] / "speechiq" / "data" / "demo_call.wav"


@pytest.mark.parametrize("protocol", ["twilio", "audiohook"])
def test_platform_replay_prints_the_engines_transcript(server, capsys, protocol) -> None:
    argv = ["replay", str(DEMO), "--protocol", protocol, "--url", server.url(f"/v1/{protocol}"),
            "--speed", "max", "--json", "--call-id", f"cli-{protocol}-00000000"]
    if protocol == "audiohook":
        argv[-1] = "5f0c7a52-9d0e-4a8e-8a60-2d2a3f0e6a11"  # AudioHook session ids are UUIDs
    assert main(argv) == 0
    cap = capsys.readouterr()
    events = [json.loads(line) for line in cap.out.splitlines() if line.startswith("{")]
    finals = [e for e in events if e["type"] == "transcript" and e["is_final"]]
    assert {e["role"] for e in finals} == {"agent", "customer"}
    assert "supervisor" in " ".join(e["text"].lower() for e in finals)
    assert events[-1]["type"] == "summary" and events[-1]["utterances"] == len(finals)
    assert f"as {protocol}" in cap.err and "closed 1000" in cap.err


def test_tap_url_from_the_stream_url() -> None:
    assert tap_url("ws://h:1/v1/twilio", "a@b") == "ws://h:1/v1/calls/a%40b/events"
    assert tap_url("wss://h/v1/fork", "x", api_key="k") == "wss://h/v1/calls/x/events?api_key=k"
    assert tap_url("tcp://h:9092", "x", events_url="ws://h:8765") == "ws://h:8765/v1/calls/x/events"
    with pytest.raises(ValueError, match="WebSocket"):
        tap_url("tcp://h:9092", "x")
