"""The command line, run in-process through ``speechiq.cli.main`` on the bundled demo call with the
real tiny.en model: ``transcribe`` (text and ``--json``), ``analyze`` with the default pack and
with a pack of the user's, ``rules check``, ``config``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from speechiq.cli import main

DEMO = Path(__file__).parents[1] / "speechiq" / "data" / "demo_call.wav"
# the demo call's agent and customer turns (speechiq/data/demo_call.wav, 44 s, 2-channel μ-law)
AGENT_WORDS = {"confirm", "supervisor", "refunded"}
CUSTOMER_WORDS = {"charged", "third", "frustrated"}


def _lines(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    out = capsys.readouterr().out
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_transcribe_json_lists_finals_per_speaker_in_media_order(capsys) -> None:
    assert main(["transcribe", str(DEMO), "--json"]) == 0
    rows = _lines(capsys)
    assert len(rows) >= 6
    for r in rows:
        assert {"role", "channel", "start", "end", "text", "words"} <= r.keys()
        assert r["is_final"] and r["text"].strip()
        assert 0 <= r["start"] < r["end"] <= 44.2
        assert r["role"] == ("agent" if r["channel"] == 0 else "customer")
    starts = [r["start"] for r in rows]
    assert starts == sorted(starts)  # one listing in media order, not ASR completion order
    text = {role: " ".join(r["text"].lower() for r in rows if r["role"] == role) for role in ("agent", "customer")}
    assert all(w in text["agent"] for w in AGENT_WORDS)
    assert all(w in text["customer"] for w in CUSTOMER_WORDS)


def test_transcribe_text_prints_timestamps_and_roles(capsys) -> None:
    assert main(["transcribe", str(DEMO)]) == 0
    cap = capsys.readouterr()
    lines = [ln for ln in cap.out.splitlines() if ln.startswith("[")]
    assert len(lines) >= 6
    assert any(" agent " in ln for ln in lines) and any(" customer " in ln for ln in lines)
    assert "utterances" in cap.err and "44.1 s of audio" in cap.err


def test_analyze_json_prints_alerts_with_the_documented_fields(capsys) -> None:
    assert main(["analyze", str(DEMO), "--json"]) == 0
    alerts = _lines(capsys)
    assert alerts, "the demo call must raise alerts with the default pack"
    for a in alerts:
        assert {"rule_id", "label", "category", "severity", "start", "end", "role", "text", "evidence"} <= a.keys()
        assert a["type"] == "alert" and a["pack_version"]
    labels = {a["label"] for a in alerts if a["state"] != "retracted"}
    # what the call says: identity check asked, a repeat contact, a supervisor request, a transfer
    assert {"compliance.identity_check", "escalation.supervisor_request", "process.transfer"} <= labels
    sup = next(a for a in alerts if a["label"] == "escalation.supervisor_request")
    assert sup["role"] == "customer" and "supervisor" in sup["text"].lower()
    assert sup["start"] >= 30.0  # said in the second half of the call (media time)


def test_analyze_with_a_users_pack(tmp_path, capsys) -> None:
    pack = tmp_path / "mine.yaml"
    pack.write_text(
        "name: mine\n"
        "rules:\n"
        "  - id: double_charge\n"
        "    category: process_error\n"
        "    severity: high\n"
        "    label: issue.billing\n"
        "    description: the customer reports a duplicate charge\n"
        "    when:\n"
        "      phrase: {role: customer, any_of: [charged twice, double charged]}\n",
        encoding="utf-8")
    assert main(["rules", "check", str(pack)]) == 0
    capsys.readouterr()
    assert main(["analyze", str(DEMO), "--rules", str(pack), "--json"]) == 0
    alerts = _lines(capsys)
    assert {a["rule_id"] for a in alerts} == {"double_charge"}
    assert alerts[0]["role"] == "customer" and alerts[0]["start"] < 15


def test_rules_check_reports_line_numbers(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nrules:\n  - id: x\n    label: sales.interest\n    category: sales_opportunity\n"
                   "    severity: loud\n    when:\n      phrase: {role: agent, any_of: [hello]}\n", encoding="utf-8")
    assert main(["rules", "check", str(bad)]) != 0
    cap = capsys.readouterr()
    report = cap.out + cap.err
    assert f"{bad}:6: error" in report and "severity" in report  # the offending line, named
    assert "1 error(s)" in report


def test_config_prints_the_settings_tree(capsys) -> None:
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    for section in ("server:", "vad:", "asr:", "analytics:", "alerts:", "telephony:", "store:"):
        assert section in out
