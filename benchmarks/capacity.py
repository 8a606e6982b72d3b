"""Capacity: N concurrent 2-channel calls replayed in real time; p50/p95 utterance end → final.

    python -m benchmarks.capacity [--model tiny.en] [--levels 20,40,60] [--baseline-levels 2,4,8]

For each decoder (ours: cross-call batches + short windows; baseline: plain faster-whisper
``WhisperModel.transcribe`` per VAD utterance, one at a time), the server runs in a subprocess
and N clients stream calls from ../shared/calls at 1× on the media clock. Latency = arrival of
the final − the wall time at which the audio at the utterance's end was sent (includes the
VAD hangover). Capacity = the largest N whose p95 ≤ 1.5 s with no refused calls.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
from typing import Any

from speechiq.audio.wavio import WavAudio, read_wav
from speechiq.replay.client import replay

from .common import ServerProcess, english_calls, percentile, print_table, require_shared, write_json

P95_BOUND = 1.5


def load_calls(max_s: float) -> list[WavAudio]:
    out = []
    for p in english_calls():
        w = read_wav(p)
        n = min(len(w.samples), int(max_s * w.sample_rate))
        out.append(WavAudio(sample_rate=w.sample_rate, samples=w.samples[:n], encoding_hint=w.encoding_hint))
    return out


async def run_level(url: str, calls: list[WavAudio], n: int, stagger_s: float, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)

    async def one(i: int) -> Any:
        await asyncio.sleep(rng.uniform(0, stagger_s))
        try:
            return await replay(url, calls[i % len(calls)], speed=1.0, encoding="mulaw", language="en",
                                call_id=f"cap-{n}-{i}", wait_summary_s=60)
        except Exception as exc:  # a refused or failed call counts against the level
            return exc

    results = await asyncio.gather(*(one(i) for i in range(n)))
    lat: list[float] = []
    failed = shed = finals = 0
    for r in results:
        if isinstance(r, Exception) or r.close_code not in (1000, None) or r.summary is None:
            failed += 1
            continue
        lat += r.final_latencies()
        finals += len(r.finals)
        shed += r.summary.get("shed_partials", 0)
    return {"calls": n, "failed": failed, "finals": finals, "shed_partials": shed,
            "p50_s": percentile(lat, 50), "p95_s": percentile(lat, 95), "max_s": max(lat, default=float("nan"))}


async def idle_rss(srv: ServerProcess, k: int) -> float:
    """RSS growth per idle call: k calls started, 1 s of silence each, nothing else."""
    from websockets.asyncio.client import connect

    before = srv.rss_mb()
    conns = []
    for i in range(k):
        ws = await connect(srv.url())
        await ws.send(json.dumps({"type": "start", "call_id": f"idle-{i}", "encoding": "mulaw",
                                  "sample_rate": 8000, "language": "en",
                                  "channels": [{"role": "agent"}, {"role": "customer"}]}))
        await ws.recv()
        await ws.send(b"\xff" * 16000)
        conns.append(ws)
    await asyncio.sleep(2)
    after = srv.rss_mb()
    for ws in conns:
        await ws.send('{"type":"stop"}')
        await ws.close()
    return (after - before) / k


def bench_decoder(decoder: str, levels: list[int], args: argparse.Namespace, calls: list[WavAudio]) -> dict:
    env = {"SPEECHIQ_ASR__DECODER": decoder, "SPEECHIQ_ASR__MODEL": args.model,
           "SPEECHIQ_ASR__DEVICE": args.device}
    if decoder == "plain":  # the baseline: one transcribe() per VAD utterance, nothing speculative
        env["SPEECHIQ_ASR__PARTIALS"] = "false"
        env["SPEECHIQ_ASR__EARLY_FINALS"] = "false"
    rows = []
    with ServerProcess(env) as srv:
        base_rss = srv.rss_mb()
        per_idle = asyncio.run(idle_rss(srv, args.idle_calls))
        for n in levels:
            r = asyncio.run(run_level(srv.url(), calls, n, args.stagger, seed=n))
            r["rss_mb"] = srv.rss_mb()
            r["ok"] = r["failed"] == 0 and r["p95_s"] <= P95_BOUND
            rows.append(r)
            print(f"  {decoder:8s} N={n:3d}: p50 {r['p50_s']:.2f} s  p95 {r['p95_s']:.2f} s  "
                  f"failed {r['failed']}  shed {r['shed_partials']}  rss {r['rss_mb']:.0f} MB", flush=True)
            if not r["ok"] and args.stop_on_fail:
                break
    capacity = max((r["calls"] for r in rows if r["ok"]), default=0)
    return {"decoder": decoder, "levels": rows, "capacity": capacity, "rss_base_mb": base_rss,
            "rss_per_idle_call_mb": per_idle}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny.en")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--levels", default="20,30,40,50,60")
    ap.add_argument("--baseline-levels", default="1,2,3,4,6,8")
    ap.add_argument("--call-seconds", type=float, default=45.0, help="cap each call's length")
    ap.add_argument("--stagger", type=float, default=8.0, help="spread call starts over this many seconds")
    ap.add_argument("--idle-calls", type=int, default=50)
    ap.add_argument("--stop-on-fail", action=argparse.BooleanOptionalAction, default=False)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    if not require_shared():
        return 0
    calls = load_calls(args.call_seconds)
    ours = bench_decoder("batched", [int(x) for x in args.levels.split(",")], args, calls)
    base = bench_decoder("plain", [int(x) for x in args.baseline_levels.split(",")], args, calls)
    rows = [[d["decoder"], r["calls"], r["finals"], r["p50_s"], r["p95_s"], r["max_s"], r["failed"],
             r["shed_partials"], "yes" if r["ok"] else "no"] for d in (ours, base) for r in d["levels"]]
    print_table(f"capacity ({args.model}, {args.device}): utterance end → final, real-time replay",
                ["decoder", "calls", "finals", "p50 s", "p95 s", "max s", "failed", "shed", "p95≤1.5s"], rows)
    ratio = ours["capacity"] / base["capacity"] if base["capacity"] else float("inf")
    print(f"\ncapacity: ours {ours['capacity']} calls, baseline {base['capacity']} calls, ratio {ratio:.1f}x; "
          f"RSS per idle call {ours['rss_per_idle_call_mb']:.2f} MB (base {ours['rss_base_mb']:.0f} MB)")
    write_json("capacity", {"model": args.model, "device": args.device, "p95_bound_s": P95_BOUND,
                            "ours": ours, "baseline": base, "ratio": ratio}, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
