"""CallOutlet: what a resuming connection receives of the events emitted while it was away."""

from __future__ import annotations

from types import SimpleNamespace

from speechiq.pipeline.outlet import CallOutlet


def final(i: int) -> SimpleNamespace:
    return SimpleNamespace(type="transcript", is_final=True, i=i)


def partial(i: int) -> SimpleNamespace:
    return SimpleNamespace(type="transcript", is_final=False, i=i)


def make(limit: int = 100) -> tuple[CallOutlet, list]:
    published: list = []
    return CallOutlet("c", lambda cid, ev: published.append(ev), limit=limit), published


def test_live_sink_gets_everything_and_the_tap_too():
    out, tap = make()
    got: list = []
    out.attach(got.append)
    for ev in (final(1), partial(2)):
        out.emit(ev)
    assert got == tap and len(got) == 2


def test_events_while_detached_reach_the_resumer_first_and_in_order():
    out, tap = make()
    a: list = []
    out.attach(a.append)
    out.emit(final(1))
    out.detach(a.append)
    out.emit(final(2))
    out.emit(partial(3))  # superseded by its final: not kept
    out.emit(SimpleNamespace(type="alert", i=4))
    b: list = []
    out.attach(b.append, resume=True)
    out.emit(final(5))  # arrives before the replay: queued behind the missed ones
    assert b == []
    assert out.replay(b.append) == 3
    out.emit(final(6))
    assert [e.i for e in b] == [2, 4, 5, 6]
    assert [e.i for e in a] == [1]
    assert len(tap) == 6  # the tap and store see every event once


def test_backlog_is_bounded_and_counts_what_it_lost():
    out, _ = make(limit=3)
    a: list = []
    out.attach(a.append)
    out.detach(a.append)
    for i in range(5):
        out.emit(final(i))
    b: list = []
    out.attach(b.append, resume=True)
    out.replay(b.append)
    assert [e.i for e in b] == [2, 3, 4] and out.backlog_dropped == 2


def test_a_fresh_attach_is_not_a_replay_and_a_broken_sink_does_not_break_the_call():
    out, _ = make()

    def broken(ev):
        raise RuntimeError("gone")

    good: list = []
    out.attach(broken)
    out.attach(good.append)
    out.emit(final(1))
    assert [e.i for e in good] == [1]
    assert out.replay(good.append) == 0


def test_resume_before_anything_was_missed_goes_live_on_replay():
    out, _ = make()
    b: list = []
    out.attach(b.append, resume=True)  # nothing kept: live at once
    out.emit(final(1))
    assert [e.i for e in b] == [1]


def test_requeued_events_come_first_for_the_resuming_connection_partials_not_kept():
    out, _ = make()
    slow: list = []
    out.attach(slow.append)
    out.emit(final(1))
    out.detach(slow.append)  # closed as too slow: 2 and 3 were taken but never sent
    out.emit(final(4))
    assert out.requeue([final(2), partial(9), final(3)]) == 2
    back: list = []
    out.attach(back.append, resume=True)
    assert out.replay(back.append) == 3
    out.emit(final(5))
    assert [e.i for e in back] == [2, 3, 4, 5]


def test_requeue_respects_the_backlog_bound():
    out, _ = make(limit=3)
    s: list = []
    out.attach(s.append)
    out.detach(s.append)
    out.emit(final(3))
    out.requeue([final(0), final(1), final(2)])
    assert out.backlog_dropped == 1
    back: list = []
    out.attach(back.append, resume=True)
    out.replay(back.append)
    assert [e.i for e in back] == [1, 2, 3]  # the oldest went first


# ---- numbered events and resume with last_seq ------------------------------------------------------
def _tr(i: int, final: bool = True):
    from speechiq.events import Transcript

    return Transcript(call_id="c", channel=0, role="agent", utterance_id=f"0-{i}", is_final=final,
                      start=float(i), end=i + 0.5, text=f"t{i}")


def test_kept_events_are_numbered_partials_are_not():
    out, tap = make()
    got: list = []
    out.attach(got.append)
    out.emit(_tr(0, final=False))
    out.emit(_tr(0))
    out.emit(_tr(1, final=False))
    out.emit(_tr(1))
    assert [e.seq for e in got] == [0, 1, 0, 2]
    assert [e.seq for e in tap] == [0, 1, 0, 2]  # the tap and the store see the same numbers


def test_resume_after_last_seq_redelivers_what_was_in_flight_and_nothing_twice():
    out, _ = make()
    first: list = []
    out.attach(first.append)
    for i in range(5):
        out.emit(_tr(i))
    # the client processed up to seq 3; 4 and 5 were written to a socket that died unread
    out.detach(first.append)
    out.emit(_tr(5))  # while no connection is attached
    second: list = []
    out.attach(second.append, resume=True, after_seq=3)
    out.emit(_tr(6))  # between the resume and its replay: queued behind the missed ones
    assert second == []
    assert out.replay(second.append) == 4
    out.emit(_tr(7))
    assert [e.seq for e in second] == [4, 5, 6, 7, 8]
    assert [e.text for e in second] == ["t3", "t4", "t5", "t6", "t7"]


def test_resume_after_seq_counts_what_is_no_longer_kept():
    out = CallOutlet("c", lambda cid, ev: None, limit=3, recent_limit=3)
    s: list = []
    out.attach(s.append)
    for i in range(10):
        out.emit(_tr(i))
    back: list = []
    out.attach(back.append, resume=True, after_seq=2)
    out.replay(back.append)
    assert [e.seq for e in back] == [8, 9, 10]
    assert out.backlog_dropped == 5  # 3..7 were past both bounds


def test_resume_without_last_seq_keeps_the_backlog_behaviour():
    out, _ = make()
    s: list = []
    out.attach(s.append)
    out.emit(_tr(0))
    out.detach(s.append)
    out.emit(_tr(1))
    back: list = []
    out.attach(back.append, resume=True)
    out.replay(back.append)
    assert [e.seq for e in back] == [2]
