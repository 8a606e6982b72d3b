"""RFC 9421 HTTP Message Signatures (``hmac-sha256``), as Genesys AudioHook signs its upgrade request.

Verification follows the AudioHook reference authenticator: the ``Signature-Input`` /
``Signature`` structured-field dictionaries are parsed (``http-sf``), the required components must
all be covered, ``created``/``expires``/age are checked against an injected clock with a small skew,
the signature base is rebuilt from the parsed (re-serialised) inner list, and the HMAC key is the
base64-decoded client secret. Comparisons are constant-time; an unknown key is still computed with
a random key so failures take the same path.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import http_sf
from http_sf.innerlist import ser_innerlist

AUDIOHOOK_COMPONENTS = (
    "@request-target", "@authority", "audiohook-organization-id", "audiohook-session-id",
    "audiohook-correlation-id", "x-api-key",
)
MAX_CLOCK_SKEW_S = 3.0
MAX_SIGNATURE_AGE_S = 10.0
_DERIVED = frozenset({"@request-target", "@authority"})


@dataclass(frozen=True)
class VerifyResult:
    """``code``: verified | unsigned | invalid | expired | precondition | unsupported | failed."""

    code: str
    reason: str = ""
    keyid: str | None = None

    @property
    def ok(self) -> bool:
        return self.code == "verified"


def _canon(value: str) -> str:
    return " ".join(part.strip() for part in value.strip().splitlines() if part.strip())


def header_dict(headers: Any) -> dict[str, str]:
    """Lower-cased name → canonical value (repeated fields joined with ``", "``).

    Accepts a plain mapping or a websockets/``email.message``-style object with ``get_all``.
    """
    out: dict[str, list[str]] = {}
    items: Iterable[tuple[str, str]]
    if hasattr(headers, "raw_items"):
        items = headers.raw_items()
    elif isinstance(headers, Mapping):
        items = headers.items()
    else:
        items = list(headers)
    for name, value in items:
        out.setdefault(str(name).lower(), []).append(_canon(str(value)))
    return {k: ", ".join(v) for k, v in out.items()}


def authority(host: str) -> str:
    """``@authority``: the Host header, lower-cased, default ports (443, 80) dropped."""
    h = host.strip().lower()
    for port in (":443", ":80"):
        if h.endswith(port):
            return h[: -len(port)]
    return h


def _parse_dict(value: str | None, what: str) -> dict[str, Any]:
    if not value:
        return {}
    try:
        parsed = http_sf.parse(value.encode("ascii"), tltype="dictionary")
    except (UnicodeError, ValueError, http_sf.StructuredFieldError) as exc:
        raise ValueError(f"cannot parse {what}: {exc}") from exc
    if not isinstance(parsed, dict):
        raise ValueError(f"{what} is not a dictionary")
    return parsed


def _component_value(name: str, hdrs: Mapping[str, str], request_target: str) -> str | None:
    if name == "@request-target":
        return request_target
    if name == "@authority":
        host = hdrs.get("host")
        return authority(host) if host else None
    return hdrs.get(name)


def signature_base(components: list[tuple[str, dict[str, Any]]], params: dict[str, Any],
                   hdrs: Mapping[str, str], request_target: str) -> str:
    """The RFC 9421 signature base; raises ValueError for an unresolvable component."""
    lines = []
    for name, _p in components:
        value = _component_value(name, hdrs, request_target)
        if value is None:
            raise ValueError(f"component {name!r} is not present in the request")
        lines.append(f'"{name}": {value}')
    lines.append(f'"@signature-params": {ser_innerlist((components, params))}')
    return "\n".join(lines)


def verify(
    headers: Any,
    *,
    request_target: str,
    secret_for: Callable[[str], bytes | None],
    now: float,
    required: Iterable[str] = AUDIOHOOK_COMPONENTS,
    max_age_s: float = MAX_SIGNATURE_AGE_S,
    skew_s: float = MAX_CLOCK_SKEW_S,
) -> VerifyResult:
    """Verify the request's first signature. ``secret_for(keyid)`` returns the HMAC key (None = unknown)."""
    hdrs = header_dict(headers)
    try:
        inputs = _parse_dict(hdrs.get("signature-input"), "Signature-Input")
        sigs = _parse_dict(hdrs.get("signature"), "Signature")
    except ValueError as exc:
        return VerifyResult("invalid", str(exc))
    if not inputs and not sigs:
        return VerifyResult("unsigned", "no Signature / Signature-Input header")
    if not inputs or not sigs:
        return VerifyResult("invalid", "Signature and Signature-Input must come together")
    label, member = next(iter(inputs.items()))
    sig_item = sigs.get(label)
    if not (isinstance(sig_item, tuple) and isinstance(sig_item[0], bytes)):
        return VerifyResult("invalid", f"no byte-sequence signature labelled {label!r}")
    if not (isinstance(member, tuple) and isinstance(member[0], list)):
        return VerifyResult("invalid", f"Signature-Input {label!r} is not an inner list")
    components, params = member
    names = []
    for item in components:
        if not isinstance(item[0], str) or item[1]:
            return VerifyResult("invalid", "covered components must be plain strings")
        if item[0].startswith("@") and item[0] not in _DERIVED:
            return VerifyResult("unsupported", f"derived component {item[0]!r} is not supported")
        names.append(item[0])
    if len(set(names)) != len(names):
        return VerifyResult("invalid", "duplicate covered component")
    missing = [c for c in required if c not in names]
    if missing:
        return VerifyResult("precondition", f"signature does not cover {', '.join(missing)}")
    for key, kind in (("created", int), ("expires", int), ("keyid", str), ("nonce", str), ("alg", str)):
        if key in params and (not isinstance(params[key], kind) or isinstance(params[key], bool)):
            return VerifyResult("invalid", f"signature parameter {key!r} has the wrong type")
    unknown = set(params) - {"created", "expires", "keyid", "nonce", "alg"}
    if unknown:
        return VerifyResult("invalid", f"unknown signature parameter(s) {sorted(unknown)}")
    keyid = params.get("keyid")
    if not keyid:
        return VerifyResult("precondition", "signature has no keyid")
    if not params.get("nonce"):
        return VerifyResult("precondition", "signature has no nonce", keyid)
    if params.get("alg", "hmac-sha256") != "hmac-sha256":
        return VerifyResult("unsupported", f"algorithm {params['alg']!r} is not supported", keyid)
    created, expires = params.get("created"), params.get("expires")
    if created is None:
        return VerifyResult("precondition", "signature has no created time", keyid)
    if created > now + skew_s:
        return VerifyResult("precondition", "signature created in the future", keyid)
    if expires is not None and expires < now - skew_s:
        return VerifyResult("expired", "signature expired", keyid)
    if now - created > max_age_s + skew_s:
        return VerifyResult("expired", f"signature older than {max_age_s:g} s", keyid)
    try:
        base = signature_base(components, params, hdrs, request_target)
    except ValueError as exc:
        return VerifyResult("precondition", str(exc), keyid)
    key = secret_for(keyid)
    good = key is not None
    computed = hmac.new(key if good else os.urandom(32), base.encode("utf-8"), hashlib.sha256).digest()
    if hmac.compare_digest(computed, sig_item[0]) and good:
        return VerifyResult("verified", "", keyid)
    return VerifyResult("failed", "signature does not match" if good else "unknown key", keyid)


def decode_secret(secret_b64: str) -> bytes:
    """A client secret as configured in Genesys (base64) → HMAC key bytes; ValueError if not base64."""
    try:
        return base64.b64decode(secret_b64.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeError) as exc:
        raise ValueError(f"client secret is not valid base64: {exc}") from exc


def sign(
    headers: Mapping[str, str],
    *,
    request_target: str,
    key_id: str,
    secret_b64: str,
    nonce: str,
    created: int,
    expires: int | None = None,
    components: Iterable[str] = AUDIOHOOK_COMPONENTS,
    label: str = "sig1",
) -> dict[str, str]:
    """Client side: the ``Signature-Input`` and ``Signature`` headers for ``headers`` (needs ``Host``)."""
    hdrs = header_dict(headers)
    comps: list[tuple[str, dict[str, Any]]] = [(c, {}) for c in components]
    params: dict[str, Any] = {"keyid": key_id, "nonce": nonce, "alg": "hmac-sha256", "created": int(created)}
    if expires is not None:
        params["expires"] = int(expires)
    base = signature_base(comps, params, hdrs, request_target)
    digest = hmac.new(decode_secret(secret_b64), base.encode("utf-8"), hashlib.sha256).digest()
    return {
        "Signature-Input": f"{label}={ser_innerlist((comps, params))}",
        "Signature": f"{label}=:{base64.b64encode(digest).decode('ascii')}:",
    }
