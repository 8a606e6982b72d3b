"""``speechiq demo``: the whole product in one command, offline, on embedded defaults.

Starts the engine on an ephemeral local port, streams a bundled two-channel μ-law sample call
through a real WebSocket with our protocol, prints the live transcript per speaker and the
alerts as they arrive, then says where to look next.
"""

from __future__ import annotations

import asyncio
import sys
import time
from importlib import resources
from typing import Any

from .cli import format_alert, format_transcript
from .settings import Settings, with_overrides

SAMPLE = "demo_call.wav"


def sample_path() -> str:
    return str(resources.files("speechiq") / "data" / SAMPLE)


async def _demo(settings: Settings, speed: float | None) -> int:
    from .audio.wavio import read_wav
    from .engine import Engine
    from .replay.client import replay
    from .server.app import SpeechIQServer

    color = sys.stdout.isatty()
    print(f"loading model {settings.asr.model!r} ({settings.asr.device}) …", flush=True)
    t = time.time()
    engine = await asyncio.to_thread(lambda: Engine(settings).load())
    srv = await SpeechIQServer(engine).start()
    url = f"ws://127.0.0.1:{srv.port}/v1/calls"
    print(f"engine ready in {time.time() - t:.1f} s, listening on {url}", flush=True)
    wav = read_wav(sample_path())
    print(f"streaming {SAMPLE} ({wav.duration:.0f} s, {wav.channels} channels, {wav.sample_rate} Hz, "
          f"μ-law) at {'max' if speed is None else f'{speed:g}x'} speed …\n", flush=True)

    def on_event(ev: dict[str, Any]) -> None:
        kind = ev.get("type")
        if kind == "transcript" and ev["is_final"]:
            print(format_transcript(ev, color), flush=True)
        elif kind == "alert" and ev["state"] != "provisional":
            print(format_alert(ev), flush=True)
        elif kind == "error":
            print(f"  ! {ev['code']}: {ev['message']}", flush=True)

    try:
        res = await replay(url, wav, speed=speed, encoding="mulaw", call_id="demo-call", language="en",
                           metadata={"queue": "billing", "agent_id": "demo-agent"}, on_event=on_event)
    finally:
        await srv.close()
    summary = res.summary or {}
    lat = sorted(res.final_latencies())
    print(f"\n-- {summary.get('utterances', 0)} final utterances, {summary.get('alerts', 0)} alerts, "
          f"{summary.get('duration', 0):.1f} s of call audio"
          + (f"; median end→final latency {lat[len(lat) // 2] * 1000:.0f} ms" if lat else ""))
    print("""
Where to look next:
  speechiq serve                          run the engine (ws://127.0.0.1:8765/v1/calls, /healthz, /metrics)
  speechiq replay CALL.wav --speed 1      stream your own recording to it (docs/protocol.md)
  speechiq transcribe CALL.wav --json     offline transcript, one JSON utterance per line
  speechiq analyze CALL.wav               offline alerts from the rule pack (docs/rules.md)
  docs/telephony.md                       point Twilio / Genesys / Asterisk / FreeSWITCH at it
""")
    return 0 if res.close_code in (1000, None) else 1


def run_demo(settings: Settings, speed: float | None = 4.0) -> int:
    settings = with_overrides(settings, {"server.port": 0, "server.host": "127.0.0.1"})
    return asyncio.run(_demo(settings, speed))
