"""The settings tree: defaults < YAML file < environment < flags, validated with every problem listed."""

from __future__ import annotations

import pytest

from speechiq.errors import ConfigError
from speechiq.settings import Settings, load_settings, with_overrides


def test_defaults_are_the_embedded_offline_setup():
    s = load_settings(None, environ={})
    assert s == Settings()
    assert s.asr.model == "tiny.en" and s.asr.device == "cpu" and s.vad.backend == "webrtc"
    assert s.store.url.startswith("sqlite:///") and s.server.api_keys == ()


def test_precedence_file_env_flags(tmp_path):
    f = tmp_path / "speechiq.yaml"
    f.write_text("asr:\n  model: base\n  beam_size: 2\nvad:\n  hangover_ms: 400\nserver:\n  port: 9000\n")
    env = {"SPEECHIQ_ASR__BEAM_SIZE": "3", "SPEECHIQ_VAD__HANGOVER_MS": "300", "OTHER": "x"}
    s = load_settings(f, {"vad.hangover_ms": 250, "server.port": None}, environ=env)
    assert s.asr.model == "base"  # file
    assert s.asr.beam_size == 3  # env over file
    assert s.vad.hangover_ms == 250  # flag over env
    assert s.server.port == 9000  # a flag left unset (None) changes nothing


def test_env_values_parse_as_json_lists_or_strings():
    env = {"SPEECHIQ_SERVER__API_KEYS": "s3cret", "SPEECHIQ_ALERTS__WEBHOOKS": "http://a/x,http://b/y",
           "SPEECHIQ_ANALYTICS__RULE_PACKS": '["/p/one.yaml"]', "SPEECHIQ_ASR__PARTIALS": "false",
           "SPEECHIQ_ALERTS__WEBHOOK_SECRET": "123456"}
    s = load_settings(None, environ=env)
    assert s.server.api_keys == ("s3cret",)
    assert s.alerts.webhooks == ("http://a/x", "http://b/y")
    assert s.analytics.rule_packs == ("/p/one.yaml",)
    assert s.asr.partials is False
    assert s.alerts.webhook_secret == "123456"  # a numeric-looking secret stays a string
    assert load_settings(None, environ={"SPEECHIQ_SERVER__API_KEYS": "12345"}).server.api_keys == ("12345",)
    assert load_settings(None, environ={"SPEECHIQ_SERVER__API_KEYS": "[1, \"b\"]"}).server.api_keys == ("1", "b")


def test_every_problem_is_listed():
    with pytest.raises(ConfigError) as info:
        load_settings(None, {"asr.beam_size": 0, "vad.backend": "magic", "server.bogus": 1}, environ={})
    msg = str(info.value)
    assert "asr.beam_size" in msg and "vad.backend" in msg and "server.bogus" in msg


def test_unreadable_or_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read settings file"):
        load_settings(tmp_path / "missing.yaml", environ={})
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_settings(bad, environ={})
    broken = tmp_path / "broken.yaml"
    broken.write_text("asr: [unclosed\n")
    with pytest.raises(ConfigError, match="cannot read settings file"):
        load_settings(broken, environ={})


def test_a_dotted_key_through_a_scalar_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"asr\.model"):
        load_settings(None, {"asr.model.name": "x"}, environ={})
    f = tmp_path / "s.yaml"
    f.write_text("asr:\n  model: base\n")
    with pytest.raises(ConfigError, match="not a section"):
        load_settings(f, {"asr.model.name": "x"}, environ={})


def test_settings_are_frozen_and_overridable():
    s = load_settings(None, environ={})
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen-instance error
        s.asr.model = "base"  # type: ignore[misc]
    t = with_overrides(s, {"asr.model": "base"})
    assert t.asr.model == "base" and s.asr.model == "tiny.en"
    with pytest.raises(ConfigError):
        with_overrides(s, {"asr.beam_size": -1})
