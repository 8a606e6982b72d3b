"""A labelled call over a real socket raises its alerts live on the supervisor subscription."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect

from speechiq.replay.client import replay

pytestmark = pytest.mark.slow


def test_labelled_call_alerts_reach_supervisor(server, upgrade_call):
    wav, truth = upgrade_call
    expected = {label for turn in truth["turns"] for label in turn["labels"]
                if label in ("compliance.disclosure", "sales.interest", "sales.offer")}

    async def run():
        async with connect(server.url("/v1/alerts") + "?min_severity=info") as sup:
            hello = json.loads(await sup.recv())
            res = await replay(server.url(), wav, speed=None, encoding="mulaw", call_id="e2e-alerts",
                               language="en", metadata={"queue": "sales", "agent_id": "a-7"})
            got = []
            try:
                async with asyncio.timeout(5):
                    async for raw in sup:
                        got.append(json.loads(raw))
            except TimeoutError:
                pass
            return hello, res, got

    hello, res, got = server.call(run())
    assert hello["type"] == "subscribed"
    alerts = [a for a in got if a.get("type") == "alert" and a["call_id"] == "e2e-alerts"]
    labels = {a["label"] for a in alerts if a["state"] != "retracted"}
    assert expected <= labels, (expected, labels)
    for a in alerts:
        assert a["rule_id"] and a["pack_version"] and a["severity"] and a["category"]
        assert a["evidence"] or a["text"] == ""  # deadline alerts carry no utterance
        assert 0 <= a["media_time"] <= truth["duration"] + 1
    # the caller's own stream carries the same alerts, and the summary counts them
    own = {a["alert_id"] for a in res.of_type("alert")}
    assert {a["alert_id"] for a in alerts} <= own
    assert res.summary["alerts"] >= len({a["alert_id"] for a in alerts})
    assert "nev" in res.summary["analytics"] or "talk" in res.summary["analytics"]


def test_filtered_subscription_only_gets_its_category(server, upgrade_call):
    wav, _ = upgrade_call

    async def run():
        async with connect(server.url("/v1/alerts") + "?category=escalation") as sup:
            await sup.recv()
            await replay(server.url(), wav, speed=None, encoding="mulaw", language="en")
            got = []
            try:
                async with asyncio.timeout(3):
                    async for raw in sup:
                        got.append(json.loads(raw))
            except TimeoutError:
                pass
            return got

    got = server.call(run())
    assert all(a["category"] == "escalation" for a in got if a.get("type") == "alert")
