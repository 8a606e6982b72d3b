"""Per-platform channel/track name → speaker role maps (overridable per deployment).

Which party a track carries depends on the leg the platform streams from, not on call direction,
so every adapter takes an ``overrides`` mapping (``{"inbound": "agent", "outbound": "customer"}``)
on top of these defaults (docs/telephony.md, "Role maps").
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ..errors import ConfigError
from ..ingest import Role

_C, _A, _M = Role.CUSTOMER, Role.AGENT, Role.MIXED

DEFAULT_ROLE_MAPS: Mapping[str, Mapping[str, Role]] = MappingProxyType({
    # Twilio-shaped streams on the customer's leg: inbound = what the customer says.
    "twilio": MappingProxyType({"inbound": _C, "outbound": _A}),
    "telnyx": MappingProxyType({"inbound": _C, "outbound": _A}),
    "signalwire": MappingProxyType({"inbound": _C, "outbound": _A}),
    "exotel": MappingProxyType({"inbound": _C, "outbound": _A}),
    # Genesys AudioHook: external = party outside the organisation, internal = agent.
    "audiohook": MappingProxyType({"external": _C, "internal": _A}),
    # FreeSWITCH media bug: read = the party on the bugged leg (left), write = what it hears (right).
    "fork": MappingProxyType({"read": _C, "write": _A, "mixed": _M}),
    "jambonz": MappingProxyType({"read": _C, "write": _A, "mixed": _M}),
    "vonage": MappingProxyType({"mixed": _M}),
    # Asterisk: one mono connection per party; the role comes from the join key / leg or config.
    "audiosocket": MappingProxyType({"default": _M, "agent": _A, "customer": _C, "mixed": _M}),
    "asterisk": MappingProxyType({"default": _M, "agent": _A, "customer": _C, "mixed": _M}),
})


def parse_role(value: str | Role) -> Role:
    """``"agent"`` / ``"customer"`` / ``"mixed"`` / ``"unknown"`` (any case) → :class:`Role`."""
    if isinstance(value, Role):
        return value
    try:
        return Role(str(value).strip().lower())
    except ValueError:
        raise ConfigError(f"unknown role {value!r}: use agent, customer, mixed or unknown") from None


def role_map(platform: str, overrides: Mapping[str, str | Role] | None = None) -> dict[str, Role]:
    """The default map for ``platform`` with ``overrides`` applied (keys are case-insensitive)."""
    base = DEFAULT_ROLE_MAPS.get(platform)
    if base is None:
        raise ConfigError(f"no role map for platform {platform!r}")
    out = dict(base)
    for key, value in (overrides or {}).items():
        out[str(key).lower()] = parse_role(value)
    return out


def lookup(roles: Mapping[str, Role], name: str, default: Role = Role.UNKNOWN) -> Role:
    return roles.get(name.lower(), default)
