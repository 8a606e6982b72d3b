"""The ``speechiq`` command line: serve, demo, transcribe, replay, analyze, rules check, calls, config."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from .errors import SpeechIQError
from .settings import Settings, load_settings

ROLE_COLORS = {"agent": "\033[36m", "customer": "\033[33m", "mixed": "\033[37m"}
RESET = "\033[0m"


def _color(role: str, text: str, enabled: bool) -> str:
    return f"{ROLE_COLORS.get(role, '')}{text}{RESET}" if enabled else text


def format_transcript(ev: dict[str, Any], color: bool = False) -> str:
    tag = "" if ev.get("is_final", True) else " (partial)"
    who = f"{ev['role']:<8}"
    return f"[{ev['start']:7.2f} – {ev['end']:7.2f}] {_color(ev['role'], who, color)} {ev['text']}{tag}"


def format_alert(ev: dict[str, Any]) -> str:
    return (f"  ⚑ {ev['state']:<11} {ev['severity']:<8} {ev['label'] or ev['category']:<30} "
            f"@{ev['media_time']:.2f}s  [{ev['rule_id']}] {ev.get('text', '')[:80]}")


# ---- settings ---------------------------------------------------------------------------------
def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML settings file (see `speechiq config`)")
    p.add_argument("--model", help="ASR model: tiny.en (default), base, small, large-v3, distil-*, or a path")
    p.add_argument("--device", choices=["cpu", "cuda", "auto"], help="ASR device")
    p.add_argument("--compute-type", help="CTranslate2 compute type (int8, float16, int8_float16 …)")
    p.add_argument("--vad", choices=["webrtc", "silero"], help="VAD backend")
    p.add_argument("--rules", action="append", help="rule pack YAML (repeatable; default: bundled pack)")
    p.add_argument("-v", "--verbose", action="store_true")


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    overrides: dict[str, Any] = {
        "asr.model": args.model, "asr.device": args.device, "asr.compute_type": args.compute_type,
        "vad.backend": args.vad, "analytics.rule_packs": args.rules,
    }
    overrides.update(extra)
    return load_settings(args.config, overrides)


def _engine(settings: Settings) -> Any:
    from .engine import Engine

    return Engine(settings).load()


# ---- commands ---------------------------------------------------------------------------------
def cmd_serve(args: argparse.Namespace) -> int:
    from .server.app import run_server

    settings = _settings(args, **{"server.host": args.host, "server.port": args.port,
                                  "server.api_keys": args.api_key, "server.audiosocket_port":
                                  args.audiosocket_port, "server.metrics_port": args.metrics_port})
    engine = _engine(settings)

    def ready(srv: Any) -> None:
        s = settings.server
        print(f"speechiq listening on ws://{s.host}:{srv.port}/v1/calls  (health: http://{s.host}:{srv.port}"
              f"/healthz, model {engine.model_info.name})", flush=True)
        if srv.audiosocket_port is not None:
            print(f"AudioSocket (TCP) on {s.host}:{srv.audiosocket_port}", flush=True)
        if srv.metrics_port is not None:
            print(f"metrics on http://{s.host}:{srv.metrics_port}/metrics", flush=True)

    asyncio.run(run_server(engine, ready))
    return 0


def _read_wav(path: str) -> Any:
    from .audio.wavio import read_wav

    return read_wav(path)


def _roles(arg: str | None) -> list[str] | None:
    return [r.strip() for r in arg.split(",")] if arg else None


def cmd_transcribe(args: argparse.Namespace, analyze: bool = False) -> int:
    from .events import to_dict
    from .offline import process_wav

    settings = _settings(args, **{"analytics.enabled": analyze, "asr.partials": False})
    wav = _read_wav(args.wav)
    engine = _engine(settings)
    color = sys.stdout.isatty() and not args.json

    def on_event(ev: Any) -> None:
        d = to_dict(ev)
        kind = d.get("type")
        if analyze:
            if kind == "alert":
                if args.json:
                    print(json.dumps(d, ensure_ascii=False), flush=True)
                else:
                    print(format_alert(d), flush=True)
            elif kind == "transcript" and not args.json and d["is_final"]:
                print(format_transcript(d, color), flush=True)
            return
        if kind == "transcript" and d["is_final"]:
            if args.json:
                d.pop("emitted_at", None)
                print(json.dumps(d, ensure_ascii=False), flush=True)
            else:
                print(format_transcript(d, color), flush=True)

    async def run() -> Any:
        try:
            return await process_wav(engine, wav, call_id=Path(args.wav).stem, roles=_roles(args.roles),
                                     language=args.language, on_event=on_event, media_order=True)
        finally:
            await engine.close()

    summary = asyncio.run(run())
    if not args.json:
        print(f"-- {summary.utterances} utterances, {summary.duration:.1f} s of audio, "
              f"{summary.alerts} alerts", file=sys.stderr)
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from .replay.client import replay

    wav = _read_wav(args.wav)
    speed = None if args.speed == "max" else float(args.speed)
    color = sys.stdout.isatty() and not args.json

    def on_event(ev: dict[str, Any]) -> None:
        if args.json:
            print(json.dumps({k: v for k, v in ev.items() if k != "_recv"}, ensure_ascii=False), flush=True)
        elif ev.get("type") == "transcript":
            if ev["is_final"] or args.partials:
                print(format_transcript(ev, color), flush=True)
        elif ev.get("type") == "alert":
            print(format_alert(ev), flush=True)
        elif ev.get("type") in ("error", "notice"):
            print(f"  ! {ev['type']} {ev['code']}: {ev['message']}", flush=True)
        elif ev.get("type") == "started":
            print(f"call {ev['call_id']} started (resume token {ev['resume_token']})", flush=True)
        elif ev.get("type") == "summary":
            print(f"-- summary: {ev['utterances']} utterances, {ev['duration']:.1f} s, "
                  f"{ev['alerts']} alerts", flush=True)

    if args.protocol != "speechiq":
        return _replay_platform(args, wav, speed, on_event)
    res = asyncio.run(replay(args.url or _default_url("speechiq"), wav, speed=speed, encoding=args.encoding,
                             call_id=args.call_id,
                             roles=_roles(args.roles), language=args.language, api_key=args.api_key,
                             on_event=on_event, partials=True))
    if res.close_code not in (1000, None):
        print(f"connection closed {res.close_code} {res.close_reason}", file=sys.stderr)
        return 1
    return 0


def _default_url(protocol: str) -> str:
    if protocol == "audiosocket":
        return "tcp://127.0.0.1:9092"
    return f"ws://127.0.0.1:8765/v1/{'calls' if protocol == 'speechiq' else protocol}"


def _replay_platform(args: argparse.Namespace, wav: Any, speed: float | None,
                     on_event: Callable[[dict[str, Any]], None]) -> int:
    """Play ``wav`` as the platform would; the engine's view of the call (transcripts, alerts,
    summary) comes from its call tap, since platform sockets carry none of it back."""
    import uuid

    from .replay.platform_client import replay_platform
    from .replay.watch import CallWatcher, tap_url

    url = args.url or _default_url(args.protocol)
    call_id = args.call_id or str(uuid.uuid4())  # a UUID is a valid call id on every platform

    async def run() -> int:
        watcher = None
        if args.watch:
            try:
                tap = tap_url(url, call_id, events_url=args.events_url, api_key=args.api_key)
                watcher = await CallWatcher(tap, on_event).start()
            except Exception as exc:
                print(f"  (not watching the call: {exc})", file=sys.stderr)
        res = await replay_platform(url, wav, protocol=args.protocol, speed=speed, call_id=call_id,
                                    api_key=args.api_key, secret=args.client_secret)
        sent = res.sent[-1][0] if res.sent else 0.0
        if watcher is not None and await watcher.wait(args.wait) is None:
            print(f"  (no summary within {args.wait:.0f} s)", file=sys.stderr)
        print(f"-- sent {sent:.1f} s as {args.protocol} (call {call_id}); closed {res.close_code} "
              f"{res.close_reason}", file=sys.stderr)
        return 0 if res.close_code in (1000, None) else 1

    return asyncio.run(run())


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(_settings(args), speed=None if args.speed == "max" else float(args.speed))


def cmd_rules(args: argparse.Namespace) -> int:
    from .rules import rules_check_main

    return rules_check_main(args.packs)


def cmd_config(args: argparse.Namespace) -> int:
    print(yaml.safe_dump(_settings(args).model_dump(mode="json"), sort_keys=False), end="")
    return 0


def cmd_calls(args: argparse.Namespace) -> int:
    from .store.report import calls_main

    settings = load_settings(args.config, {"store.url": args.store, "store.schema_name": args.schema})
    return calls_main(settings.store.url, args.calls_command, schema=settings.store.schema_name,
                      call_id=getattr(args, "call_id", None), limit=getattr(args, "limit", 20),
                      session=getattr(args, "session", None), as_json=args.json,
                      by_speaker=getattr(args, "by_speaker", False))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="speechiq", description="Real-time speech analytics for contact centers.",
                                epilog="Settings: YAML file (--config) < SPEECHIQ_<SECTION>__<KEY> env < flags. "
                                       "`speechiq config` prints the effective tree.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the engine (WebSocket server)")
    _add_common(s)
    s.add_argument("--host")
    s.add_argument("--port", type=int)
    s.add_argument("--api-key", action="append", help="accepted API key (repeatable)")
    s.add_argument("--audiosocket-port", type=int, help="TCP port for Asterisk AudioSocket")
    s.add_argument("--metrics-port", type=int, help="also serve /metrics and /healthz (no auth) on this port")
    s.set_defaults(func=cmd_serve)

    d = sub.add_parser("demo", help="start the engine and stream a bundled sample call through it")
    _add_common(d)
    d.add_argument("--speed", default="4", help="replay speed: 1, 10, … or max (default 4)")
    d.set_defaults(func=cmd_demo)

    for name, analyze in (("transcribe", False), ("analyze", True)):
        t = sub.add_parser(name, help="transcribe a recording offline" if not analyze
                           else "run the rules over a recording offline and print alerts")
        _add_common(t)
        t.add_argument("wav")
        t.add_argument("--language", default="auto", choices=["en", "zh", "auto"])
        t.add_argument("--roles", help="comma-separated role per channel (default agent,customer for stereo)")
        t.add_argument("--json", action="store_true", help="one JSON object per line")
        t.set_defaults(func=lambda a, _an=analyze: cmd_transcribe(a, _an))

    r = sub.add_parser("replay", help="stream a WAV to a running engine and print events")
    r.add_argument("wav")
    r.add_argument("--url", help="the engine endpoint (default: ws://127.0.0.1:8765/v1/calls, /v1/<protocol> "
                   "for a platform, tcp://127.0.0.1:9092 for audiosocket)")
    r.add_argument("--speed", default="1", help="1 = real time, 10, … or max")
    r.add_argument("--protocol", default="speechiq",
                   choices=["speechiq", "twilio", "telnyx", "signalwire", "audiohook", "audiosocket", "asterisk",
                            "fork", "jambonz", "vonage"])
    r.add_argument("--encoding", default="pcm16", choices=["pcm16", "mulaw", "alaw"])
    r.add_argument("--language", default="auto", choices=["en", "zh", "auto"])
    r.add_argument("--roles")
    r.add_argument("--call-id")
    r.add_argument("--api-key")
    r.add_argument("--client-secret", help="AudioHook client secret (signs the upgrade request)")
    r.add_argument("--partials", action="store_true", help="print partial transcripts too")
    r.add_argument("--json", action="store_true")
    r.add_argument("--watch", action=argparse.BooleanOptionalAction, default=True,
                   help="platform protocols: print the call's events from the engine's call tap")
    r.add_argument("--events-url", help="engine WebSocket base for the call tap (needed with audiosocket: "
                   "ws://HOST:8765)")
    r.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the call's summary")
    r.set_defaults(func=cmd_replay)

    ru = sub.add_parser("rules", help="rule pack tools")
    rsub = ru.add_subparsers(dest="rules_command", required=True)
    rc = rsub.add_parser("check", help="validate rule packs")
    rc.add_argument("packs", nargs="+")
    rc.set_defaults(func=cmd_rules)

    ca = sub.add_parser("calls", help="stored calls: list them, show one (transcript, alerts, metrics)")
    csub = ca.add_subparsers(dest="calls_command", required=True)
    for name, help_ in (("list", "the latest stored calls, newest first"),
                        ("show", "one call: transcript per speaker with media times, alerts, metrics")):
        cp = csub.add_parser(name, help=help_)
        cp.add_argument("--config", help="YAML settings file (its store.url is read)")
        cp.add_argument("--store", help="store URL (default: settings store.url, sqlite:///speechiq.db)")
        cp.add_argument("--schema", help="PostgreSQL schema of the tables")
        cp.add_argument("--json", action="store_true", help="JSON (list: one call per line)")
        if name == "list":
            cp.add_argument("--limit", type=int, default=20, help="how many calls (default 20)")
        else:
            cp.add_argument("call_id")
            cp.add_argument("--session", type=int, help="which call with this id (default: the latest)")
            cp.add_argument("--by-speaker", action="store_true", help="group the transcript by speaker")
        cp.set_defaults(func=cmd_calls)

    c = sub.add_parser("config", help="print the effective settings as YAML")
    _add_common(c)
    c.set_defaults(func=cmd_config)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except SpeechIQError as exc:
        print(f"speechiq: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError) as exc:
        print(f"speechiq: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
