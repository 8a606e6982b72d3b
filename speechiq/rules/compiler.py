"""Compile a validated pack once (phrase index, rule kinds, trigger index) and evaluate conditions.

Per utterance only the rules whose literal/pinyin phrases hit, plus the rules without a literal
trigger, are evaluated. Condition evaluation reads call state through the small
:class:`CallView` protocol, which :class:`speechiq.analytics.engine.CallAnalytics` implements.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from . import schema as S
from .evaluate import (
    OPS,
    StateFn,
    UttFn,
    eval_call,
    eval_state,
    eval_utt,
    metadata_ok,
    metadata_value,
    roles_of,
    state_fn,
    utt_fn,
)
from .matchers import PARTY_ROLES, PhraseIndex, Span, TextView, role_key

log = logging.getLogger(__name__)


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
    utt: UttFn | None = None  # the compiled ``when`` of an utterance rule
    state: StateFn | None = None  # the compiled ``when`` of a state rule
    rest_fns: tuple[StateFn, ...] = ()  # the compiled ``rest``

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
    _fns: dict[tuple[str, int], Callable[..., Any]] = field(default_factory=dict, repr=False)
    # per (utterance role key, language): the untriggered rules and the leaf index of the rules
    # that can hold on such an utterance (role key: agent, customer, or "" for any other role)
    _untriggered_for: dict[tuple[str, str], list[int]] = field(default_factory=dict, repr=False)
    _by_leaf_for: dict[tuple[str, str], dict[int, list[int]]] = field(default_factory=dict, repr=False)

    def candidates(self, view: TextView, role: str) -> list[int]:
        """Utterance rules worth evaluating on an utterance of ``role``, in pack order: those that
        can hold on that role and the view's language, untriggered or with a phrase leaf that hit."""
        key = (role_key(role), view.lang)
        by_leaf = self._by_leaf_for.get(key, {})
        idx = set(self._untriggered_for.get(key, ()))
        for leaf in view.hits:
            idx.update(by_leaf.get(leaf, ()))
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
    out = CompiledPack(
        version=pack.version, name=pack.name, rules=compiled, index=index, leaf_ids=leaf_ids, by_leaf=by_leaf,
        untriggered=untriggered, watches=watches, semantic_leaves=semantic, has_semantic=bool(semantic),
        utterance_sentiment=utt_sentiment, sources=pack.sources, warnings=pack.warnings)
    _compile_fns(out)
    return out


def _compile_fns(pack: CompiledPack) -> None:
    """Closures of every rule's conditions, and the per-(role, language) candidate indexes."""
    fit: dict[int, tuple[frozenset[str] | None, tuple[str, ...]]] = {}  # utterance rule -> (roles, languages)
    for n, cr in enumerate(pack.rules):
        if cr.kind == "utterance":
            cr.utt = utt_fn(pack, cr.rule.when)
            fit[n] = (roles_of(cr.rule.when), cr.rule.languages)
        elif cr.kind == "state":
            cr.state = state_fn(pack, cr.rule.when)
        cr.rest_fns = tuple(state_fn(pack, c) for c in cr.rest)

    def ok(n: int, role: str, lang: str) -> bool:
        roles, langs = fit[n]
        return lang in langs and (roles is None or role in roles)

    for role in (*PARTY_ROLES, ""):
        for lang in S.LANGUAGES:
            key = (role, lang)
            pack._untriggered_for[key] = [n for n in pack.untriggered if ok(n, role, lang)]
            pack._by_leaf_for[key] = {leaf: hit for leaf, ns in pack.by_leaf.items()
                                      if (hit := [n for n in ns if ok(n, role, lang)])}


# ---- call events ----------------------------------------------------------------------------
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
        return isinstance(s, S.Metadata) and metadata_ok(s, st)
    if event == "alert":
        return (isinstance(s, S.AlertOf) and alert is not None and getattr(alert, "state", "") == "confirmed"
                and alert.rule_id != rule_id and s.matches(alert.rule_id, alert.label, alert.category))
    raise ValueError(f"unknown deadline start event {event!r}")


__all__ = ["OPS", "CallView", "CompiledPack", "CompiledRule", "Ev", "Utt", "compile_pack", "eval_call",
           "eval_state", "eval_utt", "metadata_ok", "metadata_value", "starts_clock"]
