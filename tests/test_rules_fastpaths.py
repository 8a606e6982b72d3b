"""The rule engine's fast paths give the answers of its general paths.

- ASCII text without symbols, digit groups or number words skips tokenisation in ``normalize``:
  text and every span back to the original must equal the general (token) path's.
- Per utterance, only the rules that can hold on the speaker's role and language are evaluated
  (:func:`speechiq.rules.evaluate.roles_of`): the alerts must equal those of evaluating every
  utterance rule's compiled condition on every utterance.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from speechiq.analytics.engine import CallAnalytics
from speechiq.events import Transcript
from speechiq.rules import compile_pack, load_pack
from speechiq.rules.compiler import Utt
from speechiq.rules.evaluate import eval_utt, roles_of
from speechiq.rules.normalize import _fold, _tokenized, normalize

PROPS = settings(max_examples=300, deadline=None, database=None)
PIECES = [*"abcxyz019 ,.'`-!?ABC", "can't", " one", " five", " and", " hundred", "3.5", "1,000", " a"]
ASCII = st.lists(st.sampled_from(PIECES), max_size=20).map("".join)


@PROPS
@given(ASCII)
def test_ascii_fast_path_equals_token_path(text: str) -> None:
    folded, fmap = _fold(text)
    slow, fast = _tokenized(text, folded, fmap), normalize(text)
    assert fast.text == slow.text
    n = len(slow.text)
    for i in range(-1, n + 2):
        for j in range(i, n + 2):
            assert fast.span(i, j) == slow.span(i, j), (text, i, j)


def test_span_maps_back_through_folding_and_numbers() -> None:
    nz = normalize("Ｉ paid $5 — twenty-five DOLLARS")
    assert nz.text == "i paid 5 dollars 25 dollars"
    s, e = nz.span(nz.text.index("25"), nz.text.index("25") + 2)
    assert nz.original[s:e] == "twenty-five"
    s, e = nz.span(0, 1)
    assert nz.original[s:e] == "Ｉ"


PACK = """
name: roles
rules:
  - {id: agent_only, label: process.error, category: process_error,
     when: {phrase: {role: agent, any_of: [refund]}}}
  - {id: customer_only, label: process.error, category: process_error,
     when: {phrase: {role: customer, any_of: [refund]}}}
  - {id: neg_customer, label: sentiment.negative, category: sentiment,
     when: {sentiment: {role: customer, below: -0.3}}}
  - {id: either, label: process.error, category: process_error,
     when: {any: [{phrase: {role: agent, any_of: [cancel]}}, {sentiment: {role: customer, below: -0.3}}]}}
  - {id: negated, label: process.error, category: process_error,
     when: {not: {phrase: {role: agent, any_of: [hello]}}}}
  - {id: zh_only, label: process.error, category: process_error, languages: [zh],
     when: {phrase: {any_of: [退款]}}}
"""


class _Scorer:
    @staticmethod
    def score(text: str, language: str) -> object:
        from speechiq.analytics.sentiment import Sentiment

        return Sentiment(score=-0.8 if "angry" in text else 0.2, label="x")


def test_roles_of() -> None:
    got = {cr.id: roles_of(cr.rule.when) for cr in _PACK.rules}
    assert got == {"agent_only": {"agent"}, "customer_only": {"customer"}, "neg_customer": {"customer"},
                   "either": {"agent", "customer"}, "negated": None, "zh_only": None}


@PROPS
@given(st.lists(st.tuples(st.sampled_from(["agent", "customer", "other"]),
                          st.sampled_from(["a refund", "cancel it", "hello angry", "angry refund", "fine",
                                           "要退款"]),
                          st.booleans()), max_size=12))
def test_role_filtered_candidates_equal_full_evaluation(turns: list[tuple[str, str, bool]]) -> None:
    pack = _PACK
    ca = CallAnalytics("c", pack, language="en", metadata={}, sentiment=_Scorer())
    for k, (role, text, final) in enumerate(turns):
        t = Transcript(call_id="c", channel=0 if role == "agent" else 1, role=role, utterance_id=f"u{k}",
                       is_final=final, start=float(k), end=k + 0.5, text=text, language="en")
        got = {a.rule_id for a in ca.on_transcript(t) if a.state != "retracted"}
        u = ca.finals[-1] if final else Utt(t.utterance_id, role, t.channel, t.start, t.end, text, "en", False)
        want = {cr.id for cr in pack.rules if cr.kind == "utterance" and "en" in cr.rule.languages
                and eval_utt(pack, cr.rule.when, u, ca) is not None}
        assert got <= want
        # every rule that holds fired, unless its cooldown (default) held it back
        assert all(rid in got or _fired_before(ca, rid) for rid in want), (turns[: k + 1], got, want)


def _fired_before(ca: CallAnalytics, rule_id: str) -> bool:
    idx = next(i for i, cr in enumerate(ca.pack.rules) if cr.id == rule_id)
    return idx in ca._last_fire or any(idx in opened for opened in ca._open.values())


def _write(text: str) -> Path:
    import tempfile

    p = Path(tempfile.mkdtemp()) / "pack.yaml"
    p.write_text(text, encoding="utf-8")
    return p


_PACK = compile_pack(load_pack(_write(PACK)))
