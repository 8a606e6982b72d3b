"""Call-level proxies: NEV, CES, NPS."""

from __future__ import annotations

from speechiq.analytics.callmetrics import MAX_CUES, CallMetrics
from speechiq.analytics.sentiment import LexiconSentiment, Sentiment

NEG, NEU, POS = Sentiment(-0.6, "negative"), Sentiment(0.0, "neutral"), Sentiment(0.8, "positive")


def test_detractor_with_effort():
    m = CallMetrics()
    m.on_final("customer", "This is the third time I'm calling about this bill.", "en", NEG, 3.0, 6.0)
    m.on_event("repeat_contact", 6.2)  # the rule's alert on the same turn: counted once
    m.on_event("transfer", 20.0)
    m.on_event("hold", 10.0)
    m.on_final("customer", "I'm going to switch to another provider.", "en", Sentiment(-0.4, "negative"), 30, 33)
    s = m.summary()
    assert s["nps_proxy"] == "detractor" and s["nps_reason"] == "detractor cue"
    assert s["ces"] == 5.0  # 1 + repeat contact 2 + transfer 1 + hold 1
    assert s["nev"] == 50.0  # 2/2 negative × mean intensity 0.5 × 100
    assert {c["cue"] for c in s["cues"]["effort"]} == {"repeat_contact", "transfer", "hold"}
    assert s["cues"]["detractor"][0]["media_time"] == 30


def test_promoter_mandarin_and_passive():
    m = CallMetrics()
    m.on_final("customer", "服务太好了，我会推荐给朋友。", "zh", POS, 1, 3)
    assert m.summary()["nps_proxy"] == "promoter" and m.summary()["nev"] == 0.0
    p = CallMetrics()
    p.on_final("customer", "Okay.", "en", NEU, 1, 2)
    assert p.summary()["nps_proxy"] == "passive" and p.summary()["ces"] == 1.0


def test_agent_speech_is_not_customer_evidence():
    m = CallMetrics()
    m.on_final("agent", "I'd recommend our premium plan. Is this the third time you're calling?", "en", POS, 1, 4)
    s = m.summary()
    assert s["customer_turns"] == 0 and s["nps_proxy"] == "passive" and s["ces"] == 1.0
    assert s["sentiment"]["agent"]["turns"] == 1


def test_negative_ending_is_a_detractor():
    m = CallMetrics()
    m.on_final("customer", "Thanks.", "en", POS, 1, 2)
    m.on_final("customer", "Fine, whatever.", "en", Sentiment(-0.3, "negative"), 5, 6)
    m.on_final("customer", "This was a waste of my afternoon.", "en", NEG, 9, 11)
    assert m.nps_proxy() == ("detractor", "customer ends negative")
    s = m.summary()["sentiment"]["customer"]
    assert s["first"] == 0.8 and s["last"] == -0.6 and s["min"] == -0.6 and s["turns"] == 3


def test_repeated_question_and_repeat_info():
    m = CallMetrics()
    m.on_final("customer", "When will my refund arrive?", "en", NEU, 5, 7)
    m.on_final("customer", "Okay but when will the refund arrive?", "en", NEU, 40, 43)
    m.on_final("customer", "As I said, the account is in my wife's name.", "en", NEU, 60, 63)
    m.on_final("customer", "我已经说过了，号码是我的。", "zh", NEU, 70, 72)
    cues = [c["cue"] for c in m.summary()["cues"]["effort"]]
    assert cues == ["repeated_question", "repeat_info", "repeat_info"]
    assert m.ces() == 4.0


def test_mandarin_repeat_contact_and_detractor():
    m = CallMetrics()
    m.on_final("customer", "你们上个月多收了我一百块钱，我已经打了三次电话了。", "zh", NEG, 3, 8)
    m.on_final("customer", "再这样我就换运营商。", "zh", NEG, 20, 23)
    s = m.summary()
    assert s["ces"] == 3.0 and s["nps_proxy"] == "detractor"


def test_bounded_cues_and_real_scorer():
    m = CallMetrics()
    lex = LexiconSentiment()
    for i in range(500):
        m.on_event("hold", i * 10.0)
        text = "I'm going to cancel my account, this is the worst service."
        m.on_final("customer", text, "en", lex.score(text, "en"), i * 10.0, i * 10.0 + 3)
    s = m.summary()
    assert len(s["cues"]["effort"]) <= MAX_CUES and len(s["cues"]["detractor"]) <= MAX_CUES
    assert s["ces"] == 7.0 and s["nev"] > 50


def test_cue_precision():
    m = CallMetrics()
    m.on_final("customer", "I've already told my sister and two neighbours to switch. I'd recommend you.", "en",
               POS, 1, 5)
    m.on_final("customer", "No, I'm not going to cancel, it's fine.", "en", NEU, 8, 10)
    s = m.summary()
    assert s["cues"]["effort"] == [] and s["cues"]["detractor"] == [] and s["nps_proxy"] == "promoter"
