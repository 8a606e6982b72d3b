"""The store wired into the engine: settings, and an end-to-end call over a real socket (real
server, real model) read back from the store and through ``speechiq calls``."""

from __future__ import annotations

import asyncio
import json

import pytest
from conftest import ServerThread
from websockets.asyncio.client import connect

from speechiq.cli import main
from speechiq.engine import Engine
from speechiq.replay.client import encode, replay
from speechiq.settings import load_settings
from speechiq.store import open_reader


def test_store_is_on_by_default_relative_to_the_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings(None, {}, environ={})
    assert settings.store.url == "sqlite:///speechiq.db" and settings.store.enabled
    engine = Engine(settings)
    store = engine.open_store()
    assert store is not None and engine.open_store() is store
    store.record("c", {"type": "notice", "code": "x", "message": "y"})
    assert store.flush(30)
    asyncio.run(engine.close())
    assert engine.store is None and (tmp_path / "speechiq.db").exists()
    assert b"speechiq_store_events_written" in engine.metrics.render()


@pytest.mark.parametrize("url", ["", "none", "None"])
def test_store_disabled(tmp_path, monkeypatch, url):
    monkeypatch.chdir(tmp_path)
    settings = load_settings(None, {}, environ={"SPEECHIQ_STORE__URL": url})
    assert not settings.store.enabled
    assert Engine(settings).open_store() is None
    assert list(tmp_path.iterdir()) == []


def test_calls_cli_without_a_store(tmp_path, capsys):
    assert main(["calls", "list", "--store", f"sqlite:///{tmp_path / 'none.db'}"]) == 2
    assert "no database" in capsys.readouterr().err
    assert main(["calls", "list", "--store", "none"]) == 2


@pytest.mark.slow
def test_calls_over_a_real_socket_are_in_the_store(tmp_path, upgrade_call, capsys):
    """Stream one call and a dropped-and-resumed call through the real server, stop it (nothing is
    written before: batches every 10 min), then read calls, finals and alerts back."""
    wav, truth = upgrade_call
    url = f"sqlite:///{tmp_path / 'e2e.db'}"
    srv = ServerThread({"store.url": url, "store.batch_ms": 600_000}).start()
    split = int(wav.sample_rate * 16.0)  # inside a silence gap between turns
    chans = [{"role": "agent"}, {"role": "customer"}]

    async def resumed_call() -> list[dict]:
        got: list[dict] = []
        async with connect(srv.url()) as ws:
            await ws.send(json.dumps({"type": "start", "call_id": "store-resume", "encoding": "mulaw",
                                      "sample_rate": 8000, "language": "en", "channels": chans}))
            started = json.loads(await ws.recv())
            for i in range(0, split, 1600):
                await ws.send(encode(wav.samples[i:min(i + 1600, split)], "mulaw"))
            await ws.send(json.dumps({"type": "dtmf", "digit": "5"}))
            await asyncio.sleep(1.0)
            ws.transport.abort()
        async with connect(srv.url()) as ws2:
            await ws2.send(json.dumps({"type": "start", "resume_token": started["resume_token"],
                                       "encoding": "mulaw", "sample_rate": 8000, "language": "en",
                                       "channels": chans}))
            got.append(json.loads(await ws2.recv()))
            for i in range(split, len(wav.samples), 1600):
                await ws2.send(encode(wav.samples[i:i + 1600], "mulaw"))
            await ws2.send('{"type":"stop"}')
            async for raw in ws2:
                got.append(json.loads(raw))
        return got

    try:
        res = srv.call(replay(srv.url(), wav, speed=None, encoding="mulaw", call_id="store-e2e", language="en",
                              metadata={"queue": "sales", "agent_id": "a-7"}))
        got = srv.call(resumed_call())
        assert srv.engine.store.stats().events_written == 0  # all still queued
    finally:
        srv.stop()  # engine.close(): the store flushes on a clean shutdown

    reader = open_reader(url)
    d = reader.get_call("store-e2e")
    assert d is not None and reader.sessions("store-e2e") == [1]
    c = d.call
    assert c.ended_at is not None and c.end_reason == "normal" and c.platform == "speechiq"
    assert (c.agent, c.queue, c.language) == ("a-7", "sales", "en")
    assert abs(c.duration - truth["duration"]) < 0.05
    finals = [e for e in res.events if e["type"] == "transcript" and e["is_final"]]
    assert [u.utterance_id for u in d.utterances] == [e["utterance_id"] for e in
                                                      sorted(finals, key=lambda e: (e["start"], e["channel"]))]
    assert {u.text for u in d.utterances} == {e["text"] for e in finals}
    assert all(u.words and u.role in ("agent", "customer") for u in d.utterances if u.text)
    latest = {}
    for a in res.of_type("alert"):
        latest[a["alert_id"]] = a["state"]
    assert {a.alert_id: a.state for a in d.alerts} == latest
    assert all(a.rule_id and a.pack_version and a.category and a.history for a in d.alerts)
    assert c.utterance_count == res.summary["utterances"] == len(finals)
    assert c.nev == res.summary["analytics"]["nev"] and c.nps_proxy == res.summary["analytics"]["nps_proxy"]

    r = reader.get_call("store-resume")
    assert reader.sessions("store-resume") == [1]  # the resumed call is one call
    ids = [u.utterance_id for u in r.utterances]
    assert len(ids) == len(set(ids)) and r.call.ended_at is not None
    kinds = [e.kind for e in r.events]
    assert kinds[0] == "call_open" and "dtmf" in kinds and "resumed" in kinds
    assert kinds.index("call_end") < kinds.index("resumed")  # transport lost, then resumed
    got_finals = {e["utterance_id"] for e in got if e.get("type") == "transcript" and e["is_final"]}
    assert got_finals <= set(ids)
    reader.engine.dispose()

    assert main(["calls", "list", "--store", url, "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {row["call_id"] for row in listed} == {"store-e2e", "store-resume"}
    assert main(["calls", "show", "store-e2e", "--store", url, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert len(shown["utterances"]) == len(finals) and shown["call"]["nev"] == c.nev
    assert main(["calls", "show", "store-e2e", "--store", url]) == 0
    text = capsys.readouterr().out
    assert "transcript (" in text and "alerts (" in text and "NEV" in text
    assert main(["calls", "show", "nope", "--store", url]) == 1
