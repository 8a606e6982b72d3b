"""RFC 9421 HMAC signatures as Genesys AudioHook uses them: the documented test vector and failures."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.datastructures import Headers

from speechiq.adapters import httpsig
from speechiq.adapters.audiohook import AudioHookConfig, check_upgrade

TARGET = "/api/v1/voicebiometrics/ws"
API_KEY = "SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh"
SECRET = "TXlTdXBlclNlY3JldEtleVRlbGxOby0xITJAMyM0JDU="
CREATED = 1641013200
SIG_INPUT = ('sig1=("@request-target" "@authority" "audiohook-organization-id" "audiohook-session-id" '
             '"audiohook-correlation-id" "x-api-key");keyid="SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh";'
             'nonce="VGhpc0lzQVVuaXF1ZU5vbmNl";alg="hmac-sha256";created=1641013200;expires=3282026430')
SIGNATURE = "sig1=:NZBwyBHRRyRoeLqy1IzOa9VYBuI8TgMFt2GRDkDuJh4=:"


def vector(**changes: str) -> dict[str, str]:
    h = {
        "Host": "audiohook.example.com",
        "Audiohook-Organization-Id": "d7934305-0972-4844-938e-9060eef73d05",
        "Audiohook-Session-Id": "30b0e395-84d3-4570-ac13-9a62d8f514c0",
        "Audiohook-Correlation-Id": "e160e428-53e2-487c-977d-96989bf5c99d",
        "X-API-KEY": API_KEY,
        "Signature-Input": SIG_INPUT,
        "Signature": SIGNATURE,
    }
    h.update(changes)
    return {k: v for k, v in h.items() if v}


def secret_for(keyid: str) -> bytes | None:
    return httpsig.decode_secret(SECRET) if keyid == API_KEY else None


def check(headers: dict[str, str], now: float = CREATED + 1, secrets=secret_for) -> httpsig.VerifyResult:
    return httpsig.verify(headers, request_target=TARGET, secret_for=secrets, now=now)


def test_documented_vector_verifies() -> None:
    r = check(vector())
    assert r.ok and r.keyid == API_KEY


def test_sign_reproduces_the_vector() -> None:
    h = httpsig.sign(vector(), request_target=TARGET, key_id=API_KEY, secret_b64=SECRET,
                     nonce="VGhpc0lzQVVuaXF1ZU5vbmNl", created=CREATED, expires=3282026430)
    assert h == {"Signature-Input": SIG_INPUT, "Signature": SIGNATURE}


def test_header_order_case_and_default_port_do_not_matter() -> None:
    h = dict(reversed(list(vector(Host="AudioHook.example.com:443").items())))
    assert check({k.lower(): v for k, v in h.items()}).ok
    ws_headers = Headers()
    for k, v in h.items():
        ws_headers[k] = v
    assert check(ws_headers).ok  # type: ignore[arg-type]


@pytest.mark.parametrize(("changes", "now", "code"), [
    ({"Audiohook-Session-Id": "30b0e395-84d3-4570-ac13-9a62d8f514c1"}, CREATED + 1, "failed"),
    ({"Host": "evil.example.com"}, CREATED + 1, "failed"),
    ({"Signature": "sig1=:AAAAyBHRRyRoeLqy1IzOa9VYBuI8TgMFt2GRDkDuJh4=:"}, CREATED + 1, "failed"),
    ({}, CREATED + 14, "expired"),
    ({}, CREATED - 10, "precondition"),
    ({"Signature": "", "Signature-Input": ""}, CREATED + 1, "unsigned"),
    ({"Signature": ""}, CREATED + 1, "invalid"),
    ({"Signature-Input": "sig1=(\"@request-target\""}, CREATED + 1, "invalid"),
    ({"Signature-Input": SIG_INPUT.replace(' "x-api-key"', "")}, CREATED + 1, "precondition"),
    ({"Signature-Input": SIG_INPUT.replace('nonce="VGhpc0lzQVVuaXF1ZU5vbmNl";', "")}, CREATED + 1, "precondition"),
    ({"Signature-Input": SIG_INPUT.replace("hmac-sha256", "rsa-pss-sha512")}, CREATED + 1, "unsupported"),
    ({"Signature-Input": SIG_INPUT.replace('"@authority"', '"@method"')}, CREATED + 1, "unsupported"),
    ({"Signature-Input": SIG_INPUT.replace('"x-api-key")', '"x-api-key" "x-api-key")')}, CREATED + 1, "invalid"),
])
def test_failures(changes: dict[str, str], now: float, code: str) -> None:
    assert check(vector(**changes), now=now).code == code


def test_unknown_key_fails_like_a_bad_signature() -> None:
    r = check(vector(), secrets=lambda _k: None)
    assert r.code == "failed" and not r.ok


def test_decode_secret_rejects_non_base64() -> None:
    with pytest.raises(ValueError):
        httpsig.decode_secret("not base64!")


# ---- the upgrade check the server runs -----------------------------------------------------------
CONFIG = AudioHookConfig(api_keys={API_KEY: SECRET, "open-key": ""})


def test_check_upgrade_accepts_the_signed_vector() -> None:
    assert check_upgrade(TARGET, vector(), CREATED + 2, CONFIG) is None


@pytest.mark.parametrize(("changes", "status"), [
    ({"X-API-KEY": "other"}, 401),
    ({"Audiohook-Correlation-Id": ""}, 400),
    ({"Signature": "", "Signature-Input": ""}, 401),
    ({"Audiohook-Organization-Id": "d7934305-0972-4844-938e-9060eef73d06"}, 401),
    ({"Signature-Input": "sig1=garbage("}, 400),
])
def test_check_upgrade_refusals(changes: dict[str, str], status: int) -> None:
    refusal = check_upgrade(TARGET, vector(**changes), CREATED + 2, CONFIG)
    assert refusal is not None and refusal[0] == status and refusal[1]


def test_check_upgrade_with_a_misconfigured_secret_refuses_with_500() -> None:
    refusal = check_upgrade(TARGET, vector(), CREATED + 2, AudioHookConfig(api_keys={API_KEY: "not base64!"}))
    assert refusal is not None and refusal[0] == 500


def test_check_upgrade_unsigned_key_and_no_auth() -> None:
    unsigned = vector(**{"X-API-KEY": "open-key", "Signature": "", "Signature-Input": ""})
    assert check_upgrade(TARGET, unsigned, CREATED, CONFIG) is None
    assert check_upgrade(TARGET, unsigned, CREATED, AudioHookConfig()) is None
    # signed with the vector's key id while presenting another key: refused
    assert check_upgrade(TARGET, vector(**{"X-API-KEY": "open-key"}), CREATED + 1, CONFIG) is not None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200), st.text(max_size=80))
def test_fuzz_signature_headers_never_raise(sig_input: str, sig: str) -> None:
    r = check(vector(**{"Signature-Input": sig_input or "x", "Signature": sig or "y"}))
    assert isinstance(r, httpsig.VerifyResult) and not r.ok
