"""Validate ``when:`` condition trees (YAML with line numbers) into :mod:`schema` condition objects.

Every condition is a one-key mapping; see docs/rules.md. Placement rules checked here:
``last``/``exists`` only in call scope, ``deadline`` only in utterance scope at the root (or in a
root ``all`` beside state conditions), the parts of ``sequence``/``order``/``deadline`` must be
utterance conditions without further temporal nesting, except a deadline's ``from``, which may
also be one call event (``dtmf``, ``metadata`` or ``alert``; ``alert`` is allowed nowhere else).
"""

from __future__ import annotations

import re
from typing import Any

from . import schema as S
from .loader import LineDict, LineList, Validator, _kind, phrase_problems

CONDITION_KEYS = ("all", "any", "not", "exists", "phrase", "semantic", "within", "after", "last", "deadline",
                  "sequence", "order", "sentiment", "trend", "metric", "metadata", "dtmf", "alert")
EVENT_START_KEYS = ("dtmf", "metadata", "alert")  # a deadline's ``from`` may be one of these call events


def parse_condition(v: Validator, value: Any, line: int, scope: str, where: str) -> S.Cond | None:
    """Parse the rule's ``when`` tree and check where temporal conditions may stand."""
    cond = _cond(v, value, line, scope, where, nested_in=None)
    if cond is None:
        return None
    deadlines = [c for c in S.walk(cond) if isinstance(c, S.Deadline)]
    if deadlines:
        root_ok = isinstance(cond, S.Deadline) or (
            isinstance(cond, S.All) and sum(isinstance(c, S.Deadline) for c in cond.items) == 1
            and all(isinstance(c, S.Deadline) or not _has_utterance_leaf(c) for c in cond.items))
        if scope == "call":
            v.err(deadlines[0].line, f"{where}: deadline is not allowed in call scope")
        elif not root_ok or len(deadlines) > 1:
            v.err(deadlines[0].line, f"{where}: deadline must be the root condition, or the only deadline "
                                     "in a root 'all' whose other items are state conditions")
    return cond


def _has_utterance_leaf(c: S.Cond) -> bool:
    return any(S.is_utterance_leaf(x) for x in S.walk(c))


def _cond(v: Validator, value: Any, line: int, scope: str, where: str, nested_in: str | None) -> S.Cond | None:
    if not isinstance(value, LineDict) or len(value) != 1:
        got = f"{len(value)} keys ({', '.join(map(str, value))})" if isinstance(value, LineDict) else _kind(value)
        v.err(getattr(value, "line", line), f"{where}: a condition is a mapping with exactly one of "
                                            f"{', '.join(CONDITION_KEYS)}; got {got}")
        return None
    key, body = next(iter(value.items()))
    ln = value.line_of(key)
    w = f"{where}.{key}"
    if key not in CONDITION_KEYS:
        v.err(ln, f"{where}: unknown condition {key!r} (use one of {', '.join(CONDITION_KEYS)})")
        return None
    if key in ("all", "any"):
        if not isinstance(body, LineList) or not body:
            v.err(ln, f"{w} must be a non-empty list of conditions, got {_kind(body)}")
            return None
        items = [_cond(v, b, body.line_of(i), scope, f"{w}[{i}]", nested_in) for i, b in enumerate(body)]
        if any(i is None for i in items):
            return None
        return (S.All if key == "all" else S.AnyOf)(tuple(items), ln)  # type: ignore[arg-type]
    if key in ("not", "exists"):
        if key == "exists" and scope != "call":
            v.err(ln, f"{w}: exists is only allowed in call scope")
            return None
        item = _cond(v, body, ln, scope, w, nested_in)
        if item is None:
            return None
        if key == "exists" and not _has_utterance_leaf(item):
            v.err(ln, f"{w}: exists needs an utterance condition inside")
            return None
        return S.Not(item, ln) if key == "not" else S.Exists(item, ln)
    if key in ("sequence", "order", "deadline") and nested_in:
        v.err(ln, f"{w}: {key} cannot be nested inside {nested_in}")
        return None
    parser = _LEAVES[key]
    return parser(v, body, ln, scope, w)


def _role(v: Validator, m: LineDict, w: str, default: str = "any") -> str | None:
    return v.text(m.get("role", default), m.line_of("role"), f"{w}.role", S.ROLES)


def _phrase(v: Validator, body: Any, ln: int, scope: str, w: str) -> S.Cond | None:
    m = v.mapping(body, ln, w, {"role", "any_of", "regex", "fuzzy", "pinyin"})
    if m is None:
        return None
    if "any_of" not in m and "regex" not in m:
        v.err(m.line, f"{w}: needs any_of and/or regex")
        return None
    role = _role(v, m, w)
    literals = v.lang_texts(m["any_of"], m.line_of("any_of"), f"{w}.any_of") if "any_of" in m else ()
    regex = v.lang_texts(m["regex"], m.line_of("regex"), f"{w}.regex") if "regex" in m else ()
    for _lang, items in regex or ():
        for pat in items:
            try:
                re.compile(pat)
            except re.error as exc:
                v.err(m.line_of("regex"), f"{w}.regex: invalid regular expression {pat!r}: {exc}")
    fuzzy_raw = m.get("fuzzy", False)
    fuzzy: int | None = None
    if fuzzy_raw is True:
        fuzzy = 85
    elif fuzzy_raw is not False and fuzzy_raw is not None:
        f = v.number(fuzzy_raw, m.line_of("fuzzy"), f"{w}.fuzzy", 50, 100)
        fuzzy = int(f) if f is not None else None
        if f is None:
            return None
    pinyin = m.get("pinyin", False)
    if not isinstance(pinyin, bool):
        v.err(m.line_of("pinyin"), f"{w}.pinyin must be true or false, got {_kind(pinyin)}")
        return None
    if role is None or literals is None or regex is None:
        return None
    phrase_problems(v, literals, m.line_of("any_of"), w, pinyin)
    return S.Phrase(role, literals, regex, fuzzy, pinyin, ln)


def _semantic(v: Validator, body: Any, ln: int, scope: str, w: str) -> S.Cond | None:
    m = v.mapping(body, ln, w, {"role", "examples", "threshold"}, {"examples"})
    if m is None:
        return None
    role = _role(v, m, w)
    ex = v.lang_texts(m["examples"], m.line_of("examples"), f"{w}.examples") if "examples" in m else None
    thr = v.number(m.get("threshold", 0.88), m.line_of("threshold"), f"{w}.threshold", 0, 1)
    if role is None or ex is None or thr is None:
        return None
    return S.Semantic(role, ex, thr, ln)


def _within(v: Validator, body: Any, ln: int, scope: str, w: str) -> S.Cond | None:
    m = v.mapping(body, ln, w, {"first"}, {"first"})
    if m is None or "first" not in m:
        return None
    first = v.number(m["first"], m.line_of("first"), f"{w}.first", 0, lo_open=True)
    return None if first is None else S.Within(first, ln)


def _after(v: Validator, body: Any, ln: int, scope: str, w: str) -> S.Cond | None:
    s = v.number(body, ln, w, 0)
    return None if s is None else S.After(s, ln)


def _last(v: Validator, body: Any, ln: int, scope: str, w: str) -> S.Cond | None:
    if scope != "call":
        v.err(ln, f"{w}: last is only decidable at call end: use it in a rule with scope: call")
        return None
    s = v.number(body, ln, w, 0, lo_open=True)
    return None if s is None else S.Last(s, ln)


def _part(v: Validator, m: LineDict, key: str, scope: str, w: str, outer: str) -> S.Cond | None:
    if key not in m:
        return None
    c = _cond(v, m[key], m.line_of(key), scope, f"{w}.{key}", nested_in=outer)
    if c is not None and not _has_utterance_leaf(c):
        alt = f", or be one {' / '.join(EVENT_START_KEYS)} event" if key == "from" else ""
        v.err(m.line_of(key), f"{w}.{key} must contain an utterance condition (phrase, semantic, sentiment …){alt}")
        return None
    if c is not None and any(isinstance(x, (S.Last, S.Exists)) for x in S.walk(c)):
        v.err(m.line_of(key), f"{w}.{key}: last/exists cannot be used inside {outer}")
        return None
    return c


def _sequence(v: Validator, body: Any, ln: int, scope: str, w: str) -> S.Cond | None:
    m = v.mapping(body, ln, w, {"first", "then", "within"}, {"first", "then"})
    if m is None:
        return None
    first, then = _part(v, m, "first", scope, w, "sequence"), _part(v, m, "then", scope, w, "sequence")
    within = v.number(m["within"], m.line_of("within"), f"{w}.within", 0, lo_open=True) if "within" in m else None
    if first is None or then is None or ("within" in m and within is None):
        return None
    return S.Sequence(first, then, within, ln)


def _order(v: Validator, body: Any, ln: int, scope: str, w: str) -> S.Cond | None:
    m = v.mapping(body, ln, w, {"first", "then"}, {"first", "then"})
    if m is None:
        return None
    first, then = _part(v, m, "first", scope, w, "order"), _part(v, m, "then", scope, w, "order")
    return None if first is None or then is None else S.Order(first, then, ln)


def _deadline(v: Validator, body: Any, ln: int, scope: str, w: str) -> S.Cond | None:
    m = v.mapping(body, ln, w, {"say", "within", "from", "role"}, {"say", "within"})
    if m is None:
        return None
    say = _part(v, m, "say", scope, w, "deadline")
    within = v.number(m["within"], m.line_of("within"), f"{w}.within", 0, lo_open=True) if "within" in m else None
    start: S.Cond | None = None
    frm = m.get("from", "call_start")
    if frm != "call_start":
        if isinstance(frm, str):
            v.err(m.line_of("from"), f"{w}.from must be call_start, an utterance condition or one of "
                                     f"{', '.join(EVENT_START_KEYS)}; got {frm!r}")
            return None
        if isinstance(frm, LineDict) and len(frm) == 1 and next(iter(frm)) in EVENT_START_KEYS:
            key = next(iter(frm))
            start = _LEAVES_FROM[key](v, frm[key], frm.line_of(key), scope, f"{w}.from.{key}")
        else:
            start = _part(v, m, "from", scope, w, "deadline")
        if start is None:
            return None
    role = _role(v, m, w, default=_first_role(say) if say is not None else "any")
    if say is None or within is None or role is None:
        return None
    return S.Deadline(say, within, start, role, ln)


def _first_role(c: S.Cond) -> str:
    for x in S.walk(c):
        if isinstance(x, (S.Phrase, S.Semantic)):
            return x.role
    return "any"


def _sentiment(v: Validator, body: Any, ln: int, scope: str, w: str) -> S.Cond | None:
    m = v.mapping(body, ln, w, {"role", "below", "above"})
    if m is None:
        return None
    if ("below" in m) == ("above" in m):
        v.err(m.line, f"{w}: give exactly one of below / above")
        return None
    role = _role(v, m, w, default="customer")
    below = v.number(m["below"], m.line_of("below"), f"{w}.below", -1, 1) if "below" in m else None
    above = v.number(m["above"], m.line_of("above"), f"{w}.above", -1, 1) if "above" in m else None
    if role is None or (below is None and above is None):
        return None
    return S.Sentiment(role, below, above, ln)


def _trend(v: Validator, body: Any, ln: int, scope: str, w: str) -> S.Cond | None:
    m = v.mapping(body, ln, w, {"role", "turns", "mean_below", "drop"})
    if m is None:
        return None
    if ("mean_below" in m) == ("drop" in m):
        v.err(m.line, f"{w}: give exactly one of mean_below / drop")
        return None
    role = v.text(m.get("role", "customer"), m.line_of("role"), f"{w}.role", ("agent", "customer"))
    turns = v.number(m.get("turns", 3), m.line_of("turns"), f"{w}.turns", 2, integer=True)
    mean = v.number(m["mean_below"], m.line_of("mean_below"), f"{w}.mean_below", -1, 1) if "mean_below" in m else None
    drop = v.number(m["drop"], m.line_of("drop"), f"{w}.drop", 0, 2, lo_open=True) if "drop" in m else None
    if role is None or turns is None or (mean is None and drop is None):
        return None
    return S.Trend(role, int(turns), mean, drop, ln)


def _metric(v: Validator, body: Any, ln: int, scope: str, w: str) -> S.Cond | None:
    m = v.mapping(body, ln, w, {"name", "role", "op", "value"}, {"name", "op", "value"})
    if m is None:
        return None
    names = S.UTTERANCE_METRICS + S.STATE_METRICS
    name = v.text(m.get("name"), m.line_of("name"), f"{w}.name", names) if "name" in m else None
    op = v.text(m.get("op"), m.line_of("op"), f"{w}.op", S.OPS) if "op" in m else None
    value = v.number(m.get("value"), m.line_of("value"), f"{w}.value") if "value" in m else None
    role = None
    if "role" in m:
        role = v.text(m["role"], m.line_of("role"), f"{w}.role", ("agent", "customer"))
        if role is None:
            return None
    if name in S.ROLE_METRICS and role is None:
        v.err(m.line, f"{w}: metric {name} needs a role (agent or customer)")
        return None
    if name is None or op is None or value is None:
        return None
    return S.Metric(name, role, op, value, ln)


def _metadata(v: Validator, body: Any, ln: int, scope: str, w: str) -> S.Cond | None:
    m = v.mapping(body, ln, w, {"key", "equals", "in", "regex", "exists"}, {"key"})
    if m is None:
        return None
    tests = [k for k in ("equals", "in", "regex", "exists") if k in m]
    if len(tests) != 1:
        v.err(m.line, f"{w}: give exactly one of equals / in / regex / exists")
        return None
    key = v.text(m.get("key"), m.line_of("key"), f"{w}.key") if "key" in m else None
    t = tests[0]
    if t == "in" and (not isinstance(m["in"], LineList) or not m["in"]):
        v.err(m.line_of("in"), f"{w}.in must be a non-empty list")
        return None
    if t == "regex":
        try:
            re.compile(str(m["regex"]))
        except re.error as exc:
            v.err(m.line_of("regex"), f"{w}.regex: invalid regular expression: {exc}")
            return None
    if t == "exists" and not isinstance(m["exists"], bool):
        v.err(m.line_of("exists"), f"{w}.exists must be true or false")
        return None
    if key is None:
        return None
    return S.Metadata(key, equals=m.get("equals"), in_=tuple(m["in"]) if t == "in" else None,
                      regex=str(m["regex"]) if t == "regex" else None, exists=m.get("exists"), line=ln)


def _alert_of(v: Validator, body: Any, ln: int, scope: str, w: str) -> S.Cond | None:
    """``alert: {rule: ID}`` / ``{label: L}`` / ``{category: C}`` — only reached from a deadline's from."""
    m = v.mapping(body, ln, w, {"rule", "label", "category"})
    if m is None:
        return None
    given = [k for k in ("rule", "label", "category") if k in m]
    if len(given) != 1:
        v.err(m.line, f"{w}: give exactly one of rule / label / category")
        return None
    k = given[0]
    val = v.text(m[k], m.line_of(k), f"{w}.{k}")
    if val is None:
        return None
    return S.AlertOf(**{k: val}, line=ln)


def _alert_elsewhere(v: Validator, body: Any, ln: int, scope: str, w: str) -> S.Cond | None:
    v.err(ln, f"{w}: alert is only allowed as a deadline's from (deadline: {{from: {{alert: …}}}})")
    return None


def _dtmf(v: Validator, body: Any, ln: int, scope: str, w: str) -> S.Cond | None:
    m = v.mapping(body, ln, w, {"pressed"}, {"pressed"})
    if m is None or "pressed" not in m:
        return None
    p = str(m["pressed"]) if isinstance(m["pressed"], (int, str)) else None
    if not p or not re.fullmatch(r"[0-9*#A-Da-d]+", p):
        v.err(m.line_of("pressed"), f"{w}.pressed must be DTMF digits (0-9 * # A-D), got {_kind(m['pressed'])}")
        return None
    return S.Dtmf(p.upper(), ln)


_LEAVES = {"phrase": _phrase, "semantic": _semantic, "within": _within, "after": _after, "last": _last,
           "deadline": _deadline, "sequence": _sequence, "order": _order, "sentiment": _sentiment,
           "trend": _trend, "metric": _metric, "metadata": _metadata, "dtmf": _dtmf, "alert": _alert_elsewhere}
_LEAVES_FROM = {**_LEAVES, "alert": _alert_of}

__all__ = ["CONDITION_KEYS", "EVENT_START_KEYS", "parse_condition"]
