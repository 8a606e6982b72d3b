"""Telephony routes: URL path → adapter factory ``(engine, request) -> Adapter`` (see server/app.py).

Interim configuration (until settings.py grows a telephony section) comes from environment
variables read when a connection arrives:
``SPEECHIQ_AUDIOHOOK_KEYS='{"<api key>": "<base64 client secret>"}'`` (empty secret = unsigned
allowed; unset = the server's API keys, unsigned; neither = no authentication),
``SPEECHIQ_AUDIOSOCKET_CODEC`` (slin | ulaw | alaw), ``SPEECHIQ_AUDIOSOCKET_ROLE`` (mixed | customer |
agent), ``SPEECHIQ_AUDIOSOCKET_JOIN_LEGS`` (1 = the last UUID hex digit names the leg) and
``SPEECHIQ_<PLATFORM>_ROLES='{"inbound": "agent", …}'``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ..errors import ConfigError
from .asterisk_ws import AsteriskWsAdapter, AsteriskWsConfig
from .audiohook import AudioHookAdapter, AudioHookConfig, check_upgrade
from .audiosocket import AudioSocketAdapter, AudioSocketConfig
from .base import Adapter
from .fork import ForkAdapter, ForkConfig
from .twilio import TwilioAdapter, TwilioConfig

Factory = Callable[[Any, Any], Adapter]


def _telephony(engine: Any) -> Any:
    return getattr(getattr(engine, "settings", None), "telephony", None)


def _env_json(name: str, environ: Mapping[str, str] | None = None, default: Mapping[str, str] | None = None,
              ) -> dict[str, str]:
    raw = (os.environ if environ is None else environ).get(name, "").strip()
    if not raw:
        return dict(default or {})
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a JSON object: {exc}") from exc
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ConfigError(f"{name} must be a JSON object of strings")
    return value


def _language(engine: Any) -> str:
    try:
        return str(engine.settings.asr.language)
    except AttributeError:
        return "auto"


def _max_frame(engine: Any) -> int:
    try:
        return int(engine.settings.server.max_frame_bytes)
    except AttributeError:
        return 1 << 20


def _query(request: Any) -> dict[str, str]:
    path = getattr(request, "path", "") or ""
    return dict(parse_qsl(urlsplit(path).query))


def _twilio(dialect: str | None) -> Factory:
    def factory(engine: Any, request: Any) -> Adapter:
        name = dialect or "twilio"
        tel = _telephony(engine)
        roles = _env_json(f"SPEECHIQ_{name.upper()}_ROLES", default=tel.roles.get(name) if tel else None)
        return TwilioAdapter(TwilioConfig(dialect=dialect, roles=roles, default_language=_language(engine)))
    return factory


def audiohook_config(engine: Any = None, environ: Mapping[str, str] | None = None) -> AudioHookConfig:
    tel = _telephony(engine)
    keys = _env_json("SPEECHIQ_AUDIOHOOK_KEYS", environ, default=tel.audiohook_keys if tel else None)
    from .httpsig import decode_secret

    for key, secret in keys.items():
        if secret:
            try:
                decode_secret(secret)
            except ValueError as exc:
                raise ConfigError(f"SPEECHIQ_AUDIOHOOK_KEYS[{key[:4]}…]: {exc}") from exc
    if not keys:  # fail closed: without AudioHook keys, the server's API keys apply (unsigned)
        try:
            keys = {k: "" for k in engine.settings.server.api_keys}
        except AttributeError:
            keys = {}
    return AudioHookConfig(api_keys=keys, roles=_env_json("SPEECHIQ_AUDIOHOOK_ROLES", environ,
                                                          default=tel.roles.get("audiohook") if tel else None),
                           max_frame_bytes=_max_frame(engine), default_language=_language(engine))


class AudioHookRoute:
    """Factory with the upgrade check the server calls from ``process_request``."""

    def __call__(self, engine: Any, request: Any) -> Adapter:
        return AudioHookAdapter(audiohook_config(engine), upgrade_headers=request.headers)

    def check_upgrade(self, engine: Any, request: Any) -> tuple[int, str] | None:
        return check_upgrade(request.path, request.headers, time.time(), audiohook_config(engine))


def _asterisk(engine: Any, request: Any) -> Adapter:
    return AsteriskWsAdapter(AsteriskWsConfig(default_language=_language(engine)), params=_query(request))


def _fork(flavor: str) -> Factory:
    def factory(engine: Any, request: Any) -> Adapter:
        name = "fork" if flavor in ("auto", "freeswitch") else flavor
        tel = _telephony(engine)
        roles = _env_json(f"SPEECHIQ_{name.upper()}_ROLES", default=tel.roles.get(name) if tel else None)
        config = ForkConfig(flavor=flavor, roles=roles, max_frame_bytes=_max_frame(engine),
                            default_language=_language(engine))
        return ForkAdapter(config, params=_query(request))
    return factory


def audiosocket_config(engine: Any = None, environ: Mapping[str, str] | None = None) -> AudioSocketConfig:
    env = os.environ if environ is None else environ
    tel = _telephony(engine)
    try:
        return AudioSocketConfig(
            codec=env.get("SPEECHIQ_AUDIOSOCKET_CODEC", "").strip().lower() or (
                tel.audiosocket_codec if tel else "slin"),
            role=env.get("SPEECHIQ_AUDIOSOCKET_ROLE", "").strip().lower() or (tel.audiosocket_role if tel else "mixed"),
            join_legs=env.get("SPEECHIQ_AUDIOSOCKET_JOIN_LEGS", "").strip().lower() in ("1", "true", "yes") or (
                bool(tel and tel.audiosocket_join_legs)),
            default_language=_language(engine),
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def audiosocket_factory(engine: Any) -> Adapter:
    """For :func:`speechiq.server.tcp.start_tcp_server`."""
    return AudioSocketAdapter(audiosocket_config(engine))


ROUTES: dict[str, Factory] = {
    "/v1/twilio": _twilio(None),
    "/v1/telnyx": _twilio("telnyx"),
    "/v1/signalwire": _twilio("signalwire"),
    "/v1/audiohook": AudioHookRoute(),
    "/v1/asterisk": _asterisk,
    "/v1/fork": _fork("auto"),
    "/v1/jambonz": _fork("jambonz"),
    "/v1/vonage": _fork("vonage"),
}
