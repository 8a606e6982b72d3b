"""Accuracy: normalised WER per call and overall, streaming pipeline vs offline faster-whisper.

    python -m benchmarks.wer [--model tiny.en] [--zh-model base]

streaming = our live pipeline (per-channel VAD utterances → batched short-window greedy
decoding), fed the call in 0.5 s chunks exactly as the server does; offline = plain faster-whisper
``transcribe()`` with its defaults over each whole channel (30 s windows with the previous text
as context, beam search 5, no VAD filter) — what a batch system gets with the whole recording.
English calls from ../shared/calls (WER), and the ../shared/audio
items with human references (WER for English, CER for Mandarin with the multilingual model).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from speechiq.audio.resample import resample
from speechiq.audio.wavio import read_wav
from speechiq.evaluation import error_rate

from .common import SHARED, english_calls, print_table, require_shared, truth, write_json


def streaming_texts(engine: Any, wav: Any, roles: list[str], language: str) -> dict[str, str]:
    from speechiq.events import Transcript
    from speechiq.offline import process_wav

    got: dict[str, list[str]] = {r: [] for r in roles}

    def on_event(ev: Any) -> None:
        if isinstance(ev, Transcript) and ev.is_final:
            got[ev.role].append(ev.text)

    async def run() -> None:
        await process_wav(engine, wav, call_id=f"wer-{time.time_ns()}", roles=roles, language=language,
                          on_event=on_event)

    asyncio.run(run())
    return {r: " ".join(t) for r, t in got.items()}


def offline_text(model: Any, audio: np.ndarray, rate: int, language: str | None) -> str:
    x = resample(audio.astype(np.float32) / 32768.0, rate, 16000)
    segments, _ = model.transcribe(x, language=language)  # faster-whisper defaults: beam 5, full context
    return " ".join(s.text.strip() for s in segments)


def make_engine(model: str) -> Any:
    from speechiq.engine import Engine
    from speechiq.settings import load_settings

    settings = load_settings(None, {"asr.model": model, "analytics.enabled": False, "asr.partials": False},
                             environ={})
    return Engine(settings).load()


def reference_text(path: Path) -> str:
    """The words of a reference file; an STM file's lines are ``uri channel speaker start end text``."""
    raw = path.read_text(encoding="utf-8")
    if path.suffix != ".stm":
        return raw.strip()
    lines = [ln.split(maxsplit=5) for ln in raw.splitlines() if ln.strip() and not ln.startswith(";;")]
    rows = sorted((float(p[3]), p[5]) for p in lines if len(p) == 6)
    return " ".join(text for _, text in rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny.en")
    ap.add_argument("--zh-model", default="base", help="multilingual model for the Mandarin items ('' skips)")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    if not require_shared():
        return 0
    engine = make_engine(args.model)
    fw = engine.decoder.model
    rows, per_call = [], []
    all_ref, all_stream, all_off = [], [], []
    for wav_path in english_calls():
        t = truth(wav_path)
        wav = read_wav(wav_path)
        roles = list(t["channels"])
        stream = streaming_texts(engine, wav, roles, "en")
        entry: dict[str, Any] = {"call": t["id"]}
        refs, hs, ho = [], [], []
        for ch, role in enumerate(roles):
            ref = " ".join(x["text"] for x in t["turns"] if x["speaker"] == role)
            off = offline_text(fw, wav.samples[:, ch], wav.sample_rate, "en")
            refs.append(ref)
            hs.append(stream[role])
            ho.append(off)
        entry["wer_streaming"] = error_rate(refs, hs)
        entry["wer_offline"] = error_rate(refs, ho)
        per_call.append(entry)
        all_ref += refs
        all_stream += hs
        all_off += ho
        rows.append([t["id"], entry["wer_streaming"] * 100, entry["wer_offline"] * 100])
        print(f"  {t['id']:34s} streaming {entry['wer_streaming']:.1%}  offline {entry['wer_offline']:.1%}",
              flush=True)
    overall = {"wer_streaming": error_rate(all_ref, all_stream), "wer_offline": error_rate(all_ref, all_off)}
    rows.append(["OVERALL (English calls)", overall["wer_streaming"] * 100, overall["wer_offline"] * 100])

    real: list[dict[str, Any]] = []
    manifest = json.loads((SHARED / "audio" / "manifest.json").read_text())
    zh_engine = None
    for item in manifest["files"]:
        ref_info = item.get("reference", {})
        if ref_info.get("kind") != "human" or item.get("channels", 1) != 1:
            continue
        lang = item["language"]
        eng = engine
        if lang != "en":
            if not args.zh_model:
                continue
            try:
                zh_engine = zh_engine or make_engine(args.zh_model)
            except Exception as exc:
                print(f"  skipping {item['file']}: {exc}")
                continue
            eng = zh_engine
        wav = read_wav(SHARED / "audio" / item["file"])
        ref = reference_text(SHARED / "audio" / ref_info.get("file", item["file"].replace(".wav", ".txt")))
        s = streaming_texts(eng, wav, ["mixed"], lang)["mixed"]
        o = offline_text(eng.decoder.model, wav.samples[:, 0], wav.sample_rate, lang)
        e = {"file": item["file"], "language": lang, "metric": "CER" if lang == "zh" else "WER",
             "model": args.model if lang == "en" else args.zh_model,
             "streaming": error_rate([ref], [s], lang), "offline": error_rate([ref], [o], lang),
             "hyp_streaming": s, "reference": ref}
        real.append(e)
        rows.append([f"{item['file']} ({e['metric']}, {e['model']})", e["streaming"] * 100, e["offline"] * 100])
    print_table(f"error rate % ({args.model}; Mandarin: {args.zh_model})", ["item", "streaming %", "offline %"], rows)
    write_json("wer", {"model": args.model, "zh_model": args.zh_model, "calls": per_call, "overall": overall,
                       "real_audio": real}, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
