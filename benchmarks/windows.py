"""Short encoder windows vs Whisper's 30 s window: speed and accuracy.

    python -m benchmarks.windows [--model tiny.en] [--runs 7] [--json out] [--no-wer]

1. Encoder time for one utterance of 2 / 5 / 10 s of real speech (turns of the English calls,
   concatenated and cut), with the window padded to 30 s vs sized to the utterance (bucketed as
   BatchDecoder does); also the whole decode (encode + generate + word alignment). Median of
   ``--runs`` (interleaved) after a warm-up, batch of one.
2. WER on the English calls of ../shared/calls: every truth turn cut from its speaker's channel and
   decoded with BatchDecoder with ``short_windows`` True and False; batches are same-bucket groups
   of up to ``batch_size`` (what the scheduler builds; a same-bucket batch gives the same text as
   decoding alone). Reports how often the repetition guard trimmed a hypothesis, how often the
   compression-ratio fallback re-decoded with the 30 s window, and the rejects.
3. With a multilingual model, CER on the real Mandarin clips of ../shared/audio (language auto).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from speechiq.asr import decoder as decoder_mod
from speechiq.asr.decoder import FULL_FRAMES, BatchDecoder, DecodeRequest, DecodeResult
from speechiq.asr.models import load_model
from speechiq.audio.resample import resample
from speechiq.audio.wavio import read_wav
from speechiq.evaluation import error_rate
from speechiq.settings import AsrSettings

from .common import SHARED, english_calls, print_table, require_shared, truth, write_json

SR = 16000
DURATIONS = (2.0, 5.0, 10.0)


class TrimCounter:
    """Wraps the decoder's ``trim_repetition`` to count how often it cut a hypothesis."""

    def __init__(self) -> None:
        self.fired = 0
        self.examples: list[tuple[str, str]] = []
        self._orig = decoder_mod.trim_repetition

    def __call__(self, text: str, *args: Any, **kw: Any) -> tuple[str, bool]:
        out, cut = self._orig(text, *args, **kw)
        if cut:
            self.fired += 1
            if len(self.examples) < 5:
                self.examples.append((text, out))
        return out, cut

    def __enter__(self) -> TrimCounter:
        decoder_mod.trim_repetition = self  # type: ignore[assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        decoder_mod.trim_repetition = self._orig


def turns(wav_path: Path) -> list[tuple[str, str, float, np.ndarray]]:
    """(call id, reference, start, 16 kHz float32 audio) for every truth turn of a call."""
    t = truth(wav_path)
    wav = read_wav(wav_path)
    out = []
    for turn in t["turns"]:
        ch = t["channels"].index(turn["speaker"])
        a = wav.samples[round(turn["start"] * wav.sample_rate):round(turn["end"] * wav.sample_rate), ch]
        out.append((t["id"], turn["text"], turn["start"],
                    resample(a.astype(np.float32) / 32768.0, wav.sample_rate, SR)))
    return out


def speech_of(seconds: float, pool: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(pool)[: round(seconds * SR)]


def timed(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def encoder_times(model: Any, short: BatchDecoder, full: BatchDecoder, pool: list[np.ndarray],
                  runs: int) -> list[dict[str, Any]]:
    """Median times per (duration, window); runs are interleaved so load from other processes
    on a shared machine spreads over all cells instead of skewing one."""
    import ctranslate2

    cells: dict[tuple[float, str, str], Any] = {}
    windows: dict[tuple[float, str], float] = {}
    for seconds in DURATIONS:
        req = DecodeRequest(speech_of(seconds, pool), language="en")
        for name, dec in (("padded_30s", full), ("sized", short)):
            frames = dec.bucket_of(req)
            windows[seconds, name] = frames / 100
            feats = ctranslate2.StorageView.from_array(np.ascontiguousarray(dec._features(req.audio, frames)[None]))
            cells[seconds, name, "encode"] = lambda f=feats: model.model.encode(f, to_cpu=True)
            cells[seconds, name, "decode"] = lambda d=dec, r=req: d.decode([r])
    times: dict[tuple[float, str, str], list[float]] = defaultdict(list)
    for fn in cells.values():
        fn()  # warm-up
    for _ in range(runs):
        for key, fn in cells.items():
            times[key].append(timed(fn))
    out = []
    for seconds in DURATIONS:
        entry: dict[str, Any] = {"utterance_s": seconds}
        for name in ("padded_30s", "sized"):
            entry[f"{name}_window_s"] = windows[seconds, name]
            for stage in ("encode", "decode"):
                entry[f"{name}_{stage}_ms"] = round(1000 * statistics.median(times[seconds, name, stage]), 1)
        entry["encode_speedup"] = round(entry["padded_30s_encode_ms"] / entry["sized_encode_ms"], 2)
        entry["decode_speedup"] = round(entry["padded_30s_decode_ms"] / entry["sized_decode_ms"], 2)
        out.append(entry)
        print(f"  {seconds:4.1f} s: encode {entry['padded_30s_encode_ms']:.0f} → {entry['sized_encode_ms']:.0f} ms, "
              f"decode {entry['padded_30s_decode_ms']:.0f} → {entry['sized_decode_ms']:.0f} ms", flush=True)
    return out


def decode_all(dec: BatchDecoder, reqs: list[DecodeRequest]) -> tuple[list[DecodeResult], float, float]:
    """Decode in same-bucket batches (FIFO within a bucket); returns results, wall and CPU seconds."""
    groups: dict[int, list[int]] = defaultdict(list)
    for i, r in enumerate(reqs):
        groups[dec.bucket_of(r)].append(i)
    results: list[DecodeResult | None] = [None] * len(reqs)
    size = dec.settings.batch_size
    t0, c0 = time.perf_counter(), time.process_time()
    for idx in groups.values():
        for k in range(0, len(idx), size):
            chunk = idx[k:k + size]
            for i, res in zip(chunk, dec.decode([reqs[i] for i in chunk]), strict=True):
                results[i] = res
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return [r for r in results if r is not None], wall, cpu


def wer_paths(model: Any, settings: dict[str, AsrSettings], multilingual: bool,
              items: list[tuple[str, str, float, np.ndarray]]) -> dict[str, Any]:
    refs = [ref for _, ref, _, _ in items]
    reqs = [DecodeRequest(a, language="en", offset=start) for _, _, start, a in items]
    audio_s = sum(r.duration for r in reqs)
    out: dict[str, Any] = {"utterances": len(reqs), "audio_s": round(audio_s, 1)}
    for name, s in settings.items():
        dec = BatchDecoder(model, s, multilingual)
        with TrimCounter() as trims:
            results, wall, cpu = decode_all(dec, reqs)
        per_call: dict[str, Any] = {}
        for call in dict.fromkeys(c for c, _, _, _ in items):
            idx = [i for i, it in enumerate(items) if it[0] == call]
            per_call[call] = round(error_rate([refs[i] for i in idx], [results[i].text for i in idx]), 4)
        worst = sorted(((error_rate([ref], [res.text]), ref, res.text) for ref, res in zip(refs, results, strict=True)),
                       reverse=True)[:5]
        out[name] = {
            "wer": round(error_rate(refs, [r.text for r in results]), 4),
            "per_call": per_call,
            "decode_wall_s": round(wall, 2), "decode_cpu_s": round(cpu, 2),
            "rtf": round(wall / audio_s, 4),
            "repetition_trimmed": trims.fired, "fallbacks": dec.fallbacks,
            "rejected": dict(Counter(r.rejected for r in results if r.rejected)),
            "windows_s": dict(sorted(Counter(r.window_frames / 100 for r in results).items())),
            "trim_examples": [{"before": b, "after": a} for b, a in trims.examples],
            "worst": [{"wer": round(w, 3), "ref": r, "hyp": h} for w, r, h in worst],
        }
        print(f"  {name}: WER {out[name]['wer']:.1%}, {wall:.1f} s for {audio_s:.0f} s of audio, "
              f"trimmed {trims.fired}, fallbacks {dec.fallbacks}", flush=True)
    return out


def mandarin(model: Any, settings: dict[str, AsrSettings]) -> list[dict[str, Any]]:
    out = []
    for wav_path in sorted((SHARED / "audio").glob("zh_*_16k.wav")):
        ref = wav_path.with_suffix(".txt").read_text(encoding="utf-8").strip()
        wav = read_wav(wav_path)
        req = DecodeRequest(resample(wav.samples[:, 0].astype(np.float32) / 32768.0, wav.sample_rate, SR))
        entry: dict[str, Any] = {"file": wav_path.name, "reference": ref}
        for name, s in settings.items():
            res = BatchDecoder(model, s, True).decode([req])[0]
            entry[name] = {"cer": round(error_rate([ref], [res.text], "zh"), 4), "language": res.language,
                           "text": res.text}
        out.append(entry)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny.en")
    ap.add_argument("--runs", type=int, default=9, help="timed runs per measurement (median)")
    ap.add_argument("--no-wer", action="store_true", help="encoder timings only")
    ap.add_argument("--json", help="output path (default benchmarks/results/windows.json)")
    args = ap.parse_args(argv)
    if not require_shared():
        return 0
    base = AsrSettings(model=args.model, workers=1)
    settings = {"short": base.model_copy(update={"short_windows": True}),
                "full30": base.model_copy(update={"short_windows": False})}
    t0 = time.perf_counter()
    model, info = load_model(base)
    load_s = time.perf_counter() - t0
    print(f"model {info.name} ({info.source}), multilingual={info.multilingual}, loaded in {load_s:.1f} s")
    short = BatchDecoder(model, settings["short"], info.multilingual)
    full = BatchDecoder(model, settings["full30"], info.multilingual)

    calls = english_calls()
    items = [it for p in calls for it in turns(p)]
    pool = [a for _, _, _, a in items[:12]]
    print("encoder / decode time per utterance (median of", args.runs, "runs)")
    enc = encoder_times(model, short, full, pool, args.runs)
    print_table(f"window sizes ({info.name}, batch 1, {base.beam_size=})",
                ["utterance s", "30 s window: encode ms", "sized window s", "encode ms", "encode x",
                 "30 s: decode ms", "sized: decode ms", "decode x"],
                [[e["utterance_s"], e["padded_30s_encode_ms"], e["sized_window_s"], e["sized_encode_ms"],
                  e["encode_speedup"], e["padded_30s_decode_ms"], e["sized_decode_ms"], e["decode_speedup"]]
                 for e in enc])
    data: dict[str, Any] = {"model": info.name, "source": info.source, "multilingual": info.multilingual,
                            "load_s": round(load_s, 2), "settings": base.model_dump(), "encoder": enc}
    if not args.no_wer:
        print(f"WER on {len(calls)} English calls, {len(items)} turns")
        w = wer_paths(model, settings, info.multilingual, items)
        data["wer"] = w
        print_table(f"English calls ({w['utterances']} turns, {w['audio_s']} s of speech)",
                    ["path", "WER %", "decode s", "RTF", "trimmed", "fallbacks", "rejected"],
                    [[name, w[name]["wer"] * 100, w[name]["decode_wall_s"], w[name]["rtf"],
                      w[name]["repetition_trimmed"], w[name]["fallbacks"], sum(w[name]["rejected"].values())]
                     for name in settings])
        print_table("WER % per call", ["call", "short", "full30"],
                    [[c, w["short"]["per_call"][c] * 100, w["full30"]["per_call"][c] * 100]
                     for c in w["short"]["per_call"]])
        if info.multilingual:
            zh = mandarin(model, settings)
            data["mandarin"] = zh
            print_table("Mandarin real clips (CER %, language auto)", ["file", "short", "full30", "short text"],
                        [[z["file"], z["short"]["cer"] * 100, z["full30"]["cer"] * 100, z["short"]["text"]]
                         for z in zh])
    data["frames_full"] = FULL_FRAMES
    write_json("windows", data, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
