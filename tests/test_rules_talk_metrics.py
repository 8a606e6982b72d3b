"""Talk-metric conditions through real rules: CallAnalytics with the REAL TalkMetrics and CallMetrics.

A call is a media timeline of turns. As in the live pipeline, a turn's VAD speech interval
arrives when the turn closes (at its end), its final transcript right after, the clock ticks
every 0.25 s of media time, and while a turn is open the session reports it (``on_speech``).
Each test checks that a rule on one metric fires when, and only when, the metric crosses its
threshold (tests/data/rules_talk.yaml), at the media time it should.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import pytest

from speechiq.analytics.engine import CallAnalytics
from speechiq.analytics.talk import TalkMetrics
from speechiq.events import Alert, Transcript
from speechiq.rules import compile_pack, load_pack

DATA = Path(__file__).parent / "data"
STEP = 0.25


@pytest.fixture(scope="module")
def pack():
    return compile_pack(load_pack(DATA / "rules_talk.yaml"))


@dataclass(frozen=True)
class Turn:
    role: str
    start: float
    end: float
    words: int = 4


def _text(n: int) -> str:
    return " ".join(["okay"] * n)


def run(pack, turns: list[Turn], until: float) -> tuple[CallAnalytics, list[tuple[float, Alert]]]:
    """Play the timeline; returns the analytics and (tick, alert) for every alert emitted."""
    ca = CallAnalytics("talk", pack, language="en", metadata={}, sentiment=None)
    assert isinstance(ca.talk, TalkMetrics)  # the real one, not a stand-in
    todo = sorted(turns, key=lambda t: t.end)
    out: list[tuple[float, Alert]] = []
    k = 0
    while k * STEP <= until:
        now = k * STEP
        for t in todo:
            if t.start <= now < t.end:
                ca.on_speech(t.role, 0 if t.role == "agent" else 1, t.start, now)
        while todo and todo[0].end <= now:
            t = todo.pop(0)
            ch = 0 if t.role == "agent" else 1
            out += [(now, a) for a in ca.on_activity(t.role, ch, t.start, t.end)]
            tr = Transcript(call_id="talk", channel=ch, role=t.role, utterance_id=f"{t.role}@{t.start}",
                            is_final=True, start=t.start, end=t.end, text=_text(t.words), language="en")
            out += [(now, a) for a in ca.on_transcript(tr)]
        out += [(now, a) for a in ca.advance(now)]
        k += 1
    out += [(until, a) for a in ca.finish(until)[0]]
    return ca, out


def fired(alerts: list[tuple[float, Alert]], rule: str) -> list[float]:
    """Media times of the rule's alerts, in order."""
    return [a.media_time for _, a in alerts if a.rule_id == rule]


# ---- interruptions --------------------------------------------------------------------------------
def test_interruptions_fire_when_the_second_one_is_known(pack):
    # the customer cuts in twice while the agent talks 0–10; both are known when the agent's turn closes
    ca, alerts = run(pack, [Turn("agent", 0, 10, 25), Turn("customer", 3, 4), Turn("customer", 6, 7)], 20)
    assert ca.talk.interruptions["customer"] == 2
    assert fired(alerts, "many_interruptions") == [10.0]
    a = next(a for _, a in alerts if a.rule_id == "many_interruptions")
    assert (a.state, a.start, a.end, a.text, a.metadata["trigger"]) == ("confirmed", 10.0, 10.0, "", "state")


@pytest.mark.parametrize("customer", [
    [Turn("customer", 3, 4)],  # one interruption only
    [Turn("customer", 0.1, 1.0), Turn("customer", 9.8, 10.5)],  # a near-simultaneous start and a late backchannel
])
def test_interruptions_below_the_threshold_never_fire(pack, customer):
    ca, alerts = run(pack, [Turn("agent", 0, 10, 25), *customer], 20)
    assert ca.talk.interruptions["customer"] < 2
    assert fired(alerts, "many_interruptions") == []


# ---- speech rate ----------------------------------------------------------------------------------
def test_speech_rate_fires_on_the_final_that_pushes_it_over(pack):
    # 10 words in 6 s (100 wpm), then 20 words in 2 s: 30 words in 8 s of finals = 225 wpm
    ca, alerts = run(pack, [Turn("agent", 0, 6, 10), Turn("agent", 10, 12, 20)], 20)
    assert ca.talk.speech_rate["agent"] == pytest.approx(225.0)
    assert fired(alerts, "fast_agent") == [12.0]
    a = next(a for _, a in alerts if a.rule_id == "fast_agent")
    assert a.start == 10.0 and a.text == _text(20)  # attributed to that final


def test_speech_rate_below_the_threshold_never_fires(pack):
    ca, alerts = run(pack, [Turn("agent", 0, 6, 20), Turn("agent", 10, 12, 8)], 20)
    assert ca.talk.speech_rate["agent"] == pytest.approx(210.0)
    assert fired(alerts, "fast_agent") == []


def test_customer_speech_rate_does_not_trip_the_agent_rule(pack):
    _, alerts = run(pack, [Turn("customer", 0, 2, 30), Turn("agent", 3, 9, 10)], 20)
    assert fired(alerts, "fast_agent") == []


# ---- agent talk ratio and talk time ---------------------------------------------------------------
def test_agent_talk_ratio_needs_both_conditions(pack):
    # at 12 s the ratio is 1.0 but the agent has talked only 12 s; at 24 s: 22 s of 23, ratio 0.957
    ca, alerts = run(pack, [Turn("agent", 0, 12), Turn("customer", 12.5, 13.5), Turn("agent", 14, 24)], 30)
    assert ca.talk.agent_talk_ratio == pytest.approx(22 / 23)
    assert fired(alerts, "agent_dominates") == [24.0]


def test_agent_talk_ratio_below_the_threshold_never_fires(pack):
    ca, alerts = run(pack, [Turn("agent", 0, 12), Turn("customer", 12.5, 17.5), Turn("agent", 18, 28)], 30)
    assert ca.talk.agent_talk_ratio == pytest.approx(22 / 27)
    assert fired(alerts, "agent_dominates") == []


def test_talk_time_fires_when_the_total_crosses(pack):
    ca, alerts = run(pack, [Turn("customer", 0, 10), Turn("agent", 10.5, 12), Turn("customer", 13, 19)], 25)
    assert ca.talk.talk_time["customer"] == pytest.approx(16.0)
    assert fired(alerts, "customer_talk_time") == [19.0]
    _, short = run(pack, [Turn("customer", 0, 10), Turn("agent", 10.5, 12), Turn("customer", 13, 17)], 25)
    assert fired(short, "customer_talk_time") == []


def test_talk_time_counts_re_reported_speech_once(pack):
    # the same speech reported twice (e.g. a joined leg) is not new talk time
    ca, alerts = run(pack, [Turn("customer", 0, 10), Turn("customer", 2, 9), Turn("customer", 11, 15)], 25)
    assert ca.talk.talk_time["customer"] == pytest.approx(14.0)
    assert fired(alerts, "customer_talk_time") == []


# ---- silences -------------------------------------------------------------------------------------
def test_current_silence_does_not_run_on_through_a_turn_reported_open(pack):
    """A 9.5 s pause, then a 2.5 s turn: without open speech the silence would reach 12 s."""
    ca = CallAnalytics("talk", pack, language="en", metadata={}, sentiment=None)
    ca.on_activity("agent", 0, 0.0, 4.0)
    assert not [a for a in ca.advance(13.5) if a.rule_id == "long_hold"]
    ca.talk.on_speech("customer", 13.5, 15.0)
    assert ca.talk.current_silence == 0.0
    assert not [a for a in ca.advance(15.0) if a.rule_id == "long_hold"]


def test_current_silence_fires_live_on_each_long_silence(pack):
    turns = [Turn("agent", 0, 4), Turn("customer", 4.5, 8), Turn("agent", 20, 24), Turn("customer", 25, 27)]
    _, alerts = run(pack, turns, 40)
    # silence from 8 s: the first tick past 18 s; from 27 s: the first tick past 37 s
    assert fired(alerts, "long_hold") == [18.25, 37.25]
    assert all(a.text == "" and a.state == "confirmed" for _, a in alerts if a.rule_id == "long_hold")


def test_current_silence_below_the_threshold_never_fires(pack):
    turns = [Turn("agent", 0, 4), Turn("customer", 13.5, 16), Turn("agent", 25.5, 30)]  # 9.5 s gaps
    _, alerts = run(pack, turns, 35)
    assert fired(alerts, "long_hold") == []


def test_longest_silence_fires_once_and_stays_true(pack):
    turns = [Turn("agent", 0, 2), Turn("agent", 30, 32), Turn("customer", 33, 35), Turn("customer", 70, 72)]
    ca, alerts = run(pack, turns, 80)
    assert ca.talk.longest_silence == pytest.approx(35.0)
    assert fired(alerts, "longest_silence") == [27.25]  # the silence from 2 s passes 25 s, live


def test_longest_silence_below_the_threshold_never_fires(pack):
    turns = [Turn("agent", 0, 2), Turn("customer", 22, 24), Turn("agent", 44, 46)]  # 20 s gaps
    ca, alerts = run(pack, turns, 50)
    assert ca.talk.longest_silence == pytest.approx(20.0)
    assert fired(alerts, "longest_silence") == []


def test_silence_before_fires_on_the_turn_after_the_silence(pack):
    _, alerts = run(pack, [Turn("agent", 0, 3), Turn("customer", 12, 14), Turn("agent", 20, 22)], 30)
    assert fired(alerts, "silence_turn") == [14.0]  # 9 s before 12 s; 6 s before 20 s does not count


# ---- over-talk ------------------------------------------------------------------------------------
def test_overtalk_total_fires_when_the_sum_crosses(pack):
    ca, alerts = run(pack, [Turn("agent", 0, 10), Turn("customer", 2, 4), Turn("customer", 6, 7.5)], 20)
    assert ca.talk.overtalk_total == pytest.approx(3.5)
    assert fired(alerts, "overtalk_total") == [10.0]
    assert fired(alerts, "longest_overtalk") == []  # 2.0 is not > 2


def test_overtalk_total_below_the_threshold_never_fires(pack):
    ca, alerts = run(pack, [Turn("agent", 0, 10), Turn("customer", 2, 4), Turn("customer", 6, 6.8)], 20)
    assert ca.talk.overtalk_total == pytest.approx(2.8)
    assert fired(alerts, "overtalk_total") == []


def test_longest_overtalk_fires_on_one_long_overlap_only(pack):
    ca, alerts = run(pack, [Turn("agent", 0, 10), Turn("customer", 2, 4.5)], 20)
    assert ca.talk.longest_overtalk == pytest.approx(2.5)
    assert fired(alerts, "longest_overtalk") == [10.0]
    split, alerts2 = run(pack, [Turn("agent", 0, 10), Turn("customer", 2, 3.5), Turn("customer", 5, 6.5)], 20)
    assert split.talk.longest_overtalk == pytest.approx(1.5)
    assert fired(alerts2, "longest_overtalk") == []


def test_overtalk_at_fires_on_the_turn_that_talks_over(pack):
    _, alerts = run(pack, [Turn("agent", 0, 6), Turn("customer", 4, 8)], 15)
    assert fired(alerts, "overtalk_turn") == [8.0]  # 2 s over the agent, seen at the customer's final
    _, brief = run(pack, [Turn("agent", 0, 6), Turn("customer", 5.5, 8)], 15)
    assert fired(brief, "overtalk_turn") == []  # 0.5 s
    _, agent_over = run(pack, [Turn("customer", 0, 6), Turn("agent", 4, 8)], 15)
    assert fired(agent_over, "overtalk_turn") == []  # the rule is about the customer


# ---- state-rule cooldown ---------------------------------------------------------------------------
def test_state_rule_cooldown_never_fires_twice_within_it(pack):
    # silences from 2 s and from 16 s both pass 5 s; the second crosses inside the 30 s cooldown
    turns = [Turn("agent", 0, 2), Turn("customer", 10, 16), Turn("agent", 50, 52)]
    _, alerts = run(pack, turns, 70)
    times = fired(alerts, "hold_with_cooldown")
    assert times[0] == 7.25
    assert all(b - a >= 30 for a, b in itertools.pairwise(times))


def test_state_rule_blocked_by_cooldown_fires_when_it_ends_if_still_true(pack):
    # the silence from 16 s passes 5 s at 21.25 s, inside the cooldown of the 7.25 s alert: it goes
    # on to 50 s, so the rule fires at the first tick at or after the cooldown's end (37.25 s)
    turns = [Turn("agent", 0, 2), Turn("customer", 10, 16), Turn("agent", 50, 52)]
    _, alerts = run(pack, turns, 60)
    assert fired(alerts, "hold_with_cooldown") == [7.25, 37.25]


def test_state_rule_blocked_by_cooldown_stays_quiet_if_false_again(pack):
    # the second silence (16 → 24 s) is over before the cooldown ends: nothing more fires
    turns = [Turn("agent", 0, 2), Turn("customer", 10, 16), Turn("agent", 24, 60)]
    _, alerts = run(pack, turns, 64)
    assert fired(alerts, "hold_with_cooldown") == [7.25]
