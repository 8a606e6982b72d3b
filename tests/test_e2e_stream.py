"""End to end over real sockets with the real tiny.en model: a 2-channel 8 kHz μ-law call in,
per-speaker finals out, checked against the call's turn-level truth."""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.request

import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from speechiq.audio.wavio import WavAudio
from speechiq.evaluation import error_rate
from speechiq.ingest import Encoding
from speechiq.replay.client import encode, replay

pytestmark = pytest.mark.slow
WER_BOUND = 0.15  # tiny.en int8 on 8 kHz telephone audio; measured ~5 % (benchmarks/README.md)
TIME_TOL = 0.5


def finals_by_role(result):
    out: dict[str, list[dict]] = {}
    for e in result.finals:
        out.setdefault(e["role"], []).append(e)
    return out


def test_stream_call_matches_truth(server, upgrade_call):
    wav, truth = upgrade_call
    res = server.call(replay(server.url(), wav, speed=None, encoding="mulaw", call_id="e2e-upgrade",
                             language="en", metadata={"queue": "sales"}))
    assert res.close_code == 1000, res.close_reason
    assert res.of_type("started")[0]["call_id"] == "e2e-upgrade"
    assert not res.of_type("error")
    finals = finals_by_role(res)
    for role in ("agent", "customer"):
        turns = [t for t in truth["turns"] if t["speaker"] == role]
        hyp = " ".join(e["text"] for e in finals.get(role, []))
        ref = " ".join(t["text"] for t in turns)
        wer = error_rate([ref], [hyp])
        assert wer <= WER_BOUND, f"{role}: WER {wer:.2%}\nref: {ref}\nhyp: {hyp}"
        for t in turns:  # media timestamps against truth turn times
            mine = [e for e in finals[role] if e["end"] > t["start"] - TIME_TOL and e["start"] < t["end"] + TIME_TOL]
            assert mine, f"no final for {role} turn at {t['start']}"
            assert abs(mine[0]["start"] - t["start"]) <= TIME_TOL, (mine[0], t)
            assert abs(mine[-1]["end"] - t["end"]) <= TIME_TOL, (mine[-1], t)
        for e in finals[role]:
            assert e["words"], e
            starts = [w["start"] for w in e["words"]]
            assert starts == sorted(starts)
            assert e["start"] - TIME_TOL <= starts[0] and e["words"][-1]["end"] <= e["end"] + TIME_TOL
    s = res.summary
    assert s and s["call_id"] == "e2e-upgrade" and abs(s["duration"] - truth["duration"]) < 0.05
    assert s["utterances"] == len(res.finals)


def _line_noise(n: int, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(0, 32768 * 10 ** (-50 / 20), n)).astype(np.int16)


def test_noise_only_channel_yields_no_text(server, upgrade_call):
    wav, _ = upgrade_call
    samples = wav.samples.copy()
    samples[:, 1] = _line_noise(len(samples))
    silent = WavAudio(sample_rate=wav.sample_rate, samples=samples, encoding_hint=Encoding.MULAW)
    res = server.call(replay(server.url(), silent, speed=None, encoding="mulaw", language="en"))
    assert res.close_code == 1000
    roles = finals_by_role(res)
    assert "customer" not in roles, roles.get("customer")
    assert roles.get("agent")


async def _raw_session(url, frames, *, read_timeout=10.0):
    """Send frames, then collect events until the server closes."""
    events = []
    async with connect(url) as ws:
        for f in frames:
            await ws.send(f)
        try:
            async with asyncio.timeout(read_timeout):
                async for raw in ws:
                    events.append(json.loads(raw))
        except (TimeoutError, ConnectionClosed):
            pass
        return events, ws.close_code


START = json.dumps({"type": "start", "encoding": "pcm16", "sample_rate": 8000,
                    "channels": [{"role": "agent"}, {"role": "customer"}], "language": "en"})


@pytest.mark.parametrize(
    ("frames", "code", "close"),
    [
        (["{oops"], "invalid_json", 1007),
        ([b"\x00\x01"], "binary_before_start", 1008),
        ([START, b"\x00" * 6], "odd_byte_count", 1007),
        ([START.replace("pcm16", "opus")], "unsupported_encoding", 1003),
        ([START.replace("8000", "8001")], "unsupported_sample_rate", 1003),
        ([START, b"\x00" * (2 * 1024 * 1024)], "frame_too_large", 1009),
        (['{"type":"nope"}'], "unknown_type", 1008),
    ],
)
def test_protocol_errors_over_socket(server, frames, code, close):
    before = server.engine.metrics.protocol_errors.labels("speechiq", code)._value.get()
    events, close_code = server.call(_raw_session(server.url(), frames))
    errors = [e for e in events if e["type"] == "error"]
    assert errors and errors[0]["code"] == code and errors[0]["message"]
    assert close_code == close
    assert server.engine.metrics.protocol_errors.labels("speechiq", code)._value.get() == before + 1


def test_bad_client_does_not_affect_another_call(server, upgrade_call):
    wav, _ = upgrade_call
    short = WavAudio(sample_rate=wav.sample_rate, samples=wav.samples[: 8000 * 12], encoding_hint=Encoding.MULAW)

    async def both():
        good = asyncio.create_task(replay(server.url(), short, speed=None, encoding="mulaw", language="en"))
        bad = [_raw_session(server.url(), [START, b"\x00" * 3]) for _ in range(5)]
        bad_results = await asyncio.gather(*bad)
        return await good, bad_results

    good, bad = server.call(both())
    assert good.close_code == 1000 and good.finals
    assert all(code == 1007 for _, code in bad)


def test_resume_after_drop_continues_timeline(server, upgrade_call):
    wav, truth = upgrade_call
    split = int(wav.sample_rate * 16.0)  # inside a silence gap between turns

    async def run():
        got, first = [], []

        async def read_first(ws) -> None:
            with contextlib.suppress(ConnectionClosed):
                async for raw in ws:
                    first.append(json.loads(raw))

        async with connect(server.url()) as ws:
            await ws.send(json.dumps({"type": "start", "call_id": "resume-1", "encoding": "mulaw",
                                      "sample_rate": 8000, "language": "en",
                                      "channels": [{"role": "agent"}, {"role": "customer"}]}))
            started = json.loads(await ws.recv())
            reader = asyncio.create_task(read_first(ws))
            for i in range(0, split, 1600):
                await ws.send(encode(wav.samples[i:min(i + 1600, split)], "mulaw"))
            await asyncio.sleep(1.0)
            ws.transport.abort() if hasattr(ws, "transport") else None
            await reader
        async with connect(server.url()) as ws2:
            await ws2.send(json.dumps({"type": "start", "resume_token": started["resume_token"],
                                       "encoding": "mulaw", "sample_rate": 8000, "language": "en",
                                       "channels": [{"role": "agent"}, {"role": "customer"}]}))
            resumed = json.loads(await ws2.recv())
            for i in range(split, len(wav.samples), 1600):
                await ws2.send(encode(wav.samples[i:i + 1600], "mulaw"))
            await ws2.send('{"type":"stop"}')
            async for raw in ws2:
                got.append(json.loads(raw))
        return started, resumed, first, got

    _, resumed, first, got = server.call(run())
    assert resumed["type"] == "started" and resumed["resumed"] is True
    assert resumed["call_id"] == "resume-1"
    assert abs(resumed["media_time"] - 16.0) < 0.05
    finals1 = [e for e in first if e["type"] == "transcript" and e["is_final"]]
    finals2 = [e for e in got if e["type"] == "transcript" and e["is_final"]]
    # the second half continues the same timeline on the resumed connection; whatever of the first
    # half was not out before the drop (a loaded machine) arrives there too, from the backlog
    assert any(e["start"] >= 16.0 for e in finals2)
    assert all(e["start"] < 16.0 for e in finals1)
    ids = [e["utterance_id"] for e in finals1 + finals2]
    assert len(ids) == len(set(ids)), "an utterance delivered twice across the reconnect"
    for turn in truth["turns"]:  # every truth turn is covered by a final (nothing lost in the drop)
        assert any(e["role"] == turn["speaker"] and e["start"] < turn["end"] and e["end"] > turn["start"]
                   for e in finals1 + finals2), turn
    summary = next(e for e in got if e["type"] == "summary")
    assert abs(summary["duration"] - truth["duration"]) < 0.05


def test_unknown_resume_token(server):
    events, code = server.call(_raw_session(server.url(), [json.dumps(
        {"type": "start", "resume_token": "nope", "encoding": "pcm16", "sample_rate": 8000})]))
    assert events[0]["code"] == "unknown_resume_token" and code == 4004


def test_health_and_metrics(server):
    port = server.srv.port
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as r:
        health = json.loads(r.read())
    assert health["status"] == "ok" and health["model"] == "tiny.en"
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    assert "speechiq_protocol_errors_total" in text and "speechiq_audio_seconds_total" in text
    assert 'speechiq_asr_scheduler{stat="batches"}' in text and 'speechiq_asr_scheduler{stat="busy_s"}' in text


def test_api_key_auth():
    from conftest import ServerThread

    st = ServerThread({"server.api_keys": ["s3cret"], "analytics.enabled": False}).start()
    try:
        with pytest.raises(InvalidStatus) as info:
            st.call(_raw_session(st.url(), [START]))
        assert info.value.response.status_code == 401

        async def ok():
            async with connect(st.url(), additional_headers={"Authorization": "Bearer s3cret"}) as ws:
                await ws.send(START)
                return json.loads(await ws.recv())

        assert st.call(ok())["type"] == "started"
    finally:
        st.stop()
