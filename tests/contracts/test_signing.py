"""The signers of contracts.signing sign the prepared bytes, per docs/behaviour.md#signatures."""

from __future__ import annotations

import base64
from urllib.parse import unquote, urlsplit

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.hashes import SHA256
from hypothesis import given
from hypothesis import strategies as st

from contracts.signing import (
    Ed25519Auth,
    HmacAuth,
    RsaAuth,
    auth_from_private_key,
    load_private_key,
    new_pem_pair,
    total_params,
)
from tests.helpers import COINM_SECRET, SPOT_KEY, SPOT_SECRET, hmac_hex

URL = "http://mock.invalid/dapi/v1/leverage"

# docs/behaviour.md#signatures vectors: (secret, raw query, raw body, expected hex signature).
HMAC_VECTORS = [
    pytest.param(
        COINM_SECRET,
        "symbol=BTCUSD_PERP&leverage=20&recvWindow=5000&timestamp=1591702613943",
        "",
        "83a07953347e512d8a0f130921d17abae021972610e032fa4622dfaf84a2b006",
        id="coinm-query-only",
    ),
    pytest.param(
        COINM_SECRET,
        "symbol=BTCUSD_PERP&leverage=20",
        "recvWindow=5000&timestamp=1591702613943",
        "46860a15641daca1e2a79a25a1717854970f6b167e4d0dc111fae97be4d244e1",
        id="coinm-query-plus-body",
    ),
    pytest.param(
        SPOT_SECRET,
        "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
        "&recvWindow=5000&timestamp=1499827319559",
        "",
        "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71",
        id="spot-query-only",
    ),
    pytest.param(
        SPOT_SECRET,
        "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC",
        "quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559",
        "0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77",
        id="spot-query-plus-body",
    ),
]


def _prepare(
    query: str, body: str | bytes, auth: requests.auth.AuthBase
) -> requests.PreparedRequest:
    url = f"{URL}?{query}" if query else URL
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
    return requests.Request("POST", url, data=body or None, headers=headers, auth=auth).prepare()


def _query(prepared: requests.PreparedRequest) -> str:
    return urlsplit(prepared.url or "").query


def _body(prepared: requests.PreparedRequest) -> bytes:
    body = prepared.body or b""
    return body.encode() if isinstance(body, str) else body


def _split_signature(prepared: requests.PreparedRequest) -> tuple[bytes, str]:
    """What a server does: take the trailing signature element off body, else query."""
    query, body = _query(prepared), _body(prepared)
    if body:
        signed_body, _, raw_value = body.rpartition(b"&signature=")
        return query.encode() + signed_body, raw_value.decode()
    signed_query, sep, value = query.rpartition("&signature=")
    if not sep:
        signed_query, value = "", query.removeprefix("signature=")
    return signed_query.encode(), value


@pytest.mark.parametrize(("secret", "query", "body", "expected"), HMAC_VECTORS)
def test_hmac_signer_reproduces_the_spec_vectors(
    secret: str, query: str, body: str, expected: str
) -> None:
    prepared = _prepare(query, body.encode(), HmacAuth(SPOT_KEY, secret))

    if body:
        assert _query(prepared) == query
        assert _body(prepared) == f"{body}&signature={expected}".encode()
        assert prepared.headers["Content-Length"] == str(len(_body(prepared)))
    else:
        assert _query(prepared) == f"{query}&signature={expected}"
        assert not _body(prepared)
    assert prepared.headers["X-MBX-APIKEY"] == SPOT_KEY


def test_hmac_signature_is_lowercase_hex_over_query_then_body() -> None:
    prepared = _prepare("a=1", "b=2", HmacAuth("k", "s"))
    payload, value = _split_signature(prepared)

    assert payload == b"a=1b=2"
    assert value == hmac_hex(b"a=1b=2", "s")
    assert value == value.lower()


def test_already_encoded_query_bytes_are_signed_and_kept_as_they_are() -> None:
    query = "symbol=BTC%2FUSD&note=a+b%20c&x=%E2%82%AC"
    prepared = _prepare(query, "", HmacAuth("k", "s"))

    assert _query(prepared) == query + "&signature=" + hmac_hex(query.encode(), "s")


def test_signature_alone_in_the_query_when_there_are_no_parameters() -> None:
    prepared = _prepare("", "", HmacAuth("k", "s"))

    assert _query(prepared) == "signature=" + hmac_hex(b"", "s")


def test_str_body_is_sent_as_the_bytes_that_were_signed() -> None:
    prepared = _prepare("", "symbol=BTCUSD_PERP&leverage=20", HmacAuth("k", "s"))

    assert isinstance(prepared.body, bytes)
    assert prepared.body.endswith(
        b"&signature=" + hmac_hex(b"symbol=BTCUSD_PERP&leverage=20", "s").encode()
    )


def test_fragment_is_left_out_of_the_payload_and_kept_last() -> None:
    auth = HmacAuth("k", "s")
    prepared = requests.Request("GET", URL + "?a=1#frag", auth=auth).prepare()

    assert prepared.url == f"{URL}?a=1&signature={hmac_hex(b'a=1', 's')}#frag"


def test_streamed_body_cannot_be_signed() -> None:
    with pytest.raises(TypeError, match="stream"):
        requests.Request("POST", URL, data=iter([b"a=1"]), auth=HmacAuth("k", "s")).prepare()


def test_empty_api_key_or_secret_is_refused() -> None:
    with pytest.raises(ValueError):
        HmacAuth("", "s")
    with pytest.raises(ValueError):
        HmacAuth("k", "")


def test_repr_shows_no_secret() -> None:
    assert "topsecret" not in repr(HmacAuth("apikey", "topsecret"))


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ed_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def _pem(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.mark.parametrize(("query", "body"), [("a=1&b=2", ""), ("a=1", "b=2"), ("", "a=1&b=2")])
def test_rsa_signature_is_pkcs1v15_sha256_over_query_plus_body(
    rsa_key: rsa.RSAPrivateKey, query: str, body: str
) -> None:
    prepared = _prepare(query, body, RsaAuth("k", _pem(rsa_key)))
    payload, value = _split_signature(prepared)

    assert payload == (query + body).encode()
    assert not set("+/=") & set(value), "base64 must be percent-encoded"
    raw = base64.b64decode(unquote(value), validate=True)
    assert len(raw) == 256
    rsa_key.public_key().verify(raw, payload, padding.PKCS1v15(), SHA256())


@pytest.mark.parametrize(("query", "body"), [("a=1&b=2", ""), ("a=1", "b=2"), ("", "a=1&b=2")])
def test_ed25519_signature_is_rfc8032_over_query_plus_body(
    ed_key: ed25519.Ed25519PrivateKey, query: str, body: str
) -> None:
    prepared = _prepare(query, body, Ed25519Auth("k", _pem(ed_key).encode()))
    payload, value = _split_signature(prepared)

    assert payload == (query + body).encode()
    assert not set("+/=") & set(value)
    raw = base64.b64decode(unquote(value), validate=True)
    assert len(raw) == 64
    ed_key.public_key().verify(raw, payload)


def test_factory_reads_the_key_type_from_the_pem(
    rsa_key: rsa.RSAPrivateKey, ed_key: ed25519.Ed25519PrivateKey
) -> None:
    traditional_rsa = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    assert isinstance(auth_from_private_key("k", _pem(rsa_key)), RsaAuth)
    assert isinstance(auth_from_private_key("k", traditional_rsa), RsaAuth)
    assert isinstance(auth_from_private_key("k", _pem(ed_key)), Ed25519Auth)
    assert isinstance(auth_from_private_key("k", ed_key), Ed25519Auth)


def test_encrypted_pem_needs_its_password(rsa_key: rsa.RSAPrivateKey) -> None:
    pem = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    assert isinstance(auth_from_private_key("k", pem, password=b"pw"), RsaAuth)
    with pytest.raises(TypeError):
        load_private_key(pem)


def test_unsupported_or_mismatched_keys_are_refused(
    rsa_key: rsa.RSAPrivateKey, ed_key: ed25519.Ed25519PrivateKey
) -> None:
    ec_pem = _pem(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(TypeError, match="RSA or Ed25519"):
        auth_from_private_key("k", ec_pem)
    with pytest.raises(TypeError):
        RsaAuth("k", ed_key)
    with pytest.raises(TypeError):
        Ed25519Auth("k", rsa_key)


def test_total_params_joins_without_separator() -> None:
    assert total_params("a=1", b"b=2") == b"a=1b=2"
    assert total_params(b"a=1", None) == b"a=1"


_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCXYZ_", min_size=1, max_size=8)
_values = st.text(min_size=0, max_size=12)
_param_lists = st.lists(st.tuples(_names, _values), max_size=6)


@given(query=_param_lists, body=_param_lists, secret=st.text(min_size=1, max_size=20))
def test_any_placement_verifies_with_a_server_style_check(
    query: list[tuple[str, str]], body: list[tuple[str, str]], secret: str
) -> None:
    prepared = requests.Request(
        "POST", URL, params=query, data=body or None, auth=HmacAuth("k", secret)
    ).prepare()
    payload, value = _split_signature(prepared)

    assert value == hmac_hex(payload, secret)
    sent_query = _query(prepared)
    if body:
        assert prepared.headers["Content-Length"] == str(len(_body(prepared)))
        assert "signature=" not in sent_query
    else:
        assert sent_query.endswith("signature=" + value)


@pytest.mark.parametrize("key_type", ["rsa", "ed25519"])
def test_a_new_pem_pair_signs_with_its_private_half_and_verifies_with_its_public(
    key_type: str,
) -> None:
    private_pem, public_pem = new_pem_pair(key_type)
    key = load_private_key(private_pem)
    public = serialization.load_pem_public_key(public_pem.encode())
    if key_type == "rsa":
        assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
        assert isinstance(public, rsa.RSAPublicKey)
        signature = key.sign(b"x", padding.PKCS1v15(), SHA256())
        public.verify(signature, b"x", padding.PKCS1v15(), SHA256())
    else:
        assert isinstance(key, ed25519.Ed25519PrivateKey)
        assert isinstance(public, ed25519.Ed25519PublicKey)
        public.verify(key.sign(b"x"), b"x")


def test_a_pem_pair_of_an_unknown_type_is_refused() -> None:
    with pytest.raises(ValueError, match="hmac"):
        new_pem_pair("hmac")
