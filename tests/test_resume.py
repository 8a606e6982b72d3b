"""Resume over real sockets (real tiny.en): a dropped connection is not a dropped call.

The finals of a call streamed in two pieces — the first connection dropped without a stop, the
second resuming with the token from ``started`` — are exactly the finals of the same call streamed
in one piece: the finals that completed while no connection was attached reach the resumed one,
nothing is lost and nothing is repeated.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from speechiq.replay.client import encode, replay

pytestmark = pytest.mark.slow
STEP = 1600  # 200 ms of 8 kHz audio


def _start(call_id: str = "", token: str = "", encoding: str = "mulaw", channels: int = 2) -> str:
    msg = {"type": "start", "encoding": encoding, "sample_rate": 8000, "language": "en",
           "channels": [{"role": "agent"}, {"role": "customer"}][:channels]}
    if call_id:
        msg["call_id"] = call_id
    if token:
        msg["resume_token"] = token
    return json.dumps(msg)


async def _drain(ws) -> list[dict]:
    out = []
    try:
        async for raw in ws:
            out.append(json.loads(raw))
    except ConnectionClosed:
        pass
    return out


def _finals(events: list[dict]) -> list[tuple[str, str]]:
    return [(e["utterance_id"], e["text"]) for e in events if e["type"] == "transcript" and e["is_final"]]


def _per_channel(finals: list[tuple[str, str]]) -> dict[str, list[tuple[str, str]]]:
    """Finals are ordered per channel; across channels the order depends on decoding time."""
    out: dict[str, list[tuple[str, str]]] = {}
    for uid, text in finals:
        out.setdefault(uid.split("-")[0], []).append((uid, text))
    return out


@pytest.fixture(scope="module")
def reference(server, upgrade_call):
    wav, _ = upgrade_call
    res = server.call(replay(server.url(), wav, speed=None, encoding="mulaw", call_id="resume-ref", language="en"))
    assert res.close_code == 1000
    return [(e["utterance_id"], e["text"]) for e in res.finals]


@pytest.mark.parametrize("split_s", [9.0, 16.0, 27.5])
def test_drop_then_resume_loses_and_repeats_nothing(server, upgrade_call, reference, split_s):
    wav, truth = upgrade_call
    split = int(wav.sample_rate * split_s)

    async def run():
        ws = await connect(server.url())
        await ws.send(_start(f"resume-split-{split_s}"))
        started = json.loads(await ws.recv())
        first: list[dict] = []
        reader = asyncio.create_task(_drain(ws))
        for i in range(0, split, STEP):
            await ws.send(encode(wav.samples[i:min(i + STEP, split)], "mulaw"))
        await asyncio.sleep(0)
        ws.transport.abort()  # no stop, no close handshake: the finals still being decoded are missed
        first = await reader
        await asyncio.sleep(0.3)  # they complete while no connection is attached
        async with connect(server.url()) as ws2:
            await ws2.send(_start(token=started["resume_token"]))
            resumed = json.loads(await ws2.recv())
            for i in range(split, len(wav.samples), STEP):
                await ws2.send(encode(wav.samples[i:i + STEP], "mulaw"))
            await ws2.send('{"type":"stop"}')
            second = await _drain(ws2)
        return first, resumed, second

    first, resumed, second = server.call(run())
    assert resumed["type"] == "started" and resumed["resumed"] is True
    assert abs(resumed["media_time"] - split_s) < 0.05
    got = _finals(first) + _finals(second)
    # same utterances, same text, same order per channel: none lost, none twice
    assert _per_channel(got) == _per_channel(reference)
    if split_s == 16.0:
        # the customer's turn ending at 14.7 s was endpointed ~0.8 s of audio before the drop and
        # was still being decoded (≈ 100 ms) when the socket went: it reaches the resumed one
        replayed = [e for e in second if e["type"] == "transcript" and e["is_final"] and e["end"] < split_s]
        assert replayed, "expected the final decoded during the drop on the resumed connection"
    summary = next(e for e in second if e["type"] == "summary")
    assert abs(summary["duration"] - truth["duration"]) < 0.05
    assert summary["utterances"] == len(reference)


def test_resume_with_last_seq_recovers_events_lost_in_flight(server, upgrade_call, reference):
    """What the server wrote just before a drop may never be read by the client (in the kernel's
    buffers, or read but not processed). The backlog cannot know; the event numbers can: the
    client resumes with the highest ``seq`` it processed and gets everything after it, once."""
    wav, _ = upgrade_call
    split = int(wav.sample_rate * 27.5)

    async def run():
        ws = await connect(server.url())
        await ws.send(_start("resume-last-seq"))
        started = json.loads(await ws.recv())
        reader = asyncio.create_task(_drain(ws))
        for i in range(0, split, STEP):
            await ws.send(encode(wav.samples[i:min(i + STEP, split)], "mulaw"))
        await asyncio.sleep(2.0)  # the first part's finals are out and read
        ws.transport.abort()
        read = await reader
        finals = [e for e in read if e["type"] == "transcript" and e["is_final"]]
        assert len(finals) >= 3
        lost = finals[-2:]  # as if the last two had died in flight: never processed
        processed = [e for e in read if e not in lost and e.get("seq", 0) < lost[0]["seq"]]
        last_seq = max(e.get("seq", 0) for e in processed)
        async with connect(server.url()) as ws2:
            msg = json.loads(_start(token=started["resume_token"]))
            msg["last_seq"] = last_seq
            await ws2.send(json.dumps(msg))
            resumed = json.loads(await ws2.recv())
            for i in range(split, len(wav.samples), STEP):
                await ws2.send(encode(wav.samples[i:i + STEP], "mulaw"))
            await ws2.send('{"type":"stop"}')
            second = await _drain(ws2)
        return processed, lost, last_seq, resumed, second

    processed, lost, last_seq, resumed, second = server.call(run())
    assert resumed["resumed"] is True
    seqs = [e["seq"] for e in second if e.get("seq")]
    assert seqs == sorted(seqs) and seqs[0] == last_seq + 1 and len(seqs) == len(set(seqs))
    got = _finals(processed) + _finals(second)
    assert _per_channel(got) == _per_channel(reference)  # the two "lost" finals came back, nothing twice
    assert all((e["utterance_id"], e["text"]) in _finals(second) for e in lost)


def test_last_seq_must_be_a_non_negative_integer(server):
    async def run():
        async with connect(server.url()) as ws:
            msg = json.loads(_start(token="x"))
            msg["last_seq"] = -1
            await ws.send(json.dumps(msg))
            return json.loads(await ws.recv()), ws

    ev, _ = server.call(run())
    assert ev["type"] == "error" and ev["code"] == "invalid_start" and "last_seq" in ev["message"]


def test_resume_while_still_attached_supersedes_the_old_connection(server, upgrade_call, reference):
    wav, _ = upgrade_call
    split = int(wav.sample_rate * 16.0)

    async def run():
        async with connect(server.url()) as ws:
            await ws.send(_start("resume-takeover"))
            started = json.loads(await ws.recv())
            reader = asyncio.create_task(_drain(ws))
            for i in range(0, split, STEP):
                await ws.send(encode(wav.samples[i:min(i + STEP, split)], "mulaw"))
            async with connect(server.url()) as ws2:
                await ws2.send(_start(token=started["resume_token"]))
                resumed = json.loads(await ws2.recv())
                await ws.send(encode(wav.samples[split:split + STEP], "mulaw"))  # the old one keeps sending
                first = await asyncio.wait_for(reader, 30)
                for i in range(split, len(wav.samples), STEP):
                    await ws2.send(encode(wav.samples[i:i + STEP], "mulaw"))
                await ws2.send('{"type":"stop"}')
                second = await _drain(ws2)
            return ws.close_code, first, resumed, second

    code, first, resumed, second = server.call(run())
    assert code == 4009
    assert any(e["type"] == "error" and e["code"] == "superseded" for e in first)
    assert resumed["resumed"] is True
    got = _finals(first) + _finals(second)
    assert _per_channel(got) == _per_channel(reference)
    assert next(e for e in second if e["type"] == "summary")["reason"] == "normal"


def test_resume_with_another_encoding_keeps_the_timeline(server, upgrade_call, reference):
    wav, _ = upgrade_call
    split = int(wav.sample_rate * 16.0)

    async def run():
        async with connect(server.url()) as ws:
            await ws.send(_start("resume-pcm"))
            started = json.loads(await ws.recv())
            reader = asyncio.create_task(_drain(ws))
            for i in range(0, split, STEP):
                await ws.send(encode(wav.samples[i:min(i + STEP, split)], "mulaw"))
            await asyncio.sleep(0)
            ws.transport.abort()
            first = await reader
        async with connect(server.url()) as ws2:
            await ws2.send(_start(token=started["resume_token"], encoding="pcm16"))
            json.loads(await ws2.recv())
            for i in range(split, len(wav.samples), STEP):
                await ws2.send(encode(wav.samples[i:i + STEP], "pcm16"))
            await ws2.send('{"type":"stop"}')
            second = await _drain(ws2)
        return first, second

    first, second = server.call(run())
    got = _finals(first) + _finals(second)
    # the audio went through a μ-law round trip already, so the 16-bit stream carries the same samples
    assert _per_channel(got) == _per_channel(reference)


def test_resume_with_other_channels_is_refused(server):
    async def run():
        async with connect(server.url()) as ws:
            await ws.send(_start("resume-mismatch"))
            started = json.loads(await ws.recv())
            await ws.send(b"\xff" * 3200)
            ws.transport.abort()
        async with connect(server.url()) as ws2:
            await ws2.send(_start(token=started["resume_token"], channels=1))
            events = await _drain(ws2)
            return events, ws2.close_code

    events, code = server.call(run())
    assert events[0]["type"] == "error" and events[0]["code"] == "resume_mismatch"
    assert code == 1008
