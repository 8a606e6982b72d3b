"""Sentiment backends: lexicon (VADER + Mandarin) and the ONNX transformer path with a tiny model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from speechiq.analytics.sentiment import (
    LexiconSentiment,
    OnnxSentiment,
    _label_value,
    label_of,
    make_scorer,
    score_zh,
)
from speechiq.errors import ConfigError
from speechiq.settings import AnalyticsSettings


@pytest.fixture(scope="module")
def lex() -> LexiconSentiment:
    return LexiconSentiment()


@pytest.mark.parametrize(("text", "label"), [
    ("Thank you so much, you have been really helpful.", "positive"),
    ("This is ridiculous, I have been waiting on hold forever and nothing works.", "negative"),
    ("My account number is four two seven.", "neutral"),
    ("服务很专业，我非常满意，谢谢。", "positive"),
    ("你们乱收费，我要投诉！", "negative"),
    ("我想查一下这个月的账单。", "neutral"),
])
def test_lexicon_labels(lex, text, label):
    s = lex.score(text, "auto")
    assert s.label == label, s
    assert -1.0 <= s.score <= 1.0


def test_chinese_negation_and_intensity():
    assert score_zh("不满意") < 0
    assert score_zh("不是很满意") < 0 < score_zh("很满意")
    assert score_zh("非常满意") > score_zh("满意") > 0
    assert score_zh("服务不错，但是太贵了") < 0  # the clause after 但是 dominates


@pytest.mark.parametrize("text", [
    "I'd like to check my bill please.",
    "Yes, can you help me with my account?",
    "Okay, let me see.",
    "What kind of plan do I have?",
])
def test_service_requests_are_neutral(lex, text):
    """Courtesy/request words are formulaic in calls: plain VADER calls these positive."""
    assert lex.score(text, "en").label == "neutral"


def test_phrases_word_boundaries_and_negation(lex):
    assert lex.score("My modem is down.", "en").label == "negative"
    assert lex.score("This download is fast.", "en").score >= 0  # "is down" needs word boundaries
    assert lex.score("I was charged twice.", "en").score < lex.score("I was never charged twice.", "en").score


def test_language_codes(lex):
    assert lex.score("我非常满意", "zh-CN").label == "positive"
    assert lex.score("我非常满意", "cmn").label == "positive"
    assert lex.score("thank you so much", "en-US").label == "positive"
    assert lex.score("  ", "auto") == lex.score("", "en")


def test_chinese_neutral_words_block_false_hits():
    assert score_zh("差不多就这样吧") == 0.0
    assert score_zh("不好意思，我想问一下") == 0.0
    assert score_zh("信号差") < 0 < score_zh("信号不差")


@pytest.mark.parametrize("text", [
    "麻烦您帮我查一下", "麻烦你把身份证号后四位报一下", "贵公司的地址在哪里", "请问贵姓", "麻烦您了",
    "我想了解一下满意度调查",
])
def test_chinese_polite_and_honorific_forms_are_neutral(lex, text):
    """麻烦您 is "could you please", 贵公司 "your company": neither is a complaint or a price."""
    assert lex.score(text, "zh").label == "neutral"


@pytest.mark.parametrize(("text", "label"), [
    ("快递什么时候能到", "neutral"),  # 快 (fast) inside 快递 (delivery)
    ("我下周要出差，能不能改个时间", "neutral"),  # 差 (poor) inside 出差 (business trip)
    ("差点忘了，还有一个事", "neutral"),
    ("您慢慢说，不着急", "neutral"),
    ("网速太慢了，根本用不了", "negative"),  # 太慢 / 很慢 / 真差: the character is a word of its own
    ("网速很慢", "negative"),
    ("这也太贵了吧", "negative"),
    ("你们这是骗人", "negative"),
    ("我很着急，已经断网三天了", "negative"),
])
def test_chinese_one_character_entries_only_as_words(lex, text, label):
    pytest.importorskip("jieba")
    assert lex.score(text, "zh").label == label


def test_jieba_state_is_left_alone():
    jieba = pytest.importorskip("jieba")
    before = jieba.dt.initialized, len(jieba.dt.FREQ)
    score_zh("你们的服务太差了")
    assert (jieba.dt.initialized, len(jieba.dt.FREQ)) == before


def test_off_and_labels():
    assert make_scorer(AnalyticsSettings(sentiment="off")).score("I hate this", "en").label == "neutral"
    assert label_of(0.5) == "positive" and label_of(-0.5) == "negative" and label_of(0.0) == "neutral"


def _tiny_onnx_model(tmp_path):
    """A real (tiny) sequence classifier: WordPiece tokenizer + embedding → mean → linear, as ONNX."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    transformers = pytest.importorskip("transformers")
    from onnx import TensorProto, helper, numpy_helper

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "great", "love", "terrible", "awful", "the", "service", "is"]
    (tmp_path / "vocab.txt").write_text("\n".join(words) + "\n")
    from tokenizers import BertWordPieceTokenizer

    wordpiece = BertWordPieceTokenizer(str(tmp_path / "vocab.txt"), lowercase=True)
    tok = transformers.PreTrainedTokenizerFast(tokenizer_object=wordpiece, unk_token="[UNK]", pad_token="[PAD]",
                                               cls_token="[CLS]", sep_token="[SEP]")
    tok.save_pretrained(str(tmp_path))
    emb = np.zeros((len(words), 3), dtype=np.float32)  # columns: negative, neutral, positive
    emb[:, 1] = 1.0
    for w in ("great", "love"):
        emb[words.index(w)] = [0, 0, 8]
    for w in ("terrible", "awful"):
        emb[words.index(w)] = [8, 0, 0]
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "input_ids"], ["e"]),
         helper.make_node("ReduceMean", ["e", "axes"], ["logits"], keepdims=0)],
        "tiny-sentiment",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, None]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, [1, None])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3])],
        [numpy_helper.from_array(emb, "table"), numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, str(tmp_path / "model.onnx"))
    (tmp_path / "config.json").write_text(json.dumps(
        {"id2label": {"0": "negative", "1": "neutral", "2": "positive"}}))
    return tmp_path


def test_onnx_backend_with_a_tiny_model(tmp_path):
    d = _tiny_onnx_model(tmp_path)
    scorer = make_scorer(AnalyticsSettings(sentiment="onnx", sentiment_onnx_model=str(d)))
    assert isinstance(scorer, OnnxSentiment)
    assert scorer.score("great service, love it", "en").label == "positive"
    assert scorer.score("the service is terrible", "en").label == "negative"
    assert scorer.score("", "en").label == "neutral"


def test_onnx_label_mapping_and_errors(tmp_path):
    assert [_label_value(n, i, 3) for i, n in enumerate(["NEGATIVE", "NEUTRAL", "POSITIVE"])] == [-1.0, 0.0, 1.0]
    assert [_label_value(f"LABEL_{i}", i, 3) for i in range(3)] == [-1.0, 0.0, 1.0]
    assert [_label_value(f"{k} stars", k - 1, 5) for k in range(1, 6)] == [-1.0, -0.5, 0.0, 0.5, 1.0]
    with pytest.raises(ConfigError):
        make_scorer(AnalyticsSettings(sentiment="onnx"))  # no model dir configured
    pytest.importorskip("onnxruntime")
    pytest.importorskip("transformers")
    with pytest.raises(ConfigError):
        OnnxSentiment(tmp_path)  # no model.onnx there
