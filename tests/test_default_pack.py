"""The bundled default pack: valid, covers the label vocabulary, general (no call-specific names),
and behaves on sentences written for this test (not taken from the shared calls), in English and
Mandarin, through the real CallAnalytics with the real lexicon sentiment scorer and talk metrics.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from speechiq.analytics.engine import CallAnalytics
from speechiq.analytics.sentiment import make_scorer
from speechiq.events import Alert, Transcript
from speechiq.rules import check_pack, compile_pack, default_pack_path, load_pack, rules_check_main
from speechiq.rules import schema as S
from speechiq.rules.normalize import has_cjk, norm
from speechiq.settings import AnalyticsSettings

PACK_PATH = default_pack_path()
DATA = Path(__file__).parent / "data"
# The labels of the call truth (shared/calls/README.md) plus the "not said" label the pack uses.
CALL_VOCABULARY = {
    "compliance.disclosure", "compliance.identity_check", "compliance.prohibited",
    "escalation.supervisor_request", "escalation.churn_threat", "escalation.legal_threat",
    "issue.billing", "issue.price", "issue.outage", "issue.damage", "issue.repeat_contact",
    "process.error", "process.knowledge_gap", "process.transfer", "process.escalation",
    "process.long_hold", "process.long_silence", "process.overtalk",
    "sales.interest", "sales.offer", "sentiment.positive", "sentiment.negative", "sentiment.neutral",
    "process.missing_disclosure",
}
# Names, companies and products of the shared test calls: a rule naming one is tuned to a call.
DENYLIST = [
    "Northwind", "北风", "Sarah", "John", "Miller", "Mark", "Jenna", "Daniel", "Ortiz", "Emma", "Robert",
    "Hayes", "Karen", "Olivia", "Greg", "Thompson", "Willow", "Luis", "Alex", "Brian", "Tom", "Michael",
    "Linda", "Park", "Chris", "小王", "李强", "小陈", "张伟", "李先生", "张先生", "彩铃", "medical alert",
    "pendant", "gigabit", "fiber plan", "TV box", "investment add", "ring-back",
]


@pytest.fixture(scope="module")
def pack() -> Any:
    return compile_pack(load_pack(PACK_PATH))


@pytest.fixture(scope="module")
def scorer() -> Any:
    return make_scorer(AnalyticsSettings())


Turn = tuple[str, float, float, str]  # role, start, end, text


def run_call(pack: Any, scorer: Any, turns: Sequence[Turn], *, lang: str, duration: float | None = None,
             tick: float = 0.25) -> list[Alert]:
    """Feed turns as a live session would (activity + final at each turn's end, clock ticks); the alerts
    that are confirmed at the end (or provisional and never retracted)."""
    ca = CallAnalytics("t", pack, language=lang, metadata={}, sentiment=scorer)
    events: list[tuple[float, int, Any]] = []
    for k, (role, start, end, text) in enumerate(turns):
        ch = 0 if role == "agent" else 1
        events.append((end, 0, ("act", (role, ch, start, end))))
        events.append((end, 1, ("final", Transcript("t", ch, role, f"u{k}", True, start, end, text, language=lang))))
    end_t = duration if duration is not None else max(t[2] for t in turns) + 1.0
    events += [(i * tick, 2, ("tick", i * tick)) for i in range(1, int(end_t / tick) + 1)]
    out: list[Alert] = []
    for _, _, (kind, arg) in sorted(events, key=lambda e: (e[0], e[1])):
        out += (ca.advance(arg) if kind == "tick" else ca.on_activity(*arg) if kind == "act"
                else ca.on_transcript(arg))
    out += ca.finish(end_t)[0]
    last: dict[str, Alert] = {}
    for a in out:
        last[a.alert_id] = a
    return [a for a in last.values() if a.state != "retracted"]


def labels_of(pack: Any, scorer: Any, role: str, text: str, lang: str) -> set[str]:
    """Labels raised on one utterance said mid-call (after an opening with the recording notice)."""
    opening = "this call may be recorded for quality purposes" if lang == "en" else "本次通话可能会被录音"
    turns = [("agent", 1.0, 4.0, opening), (role, 4.5, 8.0, text)]
    return {a.label for a in run_call(pack, scorer, turns, lang=lang) if a.start >= 4.5}


# ---- the pack as a file --------------------------------------------------------------------------
def test_pack_checks_clean(capsys: pytest.CaptureFixture[str]) -> None:
    assert check_pack(PACK_PATH) == []  # no errors and no warnings
    assert rules_check_main([str(PACK_PATH)]) == 0
    assert "OK" in capsys.readouterr().out


def test_every_rule_declares_a_vocabulary_label_and_description() -> None:
    pack = load_pack(PACK_PATH)
    for r in pack.rules:
        assert r.label in S.LABELS, r.id
        assert r.description, r.id
    labels = {r.label for r in pack.rules if r.enabled}
    assert labels >= CALL_VOCABULARY, CALL_VOCABULARY - labels


def test_no_semantic_rules_so_no_embedding_cost() -> None:
    assert not compile_pack(load_pack(PACK_PATH)).has_semantic


def test_no_call_specific_names_in_the_pack() -> None:
    text = PACK_PATH.read_text(encoding="utf-8")
    for name in DENYLIST:
        rx = re.escape(name) if not name.isascii() else r"\b" + re.escape(name) + r"\b"
        assert not re.search(rx, text, re.IGNORECASE), f"pack names {name!r} from a test call"


def _literals(node: Any) -> list[str]:
    """Every literal phrase of the YAML tree (any_of lists)."""
    out: list[str] = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "any_of":
                for items in (v.values() if isinstance(v, dict) else [v]):
                    out += [str(x) for x in items]
            else:
                out += _literals(v)
    elif isinstance(node, list):
        for x in node:
            out += _literals(x)
    return out


def test_phrases_are_short_patterns_not_copied_sentences() -> None:
    phrases = _literals(yaml.safe_load(PACK_PATH.read_text(encoding="utf-8")))
    assert len(phrases) > 300
    for p in phrases:
        assert len(p.split()) <= 7, p  # English: a few words, never a sentence
        assert len(p) <= 24 or p.isascii(), p  # Chinese: a short expression


# ---- behaviour on sentences written for this test ------------------------------------------------
EN_CASES = [
    # (role, text, labels that must fire, labels that must not)
    ("agent", "Before we begin, please be aware this call is being recorded and may be monitored.",
     {"compliance.disclosure"}, set()),
    ("agent", "Calls on this line are recorded for training and security.", {"compliance.disclosure"}, set()),
    ("agent", "I'll record your new address in the system now.", set(), {"compliance.disclosure"}),
    ("agent", "For security, could you give me your date of birth and the postcode on file?",
     {"compliance.identity_check"}, set()),
    ("agent", "Can I have the last four digits of your social security number?", {"compliance.identity_check"}, set()),
    ("agent", "Let me know if there's anything else I can help with.", set(), {"compliance.identity_check"}),
    ("agent", "Honestly this fund is risk free, I guarantee you'll double your savings.",
     {"compliance.prohibited"}, set()),
    ("agent", "I can't guarantee the engineer will arrive before noon.", set(), {"compliance.prohibited"}),
    ("customer", "This is going nowhere, put me through to your manager.", {"escalation.supervisor_request"}, set()),
    ("customer", "I'd like to talk with a supervisor about this please.", {"escalation.supervisor_request"}, set()),
    ("customer", "My manager at work needs the invoice by Friday.", set(), {"escalation.supervisor_request"}),
    ("customer", "If you don't refund me I will be suing you, my attorney already has the paperwork.",
     {"escalation.legal_threat"}, set()),
    ("customer", "Fine, then I'm cancelling my contract and moving to another carrier.",
     {"escalation.churn_threat"}, set()),
    ("customer", "I moved over from my previous company last month and it's been good.", set(),
     {"escalation.churn_threat"}),
    ("customer", "There's a charge on my statement I don't recognize and I was billed twice for April.",
     {"issue.billing"}, set()),
    ("customer", "My monthly price went up by twenty dollars without any warning, it's too expensive now.",
     {"issue.price"}, set()),
    ("customer", "The wifi keeps dropping and since last night the internet is not working at all.",
     {"issue.outage"}, set()),
    ("customer", "The crew that came out scratched my floor and cracked the window frame.", {"issue.damage"}, set()),
    ("customer", "I've called you three times already and it's still not resolved.", {"issue.repeat_contact"}, set()),
    ("agent", "I'm honestly not certain how that works, I'll need to find out from the product team.",
     {"process.knowledge_gap"}, set()),
    ("agent", "Sorry, I'm not sure I caught that, could you repeat it?", set(), {"process.knowledge_gap"}),
    ("agent", "Okay, I'm transferring you to our billing department now.", {"process.transfer"}, set()),
    ("agent", "I'll raise a ticket with the network engineers and escalate it as urgent.",
     {"process.escalation"}, set()),
    ("agent", "You'd have to download the form, fill it in and fax it to our head office.", {"process.error"}, set()),
    ("agent", "Sorry, a dispute can only be filed within twenty four hours of the payment.", {"process.error"}, set()),
    ("customer", "Do you have a package with more channels? I'd like to sign up for it.", {"sales.interest"}, set()),
    ("customer", "No thanks, I'm not interested in an upgrade.", set(), {"sales.interest"}),
    ("customer", "I was looking at the family streaming bundle on your site, how much is it?", {"sales.interest"},
     set()),
    ("agent", "That's a good question. The router restarts on its own every night at three.", set(),
     {"process.knowledge_gap"}),
    ("agent", "The premium package gives you unlimited calls for five dollars more a month.", {"sales.offer"},
     set()),
    ("customer", "Money has been really tight since my hours were cut, I can't pay it all now.",
     {"sentiment.negative"}, {"sentiment.positive"}),
    ("agent", "Since you've been with us so long, I can offer you twenty percent off for the next six months.",
     {"sales.offer"}, set()),
    ("customer", "This is absolutely ridiculous, I'm really angry about how I've been treated.",
     {"sentiment.negative"}, {"sentiment.positive"}),
    ("customer", "Wonderful, you've been so helpful, thank you so much!", {"sentiment.positive"},
     {"sentiment.negative"}),
    ("customer", "Hmm, I'm not sure yet, I'll have to talk to my wife and let you know.", {"sentiment.neutral"},
     {"sentiment.negative", "sentiment.positive"}),
    ("customer", "What time does the store open on Saturdays?", set(),
     {"sentiment.negative", "sentiment.positive", "sentiment.neutral", "issue.billing", "sales.interest"}),
]

ZH_CASES = [
    ("agent", "您好，为了保证服务质量，本次通话将全程录音。", {"compliance.disclosure"}, set()),
    ("agent", "我帮您把通话记录调出来看一下。", set(), {"compliance.disclosure"}),
    ("agent", "麻烦您报一下机主姓名和身份证号码的后六位。", {"compliance.identity_check"}, set()),
    ("agent", "请带上身份证去营业厅办理就可以了。", set(), {"compliance.identity_check"}),
    ("agent", "这个理财产品稳赚不赔，完全零风险。", {"compliance.prohibited"}, set()),
    ("customer", "你解决不了就把你们经理叫来。", {"escalation.supervisor_request"}, set()),
    ("customer", "再不处理我就去法院起诉你们。", {"escalation.legal_threat"}, set()),
    ("customer", "服务这么差，我要携号转网，换个运营商。", {"escalation.churn_threat"}, set()),
    ("customer", "不用了，谢谢。", set(), {"escalation.churn_threat"}),
    ("customer", "这个月莫名其妙多扣了我三十块钱话费。", {"issue.billing"}, set()),
    ("customer", "你们套餐怎么又涨价了，太贵了。", {"issue.price"}, set()),
    ("customer", "家里从昨天晚上开始就断网了，一直上不了网。", {"issue.outage"}, set()),
    ("customer", "你们师傅装宽带的时候把我家地板弄坏了。", {"issue.damage"}, set()),
    ("customer", "这个问题我已经打了好几次电话了。", {"issue.repeat_contact"}, set()),
    ("agent", "这个问题我不太确定，我去问一下同事再回复您。", {"process.knowledge_gap"}, set()),
    ("agent", "如果还有不清楚的地方，随时联系我们。", set(), {"process.knowledge_gap"}),
    ("agent", "好的，我现在帮您转接到投诉专席。", {"process.transfer"}, set()),
    ("agent", "我这边帮您提交给后台技术部门加急处理。", {"process.escalation"}, set()),
    ("customer", "我想了解一下有没有更便宜的套餐，想办理一个。", {"sales.interest"}, set()),
    ("agent", "现在办理新套餐前三个月免费，还赠送一百分钟通话。", {"sales.offer"}, set()),
    ("customer", "你们这是什么服务，我非常生气，太过分了！", {"sentiment.negative"}, {"sentiment.positive"}),
    ("customer", "太好了，非常感谢，你们的服务很专业。", {"sentiment.positive"}, {"sentiment.negative"}),
    ("customer", "嗯，我再考虑一下吧，回头再说。", {"sentiment.neutral"}, {"sentiment.negative"}),
]


@pytest.mark.parametrize(("role", "text", "want", "avoid"), EN_CASES, ids=[c[1][:40] for c in EN_CASES])
def test_english_sentences(pack: Any, scorer: Any, role: str, text: str, want: set[str], avoid: set[str]) -> None:
    got = labels_of(pack, scorer, role, text, "en")
    assert want <= got, (want - got, got)
    assert not (avoid & got), (avoid & got)


@pytest.mark.parametrize(("role", "text", "want", "avoid"), ZH_CASES, ids=[c[1][:16] for c in ZH_CASES])
def test_mandarin_sentences(pack: Any, scorer: Any, role: str, text: str, want: set[str], avoid: set[str]) -> None:
    got = labels_of(pack, scorer, role, text, "zh")
    assert want <= got, (want - got, got)
    assert not (avoid & got), (avoid & got)


def test_asr_errors_survive_fuzzy_and_pinyin(pack: Any, scorer: Any) -> None:
    # recogniser slips: a misspelt word in English, homophones in Mandarin (主管 → 主馆, 投诉 → 投素)
    assert "escalation.supervisor_request" in labels_of(pack, scorer, "customer",
                                                        "I want to speak to your supervisorr now", "en")
    assert "escalation.supervisor_request" in labels_of(pack, scorer, "customer", "叫你们主馆过来", "zh")
    assert "compliance.disclosure" in labels_of(pack, scorer, "agent", "本次通话将被路音", "zh")


def test_role_matters(pack: Any, scorer: Any) -> None:
    # the agent saying "supervisor" is not a customer request; a customer saying "transfer you" is no transfer
    assert "escalation.supervisor_request" not in labels_of(pack, scorer, "agent",
                                                            "Let me get my supervisor for you.", "en")
    assert "process.transfer" not in labels_of(pack, scorer, "customer", "Don't transfer me again.", "en")


# ---- the recording-notice deadline, in media time ------------------------------------------------
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_deadline_fires_at_20s_without_disclosure(pack: Any, scorer: Any, lang: str) -> None:
    greet = "Hi, thanks for calling, how can I help?" if lang == "en" else "您好，请问有什么可以帮您？"
    ask = "I have a question about my plan." if lang == "en" else "我想问一下我的套餐。"
    ca = CallAnalytics("d", pack, language=lang, metadata={}, sentiment=scorer)
    for role, s, e, text in [("agent", 1.0, 4.0, greet), ("customer", 4.5, 8.0, ask)]:
        ch = 0 if role == "agent" else 1
        ca.on_activity(role, ch, s, e)
        ca.on_transcript(Transcript("d", ch, role, f"{role}{s}", True, s, e, text, language=lang))
    early = [a for t in (10.0, 15.0, 19.75) for a in ca.advance(t)]
    assert not [a for a in early if a.label == "process.missing_disclosure"]
    due = ca.advance(20.0)
    missing = [a for a in due if a.label == "process.missing_disclosure"]
    assert len(missing) == 1
    a = missing[0]
    assert (a.rule_id, a.state, a.media_time, a.start, a.end) == ("recording_disclosure_deadline", "confirmed",
                                                                  20.0, 20.0, 20.0)
    assert a.role == "agent" and a.text == ""
    assert not [x for x in ca.advance(40.0) if x.rule_id == "recording_disclosure_deadline"]  # once
    end_alerts, _ = ca.finish(45.0)
    assert [x.rule_id for x in end_alerts if x.label == "process.missing_disclosure"] == ["recording_disclosure_never"]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_no_missing_disclosure_when_given(pack: Any, scorer: Any, lang: str) -> None:
    notice = ("Hello, just so you know, calls are recorded for quality. How can I help?" if lang == "en"
              else "您好，本次通话会被录音，请问有什么可以帮您？")
    turns = [("agent", 1.0, 6.0, notice), ("customer", 6.5, 9.0, "Thanks." if lang == "en" else "好的。")]
    alerts = run_call(pack, scorer, turns, lang=lang, duration=60.0)
    assert "process.missing_disclosure" not in {a.label for a in alerts}
    assert "compliance.disclosure" in {a.label for a in alerts}


def test_late_disclosure_still_counts_as_missed_deadline(pack: Any, scorer: Any) -> None:
    turns = [("agent", 1.0, 4.0, "Hi, how can I help?"), ("customer", 4.5, 20.5, "I have a long story " * 8),
             ("agent", 24.0, 27.0, "Before we go on, this call may be recorded.")]
    alerts = run_call(pack, scorer, turns, lang="en", duration=40.0)
    assert [a.rule_id for a in alerts if a.label == "process.missing_disclosure"] == ["recording_disclosure_deadline"]


def test_short_call_without_disclosure_caught_at_call_end(pack: Any, scorer: Any) -> None:
    turns = [("agent", 1.0, 3.0, "Support desk, how can I help?"), ("customer", 3.5, 6.0, "Wrong number, sorry.")]
    alerts = run_call(pack, scorer, turns, lang="en", duration=8.0)
    assert [a.rule_id for a in alerts if a.label == "process.missing_disclosure"] == ["recording_disclosure_never"]


# ---- order, holds, silence, over-talk -----------------------------------------------------------
def test_account_details_before_verification(pack: Any, scorer: Any) -> None:
    rec = ("agent", 1.0, 4.0, "This call is recorded.")
    early = [rec, ("customer", 4.5, 7.0, "How much do I owe?"),
             ("agent", 7.5, 10.0, "Your current balance is three hundred and twelve dollars.")]
    got = run_call(pack, scorer, early, lang="en")
    assert any(a.rule_id == "account_details_before_verification" for a in got)
    verified = [rec, ("customer", 4.5, 7.0, "How much do I owe?"),
                ("agent", 7.5, 10.0, "Sure, can you confirm your full name and date of birth first?"),
                ("customer", 10.5, 13.0, "Jane Doe, first of May."),
                ("agent", 13.5, 16.0, "Thanks. Your current balance is three hundred and twelve dollars.")]
    assert not any(a.rule_id == "account_details_before_verification"
                   for a in run_call(pack, scorer, verified, lang="en"))


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_long_hold_after_hold_phrase(pack: Any, scorer: Any, lang: str) -> None:
    hold = "Let me look into that, bear with me please." if lang == "en" else "好的，我帮您查一下，请您稍等。"
    back = "Thanks for waiting, I found the problem." if lang == "en" else "让您久等了，问题已经查到了。"
    turns = [("agent", 1.0, 4.0, "This call is recorded." if lang == "en" else "本次通话会被录音。"),
             ("agent", 5.0, 8.0, hold), ("agent", 38.0, 41.0, back)]
    alerts = run_call(pack, scorer, turns, lang=lang)
    holds = [a for a in alerts if a.label == "process.long_hold"]
    assert [(a.start, a.role) for a in holds] == [(38.0, "agent")]
    assert not [a for a in alerts if a.label == "process.long_silence"]  # a hold is not dead air


def test_dead_air_is_long_silence(pack: Any, scorer: Any) -> None:
    turns = [("agent", 1.0, 4.0, "This call is recorded. Can you make a payment today?"),
             ("customer", 14.0, 16.0, "I suppose so."), ("agent", 16.5, 18.0, "Great."),
             ("customer", 20.0, 22.0, "Okay.")]  # a 2 s pause is no long silence
    alerts = run_call(pack, scorer, turns, lang="en")
    assert [(a.label, a.start) for a in alerts if a.label.startswith("process.long")] == [
        ("process.long_silence", 14.0)]


def test_overtalk(pack: Any, scorer: Any) -> None:
    turns = [("agent", 1.0, 4.0, "This call is recorded."),
             ("agent", 5.0, 10.0, "So what I would suggest is that we look at the router settings together"),
             ("customer", 8.8, 12.0, "No, no, I already did all that"),
             ("agent", 12.6, 14.0, "Alright.")]
    alerts = run_call(pack, scorer, turns, lang="en")
    assert [(a.start, a.role) for a in alerts if a.label == "process.overtalk"] == [(8.8, "customer")]


def test_negative_trend(pack: Any, scorer: Any) -> None:
    lines = ["This is terrible, nothing works.", "I'm so annoyed, I've wasted the whole day.",
             "Honestly this is the worst service I've ever had."]
    turns: list[Turn] = [("agent", 1.0, 3.0, "This call is recorded.")]
    t = 3.5
    for line in lines:
        turns.append(("customer", t, t + 3.0, line))
        turns.append(("agent", t + 3.5, t + 5.0, "I see."))
        t += 5.5
    alerts = run_call(pack, scorer, turns, lang="en")
    trend = [a for a in alerts if a.rule_id == "customer_negative_trend"]
    assert len(trend) == 1 and trend[0].label == "sentiment.negative"


# ---- held-out evaluation set (tests/data/pack_heldout.yaml) ---------------------------------------
# Written from the label definitions, not from the shared calls (checked below). Every positive must
# raise its label; a label that fires on an utterance of another label (unless listed as compatible,
# e.g. a churn threat that is also negative sentiment) or on a negative is a false alarm.
HELDOUT: dict[str, Any] = yaml.safe_load((DATA / "pack_heldout.yaml").read_text(encoding="utf-8"))
# The turn texts of the shared test calls (shared/calls/*.json), copied so the guards run without shared/.
CALL_TEXTS: dict[str, list[str]] = json.loads(
    (DATA / "pack_call_fragments.json").read_text(encoding="utf-8"))["calls"]
UTTERANCE_LABELS = sorted(HELDOUT["positives"])


@dataclass
class HeldoutScore:
    tp: Counter[str] = field(default_factory=Counter)
    fp: Counter[str] = field(default_factory=Counter)
    support: Counter[tuple[str, str]] = field(default_factory=Counter)  # (label, lang)
    hits: Counter[tuple[str, str]] = field(default_factory=Counter)
    misses: list[tuple[str, str, str]] = field(default_factory=list)  # label, lang, text
    false_alarms: list[tuple[str, str, str]] = field(default_factory=list)  # fired label, expected label, text

    def recall(self, label: str, lang: str | None = None) -> float:
        langs = [lang] if lang else ["en", "zh"]
        n = sum(self.support[(label, lg)] for lg in langs)
        return sum(self.hits[(label, lg)] for lg in langs) / n if n else 1.0

    def precision(self, label: str) -> float:
        n = self.tp[label] + self.fp[label]
        return self.tp[label] / n if n else 1.0


def score_heldout(pack: Any, scorer: Any, data: dict[str, Any] = HELDOUT) -> HeldoutScore:
    """Run every held-out utterance through the compiled pack (as `labels_of` does) and score it."""
    sc = HeldoutScore()
    compatible = {k: set(v) for k, v in data.get("compatible", {}).items()}
    for label, by_lang in data["positives"].items():
        for lang, items in by_lang.items():
            for role, text in items:
                got = labels_of(pack, scorer, role, text, lang)
                sc.support[(label, lang)] += 1
                if label in got:
                    sc.hits[(label, lang)] += 1
                    sc.tp[label] += 1
                else:
                    sc.misses.append((label, lang, text))
                for other in got - {label} - compatible.get(label, set()):
                    sc.fp[other] += 1
                    sc.false_alarms.append((other, label, text))
    for lang, items in data["negatives"].items():
        for role, text in items:
            for other in labels_of(pack, scorer, role, text, lang):
                sc.fp[other] += 1
                sc.false_alarms.append((other, "", text))
    return sc


@pytest.fixture(scope="module")
def heldout(pack: Any, scorer: Any) -> HeldoutScore:
    return score_heldout(pack, scorer)


def test_heldout_set_is_big_enough() -> None:
    pos = HELDOUT["positives"]
    vocabulary_said = CALL_VOCABULARY - {"process.long_hold", "process.long_silence", "process.overtalk",
                                         "process.missing_disclosure"}
    assert set(pos) == vocabulary_said
    for label, by_lang in pos.items():
        assert len(by_lang["en"]) >= 8 and len(by_lang["zh"]) >= 5, label
        assert set(HELDOUT["compatible"][label]) <= CALL_VOCABULARY, label
    assert sum(len(v) for v in HELDOUT["negatives"].values()) >= 60


def _runs(text: str, n_words: int, n_chars: int) -> set[str]:
    """Contiguous runs of a normalised text: n_words words (English) or n_chars characters (Chinese)."""
    t = norm(text)
    if has_cjk(t):
        t = t.replace(" ", "")
        return {t[i:i + n_chars] for i in range(len(t) - n_chars + 1)}
    w = t.split()
    return {" ".join(w[i:i + n_words]) for i in range(len(w) - n_words + 1)}


def _heldout_texts() -> list[str]:
    out = [it[1] for by in HELDOUT["positives"].values() for items in by.values() for it in items]
    out += [it[1] for items in HELDOUT["negatives"].values() for it in items]
    out += [t for by in HELDOUT["timelines"].values() for items in by.values() for t in items]
    for rnd in (HELDOUT[k] for k in ("second_round", "third_round", "fourth_round", "fifth_round")):
        out += [it[1] for by in rnd["positives"].values() for items in by.values() for it in items]
        out += [it[1] for items in rnd["negatives"].values() for it in items]
    return out


def test_heldout_is_not_copied_from_the_shared_calls() -> None:
    call_runs = set().union(*(_runs(t, 5, 7) for texts in CALL_TEXTS.values() for t in texts))
    copied = {t: _runs(t, 5, 7) & call_runs for t in _heldout_texts()}
    assert not {t: r for t, r in copied.items() if r}


# Cues that were once written from one shared call's own words; general patterns replaced them.
RETIRED_CALL_CUES = ["for the same speed", "bill jumped", "lost my job", "thank you for being so",
                     "sign up for the upgrade", "mail it to our", "更大的套餐", "给我一个说法"]
LONG_CUE_WORDS, LONG_CUE_CHARS = 5, 5  # a cue this long found verbatim in a call was copied from it


def _regexes(node: Any) -> list[str]:
    """Every regex of the YAML tree (regex lists, plain or per language)."""
    out: list[str] = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "regex":
                for items in (v.values() if isinstance(v, dict) else [v]):
                    out += [str(x) for x in items]
            else:
                out += _regexes(v)
    elif isinstance(node, list):
        for x in node:
            out += _regexes(x)
    return out


def _literal_runs(rx: str) -> list[str]:
    """The plain-text stretches of a regex between its operators (text it matches verbatim)."""
    t = re.sub(r"\\[A-Za-z]|\\.|\{\d*,?\d*\}", "|", rx)
    return [p.strip() for p in re.split(r"[()|?*+\[\]^$.]", t) if p.strip()]


def pack_cues(path: Path = PACK_PATH) -> list[str]:
    """Every literal phrase of a pack and every literal stretch of its regexes."""
    tree = yaml.safe_load(path.read_text(encoding="utf-8"))
    return _literals(tree) + [run for rx in _regexes(tree) for run in _literal_runs(rx)]


def copied_cues(cues: list[str]) -> list[str]:
    """Cues of LONG_CUE_WORDS words / LONG_CUE_CHARS characters or more that occur verbatim (normalised)
    in a shared-call utterance."""
    calls = [norm(t) for texts in CALL_TEXTS.values() for t in texts]
    en_calls = [f" {c} " for c in calls if not has_cjk(c)]
    zh_calls = [c.replace(" ", "") for c in calls if has_cjk(c)]
    out = []
    for cue in cues:
        n = norm(cue)
        if has_cjk(n):
            k = n.replace(" ", "")
            if len(k) >= LONG_CUE_CHARS and any(k in c for c in zh_calls):
                out.append(cue)
        elif len(n.split()) >= LONG_CUE_WORDS and any(f" {n} " in c for c in en_calls):
            out.append(cue)
    return out


def test_no_pack_cue_is_a_long_verbatim_piece_of_a_shared_call() -> None:
    assert not copied_cues(pack_cues())


def test_copy_guard_catches_a_copied_cue(tmp_path: Path) -> None:
    # the guard itself: a pack quoting a call (a literal, or inside a regex) is caught; short ones are not
    call = next(t for texts in CALL_TEXTS.values() for t in texts if len(norm(t).split()) >= 8)
    quote = " ".join(norm(call).split()[2:8])
    pack = tmp_path / "p.yaml"
    pack.write_text(yaml.safe_dump({"rules": [{"when": {"phrase": {
        "any_of": {"en": [quote, "thank you"]}, "regex": {"en": [rf"\b(a|b) {quote}\b"]}}}}]}),
        encoding="utf-8")
    assert copied_cues(pack_cues(pack)) == [quote, quote]


def test_retired_call_cues_stay_out_of_the_pack() -> None:
    text = PACK_PATH.read_text(encoding="utf-8").lower()
    assert not [c for c in RETIRED_CALL_CUES if c in text]


def test_heldout_recall(heldout: HeldoutScore) -> None:
    low = {(lab, lg, round(heldout.recall(lab, lg), 2)) for lab in UTTERANCE_LABELS for lg in ("en", "zh")
           if heldout.recall(lab, lg) < 0.8}
    low |= {(lab, "all", round(heldout.recall(lab), 2)) for lab in UTTERANCE_LABELS if heldout.recall(lab) < 0.9}
    assert not low, (sorted(low), heldout.misses)


def test_heldout_precision(heldout: HeldoutScore) -> None:
    low = {lab: round(heldout.precision(lab), 2) for lab in heldout.fp if heldout.precision(lab) < 0.9}
    assert not low, (low, heldout.false_alarms)


def test_heldout_negatives_raise_nothing(pack: Any, scorer: Any) -> None:
    loud = {}
    for lang, items in HELDOUT["negatives"].items():
        for role, text in items:
            got = labels_of(pack, scorer, role, text, lang)
            if got:
                loud[text] = got
    assert not loud


def _round_score(key: str, pack: Any, scorer: Any) -> HeldoutScore:
    data = {**HELDOUT[key], "compatible": HELDOUT["compatible"]}
    assert set(data["positives"]) == set(UTTERANCE_LABELS)
    return score_heldout(pack, scorer, data)


@pytest.mark.parametrize("key", ["second_round", "third_round", "fourth_round"])
def test_later_rounds(pack: Any, scorer: Any, key: str) -> None:
    # fresh sentences written after each rework (the pack was widened on them afterwards): every
    # label still fires on most of them, nothing fires on the negatives, no label where it should not
    sc = _round_score(key, pack, scorer)
    assert sum(sc.hits.values()) / sum(sc.support.values()) >= 0.95, sc.misses
    assert not [lab for lab in UTTERANCE_LABELS if sc.recall(lab) < 0.7], sc.misses
    assert not [lab for lab in sc.fp if sc.precision(lab) < 0.9], sc.false_alarms
    assert not [fa for fa in sc.false_alarms if not fa[1]]  # the negatives raise nothing


def test_fifth_round_never_tuned_on(pack: Any, scorer: Any) -> None:
    # the standing generality estimate (fifth_round was never used to edit the pack; measured
    # R 0.97): precision holds, the negatives stay silent, recall does not fall
    sc = _round_score("fifth_round", pack, scorer)
    tp, fp = sum(sc.tp.values()), sum(sc.fp.values())
    assert tp / (tp + fp) >= 0.95, sc.false_alarms
    assert not [fa for fa in sc.false_alarms if not fa[1]]
    assert sum(sc.hits.values()) / sum(sc.support.values()) >= 0.95, sc.misses


# ---- held-out timelines: holds, dead air, missing notice, details before verification, over-talk --
TL = HELDOUT["timelines"]
OPENING = {"en": "Hello, this call may be recorded for quality.", "zh": "您好，本次通话会被录音。"}
ASK = {"en": "Hi, I have a question about my account.", "zh": "你好，我想问一下我的账户。"}
OK = {"en": "Okay.", "zh": "好的。"}


def _cases(key: str) -> list[tuple[str, int, str]]:
    return [(lang, i, text) for lang in ("en", "zh") for i, text in enumerate(TL[key][lang])]


@pytest.mark.parametrize(("lang", "i", "hold"), _cases("hold"), ids=lambda v: str(v)[:24])
def test_heldout_long_hold(pack: Any, scorer: Any, lang: str, i: int, hold: str) -> None:
    back = TL["hold_return"][lang][i % len(TL["hold_return"][lang])]
    turns = [("agent", 1.0, 4.0, OPENING[lang]), ("customer", 4.5, 7.0, ASK[lang]),
             ("agent", 7.5, 10.5, hold), ("customer", 11.0, 12.0, OK[lang]),  # 25 s of silence follow
             ("agent", 37.0, 39.0, back), ("customer", 39.5, 40.5, OK[lang])]
    alerts = run_call(pack, scorer, turns, lang=lang)
    assert [(a.start, a.role) for a in alerts if a.label == "process.long_hold"] == [(37.0, "agent")]
    assert not [a for a in alerts if a.label == "process.long_silence"]


@pytest.mark.parametrize(("lang", "i", "question"), _cases("silence_question"), ids=lambda v: str(v)[:24])
def test_heldout_dead_air(pack: Any, scorer: Any, lang: str, i: int, question: str) -> None:
    answer = TL["silence_answer"][lang][i % len(TL["silence_answer"][lang])]
    turns = [("agent", 1.0, 4.0, OPENING[lang]), ("agent", 4.5, 7.5, question),
             ("customer", 19.5, 21.0, answer), ("agent", 21.5, 23.0, OK[lang])]  # 12 s of dead air
    alerts = run_call(pack, scorer, turns, lang=lang)
    assert [(a.label, a.start) for a in alerts if a.label.startswith("process.long")] == [
        ("process.long_silence", 19.5)]


@pytest.mark.parametrize(("lang", "i", "opening"), _cases("opening_without_notice"), ids=lambda v: str(v)[:24])
def test_heldout_missing_disclosure(pack: Any, scorer: Any, lang: str, i: int, opening: str) -> None:
    turns = [("agent", 1.0, 4.0, opening), ("customer", 4.5, 8.0, ASK[lang]), ("agent", 8.5, 11.0, OK[lang])]
    alerts = run_call(pack, scorer, turns, lang=lang, duration=40.0)
    missing = [(a.rule_id, a.media_time) for a in alerts if a.label == "process.missing_disclosure"]
    assert missing == [("recording_disclosure_deadline", 20.0), ("recording_disclosure_never", 40.0)]


DISCLOSURES = [(lang, i, t[1]) for lang, items in HELDOUT["positives"]["compliance.disclosure"].items()
               for i, t in enumerate(items)]


@pytest.mark.parametrize(("lang", "i", "notice"), DISCLOSURES, ids=lambda v: str(v)[:24])
def test_heldout_notice_meets_the_deadline(pack: Any, scorer: Any, lang: str, i: int, notice: str) -> None:
    greet = TL["opening_without_notice"][lang][i % len(TL["opening_without_notice"][lang])]
    turns = [("agent", 1.0, 4.0, greet), ("agent", 4.5, 9.0, notice), ("customer", 9.5, 12.0, ASK[lang])]
    alerts = run_call(pack, scorer, turns, lang=lang, duration=40.0)
    assert "process.missing_disclosure" not in {a.label for a in alerts}


@pytest.mark.parametrize(("lang", "i", "details"), _cases("account_details"), ids=lambda v: str(v)[:24])
def test_heldout_details_before_verification(pack: Any, scorer: Any, lang: str, i: int, details: str) -> None:
    owe = "How much do I owe at the moment?" if lang == "en" else "我现在还欠多少钱？"
    early = [("agent", 1.0, 4.0, OPENING[lang]), ("customer", 4.5, 7.0, owe), ("agent", 7.5, 10.5, details)]
    got = [(a.label, a.start) for a in run_call(pack, scorer, early, lang=lang) if a.label == "process.error"]
    assert got == [("process.error", 7.5)]
    ask_id = TL["identity_request"][lang][i % len(TL["identity_request"][lang])]
    answer = "Sure, it's all on the account." if lang == "en" else "好的，都是我本人的信息。"
    verified = [("agent", 1.0, 4.0, OPENING[lang]), ("customer", 4.5, 7.0, owe), ("agent", 7.5, 10.5, ask_id),
                ("customer", 11.0, 13.0, answer), ("agent", 13.5, 16.5, details)]
    assert "process.error" not in {a.label for a in run_call(pack, scorer, verified, lang=lang)}


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize(("first", "overlap", "fires"), [("agent", 1.2, True), ("customer", 0.8, True),
                                                          ("agent", 0.2, False), ("customer", -0.5, False)])
def test_heldout_overtalk(pack: Any, scorer: Any, lang: str, first: str, overlap: float, fires: bool) -> None:
    second = "customer" if first == "agent" else "agent"
    turns = [("agent", 1.0, 4.0, OPENING[lang]), ("customer", 4.5, 6.0, ASK[lang]),
             (first, 6.5, 11.0, ASK[lang] if first == "customer" else OK[lang] * 4),
             (second, 11.0 - overlap, 13.0, OK[lang])]
    alerts = run_call(pack, scorer, sorted(turns, key=lambda t: t[2]), lang=lang)
    got = [(a.start, a.role) for a in alerts if a.label == "process.overtalk"]
    assert got == ([(11.0 - overlap, second)] if fires else [])
