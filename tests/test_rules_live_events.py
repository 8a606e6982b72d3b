"""Live call events in CallAnalytics (real TalkMetrics/CallMetrics): open speech (``on_speech``)
holding deadlines and feeding first-agent-speech, cooldown-deferred state edges on metadata,
chained event-started deadlines, and the engine's guards on open-speech input."""

from __future__ import annotations

from speechiq.analytics.engine import CallAnalytics
from speechiq.events import Alert, Transcript
from speechiq.rules import compile_pack
from speechiq.rules import schema as S


def phrase(words: str, role: str = "agent") -> S.Phrase:
    return S.Phrase(role, ((S.ALL_LANGS, (words,)),), (), None, False)


def rule(rid: str, when: S.Cond, cooldown_s: float = 0.0) -> S.Rule:
    return S.Rule(id=rid, label="process.error", category="process_error", severity="info", when=when,
                  cooldown_s=cooldown_s)


def call(*rules: S.Rule, metadata: dict[str, str] | None = None) -> CallAnalytics:
    return CallAnalytics("c", compile_pack(S.Pack(rules=rules, version="t")), language="en",
                         metadata=metadata or {}, sentiment=None)


def final(role: str, text: str, start: float, end: float) -> Transcript:
    return Transcript(call_id="c", channel=0 if role == "agent" else 1, role=role,
                      utterance_id=f"{role}@{start}", is_final=True, start=start, end=end, text=text, language="en")


def ids(alerts: list[Alert], rid: str) -> list[float]:
    return [a.media_time for a in alerts if a.rule_id == rid]


DISCLOSE = rule("disclose", S.Deadline(phrase("call is recorded"), 15.0, None, "agent"))


def test_open_agent_speech_before_the_deadline_holds_it_until_its_final():
    ca = call(DISCLOSE)
    ca.on_speech("agent", 0, 12.0, 12.5)  # the agent starts talking before the 15 s deadline
    for t in (15.0, 16.0, 17.0):
        assert not ids(ca.on_speech("agent", 0, 12.0, t) + ca.advance(t), "disclose")
    ca.on_activity("agent", 0, 12.0, 17.5)
    assert not ids(ca.on_transcript(final("agent", "this call is recorded", 12.0, 17.5)), "disclose")
    assert not ids(ca.advance(30.0) + ca.finish(40.0)[0], "disclose")


def test_open_speech_without_the_phrase_lets_the_deadline_fire_at_its_own_time():
    ca = call(DISCLOSE)
    ca.on_speech("agent", 0, 12.0, 16.0)
    assert not ids(ca.advance(16.0), "disclose")
    ca.on_activity("agent", 0, 12.0, 17.0)
    assert ids(ca.on_transcript(final("agent", "hello how can I help", 12.0, 17.0)), "disclose") == [15.0]


def test_open_speech_of_the_other_role_or_after_the_deadline_does_not_hold_it():
    ca = call(DISCLOSE)
    assert not ids(ca.on_speech("customer", 1, 10.0, 14.0), "disclose")
    assert ids(ca.on_speech("customer", 1, 10.0, 15.0) + ca.advance(15.0), "disclose") == [15.0]
    late = call(DISCLOSE)
    assert ids(late.on_speech("agent", 0, 15.5, 16.0) + late.advance(16.0), "disclose") == [15.0]


def test_open_speech_no_longer_reported_stops_holding():
    ca = call(DISCLOSE)
    ca.on_speech("agent", 0, 14.0, 14.5)  # then nothing: the session lost the utterance
    assert not ids(ca.advance(16.0), "disclose")
    assert ids(ca.advance(17.0), "disclose") == [15.0]  # 2 s (OPEN_SPEECH_HOLD_S) after it was last heard


def partial(role: str, text: str, start: float, end: float) -> Transcript:
    return Transcript(call_id="c", channel=0 if role == "agent" else 1, role=role,
                      utterance_id=f"{role}@{start}", is_final=False, start=start, end=end, text=text, language="en")


def states(alerts: list[Alert], rid: str) -> list[tuple[str, float]]:
    return [(a.state, a.media_time) for a in alerts if a.rule_id == rid]


def test_a_partial_without_the_words_fires_the_held_deadline_provisionally_and_its_final_confirms():
    ca = call(DISCLOSE)
    ca.on_speech("agent", 0, 12.0, 14.0)
    assert not ids(ca.on_transcript(partial("agent", "hello how can", 12.0, 14.0)), "disclose")  # not due yet
    got = ca.on_speech("agent", 0, 12.0, 15.0) + ca.advance(15.0)
    assert states(got, "disclose") == [("provisional", 15.0)]  # at its due time, not when the final comes
    assert not ids(ca.on_speech("agent", 0, 12.0, 16.0) + ca.advance(16.0), "disclose")  # once
    ca.on_activity("agent", 0, 12.0, 17.0)
    done = ca.on_transcript(final("agent", "hello how can I help", 12.0, 17.0))
    assert states(done, "disclose") == [("confirmed", 15.0)]
    assert {a.alert_id for a in got + done if a.rule_id == "disclose"} == {"c:disclose:deadline@15.000"}
    assert ca.summary()["alerts"]["by_rule"] == {"disclose": 1}
    assert not ids(ca.advance(30.0) + ca.finish(40.0)[0], "disclose")


def test_a_final_that_says_the_words_in_time_retracts_the_provisional_deadline():
    ca = call(DISCLOSE)
    ca.on_transcript(partial("agent", "hello", 12.0, 13.0))
    assert states(ca.advance(15.0), "disclose") == [("provisional", 15.0)]
    got = ca.on_transcript(final("agent", "hello this call is recorded", 12.0, 17.0))
    assert states(got, "disclose") == [("retracted", 17.0)]
    assert not ids(ca.advance(30.0) + ca.finish(40.0)[0], "disclose")
    assert ca.summary()["alerts"]["by_rule"] == {} and ca.summary()["alerts"]["retracted"] == 1


def test_the_call_end_confirms_a_provisional_deadline_whose_final_never_came():
    ca = call(DISCLOSE)
    ca.on_speech("agent", 0, 12.0, 15.0)
    got = ca.on_transcript(partial("agent", "hello", 12.0, 15.0)) + ca.advance(15.0)
    assert states(got, "disclose") == [("provisional", 15.0)]
    assert states(ca.finish(15.5)[0], "disclose") == [("confirmed", 15.0)]


def test_partials_of_the_other_role_or_after_the_deadline_do_not_fire_it_early():
    ca = call(DISCLOSE)
    ca.on_speech("agent", 0, 12.0, 15.0)
    ca.on_transcript(partial("customer", "hello", 13.0, 14.0))  # the customer cannot give the notice
    ca.on_transcript(partial("agent", "hello", 16.0, 17.0))  # started after the deadline
    assert not ids(ca.on_speech("agent", 0, 12.0, 16.0) + ca.advance(16.0), "disclose")  # still held


def test_a_provisional_deadline_starts_no_clock_until_it_is_confirmed():
    greet = rule("greet", S.Deadline(phrase("welcome"), 5.0, None, "agent"))
    apology = rule("apologise", S.Deadline(phrase("sorry for the wait"), 10.0, S.AlertOf(rule="greet"), "agent"))
    ca = call(greet, apology)
    ca.on_speech("agent", 0, 4.0, 5.0)
    got = ca.on_transcript(partial("agent", "hello", 4.0, 5.0)) + ca.advance(5.0)
    assert states(got, "greet") == [("provisional", 5.0)]
    ca.on_activity("agent", 0, 4.0, 9.0)
    got = ca.on_transcript(final("agent", "hello there", 4.0, 9.0))
    assert states(got, "greet") == [("confirmed", 5.0)]
    assert states(ca.advance(14.9), "apologise") == []
    assert states(ca.advance(15.0), "apologise") == [("confirmed", 15.0)]  # from the greet alert's media time


def test_the_deadline_waits_for_the_media_clock_not_for_one_channels_report():
    ca = call(DISCLOSE)
    # the session reports each channel, then ticks the clock: the customer's report reaching the
    # deadline must not fire it before the agent's speech that opened at that instant is heard
    assert not ids(ca.on_speech("customer", 1, 15.0, 15.0), "disclose")
    assert not ids(ca.on_speech("agent", 0, 15.0, 15.0) + ca.advance(15.0), "disclose")
    ca.on_activity("agent", 0, 15.0, 17.0)
    assert not ids(ca.on_transcript(final("agent", "this call is recorded", 15.0, 17.0)), "disclose")
    assert not ids(ca.advance(30.0) + ca.finish(40.0)[0], "disclose")


def test_first_agent_speech_is_known_while_the_agent_still_talks():
    slow = rule("slow_answer", S.Metric("first_agent_speech", None, "gt", 10.0))
    ca = call(slow)
    ca.on_speech("agent", 0, 8.0, 8.5)
    for t in (9.0, 11.0, 13.0):  # the agent's first turn is still open: it answered at 8 s
        assert not ids(ca.on_speech("agent", 0, 8.0, t) + ca.advance(t), "slow_answer")
    nobody = call(slow)
    assert ids(nobody.advance(10.0), "slow_answer") == []
    assert ids(nobody.advance(10.25), "slow_answer") == [10.25]  # fires live, in media time


def test_a_non_timed_state_rule_blocked_by_cooldown_fires_on_a_tick_after_it():
    vip = rule("vip", S.Metadata("queue", equals="vip"), cooldown_s=20.0)
    ca = call(vip)
    assert ids(ca.on_metadata({"queue": "vip"}, media_time=1.0), "vip") == [1.0]
    ca.on_metadata({"queue": "billing"}, media_time=5.0)
    assert not ids(ca.on_metadata({"queue": "vip"}, media_time=8.0), "vip")  # inside the cooldown
    assert not ids(ca.advance(20.9), "vip")
    assert ids(ca.advance(21.0), "vip") == [21.0]  # still vip when the cooldown ends
    assert not ids(ca.advance(60.0), "vip")  # one edge, one alert


def test_a_deadline_alert_starts_the_clock_of_another_deadline():
    greet = rule("greet", S.Deadline(phrase("welcome"), 5.0, None, "agent"))
    apology = rule("apologise", S.Deadline(phrase("sorry for the wait"), 10.0, S.AlertOf(rule="greet"), "agent"))
    ca = call(greet, apology)
    assert ids(ca.advance(6.0), "greet") == [5.0]
    assert not ids(ca.advance(14.9), "apologise")
    assert ids(ca.advance(15.0), "apologise") == [15.0]
    caught_up = call(greet, apology)  # one late tick: both due, both at their own media times
    got = caught_up.advance(40.0)
    assert (ids(got, "greet"), ids(got, "apologise")) == ([5.0], [15.0])


def test_metadata_edges_start_a_clock_each_time_the_condition_becomes_true():
    vip = rule("greet_vip", S.Deadline(phrase("welcome"), 5.0, S.Metadata("queue", equals="vip"), "agent"))
    ca = call(vip)
    ca.on_metadata({"queue": "vip"}, media_time=2.0)
    ca.on_metadata({"queue": "billing"}, media_time=3.0)
    ca.on_metadata({"queue": "vip"}, media_time=4.0)
    assert ids(ca.advance(10.0), "greet_vip") == [7.0, 9.0]


def test_non_finite_open_speech_is_ignored():
    ca = call(DISCLOSE)
    assert ca.on_speech("agent", 0, float("nan"), 3.0) == []
    assert ca.on_speech("agent", 0, 1.0, float("inf")) == []
    assert ids(ca.advance(15.0), "disclose") == [15.0]


def test_current_overtalk_fires_while_both_still_talk():
    over = rule("overtalk_live", S.Metric("current_overtalk", None, "gt", 2.0))
    ca = call(over)
    got: list[Alert] = []
    for k in range(0, 41):  # agent talks 0-10 s, the customer cuts in at 3 s and goes on to 8 s
        now = k * 0.25
        if now < 10:
            got += ca.on_speech("agent", 0, 0.0, now)
        if 3.0 <= now < 8.0:
            got += ca.on_speech("customer", 1, 3.0, now)
        if now == 8.0:
            got += ca.on_activity("customer", 1, 3.0, 8.0)
        got += ca.advance(now)
    assert ids(got, "overtalk_live") == [5.25]  # live: long before either turn closes
