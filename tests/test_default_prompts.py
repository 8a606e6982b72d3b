"""``asr.prompts``: a server-wide initial prompt per call language, used when the call's start
gives none (the start's own prompt wins; an English-only model always reads the ``en`` one)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from speechiq.pipeline.session import CallSession
from speechiq.settings import load_settings

EN = "A customer service phone call between an agent and a customer."


def _session(language: str, multilingual: bool, start_prompt: str = "", prompts: dict | None = None):
    settings = load_settings(None, {"asr.prompts": prompts if prompts is not None else {"en": EN, "zh": "客服电话"}},
                             environ={})
    engine = SimpleNamespace(settings=settings, decoder=SimpleNamespace(multilingual=multilingual))
    stub = SimpleNamespace(engine=engine, language=language,
                           start=SimpleNamespace(prompt=start_prompt, hotwords=("Northwind",)))
    stub._default_prompt = lambda: CallSession._default_prompt(stub)  # type: ignore[attr-defined]
    return stub


def _prompt(stub) -> str:
    return CallSession.request_for(stub, np.zeros(1600, dtype=np.float32), 0.0, True).prompt


def test_the_prompt_of_the_call_language_is_used_when_the_start_gives_none():
    assert _prompt(_session("en", multilingual=True)) == EN
    assert _prompt(_session("zh", multilingual=True)) == "客服电话"
    assert _prompt(_session("auto", multilingual=True)) == ""  # no "auto" entry: no prompt


def test_an_english_only_model_reads_the_en_prompt_whatever_the_call_says():
    assert _prompt(_session("auto", multilingual=False)) == EN
    assert _prompt(_session("zh", multilingual=False)) == EN


def test_the_start_prompt_wins_and_there_is_none_by_default():
    stub = _session("en", multilingual=True, start_prompt="Billing dispute.")
    req = CallSession.request_for(stub, np.zeros(1600, dtype=np.float32), 0.0, True)
    assert (req.prompt, req.hotwords) == ("Billing dispute.", ("Northwind",))
    assert load_settings(None, {}, environ={}).asr.prompts == {}
    assert _prompt(_session("en", multilingual=False, prompts={})) == ""


def test_prompts_come_from_the_environment_as_json():
    s = load_settings(None, {}, environ={"SPEECHIQ_ASR__PROMPTS": '{"en": "Support call."}'})
    assert s.asr.prompts == {"en": "Support call."}
