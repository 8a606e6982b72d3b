"""Pack loading: line-numbered errors, warnings, version hash, the `rules check` entry point."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from speechiq.errors import RuleError
from speechiq.rules import check_pack, compile_pack, load_pack, rules_check_main
from speechiq.rules import schema as S

DATA = Path(__file__).parent / "data"

BROKEN = textwrap.dedent("""\
    name: broken
    rules:
      - id: ok_rule
        label: escalation.churn_threat
        category: escalation
        when: {phrase: {role: customer, any_of: [cancel]}}
      - id: Bad Id
        label: issue.billing
        category: issue
        severity: urgent
        when: {phrase: {role: boss, any_of: [refund]}}
      - id: two_keys
        label: issue.billing
        category: issue
        when:
          phrase: {any_of: [a]}
          sentiment: {below: -0.5}
      - id: bad_regex
        label: issue.billing
        category: Not-Snake
        languages: [en, fr]
        when:
          phrase: {regex: ['(unclosed']}
      - id: ok_rule
        label: issue.billing
        category: issue
        cooldown_s: -5
        when:
          metric: {name: silence_before, op: bigger, value: 10}
      - id: live_last
        label: issue.billing
        category: issue
        when: {last: 30}
      - id: nested_deadline
        label: issue.billing
        category: issue
        when:
          any:
            - deadline: {say: {phrase: {any_of: [hi]}}, within: 10}
            - phrase: {any_of: [hello]}
      - id: typo_key
        label: issue.billing
        category: issue
        whn: {phrase: {any_of: [x]}}
    """)


def _write(tmp_path: Path, text: str, name: str = "pack.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_broken_pack_lists_every_problem_with_its_line(tmp_path):
    p = _write(tmp_path, BROKEN)
    with pytest.raises(RuleError) as info:
        load_pack(p)
    problems = info.value.problems
    lines = {line for line, _ in problems}
    text = "\n".join(f"{line}: {msg}" for line, msg in problems)

    def has(line: int, *words: str) -> bool:
        return any(ln == line and all(w in msg for w in words) for ln, msg in problems)

    assert has(7, "id", "Bad Id"), text
    assert has(10, "severity", "urgent"), text
    assert has(11, "role", "boss"), text
    assert has(16, "exactly one"), text
    assert has(20, "category", "Not-Snake"), text
    assert has(21, "language", "fr"), text
    assert has(23, "regular expression"), text
    assert has(24, "duplicate rule id", "ok_rule", "line 3"), text
    assert has(27, "cooldown_s"), text
    assert has(29, "op", "bigger"), text
    assert has(33, "last", "scope: call"), text
    assert has(39, "deadline"), text
    assert has(44, "unknown key", "whn"), text
    assert has(41, "missing required key", "when"), text
    assert 6 not in lines  # the valid rule has no problem
    assert str(p) in str(info.value) and ":10:" in str(info.value)


def test_yaml_syntax_error_and_duplicate_keys_have_lines(tmp_path):
    with pytest.raises(RuleError) as info:
        load_pack(_write(tmp_path, "rules:\n  - id: a\n    id: b\n"))
    assert info.value.problems == [(3, "duplicate key 'id'")]
    with pytest.raises(RuleError) as info:
        load_pack(_write(tmp_path, "rules:\n  - id: [a\n    label: b\n"))
    assert info.value.problems[0][0] in (2, 3) and "YAML syntax" in info.value.problems[0][1]


def test_missing_file_and_empty_pack(tmp_path):
    with pytest.raises(RuleError, match="cannot read"):
        load_pack(tmp_path / "nope.yaml")
    with pytest.raises(RuleError, match="missing required key 'rules'"):
        load_pack(_write(tmp_path, "name: x\n"))
    with pytest.raises(RuleError, match="must be a mapping"):
        load_pack(_write(tmp_path, "- 1\n- 2\n"))


def test_valid_pack_parses_every_condition_type():
    pack = load_pack(DATA / "rules_basic.yaml")
    kinds = {type(c) for r in pack.rules for c in S.walk(r.when)}
    assert {S.Phrase, S.Deadline, S.Not, S.Order, S.Sequence, S.Sentiment, S.Trend, S.Metric, S.All, S.Metadata,
            S.Within, S.Dtmf, S.Exists, S.Last} <= kinds
    rule = next(r for r in pack.rules if r.id == "supervisor_request")
    assert rule.languages == ("en", "zh") and rule.severity == "high" and rule.scope == "utterance"
    assert rule.when.fuzzy == 85 and rule.when.pinyin  # type: ignore[union-attr]
    assert len(pack.version) == 12 and int(pack.version, 16) >= 0


def test_unknown_label_is_a_warning_not_an_error(tmp_path):
    p = _write(tmp_path, "rules:\n  - id: a\n    label: my.own_label\n    category: custom_stuff\n"
                         "    when: {phrase: {any_of: [x]}}\n")
    pack = load_pack(p)
    assert len(pack.rules) == 1 and pack.rules[0].category == "custom_stuff"
    assert [w for w in check_pack(p) if "warning" in w and ":3:" in w and "my.own_label" in w]


def test_version_is_hash_of_normalised_bytes(tmp_path):
    base = (DATA / "rules_basic.yaml").read_text(encoding="utf-8")
    v1 = load_pack(_write(tmp_path, base, "a.yaml")).version
    crlf = "\ufeff" + base.replace("\n", "   \r\n") + "\n\n"
    v2 = load_pack(_write(tmp_path, crlf, "b.yaml")).version
    v3 = load_pack(_write(tmp_path, base.replace("severity: high", "severity: low", 1), "c.yaml")).version
    assert v1 == v2 != v3


def test_several_packs_merge_and_ids_must_stay_unique(tmp_path):
    a = _write(tmp_path, "rules:\n  - id: a\n    label: issue.price\n    category: issue\n"
                         "    when: {phrase: {any_of: [price]}}\n", "a.yaml")
    b = _write(tmp_path, "rules:\n  - id: b\n    label: issue.price\n    category: issue\n"
                         "    when: {phrase: {any_of: [cost]}}\n", "b.yaml")
    merged = load_pack(a, b)
    assert [r.id for r in merged.rules] == ["a", "b"] and merged.version not in (load_pack(a).version,)
    with pytest.raises(RuleError, match="already defined"):
        load_pack(a, a)


def test_check_pack_and_cli_entry(tmp_path, capsys):
    good = DATA / "rules_basic.yaml"
    bad = _write(tmp_path, BROKEN)
    assert rules_check_main([str(good)]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "warning" in out
    assert rules_check_main([str(good), str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"{bad}:10: error:" in out and "error(s)" in out
    problems = check_pack(bad)
    assert all(": error: " in p or ": warning: " in p for p in problems) and len(problems) >= 13


def test_compile_indexes_literal_triggers():
    pack = compile_pack(load_pack(DATA / "rules_basic.yaml"))
    kinds = {r.id: r.kind for r in pack.rules}
    assert kinds["disclosure_deadline"] == "deadline" and kinds["missing_disclosure"] == "call"
    assert kinds["souring"] == "state" and kinds["supervisor_request"] == "utterance"
    triggers = {r.id: r.triggers for r in pack.rules}
    # phrase rules (literal, fuzzy, regex) run only when one of their leaves hit in the scan
    assert triggers["price_ten"] and triggers["churn"] and triggers["account_digits"]
    assert triggers["offer_after_interest"] and triggers["vip_opening"]
    # rules without any phrase are evaluated on every utterance
    assert triggers["angry_customer"] is None and triggers["long_silence_turn"] is None


EVENT_STARTS = textwrap.dedent("""\
    rules:
      - id: transfer_said
        label: process.transfer
        category: process_error
        when: {phrase: {role: agent, any_of: [transfer you]}}
      - id: greet_after_transfer
        label: process.no_greeting
        category: process_error
        when:
          deadline:
            say: {phrase: {role: agent, any_of: [thanks for holding]}}
            within: 15
            from: {alert: {rule: transfer_said}}
      - id: answer_operator_key
        label: process.slow_response
        category: process_error
        when:
          deadline:
            say: {phrase: {role: agent, any_of: [how can i help]}}
            within: 10
            from: {dtmf: {pressed: "0"}}
      - id: greet_vip
        label: process.no_greeting
        category: process_error
        when:
          all:
            - deadline:
                say: {phrase: {role: agent, any_of: [welcome]}}
                within: 5
                from: {metadata: {key: queue, equals: vip}}
            - metadata: {key: direction, equals: inbound}
      - id: after_any_escalation
        label: process.escalation
        category: process_error
        when:
          deadline:
            say: {phrase: {role: agent, any_of: [i understand]}}
            within: 20
            from: {alert: {category: escalation}}
    """)


def test_deadline_from_call_events_parses(tmp_path):
    pack = load_pack(_write(tmp_path, EVENT_STARTS))
    starts = {r.id: r.when.start for r in pack.rules if isinstance(r.when, S.Deadline)}
    assert starts["greet_after_transfer"] == S.AlertOf(rule="transfer_said", line=13)
    assert starts["answer_operator_key"] == S.Dtmf("0", 21)
    assert starts["after_any_escalation"] == S.AlertOf(category="escalation", line=39)
    vip = next(r for r in pack.rules if r.id == "greet_vip").when
    assert isinstance(vip, S.All) and isinstance(vip.items[0].start, S.Metadata)  # type: ignore[union-attr]
    compiled = compile_pack(pack)
    kinds = {r.id: r.kind for r in compiled.rules}
    assert {kinds[k] for k in ("greet_after_transfer", "answer_operator_key", "greet_vip")} == {"deadline"}
    assert all(r.deadline.event_start for r in compiled.rules if r.deadline is not None)
    # an event start is checked on its event: it is not a watched utterance condition
    assert not any(isinstance(w, (S.AlertOf, S.Dtmf, S.Metadata)) for w in compiled.watches)


@pytest.mark.parametrize(("frm", "words"), [
    ("{alert: {rule: nope}}", ("unknown rule", "nope")),
    ("{alert: {rule: a, label: process.transfer}}", ("exactly one of rule / label / category",)),
    ("{alert: {rule: a}}", ("own alert",)),
    ("{trend: {turns: 3, mean_below: -0.3}}", ("utterance condition", "dtmf / metadata / alert")),
    ("call_end", ("call_start", "dtmf, metadata, alert")),
    ("{dtmf: {pressed: x}}", ("DTMF digits",)),
])
def test_deadline_from_errors_name_the_line(tmp_path, frm, words):
    text = ("rules:\n  - id: a\n    label: process.no_greeting\n    category: process_error\n    when:\n"
            "      deadline:\n        say: {phrase: {any_of: [hello]}}\n        within: 5\n"
            f"        from: {frm}\n")
    with pytest.raises(RuleError) as info:
        load_pack(_write(tmp_path, text))
    assert any(ln == 9 and all(w in msg for w in words) for ln, msg in info.value.problems), info.value.problems


def test_alert_condition_only_as_a_deadline_start(tmp_path):
    text = ("rules:\n  - id: a\n    label: process.error\n    category: process_error\n"
            "    when: {alert: {rule: b}}\n")
    with pytest.raises(RuleError) as info:
        load_pack(_write(tmp_path, text))
    assert info.value.problems[0][0] == 5 and "only allowed as a deadline's from" in info.value.problems[0][1]


def test_alert_start_may_name_a_rule_of_another_pack(tmp_path):
    a = _write(tmp_path, "rules:\n  - id: a\n    label: process.no_greeting\n    category: process_error\n"
                         "    when:\n      deadline:\n        say: {phrase: {any_of: [hello]}}\n"
                         "        within: 5\n        from: {alert: {rule: b}}\n", "a.yaml")
    b = _write(tmp_path, "rules:\n  - id: b\n    label: process.transfer\n    category: process_error\n"
                         "    when: {phrase: {any_of: [transfer]}}\n", "b.yaml")
    assert [r.id for r in load_pack(a, b).rules] == ["a", "b"]
    assert any(":9: warning:" in w and "'b' is not defined in this pack" in w for w in check_pack(a))
    with pytest.raises(RuleError, match="unknown rule 'b'"):
        load_pack(a)
