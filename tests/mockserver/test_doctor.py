"""The signature doctor on its own (docs/behaviour.md#signature-doctor): which mistake a refused
signature is named after, in the documented order, and when none is named."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given
from hypothesis import strategies as st

from contracts.signing import new_pem_pair
from mockserver import doctor
from mockserver.doctor import MAX_OTHER_KEYS, diagnose
from mockserver.errors import ExchangeError
from mockserver.params import parse
from mockserver.security import Account, hmac_account, public_key_account

SECRET = "dapimockdemosecret"
ACCOUNT = hmac_account("demo", SECRET)
KEY_ACCOUNT = public_key_account("edkey", new_pem_pair("ed25519")[1])
QUERY = "symbol=BTCUSD_PERP&leverage=20"
BODY = "timestamp=1591702613943&recvWindow=5000"


def hex_of(payload: str | bytes, secret: str | bytes = SECRET) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    data = payload.encode() if isinstance(payload, str) else payload
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def verdict(query: str, body: str, signature: str, in_query: bool = False) -> str | None:
    """The doctor's verdict on a request sending `signature` last in the query or the body."""
    element = f"signature={signature}"
    if in_query:
        query = f"{query}&{element}" if query else element
    else:
        body = f"{body}&{element}" if body else element
    sent = parse(query.encode(), body.encode(), 64)
    return diagnose(ACCOUNT, sent, {ACCOUNT.api_key: ACCOUNT})


@pytest.mark.parametrize(
    ("signed", "named"),
    [
        ("leverage=20&recvWindow=5000&symbol=BTCUSD_PERP&timestamp=1591702613943", "sorted"),
        (QUERY, "the query string alone"),
        (BODY, "the body alone"),
        (f"{QUERY}&{BODY}", "joined with '&'"),
        (f"{QUERY}{BODY}&signature=", "'signature=' element left in"),
        (f"?{QUERY}{BODY}", "leading '?'"),
    ],
)
def test_a_wrong_payload_is_named(signed: str, named: str) -> None:
    found = verdict(QUERY, BODY, hex_of(signed))
    assert found is not None
    assert named in found


def test_the_right_signature_matches_no_mistake() -> None:
    assert verdict(QUERY, BODY, hex_of(QUERY + BODY)) is None


def test_an_unrelated_signature_matches_no_mistake() -> None:
    assert verdict(QUERY, BODY, hex_of(QUERY + BODY, "another secret")) is None


def test_sorted_is_not_claimed_when_the_order_sent_is_already_sorted() -> None:
    # Sorted and sent order agree, so the parameters joined with '&' are the '&' mistake.
    query, body = "leverage=20", "symbol=BTCUSD_PERP&timestamp=1"
    found = verdict(query, body, hex_of(f"{query}&{body}"))
    assert found is not None
    assert "joined with '&'" in found


def test_percent_decoded_values_are_named() -> None:
    found = verdict("", "note=grid+bot%231&timestamp=1", hex_of("note=grid bot#1&timestamp=1"))
    assert found is not None
    assert "percent-decoded" in found


@pytest.mark.parametrize(
    ("sent", "signed", "named"),
    [
        ("note=a%20b&timestamp=1", "note=a+b&timestamp=1", "'+' where '%20' was sent"),
        ("note=a+b&timestamp=1", "note=a%20b&timestamp=1", "'%20' where '+' was sent"),
    ],
)
def test_spaces_encoded_the_other_way_are_named(sent: str, signed: str, named: str) -> None:
    found = verdict("", sent, hex_of(signed))
    assert found is not None
    assert named in found


def test_the_signature_element_left_in_the_query_is_named() -> None:
    found = verdict(QUERY, BODY, hex_of(f"{QUERY}&signature={BODY}"), in_query=True)
    assert found is not None
    assert "'signature=' element left in" in found


@pytest.mark.parametrize(
    ("secret", "named"),
    [
        (SECRET + "\n", "a trailing newline"),
        (SECRET + "\r\n", "a trailing CR LF"),
        (SECRET + " ", "a trailing space"),
        (" " + SECRET, "a leading space"),
    ],
)
def test_a_secret_with_whitespace_is_named(secret: str, named: str) -> None:
    found = verdict(QUERY, BODY, hex_of(QUERY + BODY, secret))
    assert found is not None
    assert named in found


@pytest.mark.parametrize("encode", [base64.b64encode, base64.urlsafe_b64encode])
def test_base64_output_is_named(encode) -> None:
    digest = hmac.new(SECRET.encode(), (QUERY + BODY).encode(), hashlib.sha256).digest()
    sent = encode(digest).decode().replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    found = verdict(QUERY, BODY, sent)
    assert found is not None
    assert "base64" in found


def test_base64_whose_plus_arrived_as_a_space_is_still_named() -> None:
    payload = "timestamp=1"
    for n in range(1000):  # until the digest's base64 holds a '+', sent unencoded
        payload = f"timestamp={n}"
        digest = hmac.new(SECRET.encode(), payload.encode(), hashlib.sha256).digest()
        if "+" in base64.b64encode(digest).decode():
            break
    found = verdict("", payload, base64.b64encode(digest).decode().replace("=", "%3D"))
    assert found is not None
    assert "base64" in found


# -- RSA and Ed25519 ----------------------------------------------------------------------


def asymmetric(api_key: str, key_type: str) -> tuple[Account, str]:
    private, public = new_pem_pair(key_type)
    return public_key_account(api_key, public), private


def ed25519_sign(private_pem: str, payload: bytes) -> str:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = load_pem_private_key(private_pem.encode(), None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    return base64.b64encode(key.sign(payload)).decode()


def asymmetric_verdict(account: Account, signature: str, accounts: list[Account]) -> str | None:
    sent = parse(f"{QUERY}&signature={signature}".encode(), BODY.encode(), 64)
    return diagnose(account, sent, {a.api_key: a for a in [account, *accounts]})


def test_a_value_that_is_not_base64_is_named() -> None:
    account, _ = asymmetric("edkey", "ed25519")
    found = asymmetric_verdict(account, "not*base64", [])
    assert found == "the value is not valid base64"


def test_base64_with_a_plus_sent_unencoded_is_named() -> None:
    account, _ = asymmetric("edkey", "ed25519")
    found = asymmetric_verdict(account, "ab+cd==", [])  # the '+' reads as a space
    assert found is not None
    assert "a '+' sent without percent-encoding reads as a space" in found


def test_a_hex_hmac_sent_to_a_key_account_is_named() -> None:
    account, _ = asymmetric("rsakey", "rsa")
    found = asymmetric_verdict(account, hex_of(QUERY + BODY), [])
    assert found is not None
    assert "looks like a hex HMAC-SHA256 signature" in found


def test_another_accounts_key_is_named() -> None:
    account, _ = asymmetric("mine", "ed25519")
    other, other_private = asymmetric("theirs", "ed25519")
    signature = ed25519_sign(other_private, (QUERY + BODY).encode())
    found = asymmetric_verdict(account, signature.replace("+", "%2B"), [other])
    assert found is not None
    assert "account 'theirs'" in found
    assert "'mine'" in found


def test_no_more_than_32_other_keys_are_tried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor, "KEY_SEARCH_BUDGET_S", 60.0)  # the count alone decides here
    account, _ = asymmetric("mine", "ed25519")
    others = [asymmetric(f"other{n}", "ed25519")[0] for n in range(MAX_OTHER_KEYS)]
    last, last_private = asymmetric("last", "ed25519")
    signature = ed25519_sign(last_private, (QUERY + BODY).encode()).replace("+", "%2B")
    assert asymmetric_verdict(account, signature, [*others, last]) is None
    found = asymmetric_verdict(account, signature, [*others[1:], last])
    assert found is not None
    assert "account 'last'" in found


def test_the_key_search_stops_when_its_time_is_spent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor, "KEY_SEARCH_BUDGET_S", 0.0)  # spent after the first key
    account, _ = asymmetric("mine", "ed25519")
    first = asymmetric("first", "ed25519")[0]
    second, second_private = asymmetric("second", "ed25519")
    signature = ed25519_sign(second_private, (QUERY + BODY).encode()).replace("+", "%2B")
    assert asymmetric_verdict(account, signature, [first, second]) is None
    found = asymmetric_verdict(account, signature, [second, first])
    assert found is not None
    assert "account 'second'" in found


def test_keys_that_cannot_have_made_a_signature_of_that_length_are_not_counted() -> None:
    account, _ = asymmetric("mine", "ed25519")
    hmac_accounts = [hmac_account(f"h{n}", "s") for n in range(MAX_OTHER_KEYS)]
    other, other_private = asymmetric("theirs", "ed25519")
    signature = ed25519_sign(other_private, (QUERY + BODY).encode()).replace("+", "%2B")
    found = asymmetric_verdict(account, signature, [*hmac_accounts, other])
    assert found is not None
    assert "account 'theirs'" in found


# -- never a 500 ---------------------------------------------------------------------------

VALUE = st.lists(
    st.sampled_from(["x", "1", "%20", "+", "%2F", "/", "=", "%C3%A9", "é"]), max_size=6
)
PART = st.lists(st.tuples(st.text("ab+ &?€", max_size=4), VALUE), max_size=4).map(
    lambda pairs: "&".join(f"{quote(n) or 'n'}={''.join(v)}" for n, v in pairs)
)


@given(query=PART, body=PART, signature=st.text(max_size=90), in_query=st.booleans())
def test_the_doctor_never_raises_on_what_a_client_can_send(
    query: str, body: str, signature: str, in_query: bool
) -> None:
    quoted = quote(signature, safe="")
    for account in (ACCOUNT, KEY_ACCOUNT):
        element = f"signature={quoted}"
        q = f"{query}&{element}" if in_query else query
        b = body if in_query else f"{body}&{element}"
        try:
            sent = parse(q.encode(), b.encode(), 64)
        except ExchangeError:
            continue  # refused before any signature check
        verdict = diagnose(account, sent, {a.api_key: a for a in (ACCOUNT, KEY_ACCOUNT)})
        assert verdict is None or isinstance(verdict, str)
