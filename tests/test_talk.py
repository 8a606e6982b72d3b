"""Live talk metrics from VAD intervals (media time)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from speechiq.analytics.talk import INTERRUPT_MIN_S, WINDOW_S, TalkMetrics


def test_silence_overtalk_interruptions():
    t = TalkMetrics()
    t.on_activity("agent", 1.0, 5.0)
    t.on_activity("customer", 5.5, 9.0)
    t.on_activity("agent", 8.0, 12.0)  # starts 1 s before the customer stops
    t.on_activity("customer", 30.0, 33.0)  # after 18 s of dead air
    assert t.first_agent_speech == 1.0
    assert abs(t.silence_before(1.0) - 1.0) < 1e-9  # the call start counts
    assert abs(t.silence_before(5.5) - 0.5) < 1e-9
    assert t.silence_before(8.0) == 0.0
    assert abs(t.silence_before(30.0) - 18.0) < 1e-9
    assert abs(t.longest_silence - 18.0) < 1e-9
    assert abs(t.overtalk_total - 1.0) < 1e-9 and abs(t.overtalk_at(8.0, "agent") - 1.0) < 1e-9
    assert t.overtalk_at(5.5, "customer") == 0.0
    assert t.interruptions == {"agent": 1, "customer": 0}
    assert 0.5 < t.agent_talk_ratio < 0.7
    t.advance(40.0)
    assert abs(t.current_silence - 7.0) < 1e-9
    t.advance(60.0)
    assert abs(t.longest_silence - 27.0) < 1e-9  # the silence still going on counts


def test_out_of_order_channels_and_rate():
    t = TalkMetrics()
    t.on_activity("customer", 6.0, 8.0)
    t.on_activity("agent", 1.0, 5.0)  # arrives late (other channel)
    assert abs(t.silence_before(6.0) - 1.0) < 1e-9
    assert abs(t.longest_silence - 1.0) < 1e-9  # the 6 s first seen shrank when the late interval came
    t.on_final("agent", 1.0, 5.0, 10)
    assert abs(t.speech_rate["agent"] - 150.0) < 1e-9
    snap = t.snapshot()
    assert snap["first_agent_speech"] == 1.0 and snap["talk_time"]["customer"] == 2.0


def test_interruption_seen_whichever_channel_reports_first():
    early = TalkMetrics()  # the agent cuts in at 3 s and stops at 5 s; the customer talks on to 9 s
    early.on_activity("agent", 3.0, 5.0)
    early.on_activity("customer", 1.0, 9.0)
    late = TalkMetrics()
    late.on_activity("customer", 1.0, 9.0)
    late.on_activity("agent", 3.0, 5.0)
    for t in (early, late):
        assert t.interruptions == {"agent": 1, "customer": 0}
        assert abs(t.overtalk_total - 2.0) < 1e-9


def test_backchannel_and_simultaneous_start_are_not_interruptions():
    t = TalkMetrics()
    t.on_activity("customer", 0.0, 6.0)
    t.on_activity("agent", 0.1, 2.0)  # both start together
    t.on_activity("agent", 5.9, 7.0)  # customer was about to stop
    assert t.interruptions == {"agent": 0, "customer": 0}


def test_re_reported_interval_counts_once():
    t = TalkMetrics()
    t.on_activity("customer", 0.0, 4.0)
    t.on_activity("agent", 2.0, 3.0)
    t.on_activity("agent", 2.0, 6.0)  # the same utterance reported again, longer
    assert abs(t.talk_time["agent"] - 4.0) < 1e-9
    assert abs(t.overtalk_total - 2.0) < 1e-9
    assert t.interruptions["agent"] == 1


def test_mixed_channel_ends_silence_only():
    t = TalkMetrics(("mixed",))
    t.on_activity("mixed", 2.0, 4.0)
    t.on_activity("agent", 3.0, 5.0)
    assert t.overtalk_total == 0.0 and t.silence_before(2.0) == 2.0
    assert abs(t.talk_time["mixed"] - 2.0) < 1e-9
    assert t.agent_talk_ratio == 1.0


def test_bad_input_is_ignored():
    t = TalkMetrics()
    t.on_activity("agent", 5.0, 5.0)
    t.on_activity("agent", 6.0, 4.0)
    t.on_final("agent", 2.0, 1.0, 5)
    assert t.talk_time["agent"] == 0.0 and t.speech_rate == {}
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="finite"):
            t.on_activity("agent", 1.0, bad)
        with pytest.raises(ValueError, match="finite"):
            t.advance(bad)
    assert t.talk_time["agent"] == 0.0 and t.now == 0.0


def test_long_call_keeps_a_bounded_window():
    t = TalkMetrics()
    t.on_activity("agent", 100.0, 101.0)  # 100 s of silence at the start
    now = 101.0
    while now < 4 * 3600:
        t.on_activity("customer" if int(now) % 2 else "agent", now + 0.5, now + 3.0)
        now += 3.0
    assert len(t._union) < WINDOW_S / 2.5 + 2 and all(len(v) < WINDOW_S / 5 + 2 for v in t._iv.values())
    assert abs(t.longest_silence - 100.0) < 1e-9
    assert abs(t.silence_before(now - 2.5) - 0.5) < 1e-9


def _reference(events):
    """Brute force over the complete intervals: what the incremental metrics must equal."""

    def merge(ivs):
        out = []
        for s, e in sorted(ivs):
            if out and s < out[-1][1]:
                out[-1] = (out[-1][0], max(out[-1][1], e))
            else:
                out.append((s, e))
        return out

    by = {r: merge([(s, s + d) for role, s, d in events if role == r]) for r in ("agent", "customer")}
    overtalk = sum(max(0.0, min(a[1], c[1]) - max(a[0], c[0])) for a in by["agent"] for c in by["customer"])

    def interrupts(a, b):
        return b[0] <= a[0] - INTERRUPT_MIN_S and b[1] >= a[0] + INTERRUPT_MIN_S

    inter = {"agent": sum(interrupts(a, c) for a in by["agent"] for c in by["customer"]),
             "customer": sum(interrupts(c, a) for a in by["agent"] for c in by["customer"])}
    cursor, longest = 0.0, 0.0
    for s, e in merge([(s, s + d) for _, s, d in events]):
        longest, cursor = max(longest, s - cursor), max(cursor, e)
    talk = {r: sum(e - s for s, e in by[r]) for r in by}
    return overtalk, inter, longest, talk


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["agent", "customer"]), st.floats(0, 250).map(lambda x: round(x, 2)),
                          st.floats(0.1, 20).map(lambda x: round(x, 2))), max_size=40),
       st.randoms(use_true_random=False))
def test_matches_brute_force_in_any_arrival_order(events, rnd: random.Random):
    overtalk, inter, longest, talk = _reference(events)
    shuffled = list(events)
    rnd.shuffle(shuffled)
    for order in (events, shuffled):
        t = TalkMetrics()
        for role, start, dur in order:
            t.on_activity(role, start, start + dur)
        assert abs(t.overtalk_total - overtalk) < 1e-6
        assert t.interruptions == inter
        assert abs(t.longest_silence - longest) < 1e-6
        assert all(abs(t.talk_time[r] - talk[r]) < 1e-6 for r in talk)
        assert 0.0 <= t.agent_talk_ratio <= 1.0


# ---- speech still in progress (on_speech) --------------------------------------------------------
def test_open_speech_stops_the_live_silence_without_counting_talk_time():
    tm = TalkMetrics()
    tm.on_activity("agent", 0.0, 4.0)
    tm.advance(13.5)
    assert tm.current_silence == pytest.approx(9.5)
    tm.on_speech("customer", 13.5, 14.0)
    tm.on_speech("customer", 13.5, 15.5)  # heard further
    tm.advance(15.5)
    assert tm.current_silence == 0.0
    assert tm.longest_silence == pytest.approx(9.5)  # the silence the open speech ended
    assert tm.talk_time["customer"] == 0.0
    tm.on_activity("customer", 13.5, 16.0)  # the utterance closes
    tm.advance(17.0)
    assert tm.current_silence == pytest.approx(1.0)
    assert tm.talk_time["customer"] == pytest.approx(2.5) and tm.longest_silence == pytest.approx(9.5)


def test_open_speech_not_re_reported_goes_stale():
    tm = TalkMetrics()
    tm.on_speech("agent", 1.0, 2.0)
    tm.advance(3.9)
    assert tm.current_silence == 0.0
    tm.advance(10.0)  # nothing heard since 2.0 (and no interval ever closed it)
    assert tm.current_silence == pytest.approx(8.0)


def test_an_earlier_late_interval_does_not_close_open_speech():
    tm = TalkMetrics()
    tm.on_speech("agent", 10.0, 11.0)
    tm.on_activity("agent", 2.0, 5.0)  # the previous utterance of that role, reported late
    tm.advance(11.0)
    assert tm.current_silence == 0.0


def test_open_speech_rejects_non_finite_times():
    with pytest.raises(ValueError):
        TalkMetrics().on_speech("agent", float("nan"), 1.0)


def test_current_overtalk_is_known_while_both_parties_talk():
    tm = TalkMetrics()
    tm.on_speech("agent", 0.0, 3.0)
    assert tm.current_overtalk == 0.0  # one party only
    tm.on_speech("customer", 1.5, 3.0)
    tm.on_speech("agent", 0.0, 4.0)
    tm.on_speech("customer", 1.5, 4.0)
    assert tm.current_overtalk == pytest.approx(2.5) and tm.overtalk_total == 0.0  # counted when they close
    tm.on_activity("customer", 1.5, 4.2)
    assert tm.current_overtalk == pytest.approx(2.5)  # the agent's open turn over the closed one
    tm.on_activity("agent", 0.0, 6.0)
    assert tm.current_overtalk == 0.0 and tm.longest_overtalk == pytest.approx(2.7)


def test_current_overtalk_ignores_speech_before_the_open_turn_and_stale_reports():
    tm = TalkMetrics()
    tm.on_activity("customer", 0.0, 2.0)
    tm.on_speech("agent", 2.5, 5.0)
    assert tm.current_overtalk == 0.0
    tm.on_speech("customer", 4.0, 5.0)
    assert tm.current_overtalk == pytest.approx(1.0)
    tm.advance(9.0)  # neither re-reported for 4 s: no longer going on
    assert tm.current_overtalk == 0.0
