"""Property tests (hypothesis): condition algebra, partial → confirm/retract and cooldown, through
the real compiler and the real CallAnalytics (real TalkMetrics/CallMetrics, sentiment off).

Generated condition trees are compared with a direct boolean reference, generated transcript
streams with a small reference model of the documented firing semantics (docs/rules.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from speechiq.analytics.engine import CallAnalytics
from speechiq.events import Alert, Transcript
from speechiq.rules import compile_pack
from speechiq.rules import schema as S

PROPS = settings(max_examples=120, deadline=None, database=None)
VOCAB = ["refund", "cancel", "supervisor", "upgrade", "price"]
FILLER = ["please", "I", "want", "the", "a", "now", "today"]


def phrase(word: str, role: str = "any") -> S.Phrase:
    return S.Phrase(role, ((S.ALL_LANGS, (word,)),), (), None, False)


def pack_of(conds: list[S.Cond], cooldown_s: float = 0.0) -> object:
    rules = tuple(S.Rule(id=f"r{i}", label="process.error", category="process_error", severity="info", when=c,
                         cooldown_s=cooldown_s) for i, c in enumerate(conds))
    return compile_pack(S.Pack(rules=rules, version="props"))


def analytics(pack: object) -> CallAnalytics:
    return CallAnalytics("p", pack, language="en", metadata={}, sentiment=None)  # type: ignore[arg-type]


def tr(text: str, start: float, end: float, *, final: bool = True, uid: str = "u", role: str = "customer"
       ) -> Transcript:
    return Transcript(call_id="p", channel=1, role=role, utterance_id=uid, is_final=final, start=start, end=end,
                      text=text, language="en")


# ---- all / any / not algebra ---------------------------------------------------------------------------
def trees(depth: int = 3) -> st.SearchStrategy[S.Cond]:
    leaves = st.sampled_from(VOCAB).map(phrase)
    return st.recursive(leaves, lambda kids: st.one_of(
        st.lists(kids, min_size=2, max_size=3).map(lambda xs: S.All(tuple(xs))),
        st.lists(kids, min_size=2, max_size=3).map(lambda xs: S.AnyOf(tuple(xs))),
        kids.map(S.Not)), max_leaves=8)


def holds(c: S.Cond, words: set[str]) -> bool:
    """Reference: a phrase leaf holds when its word was said."""
    if isinstance(c, S.Phrase):
        return c.literals[0][1][0] in words
    if isinstance(c, S.All):
        return all(holds(x, words) for x in c.items)
    if isinstance(c, S.AnyOf):
        return any(holds(x, words) for x in c.items)
    assert isinstance(c, S.Not)
    return not holds(c.item, words)


def de_morgan(c: S.Cond) -> S.Cond:
    """An equivalent tree: not(all(a, b)) = any(not a, not b), and dually, applied at the root."""
    if isinstance(c, S.All):
        return S.Not(S.AnyOf(tuple(S.Not(x) for x in c.items)))
    if isinstance(c, S.AnyOf):
        return S.Not(S.All(tuple(S.Not(x) for x in c.items)))
    return S.Not(S.Not(c))


utterances = st.lists(st.sampled_from(VOCAB + FILLER), min_size=1, max_size=8)


@PROPS
@given(st.lists(trees(), min_size=1, max_size=5), utterances)
def test_rules_fire_exactly_when_the_boolean_reference_holds(conds, words):
    ca = analytics(pack_of(conds))
    fired = {a.rule_id for a in ca.on_transcript(tr(" ".join(words), 1.0, 2.0))}
    assert fired == {f"r{i}" for i, c in enumerate(conds) if holds(c, set(words))}


@PROPS
@given(trees(), utterances)
def test_equivalent_trees_fire_together(cond, words):
    ca = analytics(pack_of([cond, S.Not(S.Not(cond)), de_morgan(cond)]))
    fired = {a.rule_id for a in ca.on_transcript(tr(" ".join(words), 1.0, 2.0))}
    assert fired in (set(), {"r0", "r1", "r2"})


@PROPS
@given(st.lists(trees(), min_size=1, max_size=5), utterances, utterances)
def test_partial_then_final_confirms_retracts_or_fires_anew(conds, partial_words, final_words):
    ca = analytics(pack_of(conds))
    prov = ca.on_transcript(tr(" ".join(partial_words), 1.0, 1.5, final=False))
    fin = ca.on_transcript(tr(" ".join(final_words), 1.0, 2.0))
    p_true = {f"r{i}" for i, c in enumerate(conds) if holds(c, set(partial_words))}
    f_true = {f"r{i}" for i, c in enumerate(conds) if holds(c, set(final_words))}
    assert {a.rule_id for a in prov} == p_true and all(a.state == "provisional" for a in prov)
    assert {(a.rule_id, a.state) for a in fin} == (
        {(r, "confirmed") for r in f_true} | {(r, "retracted") for r in p_true - f_true})
    ids = {a.rule_id: a.alert_id for a in prov}
    assert all(a.alert_id == ids[a.rule_id] for a in fin if a.rule_id in ids)  # same alert, new state
    assert not [a for a in ca.finish(5.0)[0] if a.state == "retracted"]  # nothing left open


# ---- partial → confirm/retract with cooldown: a reference model ----------------------------------------
@dataclass(frozen=True)
class Utterance:
    partials: tuple[bool, ...]  # each partial says the phrase or not
    final: bool
    gap: float  # silence before it
    length: float


utterance_streams = st.lists(st.builds(
    Utterance, st.lists(st.booleans(), max_size=3).map(tuple), st.booleans(),
    st.sampled_from([0.0, 0.5, 1.0, 2.0, 4.0, 8.0]), st.sampled_from([0.5, 1.0, 2.5, 4.0])), min_size=1, max_size=12)


def text(said: bool) -> str:
    return "I want a refund please" if said else "I want a new phone please"


def model(stream: list[Utterance], cooldown: float) -> list[tuple[int, str]]:
    """docs/rules.md: provisional on the first matching partial (cooldown permitting), never
    flickering; the final confirms or retracts it (a retraction gives the cooldown back); without a
    provisional, a matching final is confirmed (cooldown permitting)."""
    out: list[tuple[int, str]] = []
    last: float | None = None
    t = 0.0
    for k, u in enumerate(stream):
        start, end = t + u.gap, t + u.gap + u.length
        t = end
        opened, prev = False, None
        for j, said in enumerate(u.partials):
            p_end = start + (j + 1) * u.length / (len(u.partials) + 1)
            if not opened and said and (last is None or p_end >= last + cooldown):
                opened, prev, last = True, last, p_end
                out.append((k, "provisional"))
        if opened:
            out.append((k, "confirmed" if u.final else "retracted"))
            if not u.final:
                last = prev
        elif u.final and (last is None or end >= last + cooldown):
            out.append((k, "confirmed"))
            last = end
    return out


@PROPS
@given(utterance_streams, st.sampled_from([0.0, 3.0, 5.0, 10.0, 30.0]))
def test_partials_finals_and_cooldown_follow_the_reference_model(stream, cooldown):
    ca = analytics(pack_of([phrase("refund")], cooldown_s=cooldown))
    got: list[tuple[int, Alert]] = []
    t = 0.0
    for k, u in enumerate(stream):
        start, end = t + u.gap, t + u.gap + u.length
        t = end
        for j, said in enumerate(u.partials):
            p_end = start + (j + 1) * u.length / (len(u.partials) + 1)
            got += [(k, a) for a in ca.on_transcript(tr(text(said), start, p_end, final=False, uid=f"u{k}"))]
        got += [(k, a) for a in ca.on_transcript(tr(text(u.final), start, end, uid=f"u{k}"))]
    got += [(-1, a) for a in ca.finish(t + 1.0)[0]]
    assert [(k, a.state) for k, a in got] == model(stream, cooldown)
    # invariants: one alert id per utterance; provisional first, then exactly one of confirmed/retracted
    by_id: dict[str, list[str]] = {}
    for _, a in got:
        by_id.setdefault(a.alert_id, []).append(a.state)
    assert all(s in (["confirmed"], ["provisional", "confirmed"], ["provisional", "retracted"])
               for s in by_id.values())
    confirmed = sorted(a.media_time for _, a in got if a.state == "confirmed")
    assert ca.summary()["alerts"]["total"] == len(confirmed)
    assert ca.summary()["alerts"]["retracted"] == sum(a.state == "retracted" for _, a in got)
