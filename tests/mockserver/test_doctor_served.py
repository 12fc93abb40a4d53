"""The signature doctor seen from clients that really make each mistake, over HTTP to a served
mock (docs/behaviour.md#signature-doctor): the journal's reason and the request log name the
mistake, and the answer stays exactly Binance's -1022."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from contracts.signing import new_pem_pair
from mockserver.config import DEMO_API_KEY, DEMO_SECRET
from mockserver.harness import MockServer
from tests.mockserver.test_cli import serving

PATH = "/dapi/v1/leverage"
BINANCE_1022 = '{"code":-1022,"msg":"Signature for this request is not valid."}'
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    with MockServer() as served:
        yield served


@pytest.fixture
def url(server: MockServer) -> str:
    server.handle().reset()
    return server.url


def now_ms() -> int:
    return int(time.time() * 1000)


def leverage_params() -> list[tuple[str, str]]:
    """What a client sends to change leverage, in the order it builds them."""
    return [
        ("symbol", "BTCUSD_PERP"),
        ("leverage", "20"),
        ("recvWindow", "5000"),
        ("timestamp", str(now_ms())),
    ]


def hmac_digest(payload: str, secret: str = DEMO_SECRET) -> bytes:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()


def send(
    url: str, query: str = "", body: str = "", api_key: str = DEMO_API_KEY
) -> requests.Response:
    target = f"{url}{PATH}?{query}" if query else f"{url}{PATH}"
    headers = {**FORM, "X-MBX-APIKEY": api_key}
    return requests.post(target, data=body.encode(), headers=headers, timeout=10)


def refused_because(url: str, response: requests.Response) -> str:
    """The journal's reason for a refusal answered exactly as Binance answers -1022."""
    assert (response.status_code, response.text) == (400, BINANCE_1022)
    entries = requests.get(f"{url}/__admin/requests", timeout=10).json()["requests"]
    reason = entries[-1]["reason"]
    assert isinstance(reason, str)
    return reason


def test_a_client_that_signs_sorted_parameters_but_sends_them_unsorted(url: str) -> None:
    params = leverage_params()
    signature = hmac_digest(urlencode(sorted(params))).hex()
    response = send(url, f"{urlencode(params)}&signature={signature}")
    assert "it matches the parameters sorted by name" in refused_because(url, response)


def test_a_client_that_signs_values_before_encoding_them(url: str) -> None:
    params = [*leverage_params(), ("clientTag", "grid bot #1/2")]
    signed = "&".join(f"{name}={value}" for name, value in params)
    response = send(url, body=f"{urlencode(params)}&signature={hmac_digest(signed).hex()}")
    assert "it matches the values percent-decoded" in refused_because(url, response)


def test_a_client_that_signs_with_one_encoder_and_sends_with_another(url: str) -> None:
    # Signed with %20 for spaces; the HTTP library form-encodes the body with '+'.
    params = [*leverage_params(), ("clientTag", "grid bot")]
    signature = hmac_digest(urlencode(params, quote_via=quote)).hex()
    response = requests.post(
        f"{url}{PATH}",
        data=[*params, ("signature", signature)],
        headers={"X-MBX-APIKEY": DEMO_API_KEY},
        timeout=10,
    )
    assert "it matches spaces as '%20' where '+' was sent" in refused_because(url, response)


def test_a_client_that_signs_only_the_body(url: str) -> None:
    query = "symbol=BTCUSD_PERP&leverage=20"
    body = f"recvWindow=5000&timestamp={now_ms()}"
    response = send(url, query, f"{body}&signature={hmac_digest(body).hex()}")
    assert "it matches the body alone" in refused_because(url, response)


def test_a_client_that_signs_only_the_query(url: str) -> None:
    query = f"symbol=BTCUSD_PERP&leverage=20&timestamp={now_ms()}"
    response = send(url, f"{query}&signature={hmac_digest(query).hex()}", "recvWindow=5000")
    assert "it matches the query string alone" in refused_because(url, response)


def test_a_client_that_joins_query_and_body_with_an_ampersand(url: str) -> None:
    query = "symbol=BTCUSD_PERP&leverage=20"
    body = f"recvWindow=5000&timestamp={now_ms()}"
    signature = hmac_digest(f"{query}&{body}").hex()
    response = send(url, query, f"{body}&signature={signature}")
    assert "it matches the query string and body joined with '&'" in refused_because(url, response)


def test_a_client_that_signs_with_an_empty_signature_placeholder(url: str) -> None:
    params = [*leverage_params(), ("signature", "")]
    signature = hmac_digest(urlencode(params)).hex()
    params[-1] = ("signature", signature)
    response = send(url, urlencode(params))
    assert "'signature=' element left in" in refused_because(url, response)


def test_a_client_that_signs_the_query_with_its_question_mark(url: str) -> None:
    query = "?" + urlencode(leverage_params())
    response = send(url, f"{query[1:]}&signature={hmac_digest(query).hex()}")
    assert "it matches the payload with a leading '?'" in refused_because(url, response)


def test_a_client_that_reads_its_secret_from_a_file_with_the_newline(
    url: str, tmp_path: Path
) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(DEMO_SECRET + "\n")  # as `echo $SECRET > secret` writes it
    secret = secret_file.read_text()
    query = urlencode(leverage_params())
    response = send(url, f"{query}&signature={hmac_digest(query, secret).hex()}")
    reason = refused_because(url, response)
    assert "it matches the secret with a trailing newline" in reason
    assert DEMO_SECRET not in reason


def test_a_client_that_sends_base64_instead_of_hex(url: str) -> None:
    params = leverage_params()
    signature = base64.b64encode(hmac_digest(urlencode(params))).decode()
    response = send(url, urlencode([*params, ("signature", signature)]))
    assert "it matches the right HMAC in base64" in refused_because(url, response)


def test_a_correct_signature_is_still_accepted(url: str) -> None:
    query = urlencode(leverage_params())
    response = send(url, f"{query}&signature={hmac_digest(query).hex()}")
    assert response.status_code == 200


def test_an_unrelated_signature_keeps_the_payload_and_names_nothing(url: str) -> None:
    query = urlencode(leverage_params())
    response = send(url, f"{query}&signature={hmac_digest(query, 'other').hex()}")
    assert refused_because(url, response) == f"hmac signature does not match: payload was {query!r}"


# -- RSA and Ed25519 accounts ----------------------------------------------------------------


def ed25519_account(server: MockServer, api_key: str) -> ed25519.Ed25519PrivateKey:
    private, public = new_pem_pair("ed25519")
    server.handle().accounts.add(api_key, public_key=public)
    key = load_pem_private_key(private.encode(), None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    return key


def test_a_client_signing_with_another_accounts_key(url: str, server: MockServer) -> None:
    ed25519_account(server, "botone")
    other = ed25519_account(server, "bottwo")
    params = leverage_params()
    signature = base64.b64encode(other.sign(urlencode(params).encode())).decode()
    response = send(url, urlencode([*params, ("signature", signature)]), api_key="botone")
    assert "verifies with the public key of account 'bottwo'" in refused_because(url, response)


def test_a_client_sending_base64_without_percent_encoding(url: str, server: MockServer) -> None:
    key = ed25519_account(server, "botone")
    params = leverage_params()
    while True:  # a timestamp whose signature holds a '+', which the client leaves as is
        query = urlencode(params)
        signature = base64.b64encode(key.sign(query.encode())).decode()
        if "+" in signature:
            break
        params[-1] = ("timestamp", str(int(params[-1][1]) - 1))
    response = send(url, f"{query}&signature={signature}", api_key="botone")
    reason = refused_because(url, response)
    assert "the value is not valid base64 (it holds a space" in reason


def test_a_client_sending_its_hmac_to_a_key_account(url: str, server: MockServer) -> None:
    ed25519_account(server, "botone")
    query = urlencode(leverage_params())
    response = send(url, f"{query}&signature={hmac_digest(query).hex()}", api_key="botone")
    assert "looks like a hex HMAC-SHA256 signature" in refused_because(url, response)


# -- the request log -------------------------------------------------------------------------


def test_the_request_log_names_the_mistake_too() -> None:
    with serving() as (served_url, process):
        params = leverage_params()
        signature = hmac_digest(urlencode(sorted(params))).hex()
        response = send(served_url, f"{urlencode(params)}&signature={signature}")
        assert (response.status_code, response.text) == (400, BINANCE_1022)
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    line = next(line for line in stderr.splitlines() if PATH in line)
    assert "400 -1022" in line
    assert "it matches the parameters sorted by name" in line
