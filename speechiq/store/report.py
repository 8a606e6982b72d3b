"""``speechiq calls list|show``: stored calls as text tables or JSON (read side only)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import sqlalchemy.exc as sa_exc

from ..errors import ConfigError
from .read import CallDetail, StoredCall, StoreReader
from .store import open_reader

Out = Callable[[str], None]


def _num(value: float | None, fmt: str = ".2f") -> str:
    return "-" if value is None else format(value, fmt)


def _when(call: StoredCall) -> str:
    return call.started_at.strftime("%Y-%m-%d %H:%M:%S")


def call_line(call: StoredCall) -> str:
    state = "live" if call.live else (call.end_reason or "ended")
    return (f"{_when(call)}  {call.call_id:<28} #{call.session:<2} {call.platform or '-':<11} "
            f"{_num(call.duration or call.last_media_time, '7.1f')}s  {state:<13} "
            f"agent={call.agent or '-':<8} queue={call.queue or '-':<10} alerts={call.alert_count or 0:<3} "
            f"NEV={_num(call.nev)} CES={_num(call.ces)} NPS={call.nps_proxy or '-'}")


def list_text(calls: list[StoredCall], out: Out) -> None:
    if not calls:
        out("no calls stored")
        return
    for call in calls:
        out(call_line(call))


def show_text(detail: CallDetail, out: Out, by_speaker: bool = False) -> None:
    c = detail.call
    out(f"call {c.call_id} (session {c.session})  platform {c.platform or '-'}  language {c.language or '-'}")
    out(f"  started {c.started_at.isoformat()}  ended {c.ended_at.isoformat() if c.ended_at else '(live)'}"
        f"  duration {_num(c.duration or c.last_media_time, '.1f')} s  reason {c.end_reason or '-'}")
    if c.metadata:
        out(f"  metadata {json.dumps(dict(c.metadata), ensure_ascii=False, sort_keys=True)}")
    out(f"  metrics: NEV {_num(c.nev)}  CES {_num(c.ces)}  NPS proxy {c.nps_proxy or '-'}"
        f"{f' ({c.nps_reason})' if c.nps_reason else ''}  sentiment customer {_num(c.customer_sentiment)}"
        f" agent {_num(c.agent_sentiment)}  pack {c.pack_version or '-'}")
    speakers: dict[str, int] = {}
    for u in detail.utterances:
        speakers[u.role] = speakers.get(u.role, 0) + 1
    out(f"transcript ({len(detail.utterances)} utterances: "
        f"{', '.join(f'{r} {n}' for r, n in sorted(speakers.items())) or 'none'})")
    groups = ([(role, [u for u in detail.utterances if u.role == role]) for role in sorted(speakers)]
              if by_speaker else [("", list(detail.utterances))])
    for role, utts in groups:
        if role:
            out(f" {role}:")
        for u in utts:
            senti = f"  [{u.sentiment_label} {u.sentiment:+.2f}]" if u.sentiment is not None else ""
            out(f"  [{u.start:7.2f} – {u.end:7.2f}] {u.role:<8} {u.text}{senti}")
    out(f"alerts ({len(detail.alerts)})")
    for a in detail.alerts:
        states = " → ".join(h.get("state", "?") for h in a.history) or a.state
        out(f"  @{a.media_time:7.2f}s {a.state:<11} {a.severity:<8} {a.label or a.category:<30} [{a.rule_id} "
            f"{a.pack_version[:12]}] {states}")
        if a.text:
            span = f"[{_num(a.start)} – {_num(a.end)}] " if a.start is not None else ""
            out(f"      {span}{a.role or ''}: {a.text[:120]}")
    others = [e for e in detail.events if e.kind not in ("call_open",)]
    if others:
        out(f"events ({len(others)})")
        for e in others:
            data = {k: v for k, v in e.data.items() if v not in (None, "", [], {}) and k not in ("type", "media_time")}
            out(f"  @{_num(e.media_time, '7.2f')}s {e.kind:<10} {json.dumps(data, ensure_ascii=False)[:160]}")


def run_calls(reader: StoreReader, command: str, *, call_id: str | None = None, limit: int = 20,
              session: int | None = None, as_json: bool = False, by_speaker: bool = False, out: Out = print) -> int:
    """The ``calls`` subcommands over ``reader``. Returns the exit status."""
    try:
        if command == "list":
            calls = reader.list_calls(limit=limit)
            if as_json:
                for call in calls:
                    d = call.as_dict()
                    d.pop("summary", None)
                    out(json.dumps(d, ensure_ascii=False))
            else:
                list_text(calls, out)
            return 0
        detail = reader.get_call(str(call_id), session)
    except (sa_exc.OperationalError, sa_exc.ProgrammingError) as exc:
        raise ConfigError(f"store: cannot read calls ({str(exc).splitlines()[0]}); is this a speechiq store?") from exc
    if detail is None:
        out(f"no stored call {call_id!r}")
        return 1
    if as_json:
        out(json.dumps(detail.as_dict(), ensure_ascii=False))
    else:
        show_text(detail, out, by_speaker)
    return 0


def calls_main(url: str, command: str, *, schema: str | None = None, **kwargs: Any) -> int:
    if not url or url.strip().lower() == "none":
        raise ConfigError("store: no store configured (store.url is empty); pass --store URL")
    reader = open_reader(url, schema=schema)
    try:
        return run_calls(reader, command, **kwargs)
    finally:
        reader.engine.dispose()


__all__ = ["call_line", "calls_main", "list_text", "run_calls", "show_text"]
