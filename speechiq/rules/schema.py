"""The rule pack data model: frozen dataclasses for packs, rules and condition trees.

Only shapes and vocabularies; :mod:`speechiq.rules.loader` validates YAML into them.
docs/rules.md is the reference for the language.
"""

from __future__ import annotations

from dataclasses import dataclass, field

LANGUAGES = ("en", "zh")
ROLES = ("agent", "customer", "any")
SEVERITIES = ("info", "low", "medium", "high", "critical")
SCOPES = ("utterance", "call")
CATEGORIES = (
    "sales_opportunity", "process_error", "compliance", "escalation", "knowledge_gap",
    "voice_of_customer", "issue", "sentiment",
)
LABELS = (
    "compliance.disclosure", "compliance.identity_check", "compliance.prohibited",
    "escalation.supervisor_request", "escalation.churn_threat", "escalation.legal_threat",
    "issue.billing", "issue.price", "issue.outage", "issue.damage", "issue.repeat_contact",
    "process.error", "process.knowledge_gap", "process.transfer", "process.escalation",
    "process.long_hold", "process.long_silence", "process.overtalk", "process.missing_disclosure",
    "process.no_greeting", "process.slow_response", "sales.interest", "sales.offer",
    "sentiment.positive", "sentiment.negative", "sentiment.neutral",
)
OPS = ("gt", "ge", "lt", "le")
UTTERANCE_METRICS = ("silence_before", "overtalk_at")
STATE_METRICS = (
    "current_silence", "longest_silence", "overtalk_total", "longest_overtalk", "current_overtalk", "interruptions",
    "talk_time", "speech_rate", "agent_talk_ratio", "first_agent_speech",
)
ROLE_METRICS = ("interruptions", "talk_time", "speech_rate")
# metadata keys that name one thing: a condition on either reads whichever the call has (first wins)
METADATA_ALIASES: dict[str, tuple[str, ...]] = {"agent_id": ("agent_id", "agent"), "agent": ("agent_id", "agent")}
ALL_LANGS = "*"  # key of a phrase/regex/example list that applies to every language

# per-language text lists: ((lang or "*", (text, ...)), ...)
LangTexts = tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class All:
    items: tuple[Cond, ...]
    line: int = 0


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Cond, ...]
    line: int = 0


@dataclass(frozen=True)
class Not:
    item: Cond
    line: int = 0


@dataclass(frozen=True)
class Exists:
    item: Cond
    line: int = 0


@dataclass(frozen=True)
class Phrase:
    role: str
    literals: LangTexts
    regex: LangTexts
    fuzzy: int | None
    pinyin: bool
    line: int = 0


@dataclass(frozen=True)
class Semantic:
    role: str
    examples: LangTexts
    threshold: float
    line: int = 0


@dataclass(frozen=True)
class Within:
    first: float
    line: int = 0


@dataclass(frozen=True)
class After:
    seconds: float
    line: int = 0


@dataclass(frozen=True)
class Last:
    seconds: float
    line: int = 0


@dataclass(frozen=True)
class Deadline:
    say: Cond
    within: float
    start: Cond | None  # None = call_start; an utterance condition, or an event (Dtmf, Metadata, AlertOf)
    role: str
    line: int = 0

    @property
    def event_start(self) -> bool:
        """The clock starts on a call event (DTMF, metadata change, another rule's alert)."""
        return isinstance(self.start, EVENT_STARTS)


@dataclass(frozen=True)
class AlertOf:
    """A confirmed alert of this call by rule id, label or category (exactly one is set).
    Only allowed as a deadline's ``from``."""

    rule: str | None = None
    label: str | None = None
    category: str | None = None
    line: int = 0

    def matches(self, rule_id: str, label: str, category: str) -> bool:
        if self.rule is not None:
            return rule_id == self.rule
        if self.label is not None:
            return label == self.label
        return category == self.category


@dataclass(frozen=True)
class Sequence:
    first: Cond
    then: Cond
    within: float | None
    line: int = 0


@dataclass(frozen=True)
class Order:
    first: Cond
    then: Cond
    line: int = 0


@dataclass(frozen=True)
class Sentiment:
    role: str
    below: float | None
    above: float | None
    line: int = 0


@dataclass(frozen=True)
class Trend:
    role: str
    turns: int
    mean_below: float | None
    drop: float | None
    line: int = 0


@dataclass(frozen=True)
class Metric:
    name: str
    role: str | None
    op: str
    value: float
    line: int = 0


@dataclass(frozen=True)
class Metadata:
    key: str
    equals: object = None
    in_: tuple[object, ...] | None = None
    regex: str | None = None
    exists: bool | None = None
    line: int = 0


@dataclass(frozen=True)
class Dtmf:
    pressed: str
    line: int = 0


Cond = (All | AnyOf | Not | Exists | Phrase | Semantic | Within | After | Last | Deadline | Sequence | Order
        | Sentiment | Trend | Metric | Metadata | Dtmf | AlertOf)

EVENT_STARTS = (Dtmf, Metadata, AlertOf)  # what a deadline's ``from`` may be besides an utterance condition

UTTERANCE_CONDS = (Phrase, Semantic, Within, After, Last, Sentiment, Sequence, Order)
STATE_CONDS = (Trend, Metadata, Dtmf)


def is_utterance_leaf(c: Cond) -> bool:
    return isinstance(c, UTTERANCE_CONDS) or (isinstance(c, Metric) and c.name in UTTERANCE_METRICS)


def children(c: Cond) -> tuple[Cond, ...]:
    if isinstance(c, (All, AnyOf)):
        return c.items
    if isinstance(c, (Not, Exists)):
        return (c.item,)
    if isinstance(c, (Sequence, Order)):
        return (c.first, c.then)
    if isinstance(c, Deadline):
        return (c.say,) if c.start is None else (c.say, c.start)
    return ()


def walk(c: Cond) -> list[Cond]:
    out = [c]
    for ch in children(c):
        out.extend(walk(ch))
    return out


@dataclass(frozen=True)
class Rule:
    id: str
    label: str
    category: str
    severity: str
    when: Cond
    description: str = ""
    languages: tuple[str, ...] = LANGUAGES
    cooldown_s: float = 0.0
    scope: str = "utterance"
    enabled: bool = True
    source: str = ""
    line: int = 0


@dataclass(frozen=True)
class Pack:
    rules: tuple[Rule, ...]
    version: str
    name: str = ""
    description: str = ""
    sources: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=())


__all__ = [
    "CATEGORIES", "EVENT_STARTS", "LABELS", "LANGUAGES", "METADATA_ALIASES", "OPS", "ROLES", "SCOPES",
    "SEVERITIES", "After", "AlertOf", "All", "AnyOf",
    "Cond", "Deadline", "Dtmf", "Exists", "Last", "Metadata", "Metric", "Not", "Order", "Pack", "Phrase",
    "Rule", "Semantic", "Sentiment", "Sequence", "Trend", "Within", "children", "walk",
]
