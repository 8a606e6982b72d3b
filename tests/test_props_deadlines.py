"""Property tests (hypothesis): deadlines on random call timelines fire exactly once, at the right
media time, or not at all — through the real compiler and the real CallAnalytics.

A timeline is played as the live session plays it: the clock ticks every 0.25 s of media time;
while a turn is open it is reported (``on_speech``); when it closes its VAD interval and then its
final arrive. Clocks start at the call start, on DTMF entries, on metadata edges or on another
rule's confirmed alert.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import example, given, settings
from hypothesis import strategies as st

from speechiq.analytics.engine import CallAnalytics
from speechiq.events import Alert, Transcript
from speechiq.rules import compile_pack
from speechiq.rules import schema as S

PROPS = settings(max_examples=60, deadline=None, database=None)
STEP = 0.25
SAY = "thanks for holding"


@dataclass(frozen=True)
class Turn:
    role: str
    start: float
    end: float
    says: bool  # the required phrase
    transfer: bool = False  # the phrase of the rule whose alert starts a clock
    partial_says: bool = False  # its partials show the phrase (the recogniser may still change its mind)


# the agent starts to speak exactly at the deadline, in the tick where the customer's speech is
# reported first: only the media clock (advance) may decide it, not one channel's report
AT_THE_DEADLINE = [Turn("agent", 2.5, 3.0, True), Turn("customer", 0.0, 0.25, False),
                   Turn("customer", 2.5, 2.75, False)]


def phrase(words: str, role: str = "agent") -> S.Phrase:
    return S.Phrase(role, ((S.ALL_LANGS, (words,)),), (), None, False)


def rule(rid: str, when: S.Cond) -> S.Rule:
    return S.Rule(id=rid, label="process.no_greeting", category="process_error", severity="info", when=when)


def text_of(t: Turn) -> str:
    parts = ["okay let me see"]
    if t.transfer:
        parts.append("I will transfer you")
    if t.says:
        parts.append(SAY)
    return ", ".join(parts)


@st.composite
def timelines(draw: st.DrawFn) -> list[Turn]:
    """Turns on the 0.25 s grid, each role's turns in order without overlap (the roles may overlap)."""
    turns: list[Turn] = []
    for role in ("agent", "customer"):
        t = 0.0
        for _ in range(draw(st.integers(0, 6))):
            start = t + STEP * draw(st.integers(0, 40))
            end = start + STEP * draw(st.integers(1, 24))
            says = role == "agent" and draw(st.booleans())
            transfer = role == "agent" and draw(st.booleans())
            partial_says = role == "agent" and draw(st.booleans())
            turns.append(Turn(role, start, end, says, transfer, partial_says))
            t = end + STEP
    return turns


def play(ca: CallAnalytics, turns: list[Turn], until: float, dtmf: tuple[float, ...] = (),
         metadata: tuple[tuple[float, dict[str, str]], ...] = (), partials: bool = False) -> list[tuple[float, Alert]]:
    """(tick, alert) for every alert, the timeline played as the session plays it (DTMF digits
    and metadata updates at their tick, before that tick's turns; with ``partials``, a partial
    transcript of each open turn every second)."""
    todo = sorted(turns, key=lambda t: (t.end, t.role))
    keys = sorted(dtmf)
    meta = sorted(metadata, key=lambda m: m[0])
    out: list[tuple[float, Alert]] = []
    k = 0
    while k * STEP <= until:
        now = k * STEP
        while keys and keys[0] <= now:
            out += [(now, a) for a in ca.on_dtmf("0", keys.pop(0))]
        while meta and meta[0][0] <= now:
            at, update = meta.pop(0)
            out += [(now, a) for a in ca.on_metadata(update, media_time=at)]
        for t in todo:
            if t.start <= now < t.end:
                out += [(now, a) for a in ca.on_speech(t.role, 0 if t.role == "agent" else 1, t.start, now)]
                if partials and now > t.start and (now - t.start) % 1.0 == 0:
                    text = SAY if t.partial_says else "okay let me"
                    out += [(now, a) for a in ca.on_transcript(Transcript(
                        call_id="d", channel=0 if t.role == "agent" else 1, role=t.role,
                        utterance_id=f"{t.role}@{t.start}", is_final=False, start=t.start, end=now, text=text,
                        language="en"))]
        while todo and todo[0].end <= now:
            t = todo.pop(0)
            ch = 0 if t.role == "agent" else 1
            out += [(now, a) for a in ca.on_activity(t.role, ch, t.start, t.end)]
            out += [(now, a) for a in ca.on_transcript(Transcript(
                call_id="d", channel=ch, role=t.role, utterance_id=f"{t.role}@{t.start}", is_final=True,
                start=t.start, end=t.end, text=text_of(t), language="en"))]
        out += [(now, a) for a in ca.advance(now)]
        k += 1
    out += [(until, a) for a in ca.finish(until)[0]]
    return out


def analytics(rules: list[S.Rule]) -> CallAnalytics:
    return CallAnalytics("d", compile_pack(S.Pack(rules=tuple(rules), version="props")), language="en",
                         metadata={}, sentiment=None)


def check(alerts: list[tuple[float, Alert]], rid: str, due_times: list[float]) -> None:
    got = [(tick, a) for tick, a in alerts if a.rule_id == rid]
    assert sorted(a.media_time for _, a in got) == sorted(due_times)  # each due deadline exactly once
    for tick, a in got:
        assert tick >= a.media_time  # never early: at the deadline, or later when an utterance held it
        assert (a.state, a.start, a.end, a.text, a.role) == ("confirmed", a.media_time, a.media_time, "", "agent")
    assert len({a.alert_id for _, a in got}) == len(got)


@PROPS
@given(timelines(), st.sampled_from([2.5, 5.0, 10.0, 15.0, 20.0]), st.integers(0, 160))
@example(AT_THE_DEADLINE, 2.5, 0)
def test_call_start_deadline(turns, within, extra):
    until = max([t.end for t in turns] + [0.0]) + STEP * extra
    ca = analytics([rule("greet", S.Deadline(phrase(SAY), within, None, "agent"))])
    said = any(t.role == "agent" and t.says and t.start <= within for t in turns)
    check(play(ca, turns, until), "greet", [] if said or within > until else [within])


@PROPS
@given(timelines(), st.sets(st.integers(0, 200), max_size=4), st.sampled_from([2.5, 5.0, 10.0]),
       st.integers(0, 80))
def test_dtmf_deadline_each_entry_its_own_clock(turns, keys, within, extra):
    presses = tuple(k * STEP for k in sorted(keys))
    until = max([t.end for t in turns] + [*presses, 0.0]) + STEP * extra
    ca = analytics([rule("answer", S.Deadline(phrase(SAY), within, S.Dtmf("0"), "agent"))])
    due = [d + within for d in presses
           if d + within <= until
           and not any(t.role == "agent" and t.says and t.end > d and t.start <= d + within for t in turns)]
    check(play(ca, turns, until, presses), "answer", due)


@PROPS
@given(timelines(), st.sampled_from([2.5, 5.0, 10.0]), st.integers(0, 80))
def test_deadline_from_another_rules_alert(turns, within, extra):
    until = max([t.end for t in turns] + [0.0]) + STEP * extra
    ca = analytics([rule("transfer", phrase("transfer you")),
                    rule("greet", S.Deadline(phrase(SAY), within, S.AlertOf(rule="transfer"), "agent"))])
    agent = [t for t in turns if t.role == "agent"]
    due = [a.end + within for a in agent if a.transfer
           if a.end + within <= until
           and not any(t.says and t is not a and t.end > a.end and t.start <= a.end + within for t in agent)]
    alerts = play(ca, turns, until)
    assert sorted(a.media_time for _, a in alerts if a.rule_id == "transfer") == sorted(
        a.end for a in agent if a.transfer)
    check(alerts, "greet", due)



@PROPS
@given(timelines(), st.lists(st.tuples(st.integers(1, 200), st.booleans()), max_size=6),
       st.booleans(), st.sampled_from([2.5, 5.0, 10.0]), st.integers(0, 80))
def test_metadata_deadline_each_false_to_true_edge_its_own_clock(turns, updates, vip_at_start, within, extra):
    changes = sorted({k * STEP: vip for k, vip in updates}.items())
    until = max([t.end for t in turns] + [c for c, _ in changes] + [0.0]) + STEP * extra
    ca = CallAnalytics("d", compile_pack(S.Pack(rules=(rule("greet_vip", S.Deadline(
        phrase(SAY), within, S.Metadata("queue", equals="vip"), "agent")),), version="props")),
        language="en", metadata={"queue": "vip" if vip_at_start else "billing"}, sentiment=None)
    edges, state = ([0.0] if vip_at_start else []), vip_at_start
    for at, vip in changes:
        if vip and not state:
            edges.append(at)
        state = vip
    due = [d + within for d in edges
           if d + within <= until
           and not any(t.role == "agent" and t.says and t.end > d and t.start <= d + within for t in turns)]
    meta = tuple((at, {"queue": "vip" if vip else "billing"}) for at, vip in changes)
    check(play(ca, turns, until, metadata=meta), "greet_vip", due)


@PROPS
@given(timelines(), st.sampled_from([2.5, 5.0, 10.0, 15.0]), st.integers(0, 80))
@example(AT_THE_DEADLINE, 2.5, 0)
def test_call_start_deadline_with_partials_ends_as_without(turns, within, extra):
    """Partials may fire a deadline provisionally (at its due time, while the speech holding it
    has not said the words so far); whatever they showed, each alert ends confirmed exactly when
    the finals say it is due, and retracted otherwise."""
    until = max([t.end for t in turns] + [0.0]) + STEP * extra
    ca = analytics([rule("greet", S.Deadline(phrase(SAY), within, None, "agent"))])
    said = any(t.role == "agent" and t.says and t.start <= within for t in turns)
    alerts = [(tick, a) for tick, a in play(ca, turns, until, partials=True) if a.rule_id == "greet"]
    states: dict[str, list[str]] = {}
    for tick, a in alerts:
        assert tick >= a.media_time and (a.start, a.end, a.text, a.role) == (within, within, "", "agent")
        assert a.media_time == within or a.state == "retracted"  # a retraction carries its own time
        states.setdefault(a.alert_id, []).append(a.state)
    assert all(s in (["confirmed"], ["provisional", "confirmed"], ["provisional", "retracted"])
               for s in states.values()), states
    kept = [s for s in states.values() if s[-1] == "confirmed"]
    assert len(kept) == (0 if said or within > until else 1)
    # a provisional alert only over speech whose partials lacked the words
    for tick, a in alerts:
        if a.state == "provisional":
            assert any(t.role == "agent" and not t.partial_says and t.start <= within and t.start + 1.0 <= tick
                       for t in turns)

