"""Telephony routes: URL path → adapter factory ``(engine, request) -> Adapter`` (see server/app.py).

Configuration comes from the settings tree only (``telephony`` section, see
:class:`speechiq.settings.TelephonySettings`; environment ``SPEECHIQ_TELEPHONY__<KEY>``):
``audiohook_keys`` (API key → base64 client secret; empty secret = unsigned allowed; none = the
server's API keys, unsigned; neither = no authentication), ``audiosocket_codec``,
``audiosocket_role``, ``audiosocket_join_legs`` and ``roles`` (per-platform role overrides).
"""

from __future__ import annotations

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
    """The engine's ``settings.telephony`` (the defaults when the engine has no settings)."""
    tel = getattr(getattr(engine, "settings", None), "telephony", None)
    if tel is None:
        from ..settings import TelephonySettings

        tel = TelephonySettings()
    return tel


def _roles(engine: Any, platform: str) -> Mapping[str, str]:
    return dict(_telephony(engine).roles.get(platform, {}))


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
        return TwilioAdapter(TwilioConfig(dialect=dialect, roles=_roles(engine, name),
                                          default_language=_language(engine)))
    return factory


def audiohook_config(engine: Any = None) -> AudioHookConfig:
    keys = dict(_telephony(engine).audiohook_keys)  # secrets validated as base64 by the settings
    if not keys:  # fail closed: without AudioHook keys, the server's API keys apply (unsigned)
        try:
            keys = {k: "" for k in engine.settings.server.api_keys}
        except AttributeError:
            keys = {}
    return AudioHookConfig(api_keys=keys, roles=_roles(engine, "audiohook"), max_frame_bytes=_max_frame(engine),
                           default_language=_language(engine))


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
        config = ForkConfig(flavor=flavor, roles=_roles(engine, name), max_frame_bytes=_max_frame(engine),
                            default_language=_language(engine))
        return ForkAdapter(config, params=_query(request))
    return factory


def audiosocket_config(engine: Any = None) -> AudioSocketConfig:
    tel = _telephony(engine)
    try:
        return AudioSocketConfig(codec=tel.audiosocket_codec, role=tel.audiosocket_role,
                                 join_legs=tel.audiosocket_join_legs, default_language=_language(engine))
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
