"""Condition trees compiled once into Python closures, and the evaluation entry points.

A pack's conditions are walked once (:func:`utt_fn`, :func:`state_fn`) into nested closures, so
evaluating a rule on an utterance is plain calls instead of a type dispatch per tree node. The
semantics are those of docs/rules.md: an utterance function answers "does ``c`` hold on this
utterance" (None = false, else the evidence), a state function "does ``c`` hold on the call as it
is now" (utterance conditions are false there). Evaluation reads call state through
:class:`speechiq.rules.compiler.CallView`.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from . import schema as S

if TYPE_CHECKING:
    from .compiler import CallView, CompiledPack, Ev, Utt

UttFn = Callable[["Utt", "CallView"], "list[Ev] | None"]
StateFn = Callable[["CallView"], "list[Ev] | None"]

OPS = {"gt": operator.gt, "ge": operator.ge, "lt": operator.lt, "le": operator.le}


def utt_fn(pack: CompiledPack, c: S.Cond) -> UttFn:
    """The compiled utterance function of ``c`` (built once per pack and condition)."""
    return _cached(pack, "u", c, _build_utt)


def state_fn(pack: CompiledPack, c: S.Cond) -> StateFn:
    """The compiled state function of ``c`` (built once per pack and condition)."""
    return _cached(pack, "s", c, _build_state)


def _cached(pack: CompiledPack, kind: str, c: S.Cond, build: Callable[[CompiledPack, S.Cond], Any]) -> Any:
    key = (kind, id(c))
    fn = pack._fns.get(key)
    if fn is None:
        fn = pack._fns[key] = build(pack, c)
    return fn


def eval_utt(pack: CompiledPack, c: S.Cond, u: Utt, st: CallView) -> list[Ev] | None:
    """``c`` on utterance ``u``: None = false, else the evidence (possibly empty)."""
    return utt_fn(pack, c)(u, st)


def eval_state(pack: CompiledPack, c: S.Cond, st: CallView) -> list[Ev] | None:
    """A state condition on the call as it is now (utterance conditions are false here)."""
    return state_fn(pack, c)(st)


# ---- combinators shared by utterance functions (u, st) and state functions (st) ----------------
def _none(*_: Any) -> None:
    return None


def _all(fns: tuple[Callable[..., list[Ev] | None], ...]) -> Callable[..., list[Ev] | None]:
    def all_(*args: Any) -> list[Ev] | None:
        out: list[Ev] = []
        for fn in fns:
            r = fn(*args)
            if r is None:
                return None
            out.extend(r)
        return out
    return all_


def _any(fns: tuple[Callable[..., list[Ev] | None], ...]) -> Callable[..., list[Ev] | None]:
    def any_(*args: Any) -> list[Ev] | None:
        for fn in fns:
            r = fn(*args)
            if r is not None:
                return r
        return None
    return any_


def _not(inner: Callable[..., list[Ev] | None]) -> Callable[..., list[Ev] | None]:
    return lambda *args: [] if inner(*args) is None else None


def _build_utt(pack: CompiledPack, c: S.Cond) -> UttFn:
    if isinstance(c, S.Phrase):
        role, leaf = c.role, pack.leaf_ids[id(c)]

        def phrase(u: Utt, st: CallView) -> list[Ev] | None:
            if role != "any" and role != u.role:
                return None
            spans = st.view(u).hits.get(leaf)
            return [(u, tuple(spans))] if spans else None
        return phrase
    if isinstance(c, (S.All, S.AnyOf)):
        return (_all if isinstance(c, S.All) else _any)(tuple(utt_fn(pack, x) for x in c.items))
    if isinstance(c, S.Not):
        return _not(utt_fn(pack, c.item))
    if isinstance(c, S.Within):
        first = c.first
        return lambda u, st: [(u, ())] if u.start < first else None
    if isinstance(c, S.After):
        after = c.seconds
        return lambda u, st: [(u, ())] if u.start >= after else None
    if isinstance(c, S.Last):
        last = c.seconds
        return lambda u, st: [(u, ())] if st.call_end is not None and u.end >= st.call_end - last else None
    if isinstance(c, S.Sentiment):
        return _sentiment(c)
    if isinstance(c, S.Semantic):  # finals only: one embedding per utterance
        sem, threshold, srole = c, c.threshold, c.role

        def semantic(u: Utt, st: CallView) -> list[Ev] | None:
            if not u.is_final or (srole != "any" and srole != u.role):
                return None
            sim = st.similarity(sem, u)
            return [(u, ((0, len(st.view(u).text), "semantic"),))] if sim is not None and sim >= threshold else None
        return semantic
    if isinstance(c, S.Metric) and c.name in S.UTTERANCE_METRICS:
        name, mrole, op, value = c.name, c.role, OPS[c.op], c.value

        def metric(u: Utt, st: CallView) -> list[Ev] | None:
            if mrole is not None and mrole != u.role:
                return None
            val = st.metric(name, mrole, u)
            return [(u, ())] if val is not None and op(val, value) else None
        return metric
    if isinstance(c, S.Sequence):
        return _sequence(pack, c)
    if isinstance(c, S.Order):
        then_o, first_o = utt_fn(pack, c.then), c.first

        def order(u: Utt, st: CallView) -> list[Ev] | None:
            then = then_o(u, st)
            if then is None:
                return None
            earlier = any(rec.id != u.id and rec.start < u.start for rec, _ in st.watch_hits(first_o))
            return None if earlier else then
        return order
    sf = state_fn(pack, c)
    return lambda u, st: sf(st)


def _sentiment(c: S.Sentiment) -> UttFn:
    role, below = c.role, c.below
    above = c.above if c.above is not None else 1.0

    def sentiment(u: Utt, st: CallView) -> list[Ev] | None:
        if role != "any" and role != u.role:
            return None
        s = st.sentiment(u)
        ok = s < below if below is not None else s > above
        return [(u, ())] if ok else None
    return sentiment


def _sequence(pack: CompiledPack, c: S.Sequence) -> UttFn:
    then_fn, first, within = utt_fn(pack, c.then), c.first, c.within

    def sequence(u: Utt, st: CallView) -> list[Ev] | None:
        then = then_fn(u, st)
        if then is None:
            return None
        for rec, spans in reversed(st.watch_hits(first)):
            if rec.id != u.id and rec.start < u.start and (within is None or u.start - rec.end <= within):
                return [(rec, spans), *then]
        return None
    return sequence


def _build_state(pack: CompiledPack, c: S.Cond) -> StateFn:
    if isinstance(c, (S.All, S.AnyOf)):
        return (_all if isinstance(c, S.All) else _any)(tuple(state_fn(pack, x) for x in c.items))
    if isinstance(c, S.Not):
        return _not(state_fn(pack, c.item))
    if isinstance(c, S.Metric):
        name, role, op, value = c.name, c.role, OPS[c.op], c.value

        def metric(st: CallView) -> list[Ev] | None:
            val = st.metric(name, role, None)
            return [] if val is not None and op(val, value) else None
        return metric
    if isinstance(c, S.Metadata):
        md = c
        return lambda st: [] if metadata_ok(md, st) else None
    if isinstance(c, S.Dtmf):
        pressed = c.pressed
        return lambda st: [] if pressed in st.dtmf else None
    if isinstance(c, S.Trend):
        return _trend(c)
    return _none


def _trend(c: S.Trend) -> StateFn:
    role, n, mean_below, drop = c.role, c.turns, c.mean_below, c.drop or 0.0

    def trend(st: CallView) -> list[Ev] | None:
        turns = st.role_finals(role)[-n:]
        if len(turns) < n:
            return None
        scores = [st.sentiment(u) for u in turns]
        ok = sum(scores) / n < mean_below if mean_below is not None else scores[0] - scores[-1] >= drop
        return [(u, ()) for u in turns] if ok else None
    return trend


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
        fn = utt_fn(pack, c.item if isinstance(c, S.Exists) else c)
        for u in st.finals:
            r = fn(u, st)
            if r is not None:
                return r
        return None
    return state_fn(pack, c)(st)


def metadata_value(meta: Mapping[str, Any], key: str, language: str | None = None) -> Any:
    """The call metadata value of ``key`` (None = absent). ``agent_id`` and ``agent`` are one key
    (whichever the telephony side set, ``agent_id`` first), as in the alert bus's ``agent`` filter;
    ``language`` falls back to the call's language."""
    for k in S.METADATA_ALIASES.get(key, (key,)):
        if meta.get(k) is not None:
            return meta[k]
    return language if key == "language" else None


def metadata_ok(c: S.Metadata, st: CallView) -> bool:
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


def roles_of(c: S.Cond) -> frozenset[str] | None:
    """The utterance roles ``c`` can hold on (None: any role). Lets the engine skip, per
    utterance, the rules that cannot hold for its speaker."""
    if isinstance(c, (S.Phrase, S.Semantic, S.Sentiment)):
        return None if c.role == "any" else frozenset((c.role,))
    if isinstance(c, S.Metric) and c.name in S.UTTERANCE_METRICS:
        return None if c.role is None else frozenset((c.role,))
    if isinstance(c, S.All):
        sets = [s for s in (roles_of(x) for x in c.items) if s is not None]
        return frozenset.intersection(*sets) if sets else None
    if isinstance(c, S.AnyOf):
        sets = [roles_of(x) for x in c.items]
        return None if any(s is None for s in sets) else frozenset().union(*sets)  # type: ignore[arg-type]
    if isinstance(c, (S.Sequence, S.Order)):
        return roles_of(c.then)
    return None


__all__ = ["OPS", "StateFn", "UttFn", "eval_call", "eval_state", "eval_utt", "metadata_ok", "metadata_value",
           "roles_of", "state_fn", "utt_fn"]
