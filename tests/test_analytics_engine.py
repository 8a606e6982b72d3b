"""CallAnalytics: every condition kind live, partial → confirm/retract, deadlines, cooldown, call scope."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

from speechiq.analytics.engine import CallAnalytics
from speechiq.events import Alert, Transcript
from speechiq.rules import compile_pack, load_pack

DATA = Path(__file__).parent / "data"


# ---- test doubles for the other engineer's modules (explicit, deterministic) --------------------
@dataclass(frozen=True)
class Sent:
    score: float
    label: str


class WordScorer:
    """Deterministic sentiment: the mean of known word scores (0 when none)."""

    WORDS: ClassVar[dict[str, float]] = {
        "frustrated": -0.8, "angry": -0.9, "terrible": -0.8, "annoyed": -0.6, "unhappy": -0.5,
        "great": 0.8, "thanks": 0.5, "happy": 0.7, "ok": 0.0}

    def score(self, text: str, language: str) -> Sent:
        words = set(text.lower().replace(",", " ").replace(".", " ").split())
        vals = [v for w, v in self.WORDS.items() if w in words]
        s = sum(vals) / len(vals) if vals else 0.0
        return Sent(s, "negative" if s < -0.05 else "positive" if s > 0.05 else "neutral")


class FakeTalk:
    """Minimal TalkMetrics: intervals per role, mutual silence and overlap from them."""

    def __init__(self, roles: Any = ("agent", "customer")) -> None:
        self.iv: list[tuple[str, float, float]] = []
        self.now = 0.0
        self.interruptions = {"agent": 0, "customer": 0}
        self.first_agent_speech: float | None = None

    def on_activity(self, role: str, start: float, end: float) -> None:
        self.iv.append((role, start, end))
        if role == "agent" and (self.first_agent_speech is None or start < self.first_agent_speech):
            self.first_agent_speech = start

    def on_final(self, role: str, start: float, end: float, n_words: int) -> None:
        if not any(r == role and s < end and e > start for r, s, e in self.iv):
            self.on_activity(role, start, end)

    def advance(self, now: float) -> None:
        self.now = max(self.now, now)

    def silence_before(self, start: float) -> float:
        if any(s < start < e for _, s, e in self.iv):
            return 0.0
        return start - max((e for _, s, e in self.iv if e <= start), default=0.0)

    def overtalk_at(self, start: float, role: str) -> float:
        return max((e - start for r, s, e in self.iv if r != role and s < start < e), default=0.0)

    @property
    def current_silence(self) -> float:
        return self.now - max((e for _, _, e in self.iv), default=0.0)

    @property
    def talk_time(self) -> dict[str, float]:
        out = {"agent": 0.0, "customer": 0.0}
        for r, s, e in self.iv:
            out[r] = out.get(r, 0.0) + e - s
        return out

    def snapshot(self) -> dict[str, Any]:
        return {"talk_time": self.talk_time}


class FakeCallMetrics:
    def __init__(self) -> None:
        self.finals: list[tuple[str, str]] = []
        self.events: list[tuple[str, float]] = []

    def on_final(self, role: str, text: str, language: str, sentiment: Any, start: float, end: float) -> None:
        self.finals.append((role, text))

    def on_event(self, kind: str, media_time: float) -> None:
        self.events.append((kind, media_time))

    def summary(self) -> dict[str, Any]:
        return {"nev": 0.0, "ces": 0.0, "nps_proxy": 0.0}


@pytest.fixture(scope="module")
def pack():
    return compile_pack(load_pack(DATA / "rules_basic.yaml"))


def make(pack, language: str = "en", metadata: dict[str, Any] | None = None) -> CallAnalytics:
    return CallAnalytics("c1", pack, language=language, metadata=metadata or {}, sentiment=WordScorer(),
                         talk=FakeTalk(), callmetrics=FakeCallMetrics())


_n = 0


def tr(role: str, text: str, start: float, end: float, *, final: bool = True, uid: str | None = None,
       lang: str = "") -> Transcript:
    global _n
    _n += 1
    return Transcript(call_id="c1", channel=0 if role == "agent" else 1, role=role, utterance_id=uid or f"u{_n}",
                      is_final=final, start=start, end=end, text=text, language=lang)


def by_rule(alerts: list[Alert], rule_id: str) -> list[Alert]:
    return [a for a in alerts if a.rule_id == rule_id]


# ---- phrases ---------------------------------------------------------------------------------------
def test_phrase_confirmed_on_final_with_evidence_spans(pack):
    ca = make(pack)
    text = "I am frustrated. I want to speak to your SUPERVISOR right now."
    alerts = by_rule(ca.on_transcript(tr("customer", text, 5.0, 9.0)), "supervisor_request")
    assert len(alerts) == 1
    a = alerts[0]
    assert (a.state, a.label, a.category, a.severity, a.pack_version) == (
        "confirmed", "escalation.supervisor_request", "escalation", "high", pack.version)
    assert (a.start, a.end, a.role, a.text, a.media_time) == (5.0, 9.0, "customer", text, 9.0)
    ev = a.evidence[0]
    highlighted = {text[s:e] for s, e in ev.spans}
    assert "speak to your SUPERVISOR" in highlighted
    assert ev.sentiment == pytest.approx(-0.8)


def test_role_and_language_filters(pack):
    ca = make(pack)
    assert not by_rule(ca.on_transcript(tr("agent", "let me get my supervisor", 1, 2)), "supervisor_request")
    # a zh-only rule never runs on English text, and en-only rules never on Chinese
    assert not by_rule(ca.on_transcript(tr("customer", "投诉 cancel my account", 3, 4, lang="en")), "complaint_zh")
    assert not by_rule(ca.on_transcript(tr("customer", "cancel my account", 5, 6, lang="zh")), "churn")


@pytest.mark.parametrize("text", ["I want to talk to your super visor", "cancel my acount please"])
def test_fuzzy_tolerates_asr_errors(pack, text):
    ca = make(pack)
    got = ca.on_transcript(tr("customer", text, 1, 3))
    assert by_rule(got, "supervisor_request") or by_rule(got, "churn")


def test_fuzzy_does_not_fire_on_unrelated_text(pack):
    ca = make(pack)
    got = ca.on_transcript(tr("customer", "my internet is slow in the evening", 1, 3))
    assert not by_rule(got, "supervisor_request") and not by_rule(got, "churn")


@pytest.mark.parametrize(("text", "rule", "word"), [
    ("我要投素，让你们主管来跟我说。", "complaint_zh", "投素"),
    ("让你们主馆来跟我说", "supervisor_request", "主馆"),
    ("我要投訴", "complaint_zh", "投訴"),  # traditional characters
])
def test_pinyin_homophones_match(pack, text, rule, word):
    ca = make(pack, language="zh")
    got = by_rule(ca.on_transcript(tr("customer", text, 1, 3)), rule)
    assert got, f"{rule} did not fire on {text}"
    spans = got[0].evidence[0].spans
    assert word in {text[s:e] for s, e in spans}


def test_number_forms_match_one_phrase(pack):
    for text in ["it costs ten dollars more", "it costs $10 more", "it costs 10 dollars more"]:
        ca = make(pack)
        assert by_rule(ca.on_transcript(tr("agent", text, 1, 2)), "price_ten"), text


def test_regex_on_normalised_digits(pack):
    ca = make(pack)
    text = "It's four four seven one nine two."
    got = by_rule(ca.on_transcript(tr("customer", text, 1, 4)), "account_digits")
    assert got and {text[s:e] for s, e in got[0].evidence[0].spans} == {"four four seven one nine two"}


# ---- partials --------------------------------------------------------------------------------------
def test_partial_then_final_confirms_same_alert(pack):
    ca = make(pack)
    p1 = by_rule(ca.on_transcript(tr("customer", "I want to speak to your supervisor", 1, 3, final=False, uid="x")),
                 "supervisor_request")
    p2 = by_rule(ca.on_transcript(tr("customer", "I want to speak to your supervisor now", 1, 4, final=False,
                                     uid="x")), "supervisor_request")
    f = by_rule(ca.on_transcript(tr("customer", "I want to speak to your supervisor now.", 1, 4.5, uid="x")),
                "supervisor_request")
    assert [a.state for a in p1] == ["provisional"] and p2 == []
    assert [a.state for a in f] == ["confirmed"] and f[0].alert_id == p1[0].alert_id
    assert f[0].media_time == 4.5


def test_partial_then_final_retracts(pack):
    ca = make(pack)
    p = by_rule(ca.on_transcript(tr("customer", "put me through to the supervisor", 1, 3, final=False, uid="y")),
                "supervisor_request")
    f = by_rule(ca.on_transcript(tr("customer", "put me through to the super bowl party", 1, 4, uid="y")),
                "supervisor_request")
    assert [a.state for a in p] == ["provisional"]
    assert [a.state for a in f] == ["retracted"] and f[0].alert_id == p[0].alert_id


def test_provisional_without_final_is_retracted_at_finish(pack):
    ca = make(pack)
    p = ca.on_transcript(tr("customer", "get me a supervisor", 1, 2, final=False, uid="z"))
    alerts, summary = ca.finish(10.0)
    r = [a for a in alerts if a.alert_id == by_rule(p, "supervisor_request")[0].alert_id]
    assert [a.state for a in r] == ["retracted"]
    assert summary["alerts"]["retracted"] == 1


# ---- deadline --------------------------------------------------------------------------------------
def test_deadline_fires_at_exact_media_time(pack):
    ca = make(pack)
    assert not by_rule(ca.advance(14.9), "disclosure_deadline")
    got = by_rule(ca.advance(15.3), "disclosure_deadline")
    assert len(got) == 1
    a = got[0]
    assert (a.media_time, a.start, a.end, a.role, a.text, a.state) == (15.0, 15.0, 15.0, "agent", "", "confirmed")
    assert not by_rule(ca.advance(40.0), "disclosure_deadline")


def test_deadline_satisfied_in_time(pack):
    ca = make(pack)
    ca.on_transcript(tr("agent", "Thanks for calling, this call is recorded.", 1, 4))
    assert not by_rule(ca.advance(20.0) + ca.finish(30.0)[0], "disclosure_deadline")


def test_deadline_fires_provisionally_over_a_partial_and_its_final_retracts_it(pack):
    ca = make(pack)
    ca.on_transcript(tr("agent", "thanks for calling this call", 12, 14, final=False, uid="d"))
    p = by_rule(ca.advance(15.5), "disclosure_deadline")  # the words are not in the partial (yet)
    assert [(a.state, a.media_time, a.start) for a in p] == [("provisional", 15.0, 15.0)]
    r = by_rule(ca.on_transcript(tr("agent", "thanks for calling this call is recorded", 12, 16, uid="d")),
                "disclosure_deadline")
    assert [(a.state, a.alert_id) for a in r] == [("retracted", p[0].alert_id)]
    assert not by_rule(ca.advance(17.0) + ca.finish(30.0)[0], "disclosure_deadline")


def test_deadline_waits_for_an_utterance_whose_partial_says_the_words(pack):
    ca = make(pack)
    ca.on_transcript(tr("agent", "thanks for calling this call is recorded", 12, 14.5, final=False, uid="d"))
    assert not by_rule(ca.advance(15.5), "disclosure_deadline")  # held back: its final should satisfy it
    ca.on_transcript(tr("agent", "thanks for calling this call is recorded", 12, 16, uid="d"))
    assert not by_rule(ca.advance(17.0) + ca.finish(30.0)[0], "disclosure_deadline")


def test_deadline_held_back_then_fires_with_deadline_time(pack):
    ca = make(pack)
    ca.on_activity("agent", 0, 13.0, 15.8)  # speech before the deadline, final not here yet
    assert not by_rule(ca.advance(16.0), "disclosure_deadline")
    got = by_rule(ca.on_transcript(tr("agent", "hello how can I help", 13.0, 15.8)), "disclosure_deadline")
    assert len(got) == 1 and got[0].media_time == 15.0


# ---- sequence / order ------------------------------------------------------------------------------
def test_order_violation_account_details_before_verification(pack):
    ca = make(pack)
    got = by_rule(ca.on_transcript(tr("agent", "Your balance is two thousand four hundred dollars.", 10, 13)),
                  "account_before_verification")
    assert len(got) == 1 and got[0].evidence[0].spans
    ok = make(pack)
    ok.on_transcript(tr("agent", "Can you confirm your date of birth?", 5, 7))
    assert not by_rule(ok.on_transcript(tr("agent", "Your balance is forty dollars.", 10, 12)),
                       "account_before_verification")


def test_sequence_within_window(pack):
    ca = make(pack)
    ca.on_transcript(tr("customer", "Do you have anything faster?", 5, 8))
    got = by_rule(ca.on_transcript(tr("agent", "We can upgrade you to fiber.", 9, 12)), "offer_after_interest")
    assert len(got) == 1 and [e.role for e in got[0].evidence] == ["customer", "agent"]
    late = make(pack)
    late.on_transcript(tr("customer", "Do you have anything faster?", 5, 8))
    assert not by_rule(late.on_transcript(tr("agent", "We can upgrade you.", 40, 42)), "offer_after_interest")


# ---- sentiment, metrics, metadata, dtmf -----------------------------------------------------------
def test_sentiment_and_trend(pack):
    ca = make(pack)
    a1 = ca.on_transcript(tr("customer", "I am unhappy about this", 1, 2))
    a2 = ca.on_transcript(tr("customer", "this is terrible", 3, 4))
    a3 = ca.on_transcript(tr("customer", "I am so angry", 5, 6))
    assert not by_rule(a1, "angry_customer") and by_rule(a2, "angry_customer")
    assert not by_rule(a1 + a2, "souring")
    trend = by_rule(a3, "souring")
    assert len(trend) == 1 and len(trend[0].evidence) == 3 and trend[0].text == "I am so angry"
    assert not by_rule(ca.on_transcript(tr("customer", "angry", 7, 8)), "souring")  # edge-triggered
    assert ca.sentiment_of(trend[0].evidence[0].utterance_id) == pytest.approx(-0.5)


def test_silence_before_and_first_agent_speech(pack):
    ca = make(pack)
    ca.on_activity("agent", 0, 1.0, 4.0)
    ca.on_transcript(tr("agent", "please hold", 1.0, 4.0))
    ca.on_activity("customer", 1, 16.0, 18.0)
    got = by_rule(ca.on_transcript(tr("customer", "hello are you there", 16.0, 18.0)), "long_silence_turn")
    assert len(got) == 1
    quiet = make(pack)
    assert not by_rule(quiet.advance(29.9), "no_agent")
    late = by_rule(quiet.advance(30.1), "no_agent")
    assert len(late) == 1 and late[0].media_time == pytest.approx(30.1) and late[0].text == ""


def test_metadata_within_and_cooldown(pack):
    ca = make(pack, metadata={"queue": "vip"})
    a = by_rule(ca.on_transcript(tr("customer", "I need help", 2, 3)), "vip_opening")
    b = by_rule(ca.on_transcript(tr("customer", "please help", 10, 11)), "vip_opening")
    c = by_rule(ca.on_transcript(tr("customer", "help me", 30, 31)), "vip_opening")
    d = by_rule(ca.on_transcript(tr("customer", "help", 70, 71)), "vip_opening")  # outside first 60 s
    assert (len(a), len(b), len(c), len(d)) == (1, 0, 1, 0)
    other = make(pack, metadata={"queue": "billing"})
    assert not by_rule(other.on_transcript(tr("customer", "help", 2, 3)), "vip_opening")
    other.on_metadata({"queue": "vip"})
    assert by_rule(other.on_transcript(tr("customer", "help", 4, 5)), "vip_opening")


def test_dtmf(pack):
    ca = make(pack)
    assert not by_rule(ca.on_dtmf("1", 3.0), "operator_key")
    got = by_rule(ca.on_dtmf("0", 4.0), "operator_key")
    assert len(got) == 1 and got[0].media_time == 4.0


def test_dedup_once_per_utterance(pack):
    ca = make(pack)
    for k in range(3):
        ca.on_transcript(tr("customer", "supervisor supervisor", 1, 2 + k, final=False, uid="dd"))
    final = ca.on_transcript(tr("customer", "supervisor supervisor please", 1, 5, uid="dd"))
    assert [a.state for a in by_rule(final, "supervisor_request")] == ["confirmed"]


# ---- call scope ------------------------------------------------------------------------------------
def test_call_scope_never_said_and_exists_last(pack):
    ca = make(pack)
    ca.on_transcript(tr("agent", "Northwind Telecom, this is Emma.", 1, 3))
    ca.on_transcript(tr("agent", "Is there anything else I can do?", 30, 32))
    alerts, _ = ca.finish(100.0)
    missing = by_rule(alerts, "missing_disclosure")
    assert len(missing) == 1 and missing[0].media_time == 100.0 and missing[0].text == ""
    assert by_rule(alerts, "closing_missing")  # "anything else" was not in the last 60 s
    ok = make(pack)
    ok.on_transcript(tr("agent", "This call is recorded.", 1, 3))
    ok.on_transcript(tr("agent", "Anything else?", 90, 92))
    alerts2, _ = ok.finish(100.0)
    assert not by_rule(alerts2, "missing_disclosure") and not by_rule(alerts2, "closing_missing")


def test_summary_counts_and_events(pack):
    ca = make(pack)
    ca.on_transcript(tr("customer", "I want to speak to your supervisor, I am frustrated", 1, 4))
    _, summary = ca.finish(20.0)
    assert summary["alerts"]["by_label"]["escalation.supervisor_request"] == 1
    assert summary["pack"]["version"] == pack.version
    assert summary["sentiment"]["customer"]["turns"] == 1
    assert {"nev", "ces", "nps_proxy", "talk"} <= set(summary)
    assert ("supervisor_request", 4.0) in ca.callmetrics.events


def test_utterance_language_detection_for_auto_calls(pack):
    ca = make(pack, language="auto")
    assert by_rule(ca.on_transcript(tr("customer", "我要投诉", 1, 2)), "complaint_zh")


def test_deadline_from_an_event_and_state_conditions(pack):
    ca = make(pack, metadata={"direction": "inbound"})
    ca.on_transcript(tr("customer", "Can you tell me why my bill went up?", 20, 23))
    assert not by_rule(ca.advance(32.9), "answer_the_question")
    got = by_rule(ca.advance(33.0), "answer_the_question")
    assert len(got) == 1 and got[0].media_time == 33.0 and got[0].role == "agent"
    assert [e.text for e in got[0].evidence] == ["Can you tell me why my bill went up?"]
    answered = make(pack, metadata={"direction": "inbound"})
    answered.on_transcript(tr("customer", "Could you check my bill?", 20, 23))
    answered.on_transcript(tr("agent", "Sure, let me check.", 25, 27))
    assert not by_rule(answered.advance(40.0), "answer_the_question")
    outbound = make(pack, metadata={"direction": "outbound"})
    outbound.on_transcript(tr("customer", "Can you tell me why?", 20, 23))
    assert not by_rule(outbound.advance(40.0), "answer_the_question")


def test_edge_inputs_never_crash_and_finish_is_idempotent(pack):
    ca = make(pack)
    assert ca.on_transcript(tr("customer", "", 1, 2, final=False)) == []
    ca.on_transcript(tr("customer", "   ", 1, 2))
    ca.on_transcript(tr("agent", "¿¡…!!", 3, 4))
    ca.on_dtmf("#", 5)
    ca.on_metadata({"queue": None}, language="xx")
    first, _ = ca.finish(10.0)
    again, summary = ca.finish(12.0)
    assert again == [] and summary["alerts"]["total"] == len([a for a in first if a.state == "confirmed"])


def test_no_sentiment_scorer_scores_neutral(pack):
    ca = CallAnalytics("c1", pack, language="en", metadata={}, sentiment=None, talk=FakeTalk(),
                       callmetrics=FakeCallMetrics())
    t = tr("customer", "I want to speak to your supervisor", 1, 2)
    alerts = ca.on_transcript(t)
    assert by_rule(alerts, "supervisor_request") and ca.sentiment_of(t.utterance_id) == 0.0


# ---- metadata key aliases ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def events_pack():
    return compile_pack(load_pack(DATA / "rules_events.yaml"))


def real(pack, metadata: dict[str, Any] | None = None) -> CallAnalytics:
    """Real TalkMetrics and CallMetrics; sentiment off (neutral)."""
    return CallAnalytics("c1", pack, language="en", metadata=metadata or {}, sentiment=None)


@pytest.mark.parametrize(("metadata", "fires"), [
    ({"agent_id": "temp-3"}, {"temp_agent"}),
    ({"agent": "temp-3"}, {"temp_agent"}),  # agent is agent_id's alias
    ({"agent_id": "a-7"}, {"agent_seven"}),  # and the other way round
    ({"agent": "a-7"}, {"agent_seven"}),
    ({"agent_id": "a-7", "agent": "temp-3"}, {"agent_seven"}),  # agent_id wins when both are set
    ({"agent_id": None, "agent": "temp-3"}, {"temp_agent"}),  # an unset (None) value is absent
    ({}, set()),
])
def test_metadata_agent_id_and_agent_are_one_key(events_pack, metadata, fires):
    ca = real(events_pack)
    got = {a.rule_id for a in ca.on_metadata(metadata)}
    assert got == fires


# ---- deadlines started by call events -----------------------------------------------------------


def test_deadline_from_another_rules_alert(events_pack):
    ca = real(events_pack)
    transfer = ca.on_transcript(tr("agent", "let me transfer you, thanks for holding", 8, 10))
    assert [a.rule_id for a in transfer] == ["transfer_said"]  # its own utterance does not satisfy it
    assert not by_rule(ca.advance(24.9), "greet_after_transfer")
    got = by_rule(ca.advance(26.0), "greet_after_transfer")
    assert len(got) == 1 and (got[0].media_time, got[0].start, got[0].role, got[0].text) == (25.0, 25.0, "agent", "")
    ok = real(events_pack)
    ok.on_transcript(tr("agent", "I will transfer you now", 8, 10))
    ok.on_transcript(tr("agent", "hi, thanks for holding", 20, 22))
    assert not by_rule(ok.advance(40.0) + ok.finish(60.0)[0], "greet_after_transfer")


def test_deadline_from_an_alert_category_waits_for_the_confirmation(events_pack):
    ca = real(events_pack)
    p = ca.on_transcript(tr("customer", "get me a supervisor", 4, 5, final=False, uid="s"))
    assert [a.state for a in by_rule(p, "supervisor_asked")] == ["provisional"]
    ca.on_transcript(tr("customer", "get me a super bowl ticket", 4, 6, uid="s"))  # retracted
    assert not by_rule(ca.advance(40.0), "acknowledge_escalation")
    ca.on_transcript(tr("customer", "I want your supervisor", 41, 43))
    got = by_rule(ca.advance(70.0), "acknowledge_escalation")
    assert [a.media_time for a in got] == [63.0]


def test_deadline_from_dtmf_each_entry_starts_a_clock(events_pack):
    ca = real(events_pack)
    ca.on_dtmf("1", 2.0)
    assert not by_rule(ca.advance(14.0), "answer_operator_key")
    ca.on_dtmf("0", 5.0)
    assert [a.media_time for a in by_rule(ca.advance(16.0), "answer_operator_key")] == [15.0]
    ca.on_dtmf("0", 20.0)
    ca.on_transcript(tr("agent", "operator, how can I help?", 22, 24))
    assert not by_rule(ca.advance(40.0), "answer_operator_key")


def test_deadline_from_metadata_starts_on_the_edge(events_pack):
    at_start = real(events_pack, {"queue": "vip"})
    assert [a.media_time for a in by_rule(at_start.advance(6.0), "greet_vip")] == [5.0]
    later = real(events_pack, {"queue": "billing"})
    later.advance(10.0)
    later.on_metadata({"queue": "vip"})
    later.on_metadata({"queue": "vip"})  # still vip: no new clock
    assert [a.media_time for a in by_rule(later.advance(30.0), "greet_vip")] == [15.0]
    greeted = real(events_pack, {"queue": "vip"})
    greeted.on_transcript(tr("agent", "welcome back", 1, 3))
    assert not by_rule(greeted.advance(30.0), "greet_vip")
