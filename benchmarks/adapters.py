"""Telephony adapter cost: μs per 20 ms frame (sans-I/O parse + decode), and capacity through the
Twilio and AudioHook adapters against our own protocol in the same run.

    python -m benchmarks.adapters [--calls 40] [--call-seconds 30]

Part 1 feeds the frames each platform sends for a 2-channel 8 kHz call (built by
speechiq.replay.platforms) through its adapter, then through the engine's G.711/L16 decode, and
reports the mean cost per 20 ms of call audio. Part 2 runs N concurrent real-time calls through a
``speechiq serve`` subprocess per protocol; platform sockets carry no transcripts back, so each
client watches its call on ``/v1/calls/{id}/events`` and latency = arrival of a final − the wall
time at which the audio at its end was sent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
import uuid
from typing import Any

from websockets.asyncio.client import connect

from speechiq.adapters.registry import ROUTES
from speechiq.audio.codecs import decode
from speechiq.audio.wavio import WavAudio
from speechiq.ingest import AudioChunk, CallStart
from speechiq.replay.client import replay
from speechiq.replay.platform_client import replay_platform
from speechiq.replay.platforms import WaitFor, messages

from .capacity import P95_BOUND, load_calls
from .common import ServerProcess, percentile, print_table, require_shared, write_json

PROTOCOLS = ("twilio", "audiohook", "asterisk", "fork", "jambonz", "vonage")


class _Req:
    def __init__(self, path: str) -> None:
        self.path = path
        self.headers: dict[str, str] = {}


def adapter_cost(wav: WavAudio, protocol: str, repeats: int = 3) -> float:
    """Mean μs per 20 ms of call audio through the adapter and the audio decode."""
    frames = [f for _, f in messages(protocol, wav, call_id=str(uuid.uuid4())) if not isinstance(f, WaitFor)]
    factory = ROUTES[f"/v1/{protocol}"]
    best = float("inf")
    for _ in range(repeats):
        adapter = factory(None, _Req(f"/v1/{protocol}"))
        start: CallStart | None = None
        t0 = time.perf_counter()
        for f in frames:
            events = adapter.feed_text(f) if isinstance(f, str) else adapter.feed_bytes(f)
            adapter.outbox()
            for ev in events:
                if isinstance(ev, CallStart):
                    start = ev
                elif isinstance(ev, AudioChunk) and start is not None:
                    decode(ev.data, start.encoding)
        best = min(best, time.perf_counter() - t0)
    return best / (wav.duration / 0.020) * 1e6


def native_cost(wav: WavAudio, repeats: int = 3) -> float:
    from speechiq.adapters.native import NativeAdapter
    from speechiq.replay.client import encode, start_message

    start = json.dumps(start_message(wav, encoding="mulaw", call_id="x", roles=None, language="en", metadata=None,
                                     partials=False))
    step = wav.sample_rate // 50
    frames = [encode(wav.samples[i:i + step], "mulaw") for i in range(0, len(wav.samples), step)]
    best = float("inf")
    for _ in range(repeats):
        a = NativeAdapter()
        a.feed_text(start)
        t0 = time.perf_counter()
        for f in frames:
            for ev in a.feed_bytes(f):
                decode(ev.data, a.start.encoding)  # type: ignore[union-attr]
        best = min(best, time.perf_counter() - t0)
    return best / len(frames) * 1e6


async def _watched(srv: ServerProcess, protocol: str, wav: WavAudio, call_id: str) -> list[float]:
    """Stream one call as ``protocol`` and return its final latencies (seconds)."""
    if protocol == "speechiq":
        res = await replay(srv.url(), wav, speed=1.0, encoding="mulaw", language="en", call_id=call_id,
                           partials=False)
        return res.final_latencies()
    finals: list[dict[str, Any]] = []
    async with connect(srv.url(f"/v1/calls/{call_id}/events")) as tap:
        await tap.recv()  # subscribed

        async def watch() -> None:
            async for raw in tap:
                ev = json.loads(raw)
                ev["_recv"] = time.time()
                if ev.get("type") == "transcript" and ev.get("is_final"):
                    finals.append(ev)
                if ev.get("type") == "summary":
                    return

        watcher = asyncio.create_task(watch())
        res = await replay_platform(srv.url(f"/v1/{protocol}"), wav, protocol=protocol, speed=1.0,
                                    call_id=call_id, api_key="bench")
        try:
            await asyncio.wait_for(watcher, 60)
        except asyncio.TimeoutError:
            watcher.cancel()
    out = []
    for ev in finals:
        sent = res.wall_when_sent(ev["end"])
        if sent is not None:
            out.append(ev["_recv"] - sent)
    return out


async def capacity_level(srv: ServerProcess, protocol: str, calls: list[WavAudio], n: int) -> dict[str, Any]:
    rng = random.Random(n)

    async def one(i: int) -> list[float] | Exception:
        await asyncio.sleep(rng.uniform(0, 8.0))
        try:
            return await _watched(srv, protocol, calls[i % len(calls)], str(uuid.uuid4()))
        except Exception as exc:
            return exc

    results = await asyncio.gather(*(one(i) for i in range(n)))
    lat = [x for r in results if isinstance(r, list) for x in r]
    failed = sum(1 for r in results if isinstance(r, Exception))
    return {"protocol": protocol, "calls": n, "failed": failed, "finals": len(lat),
            "p50_s": percentile(lat, 50), "p95_s": percentile(lat, 95)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=40)
    ap.add_argument("--call-seconds", type=float, default=30.0)
    ap.add_argument("--protocols", default="speechiq,twilio,audiohook")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    if not require_shared():
        return 0
    calls = load_calls(args.call_seconds)
    wav = calls[0]
    rows = [["speechiq (ours)", native_cost(wav)]]
    for p in PROTOCOLS:
        mono = p in ("asterisk", "vonage")
        w = WavAudio(wav.sample_rate, wav.samples[:, :1].copy(), wav.encoding_hint) if mono else wav
        rows.append([p + (" (mono)" if mono else ""), adapter_cost(w, p)])
    print_table("adapter cost per 20 ms frame (parse + decode), μs", ["protocol", "μs / frame"], rows)
    cap = []
    with ServerProcess() as srv:
        for p in args.protocols.split(","):
            r = asyncio.run(capacity_level(srv, p, calls, args.calls))
            r["ok"] = r["failed"] == 0 and r["p95_s"] <= P95_BOUND
            cap.append(r)
            print(f"  {p:10s} N={args.calls}: p50 {r['p50_s']:.2f} s  p95 {r['p95_s']:.2f} s  failed {r['failed']}",
                  flush=True)
    base = next((r for r in cap if r["protocol"] == "speechiq"), None)
    for r in cap:
        r["p95_ratio_vs_ours"] = r["p95_s"] / base["p95_s"] if base and base["p95_s"] else float("nan")
    table = [[r["protocol"], r["finals"], r["p50_s"], r["p95_s"], r["p95_ratio_vs_ours"], r["failed"]] for r in cap]
    print_table(f"{args.calls} concurrent real-time calls per protocol",
                ["protocol", "finals", "p50 s", "p95 s", "p95 / ours", "failed"], table)
    write_json("adapters", {"frame_cost_us": {r[0]: r[1] for r in rows}, "capacity": cap,
                            "calls": args.calls, "frame_ms": 20}, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
