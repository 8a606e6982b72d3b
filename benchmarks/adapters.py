"""Telephony adapter cost: μs per 20 ms frame (sans-I/O parse + decode) for every protocol, and
capacity through the Twilio and AudioHook adapters against our own protocol at the same load.

    python -m benchmarks.adapters [--levels 20,30,40,50] [--protocols speechiq,twilio,audiohook]
    python -m benchmarks.adapters --levels 2 --quick        # smoke test (about a minute)

Part 1 feeds the frames each platform sends for a call (built by speechiq.replay.platforms:
2-channel 8 kHz for the stereo platforms, one 8 kHz leg for AudioSocket, chan_websocket and Vonage)
through its adapter, then through the engine's G.711/L16 decode, and reports the best of a few runs
as μs per 20 ms of call audio. Part 2 starts one ``speechiq serve`` subprocess and, for each level N
and each protocol in turn, streams N concurrent real-time calls (same calls, same start stagger);
platform sockets carry no transcripts back, so each client watches its call on
``/v1/calls/{id}/events`` (our protocol gets them on its own socket). Latency = arrival of a final
− the wall time at which the audio at its end was sent. A protocol's capacity is the largest N with
p95 ≤ 1.5 s and no failed call; JSON ``capacity_by_protocol`` holds it per protocol with its
ratio to ours (1.0 = no loss), and ``p95_ratio_vs_ours`` per level.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
import uuid
from collections.abc import Callable
from typing import Any

from speechiq.adapters.base import Adapter
from speechiq.adapters.registry import ROUTES, audiosocket_factory
from speechiq.audio.codecs import decode
from speechiq.audio.wavio import WavAudio
from speechiq.ingest import AudioChunk, CallStart
from speechiq.replay.client import replay
from speechiq.replay.platform_client import replay_platform
from speechiq.replay.platforms import WaitFor, messages
from speechiq.replay.watch import CallWatcher

from .capacity import P95_BOUND, load_calls
from .common import ServerProcess, percentile, print_table, require_shared, write_json

# protocol → mono (one leg per connection)?
FRAME_PROTOCOLS = {"twilio": False, "telnyx": False, "signalwire": False, "audiohook": False,
                   "fork": False, "jambonz": False, "audiosocket": True, "asterisk": True, "vonage": True}


class _Req:
    def __init__(self, path: str) -> None:
        self.path = path
        self.headers: dict[str, str] = {}


def _factory(protocol: str) -> Callable[[], Adapter]:
    if protocol == "audiosocket":
        return lambda: audiosocket_factory(None)
    route = ROUTES[f"/v1/{protocol}"]
    return lambda: route(None, _Req(f"/v1/{protocol}"))


def adapter_cost(wav: WavAudio, protocol: str, repeats: int = 3) -> float:
    """Best-of-``repeats`` μs per 20 ms of call audio through the adapter and the audio decode."""
    frames = [f for _, f in messages(protocol, wav, call_id=str(uuid.uuid4())) if not isinstance(f, WaitFor)]
    make = _factory(protocol)
    best = float("inf")
    for _ in range(repeats):
        adapter = make()
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
        adapter.transport_closed(1000)  # flushes what a platform held for reordering
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


def frame_costs(wav: WavAudio, repeats: int) -> dict[str, float]:
    mono = WavAudio(wav.sample_rate, wav.samples[:, :1].copy(), wav.encoding_hint)
    out = {"speechiq": native_cost(wav, repeats)}
    for p, is_mono in FRAME_PROTOCOLS.items():
        out[p] = adapter_cost(mono if is_mono else wav, p, repeats)
    return out


async def _watched(srv: ServerProcess, protocol: str, wav: WavAudio, call_id: str) -> list[float]:
    """Stream one call as ``protocol`` at 1× and return its final latencies (seconds)."""
    if protocol == "speechiq":
        res = await replay(srv.url(), wav, speed=1.0, encoding="mulaw", language="en", call_id=call_id,
                           partials=False, wait_summary_s=60)
        if res.close_code not in (1000, None) or res.summary is None:
            raise RuntimeError(f"call ended {res.close_code} {res.close_reason}")
        return res.final_latencies()
    finals: list[dict[str, Any]] = []

    def on_event(ev: dict[str, Any]) -> None:
        if ev.get("type") == "transcript" and ev.get("is_final"):
            ev["_recv"] = time.time()
            finals.append(ev)

    watcher = await CallWatcher(srv.url(f"/v1/calls/{call_id}/events"), on_event).start()
    res = await replay_platform(srv.url(f"/v1/{protocol}"), wav, protocol=protocol, speed=1.0,
                                call_id=call_id, api_key="bench")
    summary = await watcher.wait(60)
    if res.close_code not in (1000, None) or not summary:
        raise RuntimeError(f"call ended {res.close_code} {res.close_reason} (summary: {bool(summary)})")
    out = []
    for ev in finals:
        sent = res.wall_when_sent(ev["end"])
        if sent is not None:
            out.append(ev["_recv"] - sent)
    return out


async def capacity_level(srv: ServerProcess, protocol: str, calls: list[WavAudio], n: int,
                         stagger_s: float) -> dict[str, Any]:
    rng = random.Random(n)  # the same start times for every protocol at this level

    async def one(i: int) -> list[float] | Exception:
        await asyncio.sleep(rng.uniform(0, stagger_s))
        try:
            return await _watched(srv, protocol, calls[i % len(calls)], str(uuid.uuid4()))
        except Exception as exc:  # a refused or broken call counts against the level
            return exc

    results = await asyncio.gather(*(one(i) for i in range(n)))
    lat = [x for r in results if isinstance(r, list) for x in r]
    errors = [repr(r)[:200] for r in results if isinstance(r, Exception)]
    p95 = percentile(lat, 95)
    return {"protocol": protocol, "calls": n, "failed": len(errors), "errors": errors[:3], "finals": len(lat),
            "p50_s": percentile(lat, 50), "p95_s": p95, "ok": not errors and bool(lat) and p95 <= P95_BOUND}


def capacity_by_protocol(levels: list[dict[str, Any]], protocols: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for p in protocols:
        rows = [r for r in levels if r["protocol"] == p]
        out[p] = {"capacity": max((r["calls"] for r in rows if r["ok"]), default=0),
                  "levels": {r["calls"]: {k: r[k] for k in ("p50_s", "p95_s", "finals", "failed", "ok")}
                             for r in rows}}
    ours = out.get("speechiq", {}).get("capacity", 0)
    for p in protocols:
        out[p]["ratio_vs_ours"] = out[p]["capacity"] / ours if ours else float("nan")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", default="20,30,40,50", help="concurrent calls per level, e.g. 20,30,40")
    ap.add_argument("--protocols", default="speechiq,twilio,audiohook")
    ap.add_argument("--call-seconds", type=float, default=30.0, help="cap each call's length")
    ap.add_argument("--stagger", type=float, default=8.0, help="spread call starts over this many seconds")
    ap.add_argument("--repeats", type=int, default=5, help="frame-cost runs per protocol (best is kept)")
    ap.add_argument("--quick", action="store_true", help="smoke test: 8 s calls, 1 s stagger, 1 frame-cost run")
    ap.add_argument("--no-capacity", action="store_true", help="frame costs only")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    if args.quick:
        args.call_seconds, args.stagger, args.repeats = min(args.call_seconds, 8.0), min(args.stagger, 1.0), 1
    if not require_shared():
        return 0
    calls = load_calls(args.call_seconds)
    costs = frame_costs(calls[0], args.repeats)
    ours_cost = costs["speechiq"]
    print_table("adapter cost per 20 ms frame (parse + decode), μs",
                ["protocol", "μs / frame", "× ours"],
                [[p + (" (mono leg)" if FRAME_PROTOCOLS.get(p) else ""), c, c / ours_cost] for p, c in costs.items()])
    result: dict[str, Any] = {"frame_ms": 20, "frame_cost_us": costs, "call_seconds": args.call_seconds}
    if not args.no_capacity:
        protocols = args.protocols.split(",")
        levels = [int(x) for x in args.levels.split(",")]
        rows: list[dict[str, Any]] = []
        with ServerProcess() as srv:
            for n in levels:
                for p in protocols:
                    server0, client0 = srv.cpu_s(), time.process_time()
                    r = asyncio.run(capacity_level(srv, p, calls, n, args.stagger))
                    # both sides share the machine's cores: what each used in this level
                    r["server_cpu_s"] = round(srv.cpu_s() - server0, 2)
                    r["client_cpu_s"] = round(time.process_time() - client0, 2)
                    rows.append(r)
                    print(f"  {p:10s} N={n:3d}: p50 {r['p50_s']:.2f} s  p95 {r['p95_s']:.2f} s  finals {r['finals']}"
                          f"  failed {r['failed']}{'  ' + r['errors'][0] if r['errors'] else ''}", flush=True)
        for r in rows:
            base = next((b for b in rows if b["protocol"] == "speechiq" and b["calls"] == r["calls"]), None)
            r["p95_ratio_vs_ours"] = r["p95_s"] / base["p95_s"] if base and base["p95_s"] else float("nan")
        by_protocol = capacity_by_protocol(rows, protocols)
        print_table(f"concurrent real-time calls per protocol (p95 ≤ {P95_BOUND} s)",
                    ["protocol", "calls", "finals", "p50 s", "p95 s", "p95 / ours", "failed", "server CPU s",
                     "client CPU s"],
                    [[r["protocol"], r["calls"], r["finals"], r["p50_s"], r["p95_s"], r["p95_ratio_vs_ours"],
                      r["failed"], r["server_cpu_s"], r["client_cpu_s"]] for r in rows])
        print("\ncapacity: " + ", ".join(f"{p} {v['capacity']} ({v['ratio_vs_ours']:.2f}× ours)"
                                         for p, v in by_protocol.items()))
        result.update({"levels": rows, "capacity_by_protocol": by_protocol, "p95_bound_s": P95_BOUND,
                       "stagger_s": args.stagger})
    write_json("adapters", result, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
