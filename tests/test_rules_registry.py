"""Hot reload: a valid edit swaps the pack, a broken edit keeps the old one, running calls keep theirs."""

from __future__ import annotations

import os
from pathlib import Path

from test_analytics_engine import FakeCallMetrics, FakeTalk, WordScorer

from speechiq.analytics.engine import CallAnalytics
from speechiq.events import Transcript
from speechiq.rules import DEFAULT_PACK, PackRegistry, default_pack_path

PACK = """\
rules:
  - id: price
    label: issue.price
    category: issue
    when: {{phrase: {{role: customer, any_of: [{word}]}}}}
"""


def _write(p: Path, text: str, bump: int) -> None:
    p.write_text(text, encoding="utf-8")
    st = p.stat()
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + bump * 1_000_000_000))  # a distinct mtime per edit


def _said(pack, text: str) -> list[str]:
    ca = CallAnalytics("c", pack, language="en", metadata={}, sentiment=WordScorer(), talk=FakeTalk(),
                       callmetrics=FakeCallMetrics())
    t = Transcript(call_id="c", channel=1, role="customer", utterance_id="u1", is_final=True, start=1, end=2,
                   text=text)
    return [a.rule_id for a in ca.on_transcript(t)]


def test_reload_swaps_valid_edits_and_keeps_old_pack_on_errors(tmp_path, caplog):
    path = tmp_path / "pack.yaml"
    _write(path, PACK.format(word="expensive"), 0)
    reg = PackRegistry([str(path)])
    first = reg.current()
    assert reg.maybe_reload() is False  # nothing changed
    running = CallAnalytics("c", first, language="en", metadata={}, sentiment=WordScorer(), talk=FakeTalk(),
                            callmetrics=FakeCallMetrics())

    _write(path, PACK.format(word="too much"), 1)
    assert reg.maybe_reload() is True
    second = reg.current()
    assert second.version != first.version and reg.reloads == 1
    assert _said(second, "that is too much") == ["price"] and _said(second, "so expensive") == []

    # a call started before the swap keeps its pack (and its version on alerts)
    t = Transcript(call_id="c", channel=1, role="customer", utterance_id="u9", is_final=True, start=1, end=2,
                   text="so expensive")
    alerts = running.on_transcript(t)
    assert [a.pack_version for a in alerts] == [first.version]

    _write(path, "rules:\n  - id: broken\n    when: {nope: 1}\n", 2)
    assert reg.maybe_reload() is False
    assert reg.current() is second and reg.last_error is not None
    assert any("reload failed" in r.message for r in caplog.records)

    _write(path, PACK.format(word="pricey"), 3)
    assert reg.maybe_reload() is True and _said(reg.current(), "pricey") == ["price"]
    assert reg.last_error is None


def test_deleted_file_keeps_the_pack(tmp_path):
    path = tmp_path / "pack.yaml"
    _write(path, PACK.format(word="expensive"), 0)
    reg = PackRegistry([path])
    pack = reg.current()
    path.unlink()
    assert reg.maybe_reload() is False and reg.current() is pack


def test_default_pack_location():
    assert default_pack_path() == DEFAULT_PACK
    assert DEFAULT_PACK.parts[-3:] == ("rules", "packs", "default.yaml")
