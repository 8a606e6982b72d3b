"""Compile a validated pack once (phrase index, rule kinds, trigger index) and evaluate conditions.

Per utterance only the rules whose literal/pinyin phrases hit, plus the rules without a literal
trigger, are evaluated. Condition evaluation reads call state through the small
:class:`CallView` protocol, which :class:`speechiq.analytics.engine.CallAnalytics` implements.
"""

from __future__ import annotations

import logging
import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from . import schema as S
from .matchers import PhraseIndex, Span, TextView

log = logging.getLogger(__name__)

OPS = {"gt": operator.gt, "ge": operator.ge, "lt": operator.lt, "le": operator.le}


@dataclass(eq=False)
class Utt:
    """One transcript (partial or final) as the rules see it; caches filled on demand."""

    id: str
    role: str
    channel: int
    start: float
    end: float
    text: str
    lang: str
    is_final: bool
    view: TextView | None = None
    sentiment: float | None = None
    embedding: np.ndarray | None = None


Ev = tuple[Utt, tuple[Span, ...]]  # evidence: an utterance and the normalised spans that matched


class CallView(Protocol):
    """What condition evaluation reads from a running call."""

    now: float
    call_end: float | None
    finals: list[Utt]
    metadata: Mapping[str, Any]
    dtmf: str
    language: str | None

    def view(self, u: Utt) -> TextView: ...
    def role_finals(self, role: str) -> list[Utt]: ...
    def sentiment(self, u: Utt) -> float: ...
    def similarity(self, leaf: S.Semantic, u: Utt) -> float | None: ...
    def watch_hits(self, cond: S.Cond) -> list[Ev]: ...
    def metric(self, name: str, role: str | None, u: Utt | None) -> float | None: ...


@dataclass
class CompiledRule:
    rule: S.Rule
    kind: str  # utterance | deadline | state | call
    triggers: frozenset[int] | None  # phrase leaves one of which must hit; None = always evaluate
    role: str  # role an alert without an utterance carries
    deadline: S.Deadline | None = None
    rest: tuple[S.Cond, ...] = ()  # state conditions beside a deadline

    @property
    def id(self) -> str:
        return self.rule.id


@dataclass
class CompiledPack:
    version: str
    name: str
    rules: list[CompiledRule]
    index: PhraseIndex
    leaf_ids: dict[int, int]  # id(Phrase) -> leaf index
    by_leaf: dict[int, list[int]]  # leaf -> utterance rules (indexes) it triggers
    untriggered: list[int]
    watches: list[S.Cond]  # sub-conditions whose final-utterance hits are kept (sequence/order/deadline)
    semantic_leaves: list[S.Semantic]
    has_semantic: bool
    utterance_sentiment: bool
    sources: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    _examples: dict[tuple[int, int, str], np.ndarray] = field(default_factory=dict, repr=False)

    def candidates(self, view: TextView) -> list[int]:
        """Utterance rules worth evaluating on this utterance, in pack order."""
        idx = set(self.untriggered)
        for leaf in view.hits:
            idx.update(self.by_leaf.get(leaf, ()))
        return sorted(idx)

    def examples(self, leaf: S.Semantic, lang: str, model: Any) -> np.ndarray:
        """Example embeddings of a semantic leaf for a language (computed once per pack and model)."""
        key = (id(model), id(leaf), lang)
        if key not in self._examples:
            for sl in self.semantic_leaves:
                for lg in S.LANGUAGES:
                    texts = [t for la, items in sl.examples if la in (lg, S.ALL_LANGS) for t in items]
                    self._examples[(id(model), id(sl), lg)] = (
                        model.embed(texts) if texts else np.zeros((0, 1), dtype=np.float32))
        return self._examples[key]


def _required(c: S.Cond, leaf_ids: dict[int, int], index: PhraseIndex) -> frozenset[int] | None:
    """Phrase leaves one of which must hit for ``c`` to hold (None: cannot tell cheaply)."""
    if isinstance(c, S.Phrase):  # every phrase hit (literal, pinyin, regex, fuzzy) is known after the scan
        return frozenset((leaf_ids[id(c)],))
    if isinstance(c, S.All):
        sets = [s for s in (_required(x, leaf_ids, index) for x in c.items) if s is not None]
        return min(sets, key=len) if sets else None
    if isinstance(c, S.AnyOf):
        sets = [_required(x, leaf_ids, index) for x in c.items]
        return None if any(s is None for s in sets) else frozenset().union(*sets)  # type: ignore[arg-type]
    if isinstance(c, (S.Sequence, S.Order)):
        return _required(c.then, leaf_ids, index)
    return None


def _kind(rule: S.Rule) -> tuple[str, S.Deadline | None, tuple[S.Cond, ...]]:
    w = rule.when
    if rule.scope == "call":
        return "call", None, ()
    if isinstance(w, S.Deadline):
        return "deadline", w, ()
    if isinstance(w, S.All) and any(isinstance(x, S.Deadline) for x in w.items):
        dl = next(x for x in w.items if isinstance(x, S.Deadline))
        return "deadline", dl, tuple(x for x in w.items if x is not dl)
    if any(S.is_utterance_leaf(x) for x in S.walk(w)):
        return "utterance", None, ()
    return "state", None, ()


def _alert_role(w: S.Cond, dl: S.Deadline | None) -> str:
    if dl is not None:
        return dl.role
    for x in S.walk(w):
        if isinstance(x, (S.Phrase, S.Semantic)) and x.role != "any":
            return x.role
        if isinstance(x, (S.Sentiment, S.Trend)) or (isinstance(x, S.Metric) and x.role):
            return x.role or "any"
    return "any"


def compile_pack(pack: S.Pack) -> CompiledPack:
    """Build the matchers and indexes of a validated pack (once per pack)."""
    rules = [r for r in pack.rules if r.enabled]
    leaves: list[S.Phrase] = []
    leaf_ids: dict[int, int] = {}
    semantic: list[S.Semantic] = []
    watches: list[S.Cond] = []
    utt_sentiment = False
    for r in rules:
        for c in S.walk(r.when):
            if isinstance(c, S.Phrase) and id(c) not in leaf_ids:
                leaf_ids[id(c)] = len(leaves)
                leaves.append(c)
            elif isinstance(c, S.Semantic):
                semantic.append(c)
            elif isinstance(c, S.Sentiment):
                utt_sentiment = True
            if isinstance(c, (S.Sequence, S.Order)):
                watches.append(c.first)
            elif isinstance(c, S.Deadline):  # an event start is checked on its event, not on utterances
                watches.extend([c.say] + ([c.start] if c.start is not None and not c.event_start else []))
    index = PhraseIndex(leaves)
    compiled: list[CompiledRule] = []
    by_leaf: dict[int, list[int]] = {}
    untriggered: list[int] = []
    for r in rules:
        kind, dl, rest = _kind(r)
        triggers = _required(r.when, leaf_ids, index) if kind == "utterance" else None
        n = len(compiled)
        compiled.append(CompiledRule(r, kind, triggers, _alert_role(r.when, dl), dl, rest))
        if kind == "utterance":
            if triggers is None:
                untriggered.append(n)
            else:
                for leaf in triggers:
                    by_leaf.setdefault(leaf, []).append(n)
    return CompiledPack(
        version=pack.version, name=pack.name, rules=compiled, index=index, leaf_ids=leaf_ids, by_leaf=by_leaf,
        untriggered=untriggered, watches=watches, semantic_leaves=semantic, has_semantic=bool(semantic),
        utterance_sentiment=utt_sentiment, sources=pack.sources, warnings=pack.warnings)


# ---- evaluation --------------------------------------------------------------------------------
def _role_ok(want: str, role: str) -> bool:
    return want == "any" or want == role


def eval_utt(pack: CompiledPack, c: S.Cond, u: Utt, st: CallView) -> list[Ev] | None:
    """``c`` on utterance ``u``: None = false, else the evidence (possibly empty)."""
    if isinstance(c, S.Phrase):
        if not _role_ok(c.role, u.role):
            return None
        spans = pack.index.match(st.view(u), pack.leaf_ids[id(c)])
        return [(u, tuple(spans))] if spans else None
    if isinstance(c, S.All):
        out: list[Ev] = []
        for x in c.items:
            r = eval_utt(pack, x, u, st)
            if r is None:
                return None
            out.extend(r)
        return out
    if isinstance(c, S.AnyOf):
        for x in c.items:
            r = eval_utt(pack, x, u, st)
            if r is not None:
                return r
        return None
    if isinstance(c, S.Not):
        return [] if eval_utt(pack, c.item, u, st) is None else None
    if isinstance(c, S.Within):
        return [(u, ())] if u.start < c.first else None
    if isinstance(c, S.After):
        return [(u, ())] if u.start >= c.seconds else None
    if isinstance(c, S.Last):
        return [(u, ())] if st.call_end is not None and u.end >= st.call_end - c.seconds else None
    if isinstance(c, S.Sentiment):
        if not _role_ok(c.role, u.role):
            return None
        s = st.sentiment(u)
        ok = s < c.below if c.below is not None else s > (c.above if c.above is not None else 1.0)
        return [(u, ())] if ok else None
    if isinstance(c, S.Semantic):  # finals only: one embedding per utterance
        if not u.is_final or not _role_ok(c.role, u.role):
            return None
        sim = st.similarity(c, u)
        return [(u, ((0, len(st.view(u).text), "semantic"),))] if sim is not None and sim >= c.threshold else None
    if isinstance(c, S.Metric) and c.name in S.UTTERANCE_METRICS:
        if c.role is not None and c.role != u.role:
            return None
        val = st.metric(c.name, c.role, u)
        return [(u, ())] if val is not None and OPS[c.op](val, c.value) else None
    if isinstance(c, S.Sequence):
        then = eval_utt(pack, c.then, u, st)
        if then is None:
            return None
        for rec, spans in reversed(st.watch_hits(c.first)):
            if rec.id != u.id and rec.start < u.start and (c.within is None or u.start - rec.end <= c.within):
                return [(rec, spans), *then]
        return None
    if isinstance(c, S.Order):
        then = eval_utt(pack, c.then, u, st)
        if then is None:
            return None
        earlier = any(rec.id != u.id and rec.start < u.start for rec, _ in st.watch_hits(c.first))
        return None if earlier else then
    return eval_state(c, st)


def eval_state(c: S.Cond, st: CallView) -> list[Ev] | None:
    """A state condition on the call as it is now (utterance conditions are false here)."""
    if isinstance(c, S.All):
        out: list[Ev] = []
        for x in c.items:
            r = eval_state(x, st)
            if r is None:
                return None
            out.extend(r)
        return out
    if isinstance(c, S.AnyOf):
        return next((r for r in (eval_state(x, st) for x in c.items) if r is not None), None)
    if isinstance(c, S.Not):
        return [] if eval_state(c.item, st) is None else None
    if isinstance(c, S.Metric):
        val = st.metric(c.name, c.role, None)
        return [] if val is not None and OPS[c.op](val, c.value) else None
    if isinstance(c, S.Metadata):
        return [] if _metadata_ok(c, st) else None
    if isinstance(c, S.Dtmf):
        return [] if c.pressed in st.dtmf else None
    if isinstance(c, S.Trend):
        turns = st.role_finals(c.role)[-c.turns:]
        if len(turns) < c.turns:
            return None
        scores = [st.sentiment(u) for u in turns]
        ok = (float(np.mean(scores)) < c.mean_below if c.mean_below is not None
              else scores[0] - scores[-1] >= (c.drop or 0.0))
        return [(u, ()) for u in turns] if ok else None
    return None


def metadata_value(meta: Mapping[str, Any], key: str, language: str | None = None) -> Any:
    """The call metadata value of ``key`` (None = absent). ``agent_id`` and ``agent`` are one key
    (whichever the telephony side set, ``agent_id`` first), as in the alert bus's ``agent`` filter;
    ``language`` falls back to the call's language."""
    for k in S.METADATA_ALIASES.get(key, (key,)):
        if meta.get(k) is not None:
            return meta[k]
    return language if key == "language" else None


def _metadata_ok(c: S.Metadata, st: CallView) -> bool:
    value = metadata_value(st.metadata, c.key, st.language)
    if c.exists is not None:
        return (value is not None) == c.exists
    if value is None:
        return False
    if c.regex is not None:
        return re.search(c.regex, str(value)) is not None
    if c.in_ is not None:
        return value in c.in_ or str(value) in {str(x) for x in c.in_}
    return value == c.equals or str(value) == str(c.equals)


def starts_clock(rule_id: str, dl: S.Deadline, event: str, st: CallView, alert: Any = None) -> bool:
    """Whether a call event starts a clock of deadline ``dl`` (of rule ``rule_id``) whose ``from``
    is an event. ``event``: ``dtmf`` (just after a digit was added to ``st.dtmf``: the digits
    pressed so far end with ``pressed``, so each entry of the sequence counts), ``metadata`` (the
    metadata condition holds now: the caller starts a clock on its false → true edge, the call
    start included) or ``alert`` (a confirmed alert of another rule matching rule/label/category).
    """
    s = dl.start
    if event == "dtmf":
        return isinstance(s, S.Dtmf) and st.dtmf.endswith(s.pressed)
    if event == "metadata":
        return isinstance(s, S.Metadata) and _metadata_ok(s, st)
    if event == "alert":
        return (isinstance(s, S.AlertOf) and alert is not None and getattr(alert, "state", "") == "confirmed"
                and alert.rule_id != rule_id and s.matches(alert.rule_id, alert.label, alert.category))
    raise ValueError(f"unknown deadline start event {event!r}")


def eval_call(pack: CompiledPack, c: S.Cond, st: CallView) -> list[Ev] | None:
    """Call scope at call end: utterance conditions mean "some final utterance satisfies it"."""
    if isinstance(c, S.All):
        out: list[Ev] = []
        for x in c.items:
            r = eval_call(pack, x, st)
            if r is None:
                return None
            out.extend(r)
        return out
    if isinstance(c, S.AnyOf):
        return next((r for r in (eval_call(pack, x, st) for x in c.items) if r is not None), None)
    if isinstance(c, S.Not):
        return [] if eval_call(pack, c.item, st) is None else None
    if isinstance(c, S.Exists) or S.is_utterance_leaf(c):
        inner = c.item if isinstance(c, S.Exists) else c
        for u in st.finals:
            r = eval_utt(pack, inner, u, st)
            if r is not None:
                return r
        return None
    return eval_state(c, st)


__all__ = ["CallView", "CompiledPack", "CompiledRule", "Ev", "Utt", "compile_pack", "eval_call", "eval_state",
           "eval_utt", "metadata_value", "starts_clock"]
