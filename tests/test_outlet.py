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
