"""Call-level proxies: NEV, CES, NPS."""

from __future__ import annotations

from speechiq.analytics.callmetrics import CallMetrics
from speechiq.analytics.sentiment import Sentiment


def test_detractor_with_effort():
    m = CallMetrics()
    m.on_final("customer", "This is the third time I'm calling about this bill.", "en", Sentiment(-0.6, "negative"),
               3.0, 6.0)
    m.on_event("transfer", 20.0)
    m.on_event("hold", 10.0)
    m.on_final("customer", "I'm going to switch to another provider.", "en", Sentiment(-0.4, "negative"), 30, 33)
    s = m.summary()
    assert s["nps_proxy"] == "detractor"
    assert s["ces"] == 5.0  # 1 + repeat contact 2 + transfer 1 + hold 1
    assert 40 <= s["nev"] <= 60
    assert {c["cue"] for c in s["cues"]["effort"]} == {"repeat_contact", "transfer", "hold"}


def test_promoter_mandarin_and_passive():
    m = CallMetrics()
    m.on_final("customer", "服务太好了，我会推荐给朋友。", "zh", Sentiment(0.8, "positive"), 1, 3)
    assert m.summary()["nps_proxy"] == "promoter" and m.summary()["nev"] == 0.0
    p = CallMetrics()
    p.on_final("customer", "Okay.", "en", Sentiment(0.0, "neutral"), 1, 2)
    assert p.summary()["nps_proxy"] == "passive" and p.summary()["ces"] == 1.0
