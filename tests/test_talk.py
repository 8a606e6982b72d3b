"""Live talk metrics from VAD intervals (media time)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from speechiq.analytics.talk import TalkMetrics


def test_silence_overtalk_interruptions():
    t = TalkMetrics()
    t.on_activity("agent", 1.0, 5.0)
    t.on_activity("customer", 5.5, 9.0)
    t.on_activity("agent", 8.0, 12.0)  # starts 1 s before the customer stops
    t.on_activity("customer", 30.0, 33.0)  # after 18 s of dead air
    assert t.first_agent_speech == 1.0
    assert abs(t.silence_before(5.5) - 0.5) < 1e-9
    assert t.silence_before(8.0) == 0.0
    assert abs(t.silence_before(30.0) - 18.0) < 1e-9
    assert abs(t.longest_silence - 18.0) < 1e-9
    assert abs(t.overtalk_total - 1.0) < 1e-9 and abs(t.overtalk_at(8.0, "agent") - 1.0) < 1e-9
    assert t.interruptions["agent"] == 1 and t.interruptions["customer"] == 0
    assert 0.5 < t.agent_talk_ratio < 0.7
    t.advance(40.0)
    assert abs(t.current_silence - 7.0) < 1e-9


def test_out_of_order_channels_and_rate():
    t = TalkMetrics()
    t.on_activity("customer", 6.0, 8.0)
    t.on_activity("agent", 1.0, 5.0)  # arrives late (other channel)
    assert abs(t.silence_before(6.0) - 1.0) < 1e-9
    t.on_final("agent", 1.0, 5.0, 10)
    assert abs(t.speech_rate["agent"] - 150.0) < 1e-9
    snap = t.snapshot()
    assert snap["first_agent_speech"] == 1.0 and snap["talk_time"]["customer"] == 2.0


@given(st.lists(st.tuples(st.sampled_from(["agent", "customer"]), st.floats(0, 500), st.floats(0.1, 20)),
                max_size=60))
def test_metrics_stay_consistent(events):
    t = TalkMetrics()
    for role, start, dur in events:
        t.on_activity(role, start, start + dur)
    assert t.overtalk_total >= 0 and t.longest_silence >= 0
    assert 0.0 <= t.agent_talk_ratio <= 1.0
    assert sum(t.talk_time.values()) <= sum(d for _, _, d in events) + 1e-6
