"""Alert quality (precision / recall / F1 per label) and alert latency of a rule pack on ../shared/calls.

    python -m benchmarks.alerts [--mode engine|truth] [--model tiny.en] [--zh-model base]
                                [--pack PATH] [--speed 1.0] [--parallel 4] [--json OUT]

mode ``truth``: the truth turns go straight into :class:`CallAnalytics` as final transcripts (one
partial of the first half of each turn before it, open speech and VAD activity from the turn
times, clock ticks every 0.25 s): rule quality without recognition errors.
mode ``engine``: a real ``speechiq serve`` subprocess per model (English calls on ``--model``,
Mandarin calls on the multilingual ``--zh-model``) and every call replayed over the WebSocket
protocol as mu-law at ``--speed`` × real time; the alerts are the ``alert`` events received
(confirmed, or provisional and never retracted).

Scoring: a turn label is hit when an alert of that label overlaps [turn.start − 2 s, turn.end + 2 s]
(alert start..end or its media_time); call-level labels (``process.missing_disclosure``: the call has
no ``compliance.disclosure`` turn) are hit by an alert of the label anywhere in the call. An alert
that matches no truth item of its label is a false positive; an alert matching an item another
alert already hit is a duplicate (neither TP nor FP). P = TP / (TP + FP), R = TP / support.
Latency (engine mode) = wall time the alert arrived − wall time the audio up to the alert's ``end``
was sent (the triggering utterance's end; the deadline for deadline alerts); call-scope alerts,
emitted at hang-up, are left out. Results merge into benchmarks/results/alerts.json by mode.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .common import CALLS, RESULTS, ServerProcess, all_calls, percentile, print_table, require_shared, truth

WINDOW_S = 2.0
TICK_S = 0.25
CALL_LEVEL = frozenset({"process.missing_disclosure", "process.no_greeting", "process.slow_response"})


@dataclass(frozen=True)
class TruthItem:
    call: str
    label: str
    start: float | None  # None: call-level
    end: float | None
    text: str = ""


@dataclass(frozen=True)
class Fired:
    call: str
    label: str
    rule_id: str
    start: float
    end: float
    media_time: float
    text: str
    trigger: str  # partial | final | deadline | state | call
    latency_s: float | None = None


# ---- truth ---------------------------------------------------------------------------------------
def truth_items(call: dict[str, Any]) -> list[TruthItem]:
    """Turn labels, plus the call-level missing disclosure of a call without a disclosure turn."""
    out = [TruthItem(call["id"], label, t["start"], t["end"], t["text"])
           for t in call["turns"] for label in t["labels"]]
    if not any(i.label == "compliance.disclosure" for i in out):
        out.append(TruthItem(call["id"], "process.missing_disclosure", None, None))
    return out


def _overlaps(f: Fired, item: TruthItem) -> bool:
    if item.start is None or item.end is None or f.label in CALL_LEVEL:
        return True
    lo, hi = item.start - WINDOW_S, item.end + WINDOW_S
    return (f.start <= hi and f.end >= lo) or lo <= f.media_time <= hi


def score(items: Sequence[TruthItem], fired: Sequence[Fired]) -> dict[str, Any]:
    """Per-label support/TP/FP/FN/duplicates/P/R/F1, micro totals, and the misses and false alarms."""
    by_key: dict[tuple[str, str], list[TruthItem]] = defaultdict(list)
    for it in items:
        by_key[(it.call, it.label)].append(it)
    hit: set[TruthItem] = set()
    fp: list[Fired] = []
    dup: Counter[str] = Counter()
    for f in sorted(fired, key=lambda x: (x.call, x.media_time)):
        cands = [it for it in by_key.get((f.call, f.label), []) if _overlaps(f, it)]
        if not cands:
            fp.append(f)
            continue
        fresh = [it for it in cands if it not in hit]
        if fresh:
            hit.add(min(fresh, key=lambda it: abs((it.start or 0.0) - f.start)))
        else:
            dup[f.label] += 1
    labels = sorted({i.label for i in items} | {f.label for f in fired})
    per: dict[str, dict[str, Any]] = {}
    for lab in labels:
        support = sum(1 for i in items if i.label == lab)
        tp = sum(1 for i in hit if i.label == lab)
        nfp = sum(1 for f in fp if f.label == lab)
        per[lab] = _prf(support, tp, nfp) | {"duplicates": dup[lab]}
    support = len(items)
    micro = _prf(support, len(hit), len(fp)) | {"duplicates": sum(dup.values())}
    misses = [asdict(i) for i in items if i not in hit]
    return {"labels": per, "micro": micro, "misses": misses, "false_alarms": [asdict(f) for f in fp]}


def _prf(support: int, tp: int, fp: int) -> dict[str, Any]:
    p = tp / (tp + fp) if tp + fp else (1.0 if support == 0 else 0.0)
    r = tp / support if support else (1.0 if fp == 0 else 0.0)
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {"support": support, "tp": tp, "fp": fp, "fn": support - tp, "precision": round(p, 3),
            "recall": round(r, 3), "f1": round(f1, 3)}


# ---- truth mode ----------------------------------------------------------------------------------
def _half(text: str, lang: str) -> str:
    if lang == "zh":
        return text[: max(1, len(text) // 2)]
    words = text.split()
    return " ".join(words[: max(1, len(words) // 2)])


def replay_truth(call: dict[str, Any], pack: Any, scorer: Any, semantic: Any) -> list[Any]:
    """Feed one call's truth turns to CallAnalytics in media-time order; every alert returned."""
    from speechiq.analytics.engine import CallAnalytics
    from speechiq.events import Transcript

    cid, lang = call["id"], call["language"]
    ca = CallAnalytics(cid, pack, language=lang, metadata={}, sentiment=scorer, semantic=semantic)
    timeline: list[tuple[float, int, Any]] = []
    for k, t in enumerate(call["turns"]):
        role, ch = t["speaker"], call["channels"].index(t["speaker"])
        mk = lambda final, text, end, k=k, t=t, role=role, ch=ch: Transcript(  # noqa: E731
            call_id=cid, channel=ch, role=role, utterance_id=f"{cid}:{k}", is_final=final, start=t["start"],
            end=end, text=text, language=lang)
        mid = (t["start"] + t["end"]) / 2
        timeline.append((mid, 1, ("transcript", mk(False, _half(t["text"], lang), mid))))
        timeline.append((t["end"], 0, ("activity", (role, ch, t["start"], t["end"]))))
        timeline.append((t["end"], 1, ("transcript", mk(True, t["text"], t["end"]))))
        # open speech, reported as the session does while the VAD utterance lasts
        timeline.append((t["start"], 2, ("speech", (role, ch, t["start"], t["start"]))))
        for i in range(int(t["start"] / TICK_S) + 1, int(t["end"] / TICK_S) + 1):
            if i * TICK_S < t["end"]:
                timeline.append((i * TICK_S, 2, ("speech", (role, ch, t["start"], i * TICK_S))))
    n = int(call["duration"] / TICK_S)
    timeline += [(i * TICK_S, 3, ("tick", i * TICK_S)) for i in range(1, n + 1)]
    out: list[Any] = []
    for _, _, (kind, arg) in sorted(timeline, key=lambda x: (x[0], x[1])):
        if kind == "tick":
            out += ca.advance(arg)
        elif kind == "activity":
            out += ca.on_activity(*arg)
        elif kind == "speech":
            out += ca.on_speech(*arg)
        else:
            out += ca.on_transcript(arg)
    alerts, _ = ca.finish(call["duration"])
    return out + alerts


def _final_alerts(events: Iterable[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(first event, last event) of every alert id whose last state is not retracted."""
    first: dict[str, dict[str, Any]] = {}
    last: dict[str, dict[str, Any]] = {}
    for e in events:
        first.setdefault(e["alert_id"], e)
        last[e["alert_id"]] = e
    return [(first[k], v) for k, v in last.items() if v["state"] != "retracted"]


def _fired(call_id: str, first: dict[str, Any], last: dict[str, Any], latency: float | None) -> Fired:
    return Fired(call_id, last["label"], last["rule_id"], float(last["start"]), float(last["end"]),
                 float(last["media_time"]), last.get("text", ""), (first.get("metadata") or {}).get("trigger", ""),
                 latency)


def run_truth(calls: list[dict[str, Any]], pack_path: str | None) -> tuple[list[Fired], dict[str, Any]]:
    from speechiq.analytics.sentiment import make_scorer
    from speechiq.events import to_dict
    from speechiq.rules import compile_pack, load_pack
    from speechiq.rules.registry import DEFAULT_PACK
    from speechiq.rules.semantic import load_semantic_model
    from speechiq.settings import AnalyticsSettings

    pack = compile_pack(load_pack(pack_path or DEFAULT_PACK))
    semantic = load_semantic_model() if pack.has_semantic else None
    scorer = make_scorer(AnalyticsSettings())
    fired: list[Fired] = []
    t0 = time.perf_counter()
    for call in calls:
        events = [to_dict(a) for a in replay_truth(call, pack, scorer, semantic)]
        fired += [_fired(call["id"], f, la, None) for f, la in _final_alerts(events)]
    return fired, {"pack_version": pack.version, "rules": len(pack.rules), "semantic": semantic is not None,
                   "seconds": round(time.perf_counter() - t0, 2)}


# ---- engine mode ---------------------------------------------------------------------------------
async def _replay_call(url: str, wav_path: Path, call: dict[str, Any], speed: float | None) -> tuple[list[Fired], Any]:
    from speechiq.audio.wavio import read_wav
    from speechiq.replay.client import replay

    res = await replay(url, read_wav(wav_path), speed=speed, encoding="mulaw", language=call["language"],
                       call_id=f"bench-{call['id']}-{time.time_ns()}", metadata={"benchmark": "alerts"},
                       wait_summary_s=300)
    out = []
    for first, last in _final_alerts(res.of_type("alert")):
        lat = None
        if (first.get("metadata") or {}).get("scope") != "call":
            sent = res.wall_when_sent(float(first["end"]))
            lat = first["_recv"] - sent if sent is not None else None
        out.append(_fired(call["id"], first, last, lat))
    return out, res


async def _replay_batch(url: str, batch: list[dict[str, Any]], speed: float | None) -> list[Any]:
    return await asyncio.gather(*(_replay_call(url, CALLS / f"{c['id']}.wav", c, speed) for c in batch),
                                return_exceptions=True)


def run_engine(calls: list[dict[str, Any]], model: str, zh_model: str, speed: float | None,
               pack_path: str | None, parallel: int = 1) -> tuple[list[Fired], dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for c in calls:
        groups[zh_model if c["language"] == "zh" else model].append(c)
    fired: list[Fired] = []
    info: dict[str, Any] = {"model": model, "zh_model": zh_model, "speed": speed, "parallel": parallel,
                            "calls": {}, "failed": {}}
    env_pack = {"SPEECHIQ_ANALYTICS__RULE_PACKS": json.dumps([str(Path(pack_path).resolve())])} if pack_path else {}
    for m, group in groups.items():
        if not m:
            continue
        print(f"  server with model {m} for {len(group)} call(s)", flush=True)
        pending = list(group)
        while pending:
            with ServerProcess({"SPEECHIQ_ASR__MODEL": m, **env_pack}) as srv:
                while pending and srv.alive():
                    batch, pending = pending[:parallel], pending[parallel:]
                    results = asyncio.run(_replay_batch(srv.url(), batch, speed))
                    restart = False
                    for c, outcome in zip(batch, results, strict=True):
                        if isinstance(outcome, OSError):  # the server went away: record it, restart for the rest
                            info["failed"][c["id"]] = (f"{type(outcome).__name__}: {outcome}; "
                                                       f"server tail: {list(srv.tail)[-5:]}")
                            print(f"    {c['id']:34s} FAILED ({outcome}); restarting the server", flush=True)
                            restart = True
                            continue
                        if isinstance(outcome, BaseException):
                            raise outcome
                        got, res = outcome
                        fired += got
                        finals = res.finals
                        info["calls"][c["id"]] = {
                            "model": m, "alerts": len(got), "finals": len(finals), "summary": res.summary is not None,
                            "transcript": [f"{f['role']}: {f['text']}" for f in finals],
                            "final_latency_p50_s": round(percentile(res.final_latencies(), 50), 3),
                            "close": [res.close_code, res.close_reason],
                            "errors": [{k: e.get(k) for k in ("type", "code", "message", "media_time")}
                                       for e in res.events if e.get("type") in ("error", "notice")]}
                        bad = info["calls"][c["id"]]["errors"]
                        print(f"    {c['id']:34s} {len(finals):3d} finals {len(got):3d} alerts  close "
                              f"{res.close_code}" + (f"  {bad}" if bad else ""), flush=True)
                    if restart:
                        break
    return fired, info


def latency_stats(fired: Sequence[Fired]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    groups: dict[str, list[float]] = defaultdict(list)
    for f in fired:
        if f.latency_s is not None:
            groups["all"].append(f.latency_s)
            groups[f.trigger or "?"].append(f.latency_s)
    for k, v in sorted(groups.items()):
        out[k] = {"n": len(v), "p50_ms": round(percentile(v, 50) * 1000, 1),
                  "p95_ms": round(percentile(v, 95) * 1000, 1), "max_ms": round(max(v) * 1000, 1)}
    return out


# ---- report --------------------------------------------------------------------------------------
def report(mode: str, calls: list[dict[str, Any]], fired: list[Fired], info: dict[str, Any]) -> dict[str, Any]:
    items = [i for c in calls for i in truth_items(c)]
    result: dict[str, Any] = {"info": info}
    langs = {c["id"]: c["language"] for c in calls}
    for name, keep in (("all", None), ("en", "en"), ("zh", "zh")):
        its = [i for i in items if keep is None or langs[i.call] == keep]
        fs = [f for f in fired if keep is None or langs[f.call] == keep]
        if its or fs:
            result[name] = score(its, fs)
    sc = result["all"]
    rows = [[lab, v["support"], v["tp"], v["fp"], v["fn"], v["precision"], v["recall"], v["f1"]]
            for lab, v in sc["labels"].items()]
    m = sc["micro"]
    rows.append(["ALL (micro)", m["support"], m["tp"], m["fp"], m["fn"], m["precision"], m["recall"], m["f1"]])
    print_table(f"alerts, mode {mode} ({len(calls)} calls)", ["label", "support", "TP", "FP", "FN", "P", "R", "F1"],
                rows)
    for lang in ("en", "zh"):
        if lang in result:
            mm = result[lang]["micro"]
            print(f"  {lang}: P {mm['precision']:.3f}  R {mm['recall']:.3f}  F1 {mm['f1']:.3f}"
                  f"  (support {mm['support']})")
    if mode == "engine":
        result["latency"] = latency_stats(fired)
        for k, v in result["latency"].items():
            print(f"  latency {k:8s} n={v['n']:3d}  p50 {v['p50_ms']:7.1f} ms  p95 {v['p95_ms']:7.1f} ms")
    below = [lab for lab, v in sc["labels"].items() if v["support"] and (v["precision"] < 0.9 or v["recall"] < 0.9)]
    result["below_target"] = below
    print(f"  labels below P/R 0.9: {', '.join(below) or 'none'}")
    return result


def write_merged(mode: str, data: dict[str, Any], path: str | None) -> Path:
    from .common import machine

    out = Path(path) if path else RESULTS / "alerts.json"
    old: dict[str, Any] = {}
    if out.exists():
        try:
            old = json.loads(out.read_text(encoding="utf-8"))
        except ValueError:
            old = {}
    old.update({"benchmark": "alerts", mode: {"machine": machine(), **data}})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(old, indent=2, ensure_ascii=False), encoding="utf-8")
    print(f"\nwrote {out} ({mode})")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=("engine", "truth"), default="engine")
    ap.add_argument("--model", default="tiny.en", help="ASR model for the English calls (engine mode)")
    ap.add_argument("--zh-model", default="base", help="multilingual model for the Mandarin calls ('' skips them)")
    ap.add_argument("--pack", default=None, help="rule pack (default: the bundled pack)")
    ap.add_argument("--speed", type=float, default=1.0, help="replay speed x real time; 0 = as fast as possible")
    ap.add_argument("--calls", default="", help="comma-separated call ids (default: all)")
    ap.add_argument("--parallel", type=int, default=4, help="engine mode: calls replayed at once per server")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    if not require_shared(CALLS):
        return 0
    calls = [truth(p) for p in all_calls()]
    if args.calls:
        keep = set(args.calls.split(","))
        calls = [c for c in calls if c["id"] in keep]
    if args.mode == "engine" and not args.zh_model:
        calls = [c for c in calls if c["language"] != "zh"]
    if args.mode == "truth":
        fired, info = run_truth(calls, args.pack)
    else:
        fired, info = run_engine(calls, args.model, args.zh_model, args.speed or None, args.pack, args.parallel)
    result = report(args.mode, calls, fired, info)
    write_merged(args.mode, result, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
