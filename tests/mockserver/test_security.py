"""security: accounts, signatures and authenticate()'s order of checks
(docs/behaviour.md#signatures, #timing, #order-of-checks)."""

from __future__ import annotations

import base64
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from mockserver.errors import ExchangeError
from mockserver.params import Params, parse
from mockserver.security import (
    Account,
    AccountError,
    authenticate,
    check_timing,
    hmac_account,
    public_key_account,
)
from tests.helpers import COINM_SECRET, SPOT_KEY, SPOT_SECRET, hmac_hex

# docs/behaviour.md#signatures: Binance's vectors: (secret, query, body, timestamp, signature)
HMAC_VECTORS = [
    (
        COINM_SECRET,
        "symbol=BTCUSD_PERP&leverage=20&recvWindow=5000&timestamp=1591702613943",
        "",
        1591702613943,
        "83a07953347e512d8a0f130921d17abae021972610e032fa4622dfaf84a2b006",
    ),
    (
        COINM_SECRET,
        "symbol=BTCUSD_PERP&leverage=20",
        "recvWindow=5000&timestamp=1591702613943",
        1591702613943,
        "46860a15641daca1e2a79a25a1717854970f6b167e4d0dc111fae97be4d244e1",
    ),
    (
        SPOT_SECRET,
        "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
        "&recvWindow=5000&timestamp=1499827319559",
        "",
        1499827319559,
        "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71",
    ),
    (
        SPOT_SECRET,
        "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC",
        "quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559",
        1499827319559,
        "0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77",
    ),
]
VECTOR_IDS = ["coinm-query", "coinm-split", "spot-query", "spot-split"]

KEY = "testkey1"
SECRET = "testsecret"
NOW = 1591702613943
ACCOUNTS = {KEY: hmac_account(KEY, SECRET)}


def pem_of(
    private_key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey,
) -> str:
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ed25519_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def signed_params(query: str, body: str = "", secret: str = SECRET) -> Params:
    """The parsed request with a correct HMAC signature appended to the body (or the query)."""
    signature = f"signature={hmac_hex(query + body, secret)}"
    if body:
        return parse(query.encode(), f"{body}&{signature}".encode(), 64)
    return parse(f"{query}&{signature}".encode() if query else signature.encode(), b"", 64)


def auth_error(
    params: Params,
    api_key: str | None = KEY,
    server_time_ms: int = NOW,
    recv_window_max: int = 0,
) -> ExchangeError:
    with pytest.raises(ExchangeError) as caught:
        authenticate(api_key, params, ACCOUNTS, server_time_ms, recv_window_max)
    return caught.value


def accepted(params: Params, server_time_ms: int = NOW, recv_window_max: int = 0) -> Account:
    return authenticate(KEY, params, ACCOUNTS, server_time_ms, recv_window_max)


# -- HMAC ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("secret", "query", "body", "timestamp", "signature"), HMAC_VECTORS, ids=VECTOR_IDS
)
def test_spec_hmac_vectors_verify(
    secret: str, query: str, body: str, timestamp: int, signature: str
) -> None:
    assert hmac_account("k", secret).verify((query + body).encode(), signature)


@pytest.mark.parametrize(
    ("secret", "query", "body", "timestamp", "signature"), HMAC_VECTORS, ids=VECTOR_IDS
)
def test_spec_hmac_vectors_verify_in_uppercase_hex(
    secret: str, query: str, body: str, timestamp: int, signature: str
) -> None:
    assert hmac_account("k", secret).verify((query + body).encode(), signature.upper())


@pytest.mark.parametrize(
    ("secret", "query", "body", "timestamp", "signature"), HMAC_VECTORS, ids=VECTOR_IDS
)
def test_spec_hmac_vector_with_one_character_changed_does_not_verify(
    secret: str, query: str, body: str, timestamp: int, signature: str
) -> None:
    account = hmac_account("k", secret)
    changed = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    assert not account.verify((query + body).encode(), changed)
    assert not account.verify((query + body + "0").encode(), signature)


@pytest.mark.parametrize(
    ("secret", "query", "body", "timestamp", "signature"), HMAC_VECTORS, ids=VECTOR_IDS
)
def test_spec_hmac_vectors_authenticate_when_sent_as_a_request(
    secret: str, query: str, body: str, timestamp: int, signature: str
) -> None:
    if body:
        sent = parse(query.encode(), f"{body}&signature={signature}".encode(), 64)
    else:
        sent = parse(f"{query}&signature={signature}".encode(), b"", 64)
    account = hmac_account(SPOT_KEY, secret)
    assert authenticate(SPOT_KEY, sent, {SPOT_KEY: account}, timestamp, 0) is account


def test_hmac_signature_with_non_ascii_characters_does_not_verify() -> None:
    assert not hmac_account("k", "s").verify(b"payload", "é" * 64)


def test_hmac_account_has_type_hmac() -> None:
    assert hmac_account("k", "s").type == "hmac"


def test_hmac_account_with_empty_secret_is_refused() -> None:
    with pytest.raises(AccountError):
        hmac_account("k", "")


@pytest.mark.parametrize("api_key", ["", "has space", "dash-key", "ünïcode", "a" * 65, "key\n"])
def test_api_key_outside_key_form_is_refused(api_key: str) -> None:
    with pytest.raises(AccountError):
        hmac_account(api_key, "secret")


def test_api_key_of_64_alphanumerics_is_accepted() -> None:
    assert hmac_account("aZ9" * 21 + "x", "secret").api_key == "aZ9" * 21 + "x"


def test_account_repr_never_shows_the_secret() -> None:
    assert "topsecret" not in repr(hmac_account("k", "topsecret"))


# -- RSA and Ed25519 ----------------------------------------------------------------------

PAYLOAD = b"symbol=BTCUSD_PERP&leverage=20&timestamp=1591702613943"


def test_rsa_account_verifies_pkcs1v15_sha256_base64_signature(rsa_key: rsa.RSAPrivateKey) -> None:
    account = public_key_account("rsakey", pem_of(rsa_key))
    signature = base64.b64encode(rsa_key.sign(PAYLOAD, padding.PKCS1v15(), hashes.SHA256()))
    assert account.type == "rsa"
    assert account.verify(PAYLOAD, signature.decode())


def test_rsa_signature_over_another_payload_does_not_verify(rsa_key: rsa.RSAPrivateKey) -> None:
    account = public_key_account("rsakey", pem_of(rsa_key))
    signature = base64.b64encode(rsa_key.sign(b"other", padding.PKCS1v15(), hashes.SHA256()))
    assert not account.verify(PAYLOAD, signature.decode())


def test_rsa_pss_signature_does_not_verify(rsa_key: rsa.RSAPrivateKey) -> None:
    account = public_key_account("rsakey", pem_of(rsa_key))
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    signature = base64.b64encode(rsa_key.sign(PAYLOAD, pss, hashes.SHA256()))
    assert not account.verify(PAYLOAD, signature.decode())


def test_ed25519_account_verifies_base64_signature(ed25519_key: ed25519.Ed25519PrivateKey) -> None:
    account = public_key_account("edkey", pem_of(ed25519_key))
    signature = base64.b64encode(ed25519_key.sign(PAYLOAD)).decode()
    assert account.type == "ed25519"
    assert account.verify(PAYLOAD, signature)


def test_ed25519_signature_over_another_payload_does_not_verify(
    ed25519_key: ed25519.Ed25519PrivateKey,
) -> None:
    account = public_key_account("edkey", pem_of(ed25519_key))
    assert not account.verify(PAYLOAD, base64.b64encode(ed25519_key.sign(b"other")).decode())


@pytest.mark.parametrize("signature", ["not base64!", "abc", "é", "", "AAAA", "a" * 64])
def test_non_base64_or_wrong_length_signature_does_not_verify(
    signature: str, rsa_key: rsa.RSAPrivateKey, ed25519_key: ed25519.Ed25519PrivateKey
) -> None:
    assert not public_key_account("rsakey", pem_of(rsa_key)).verify(PAYLOAD, signature)
    assert not public_key_account("edkey", pem_of(ed25519_key)).verify(PAYLOAD, signature)


def test_percent_encoded_base64_signature_authenticates_through_parse(
    ed25519_key: ed25519.Ed25519PrivateKey,
) -> None:
    query = f"symbol=BTCUSD_PERP&leverage=20&timestamp={NOW}"
    signature = base64.b64encode(ed25519_key.sign(query.encode())).decode()
    sent = parse(f"{query}&signature={quote(signature, safe='')}".encode(), b"", 64)
    account = public_key_account("edkey", pem_of(ed25519_key))
    assert authenticate("edkey", sent, {"edkey": account}, NOW, 0) is account


def test_rsa_signature_in_the_body_authenticates_through_parse(rsa_key: rsa.RSAPrivateKey) -> None:
    query, body = "symbol=BTCUSD_PERP&leverage=20", f"recvWindow=9999999&timestamp={NOW}"
    raw = rsa_key.sign((query + body).encode(), padding.PKCS1v15(), hashes.SHA256())
    signature = quote(base64.b64encode(raw).decode(), safe="")
    sent = parse(query.encode(), f"{body}&signature={signature}".encode(), 64)
    account = public_key_account("rsakey", pem_of(rsa_key))
    assert authenticate("rsakey", sent, {"rsakey": account}, NOW, 0) is account


def test_ec_public_key_is_refused() -> None:
    with pytest.raises(AccountError):
        public_key_account("eckey", pem_of(ec.generate_private_key(ec.SECP256R1())))


def test_text_that_is_not_a_pem_public_key_is_refused() -> None:
    with pytest.raises(AccountError):
        public_key_account("k", "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")


def test_public_key_account_with_bad_api_key_form_is_refused(
    ed25519_key: ed25519.Ed25519PrivateKey,
) -> None:
    with pytest.raises(AccountError):
        public_key_account("bad key", pem_of(ed25519_key))


# -- authenticate: each check -------------------------------------------------------------


def test_correctly_signed_request_returns_the_callers_account() -> None:
    assert accepted(signed_params(f"symbol=BTCUSD_PERP&timestamp={NOW}")) is ACCOUNTS[KEY]


@pytest.mark.parametrize("header", [None, "", "has space", "a" * 65, "key-1"])
def test_missing_empty_or_malformed_api_key_is_rejected_with_2014(header: str | None) -> None:
    error = auth_error(signed_params(f"timestamp={NOW}"), api_key=header)
    assert (error.status, error.code, error.msg) == (401, -2014, "API-key format invalid.")


def test_unknown_api_key_is_rejected_with_2015() -> None:
    error = auth_error(signed_params(f"timestamp={NOW}"), api_key="unknownkey")
    assert (error.status, error.code, error.msg) == (
        401,
        -2015,
        "Invalid API-key, IP, or permissions for action",
    )


@pytest.mark.parametrize("timestamp", [None, "", "abc", "1e3", "+1591702613943", "1591702613943.0"])
def test_missing_or_malformed_timestamp_is_rejected_with_1102(timestamp: str | None) -> None:
    query = "symbol=BTCUSD_PERP" if timestamp is None else f"timestamp={timestamp}"
    error = auth_error(signed_params(query))
    assert (error.status, error.code, error.msg) == (
        400,
        -1102,
        "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.",
    )


@pytest.mark.parametrize("query", [f"timestamp={NOW}", f"timestamp={NOW}&signature="])
def test_missing_or_empty_signature_is_rejected_with_1102(query: str) -> None:
    error = auth_error(parse(query.encode(), b"", 64))
    assert (error.status, error.code, error.msg) == (
        400,
        -1102,
        "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.",
    )


@pytest.mark.parametrize("recv_window", ["abc", "-1", "", "5000.0", "+5000"])
def test_malformed_recv_window_is_rejected_with_1130(recv_window: str) -> None:
    error = auth_error(signed_params(f"recvWindow={recv_window}&timestamp={NOW}"))
    assert (error.status, error.code, error.msg) == (
        400,
        -1130,
        "Data sent for parameter 'recvWindow' is not valid.",
    )


def test_recv_window_over_the_configured_cap_is_rejected_with_1130() -> None:
    error = auth_error(signed_params(f"recvWindow=60001&timestamp={NOW}"), recv_window_max=60000)
    assert (error.code, error.msg) == (-1130, "Data sent for parameter 'recvWindow' is not valid.")


def test_recv_window_equal_to_the_configured_cap_is_accepted() -> None:
    assert accepted(signed_params(f"recvWindow=60000&timestamp={NOW}"), recv_window_max=60000)


def test_large_recv_window_is_accepted_without_a_cap() -> None:
    sent = signed_params(f"recvWindow=9999999&timestamp={NOW - 9999999}")
    assert accepted(sent, recv_window_max=0)


def test_wrong_signature_is_rejected_with_1022() -> None:
    sent = parse(f"timestamp={NOW}&signature={'0' * 64}".encode(), b"", 64)
    error = auth_error(sent)
    assert (error.status, error.code, error.msg) == (
        400,
        -1022,
        "Signature for this request is not valid.",
    )


def test_signature_made_with_another_secret_is_rejected_with_1022() -> None:
    assert auth_error(signed_params(f"timestamp={NOW}", secret="other")).code == -1022


def test_signature_not_last_is_rejected_with_1022_even_when_it_is_correct() -> None:
    payload = f"symbol=BTCUSD_PERP&timestamp={NOW}"
    sent = parse(f"signature={hmac_hex(payload, SECRET)}&{payload}".encode(), b"", 64)
    error = auth_error(sent)
    assert (error.status, error.code) == (400, -1022)


# -- authenticate: the timing window --------------------------------------------------------

AHEAD = "Timestamp for this request was 1000ms ahead of the server's time."
TOO_OLD = "Timestamp for this request is outside of the recvWindow."


def test_timestamp_999ms_ahead_is_accepted() -> None:
    assert accepted(signed_params(f"timestamp={NOW + 999}"))


def test_timestamp_1000ms_ahead_is_rejected_with_1021() -> None:
    error = auth_error(signed_params(f"timestamp={NOW + 1000}"))
    assert (error.status, error.code, error.msg) == (400, -1021, AHEAD)


def test_timestamp_exactly_recv_window_old_is_accepted() -> None:
    assert accepted(signed_params(f"recvWindow=3000&timestamp={NOW - 3000}"))


def test_stale_timestamp_is_rejected_with_1021() -> None:
    error = auth_error(signed_params(f"recvWindow=3000&timestamp={NOW - 3001}"))
    assert (error.status, error.code, error.msg) == (400, -1021, TOO_OLD)


def test_recv_window_defaults_to_5000() -> None:
    assert accepted(signed_params(f"timestamp={NOW - 5000}"))
    assert auth_error(signed_params(f"timestamp={NOW - 5001}")).msg == TOO_OLD


def test_recv_window_zero_accepts_only_now_and_the_ahead_tolerance() -> None:
    assert accepted(signed_params(f"recvWindow=0&timestamp={NOW}"))
    assert accepted(signed_params(f"recvWindow=0&timestamp={NOW + 999}"))
    assert auth_error(signed_params(f"recvWindow=0&timestamp={NOW - 1}")).msg == TOO_OLD


def test_check_timing_boundaries() -> None:
    check_timing(NOW + 999, 5000, NOW)
    check_timing(NOW - 5000, 5000, NOW)
    with pytest.raises(ExchangeError, match="ahead"):
        check_timing(NOW + 1000, 5000, NOW)
    with pytest.raises(ExchangeError, match="outside"):
        check_timing(NOW - 5001, 5000, NOW)


# -- authenticate: docs/behaviour.md#order-of-checks -----------------------------------------------


def test_bad_key_form_is_reported_before_a_stale_timestamp() -> None:
    error = auth_error(signed_params(f"timestamp={NOW - 60000}"), api_key="bad key")
    assert error.code == -2014


def test_unknown_key_is_reported_before_a_missing_timestamp() -> None:
    assert auth_error(parse(b"symbol=X", b"", 64), api_key="unknown").code == -2015


def test_missing_timestamp_is_reported_before_a_missing_signature() -> None:
    error = auth_error(parse(b"symbol=X", b"", 64))
    assert (error.code, error.msg) == (
        -1102,
        "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.",
    )


def test_missing_signature_is_reported_before_a_bad_recv_window() -> None:
    error = auth_error(parse(f"recvWindow=abc&timestamp={NOW}".encode(), b"", 64))
    assert (error.code, error.msg) == (
        -1102,
        "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.",
    )


def test_bad_recv_window_is_reported_before_a_stale_timestamp() -> None:
    assert auth_error(signed_params(f"recvWindow=-1&timestamp={NOW - 60000}")).code == -1130


def test_stale_timestamp_is_reported_before_a_wrong_signature() -> None:
    sent = parse(f"timestamp={NOW - 60000}&signature={'0' * 64}".encode(), b"", 64)
    assert auth_error(sent).code == -1021


def test_stale_timestamp_is_reported_before_a_signature_that_is_not_last() -> None:
    sent = parse(f"signature={'0' * 64}&timestamp={NOW - 60000}".encode(), b"", 64)
    assert auth_error(sent).code == -1021
