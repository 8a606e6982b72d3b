"""Deadline hold-back for utterances sent to the recogniser: exact, not a media-time TTL."""

from __future__ import annotations

from test_analytics_engine import by_rule, make, pack, tr  # noqa: F401 - the module fixture is reused


def test_an_utterance_in_asr_holds_a_deadline_however_far_media_time_runs(pack):  # noqa: F811
    ca = make(pack)
    ca.hold("c1:0:0", "agent", 1.0)  # the agent's opening was endpointed and sent to ASR
    assert not by_rule(ca.advance(15.5), "disclosure_deadline")
    assert not by_rule(ca.advance(60.0), "disclosure_deadline")  # 45 s of media later: still waiting
    ca.on_transcript(tr("agent", "thanks for calling, this call is recorded", 1.0, 6.0))
    assert not by_rule(ca.release("c1:0:0"), "disclosure_deadline")
    assert not by_rule(ca.advance(61.0) + ca.finish(70.0)[0], "disclosure_deadline")


def test_release_without_a_final_lets_the_deadline_fire_at_its_own_time(pack):  # noqa: F811
    ca = make(pack)
    ca.hold("c1:0:0", "agent", 2.0)
    assert not by_rule(ca.advance(30.0), "disclosure_deadline")
    got = by_rule(ca.release("c1:0:0"), "disclosure_deadline")  # rejected by the guards: nothing said
    assert len(got) == 1 and got[0].media_time == 15.0
    assert ca.release("c1:0:0") == [] and ca.release("unknown") == []


def test_only_speech_before_the_deadline_and_of_its_role_holds_it(pack):  # noqa: F811
    ca = make(pack)
    ca.hold("c1:0:5", "agent", 16.0)  # after the 15 s deadline: cannot satisfy it
    ca.hold("c1:1:0", "customer", 3.0)  # the customer cannot give the agent's notice
    assert len(by_rule(ca.advance(15.5), "disclosure_deadline")) == 1
