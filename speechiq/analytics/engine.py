"""CallAnalytics: one call's live rule evaluation, talk metrics and sentiment, all in media time.

The call session feeds transcripts (partials and finals), VAD activity, DTMF, metadata and clock
ticks; each call returns the alerts that became due (provisional, confirmed or retracted). Rule
kinds and their firing semantics are documented in docs/rules.md.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..events import Alert, Evidence, Transcript
from ..rules import schema as S
from ..rules.compiler import CompiledPack, CompiledRule, Ev, Utt, eval_call, eval_state, eval_utt
from ..rules.matchers import TextView
from ..rules.normalize import has_cjk
from .clocks import Clocks, Timer
from .inflight import OPEN_SPEECH_HOLD_S, PENDING_TTL_S, InFlight
from .summary import AlertCounts, call_summary, feed_alert, feed_final

log = logging.getLogger(__name__)

@dataclass
class _Open:
    alert: Alert
    prev_fire: float | None  # cooldown mark before this alert (restored on retraction)


class CallAnalytics:
    """Live analytics of one call. Every method returns the alerts that became due."""

    def __init__(self, call_id: str, pack: CompiledPack, *, language: str, metadata: Mapping[str, Any],
                 sentiment: Any, semantic: Any | None = None, talk: Any | None = None,
                 callmetrics: Any | None = None) -> None:
        self.call_id = call_id
        self.pack = pack
        self.scorer = sentiment
        self.semantic = semantic
        self.metadata: dict[str, Any] = dict(metadata)
        self._declared = language if language in S.LANGUAGES else None
        if talk is None:
            from .talk import TalkMetrics

            talk = TalkMetrics(("agent", "customer"))
        if callmetrics is None:
            from .callmetrics import CallMetrics

            callmetrics = CallMetrics()
        self.talk = talk
        self.callmetrics = callmetrics
        self.now = 0.0  # the latest media time any input carried
        # the media clock (advance/finish): every channel's speech up to it has been reported, so a
        # deadline is decided against it, never against one channel's input that ran ahead
        self.clock = 0.0
        self.call_end: float | None = None
        self.finals: list[Utt] = []
        self._by_role: dict[str, list[Utt]] = {}
        self.dtmf = ""
        self._last_lang: str | None = None
        self._first_agent: float | None = None
        self._watch: dict[int, list[Ev]] = {id(c): [] for c in pack.watches}
        self._open: dict[str, dict[int, _Open]] = {}  # utterance id -> rule index -> alert
        self._last_fire: dict[int, float] = {}
        self._state_truth: dict[int, bool] = {}
        self._deferred: set[int] = set()  # state rules whose false -> true edge fell in their cooldown
        self._confirmed: list[tuple[Alert, Utt | None]] = []  # confirmed alerts not yet offered to deadlines
        self._state_n: Counter[int] = Counter()
        self._inflight = InFlight()
        self._sent: dict[str, float] = {}
        self._finishing = False
        self._failed: set[int] = set()
        self._scorer_failed = False
        self._counts = AlertCounts()
        self._state_idx = [i for i, cr in enumerate(pack.rules) if cr.kind == "state"]
        # clock ticks and VAD activity only move talk metrics: re-check just the rules that read them
        self._timed_idx = [i for i in self._state_idx
                           if any(isinstance(c, S.Metric) for c in S.walk(pack.rules[i].rule.when))]
        self._clocks = Clocks(pack)
        self._clocks.on_metadata(self, 0.0, self._guard)  # metadata true at the call start: a clock at 0
        if pack.has_semantic and semantic is None:
            log.warning("call %s: pack %s has semantic rules but no semantic model: they are skipped",
                        call_id, pack.version)

    # ---- CallView (read by condition evaluation) -------------------------------------------
    @property
    def language(self) -> str | None:
        return self._declared or self._last_lang

    def role_finals(self, role: str) -> list[Utt]:
        return self._by_role.get(role, [])

    def view(self, u: Utt) -> TextView:
        if u.view is None:
            # the regex and fuzzy leaves of the other role can never hold on it: not run
            u.view = self.pack.index.scan(u.text, u.lang, role=u.role)
        return u.view

    def sentiment(self, u: Utt) -> float:
        if u.sentiment is None:
            u.sentiment = 0.0  # no scorer (sentiment off) or a failing one: neutral
            if self.scorer is not None:
                try:
                    u.sentiment = float(self.scorer.score(u.text, u.lang).score)
                except Exception:
                    if not self._scorer_failed:
                        self._scorer_failed = True
                        log.exception("call %s: sentiment scorer failed; scoring 0", self.call_id)
        return u.sentiment

    def similarity(self, leaf: S.Semantic, u: Utt) -> float | None:
        if self.semantic is None:
            return None
        examples = self.pack.examples(leaf, u.lang, self.semantic)
        if examples.shape[0] == 0:
            return None
        if u.embedding is None:
            u.embedding = self.semantic.embed([u.text])[0]
        return float(np.max(examples @ u.embedding))

    def watch_hits(self, cond: S.Cond) -> list[Ev]:
        return self._watch.get(id(cond), [])

    def metric(self, name: str, role: str | None, u: Utt | None) -> float | None:
        t = self.talk
        try:
            if name == "silence_before":
                return float(t.silence_before(u.start)) if u is not None else None
            if name == "overtalk_at":
                return float(t.overtalk_at(u.start, u.role)) if u is not None else None
            if name == "first_agent_speech":
                firsts = [x for x in (t.first_agent_speech, self._first_agent) if x is not None]
                return min(firsts) if firsts else self.now
            if name in S.ROLE_METRICS:
                return float(getattr(t, name).get(role, 0.0))
            return float(getattr(t, name))
        except (AttributeError, TypeError, KeyError):
            log.exception("call %s: talk metric %s unavailable", self.call_id, name)
            return None

    # ---- inputs ----------------------------------------------------------------------------
    def on_transcript(self, t: Transcript, embedding: np.ndarray | None = None) -> list[Alert]:
        """A transcript; its ``sentiment`` (and a final's ``embedding``), when the session already
        computed them off the event loop, are used as they are instead of being computed here."""
        self.now = max(self.now, t.end)
        lang = t.language if t.language in S.LANGUAGES else self._declared or ("zh" if has_cjk(t.text) else "en")
        u = Utt(t.utterance_id, t.role, t.channel, t.start, t.end, t.text, lang, t.is_final,
                sentiment=t.sentiment, embedding=embedding)
        if t.role == "agent":
            self._first_agent = t.start if self._first_agent is None else min(self._first_agent, t.start)
        if not t.is_final:
            self._inflight.partial(t.utterance_id, t.role, t.start, self.now, u)
            return self._settle(self._utterance_rules(u) + self._deadlines())
        self._inflight.final(t.utterance_id, t.channel, t.start, t.end)
        score = self.sentiment(u)
        self._sent[u.id] = score
        feed_final(self.call_id, self.talk, self.callmetrics, u, score)
        alerts = self._utterance_rules(u)
        hits: dict[int, bool] = {}
        for c in self.pack.watches:
            if id(c) not in hits:
                r = self._safe_eval(c, u)
                hits[id(c)] = r is not None
                if r is not None:
                    self._watch[id(c)].append((u, tuple(s for _, sp in r for s in sp)))
        self.finals.append(u)
        self._by_role.setdefault(u.role, []).append(u)
        self._last_lang = lang
        for i, tm in self._clocks.on_final(u, hits):
            if tm.alert is not None:  # said in time after all: the provisional deadline alert goes
                alerts.append(self._retract(i, tm.alert))
        alerts += self._deadlines()
        alerts += self._state_rules(u)
        return self._settle(alerts)

    def on_activity(self, role: str, channel: int, start: float, end: float) -> list[Alert]:
        """A closed VAD speech interval of ``role`` on ``channel`` (it ends the open speech
        reported for that channel by :meth:`on_speech`)."""
        self.now = max(self.now, end)
        try:
            self.talk.on_activity(role, start, end)
        except Exception:
            log.exception("call %s: talk metrics rejected activity", self.call_id)
        if role == "agent":
            self._first_agent = start if self._first_agent is None else min(self._first_agent, start)
        covered = any(u.channel == channel and u.start < end and u.end > start for u in self.finals[-8:])
        self._inflight.closed(role, channel, start, end, self.now, covered)
        return self._settle(self._deadlines() + self._state_rules(None, timed_only=True))

    def on_speech(self, role: str, channel: int, start: float, until: float) -> list[Alert]:
        """Speech of ``role`` on ``channel`` going on since ``start`` and heard up to ``until``
        (an open VAD utterance; the session reports it while it lasts, :meth:`on_activity` closes
        it). Mutual silence stops at ``start`` (silence/hold rules no longer run on through the
        turn), the agent's first speech is known at once, and deadlines of that role due after
        ``start`` wait for the utterance. Rules are re-checked when the speech opens."""
        if not (np.isfinite(start) and np.isfinite(until)):
            log.warning("call %s: open speech with non-finite times ignored", self.call_id)
            return []
        self.now = max(self.now, until)
        try:
            self.talk.on_speech(role, start, until)
        except Exception:
            log.exception("call %s: talk metrics rejected open speech", self.call_id)
        if role == "agent":
            self._first_agent = start if self._first_agent is None else min(self._first_agent, start)
        if not self._inflight.speech(role, channel, start, until):
            return []  # the same utterance, heard further: nothing new to check
        return self._settle(self._deadlines() + self._state_rules(None, timed_only=True))

    def hold(self, key: str, role: str, start: float) -> None:
        """An utterance went to the recogniser: deadlines due after its start wait for its result
        (exactly, whatever the replay speed — a TTL in media time would not hold at 50×)."""
        self._inflight.hold(key, role, start)

    def release(self, key: str) -> list[Alert]:
        """Its result is in (a final, or nothing: rejected, empty or failed)."""
        if not self._inflight.release(key):
            return []
        return self._settle(self._deadlines())

    def on_dtmf(self, digit: str, media_time: float) -> list[Alert]:
        """A DTMF digit at ``media_time``: each entry of a deadline's ``from: {dtmf: …}`` sequence
        starts a clock at that time."""
        self.now = max(self.now, media_time)
        self.dtmf += str(digit).upper()
        self._clocks.on_dtmf(self, media_time)
        return self._settle(self._state_rules(None) + self._deadlines())

    def on_metadata(self, metadata: Mapping[str, Any], language: str | None = None,
                    media_time: float | None = None) -> list[Alert]:
        """A metadata update (at ``media_time``, default: now). A deadline's ``from: {metadata: …}``
        starts a clock on the condition's false -> true edge."""
        if media_time is not None and np.isfinite(media_time):
            self.now = max(self.now, media_time)
        self.metadata.update(metadata)
        if language in S.LANGUAGES:
            self._declared = language
        self._clocks.on_metadata(self, self.now, self._guard)
        return self._settle(self._state_rules(None) + self._deadlines())

    def advance(self, media_time: float) -> list[Alert]:
        self.now = max(self.now, media_time)
        self.clock = max(self.clock, media_time)
        try:
            self.talk.advance(self.now)
        except Exception:
            log.exception("call %s: talk metrics advance failed", self.call_id)
        return self._settle(self._deadlines() + self._state_rules(None, timed_only=True))

    def finish(self, media_time: float) -> tuple[list[Alert], dict[str, Any]]:
        """Call end: due deadlines (no more waiting), open provisionals retracted, call-scope rules."""
        if self.call_end is not None:  # already finished: nothing new is due
            return [], self.summary()
        self._finishing = True
        alerts = self.advance(media_time)
        self.call_end = self.now
        for uid in list(self._open):
            for ri, op in list(self._open[uid].items()):
                if op.alert.state == "provisional":
                    alerts.append(self._retract(ri, op))
        for i, cr in enumerate(self.pack.rules):
            if cr.kind != "call" or not self._lang_ok(cr):
                continue
            ev = self._guard(i, lambda cr=cr: eval_call(self.pack, cr.rule.when, self))
            if ev is not None:
                trig = min((u for u, _ in ev), key=lambda x: x.start, default=None)
                alerts.append(self._make(i, cr, "confirmed", f"{self.call_id}:{cr.id}:call", self.call_end,
                                         trig, ev, "call"))
        self._confirmed.clear()  # the call is over: no clock they could start is due
        return alerts, self.summary()

    def sentiment_of(self, utterance_id: str) -> float | None:
        return self._sent.get(utterance_id)

    # ---- rule kinds ------------------------------------------------------------------------
    def _lang_ok(self, cr: CompiledRule, lang: str | None = None) -> bool:
        lang = lang or self.language
        return lang is None or lang in cr.rule.languages

    def _guard(self, i: int, fn: Any) -> Any:
        try:
            return fn()
        except Exception:
            if i not in self._failed:
                self._failed.add(i)
                log.exception("call %s: rule %s failed; skipped", self.call_id, self.pack.rules[i].id)
            return None

    def _safe_eval(self, c: S.Cond, u: Utt) -> list[Ev] | None:
        try:
            return eval_utt(self.pack, c, u, self)
        except Exception:
            log.exception("call %s: condition evaluation failed", self.call_id)
            return None

    def _utterance_rules(self, u: Utt) -> list[Alert]:
        out: list[Alert] = []
        opened = self._open.get(u.id, {})
        cands = self.pack.candidates(self.view(u), u.role)
        if u.is_final and opened:
            cands = sorted(set(cands).union(opened))
        rules = self.pack.rules
        for i in cands:
            cr = rules[i]
            if cr.utt is None or u.lang not in cr.rule.languages:
                continue
            try:
                ev = cr.utt(u, self)
            except Exception:
                ev = self._guard(i, lambda cr=cr: eval_utt(self.pack, cr.rule.when, u, self))  # logs once
            op = opened.get(i)
            if ev is not None:
                if op is not None and op.alert.state == "provisional" and u.is_final:
                    out.append(self._make(i, cr, "confirmed", op.alert.alert_id, u.end, u, ev, "final"))
                    self._open[u.id][i].alert = out[-1]
                elif op is None and self._cooldown_ok(i, u.end):
                    state = "confirmed" if u.is_final else "provisional"
                    alert = self._make(i, cr, state, f"{self.call_id}:{cr.id}:{u.id}", u.end, u, ev,
                                       "final" if u.is_final else "partial")
                    self._open.setdefault(u.id, {})[i] = _Open(alert, self._last_fire.get(i))
                    self._last_fire[i] = u.end
                    out.append(alert)
            elif op is not None and op.alert.state == "provisional" and u.is_final:
                out.append(self._retract(i, op))
        return out

    def _retract(self, i: int, op: _Open) -> Alert:
        from dataclasses import replace

        alert = replace(op.alert, state="retracted", media_time=max(self.now, op.alert.media_time))
        if op.prev_fire is None:
            self._last_fire.pop(i, None)
        else:
            self._last_fire[i] = op.prev_fire
        op.alert = alert
        self._counts.retracted += 1
        return alert

    def _cooldown_ok(self, i: int, t: float) -> bool:
        last = self._last_fire.get(i)
        return last is None or t >= last + self.pack.rules[i].rule.cooldown_s

    def _state_rules(self, trigger: Utt | None, timed_only: bool = False) -> list[Alert]:
        """Fire state rules on their false -> true edge. An edge inside the rule's cooldown is
        deferred: the rule fires at the first check at or after the cooldown's end if it still
        holds then, and forgets the edge if it went false meanwhile. Clock ticks re-check only
        the rules on talk metrics, plus the deferred ones."""
        out: list[Alert] = []
        idx = self._state_idx
        if timed_only:
            idx = sorted(self._deferred.union(self._timed_idx)) if self._deferred else self._timed_idx
        rules, lang = self.pack.rules, self.language
        for i in idx:
            cr = rules[i]
            ev = None
            if lang is None or lang in cr.rule.languages:
                try:
                    ev = cr.state(self) if cr.state is not None else None
                except Exception:
                    ev = self._guard(i, lambda cr=cr: eval_state(self.pack, cr.rule.when, self))  # logs once
            was = self._state_truth.get(i, False)
            self._state_truth[i] = ev is not None
            if ev is None:
                self._deferred.discard(i)
                continue
            if was and i not in self._deferred:
                continue
            t = trigger.end if trigger is not None else self.now
            if not self._cooldown_ok(i, t):
                self._deferred.add(i)
                continue
            self._deferred.discard(i)
            self._state_n[i] += 1
            out.append(self._make(i, cr, "confirmed", f"{self.call_id}:{cr.id}:state{self._state_n[i]}", t,
                                  trigger, ev, "state"))
            self._last_fire[i] = t
        return out

    def _settle(self, alerts: list[Alert]) -> list[Alert]:
        """Start the clocks of deadlines ``from: {alert: …}`` for the confirmed alerts just made
        (at each alert's media time), then fire what became due — until nothing new is confirmed."""
        while self._confirmed and self._clocks.alert_started and self.call_end is None:
            batch, self._confirmed = self._confirmed, []
            if any([self._clocks.on_alert(self, alert, trig) for alert, trig in batch]):
                alerts = alerts + self._deadlines()
        self._confirmed.clear()
        return alerts

    def _deadlines(self) -> list[Alert]:
        """Fire the clocks that came due. Speech that may still say the words holds a clock
        (docs/rules.md, deadline); once partials of that speech show what was said so far and none
        says the words, the clock fires *provisionally* (at its due time). The end of the hold
        confirms it (same alert id); a final that says the words in time retracts it."""
        out: list[Alert] = []
        for i, tm in list(self._clocks.running()):
            cr = self.pack.rules[i]
            if self.clock < tm.due or (self.call_end is not None and tm.due > self.call_end):
                continue
            assert cr.deadline is not None
            held = not self._finishing and self._inflight.holds(cr.deadline.role, tm.due, self.now)
            if held and (tm.alert is not None or not self._unheard(cr.deadline, tm)):
                continue
            ev = self._deadline_evidence(i, cr, tm) if self._lang_ok(cr) else None
            aid = f"{self.call_id}:{cr.id}:deadline@{tm.due:.3f}"
            if held:
                if ev is not None and self._cooldown_ok(i, tm.due):
                    tm.alert = _Open(self._make(i, cr, "provisional", aid, tm.due, None, ev, "deadline", at=tm.due),
                                     self._last_fire.get(i))
                    self._last_fire[i] = tm.due
                    out.append(tm.alert.alert)
                continue
            tm.done = True
            if tm.alert is not None:
                if ev is None:
                    out.append(self._retract(i, tm.alert))
                else:
                    tm.alert.alert = self._make(i, cr, "confirmed", aid, tm.due, None, ev, "deadline", at=tm.due)
                    out.append(tm.alert.alert)
            elif ev is not None and self._cooldown_ok(i, tm.due):
                out.append(self._make(i, cr, "confirmed", aid, tm.due, None, ev, "deadline", at=tm.due))
                self._last_fire[i] = tm.due
        return out

    def _unheard(self, dl: S.Deadline, tm: Timer) -> bool:
        """Partials show what the speech holding ``tm`` said so far, and none says the words."""
        heard = [u for u in self._inflight.heard(dl.role, tm.due, self.now) if tm.stopped_by(u)]
        return bool(heard) and all(self._safe_eval(dl.say, u) is None for u in heard)

    def _deadline_evidence(self, i: int, cr: CompiledRule, tm: Timer) -> list[Ev] | None:
        """The evidence of a due clock (its source utterance), or None if the rule's other
        conditions do not hold."""
        ev: list[Ev] | None = [(tm.source, ())] if tm.source is not None else []
        for fn in cr.rest_fns:
            r = self._guard(i, lambda fn=fn: fn(self))
            ev = None if r is None or ev is None else ev + r
        return ev

    # ---- alerts ----------------------------------------------------------------------------
    def _make(self, i: int, cr: CompiledRule, state: str, alert_id: str, media_time: float, trig: Utt | None,
              ev: list[Ev], trigger: str, at: float | None = None) -> Alert:
        r = cr.rule
        spans: dict[str, tuple[Utt, set[tuple[int, int, str]]]] = {}
        if trig is not None:
            spans[trig.id] = (trig, set())
        for u, sp in ev:
            spans.setdefault(u.id, (u, set()))[1].update(sp)
        evidence = tuple(
            Evidence(utterance_id=u.id, role=u.role, channel=u.channel, start=u.start, end=u.end, text=u.text,
                     spans=self.view(u).original_spans(list(s)) if s else (), sentiment=self.sentiment(u))
            for u, s in sorted(spans.values(), key=lambda x: (x[0].start, x[0].id)))
        t0 = at if at is not None else (trig.start if trig is not None else media_time)
        t1 = at if at is not None else (trig.end if trig is not None else media_time)
        alert = Alert(
            alert_id=alert_id, call_id=self.call_id, rule_id=r.id, pack_version=self.pack.version, label=r.label,
            category=r.category, severity=r.severity, state=state, media_time=media_time, start=t0, end=t1,
            role=trig.role if trig is not None else cr.role, text=trig.text if trig is not None else "",
            description=r.description, evidence=evidence,
            metadata={"kind": cr.kind, "trigger": trigger, "scope": r.scope,
                      "utterance_id": trig.id if trig is not None else None,
                      "language": trig.lang if trig is not None else self.language})
        if state == "confirmed":
            self._confirmed.append((alert, trig))
            self._counts.add(alert)
            feed_alert(self.call_id, self.callmetrics, alert)
        return alert

    # ---- summary ---------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        return call_summary(self.call_id, self.talk, self.callmetrics, self.finals, self._sent, self._counts,
                            self.pack)


__all__ = ["OPEN_SPEECH_HOLD_S", "PENDING_TTL_S", "CallAnalytics"]
