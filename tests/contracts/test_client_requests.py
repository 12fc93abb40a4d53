"""The requests DapiClient builds: where it signs, key and timestamp, time sync, timeouts,
its session, and the bytes on a real socket."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.hashes import SHA256

from contracts.client import DapiClient
from tests.contracts.client_fakes import (
    BASE,
    KEY,
    LEVERAGE_OK,
    SECRET,
    Reply,
    request_params,
    request_parts,
    verify_hmac,
)
from tests.helpers import COINM_SECRET, hmac_hex

# --- signing placement ---------------------------------------------------------


def test_post_defaults_to_a_signed_form_body(make: Any) -> None:
    client, transport, _ = make(Reply(body=LEVERAGE_OK))

    client.change_leverage("BTCUSD_PERP", 20)

    (sent,) = transport.sent
    query, body = request_parts(sent)
    assert sent.method == "POST"
    assert query == ""
    assert body.startswith("symbol=BTCUSD_PERP&leverage=20&timestamp=1700000000000&signature=")
    assert sent.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert sent.headers["X-MBX-APIKEY"] == KEY
    verify_hmac(sent)


def test_params_in_query_reproduces_the_spec_vector(make: Any) -> None:
    client, transport, harness = make(
        Reply(body=LEVERAGE_OK), secret=COINM_SECRET, recv_window=5000, params_in="query"
    )
    harness.clock[0] = 1591702613943

    client.change_leverage("BTCUSD_PERP", 20)

    query, body = request_parts(transport.sent[0])
    assert query == (
        "symbol=BTCUSD_PERP&leverage=20&recvWindow=5000&timestamp=1591702613943"
        "&signature=83a07953347e512d8a0f130921d17abae021972610e032fa4622dfaf84a2b006"
    )
    assert not body


def test_params_in_split_reproduces_the_query_plus_body_vector(make: Any) -> None:
    client, transport, harness = make(
        Reply(body=LEVERAGE_OK), secret=COINM_SECRET, recv_window=5000, params_in="split"
    )
    harness.clock[0] = 1591702613943

    client.change_leverage("BTCUSD_PERP", 20)

    query, body = request_parts(transport.sent[0])
    assert query == "symbol=BTCUSD_PERP&leverage=20"
    assert body == (
        "recvWindow=5000&timestamp=1591702613943"
        "&signature=46860a15641daca1e2a79a25a1717854970f6b167e4d0dc111fae97be4d244e1"
    )


def test_signed_get_goes_in_the_query_whatever_params_in_says(make: Any) -> None:
    client, transport, _ = make(Reply(body=[]), params_in="body")

    client.position_risk(pair="BTCUSD")

    (sent,) = transport.sent
    query, body = request_parts(sent)
    assert query.startswith("pair=BTCUSD&timestamp=1700000000000&signature=")
    assert not body
    verify_hmac(sent)


def test_unsigned_calls_carry_no_key_timestamp_or_signature(make: Any) -> None:
    client, transport, _ = make(Reply(body={}))

    client.ping()

    (sent,) = transport.sent
    assert sent.url == f"{BASE}/dapi/v1/ping"
    assert "X-MBX-APIKEY" not in sent.headers


def test_request_keeps_caller_order_and_caller_timestamp(make: Any) -> None:
    client, transport, _ = make(Reply(body={"ok": 1}), recv_window=7000)

    result = client.request(
        "POST",
        "/dapi/v1/leverage",
        [("timestamp", 5), ("leverage", 3), ("flag", True), ("qty", Decimal("1E+1"))],
        signed=True,
    )

    assert result == {"ok": 1}
    _, body = request_parts(transport.sent[0])
    assert body.startswith("timestamp=5&leverage=3&flag=true&qty=10&recvWindow=7000&signature=")


def test_signed_call_without_credentials_is_a_usage_error(make: Any) -> None:
    client, transport, _ = make(auth=None, api_key=None)

    with pytest.raises(ValueError, match="signed"):
        client.change_leverage("BTCUSD_PERP", 20)
    assert transport.sent == []


def test_rsa_and_ed25519_clients_sign_what_is_sent(make: Any) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ed_key = ed25519.Ed25519PrivateKey.generate()
    for key in (rsa_key, ed_key):
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        client, transport, _ = make(Reply(body=LEVERAGE_OK), secret=None, private_key=pem)
        client.change_leverage("BTCUSD_PERP", 20)
        _, body = request_parts(transport.sent[0])
        payload, _, value = body.rpartition("&signature=")
        raw = base64.b64decode(unquote(value))
        if isinstance(key, rsa.RSAPrivateKey):
            key.public_key().verify(raw, payload.encode(), padding.PKCS1v15(), SHA256())
        else:
            key.public_key().verify(raw, payload.encode())


# --- time sync and timeouts ----------------------------------------------------


def test_time_sync_offset_is_applied_to_the_timestamp(make: Any) -> None:
    def server_time(request: requests.PreparedRequest) -> Reply:
        harness.clock[0] += 10  # the round trip took 10 ms
        return Reply(body={"serverTime": 1_700_000_030_000})

    client, transport, harness = make(
        server_time, Reply(body=LEVERAGE_OK), Reply(body=LEVERAGE_OK), time_sync=True
    )

    client.change_leverage("BTCUSD_PERP", 20)
    harness.clock[0] += 1000
    client.change_leverage("BTCUSD_PERP", 20)

    time_request, first, second = transport.sent
    assert time_request.path_url == "/dapi/v1/time"
    # server 1_700_000_030_000 against the midpoint 1_700_000_000_005
    assert client.time_offset_ms == 29_995
    assert request_params(first)["timestamp"] == str(1_700_000_000_010 + 29_995)
    assert request_params(second)["timestamp"] == str(1_700_000_001_010 + 29_995)


def test_sync_time_can_be_called_by_hand(make: Any) -> None:
    client, _, _ = make(Reply(body={"serverTime": 1_699_999_990_000}))

    assert client.sync_time() == -10_000
    assert client.timestamp_ms() == 1_699_999_990_000


def test_without_time_sync_no_time_request_is_made(make: Any) -> None:
    client, transport, _ = make(Reply(body=LEVERAGE_OK))

    client.change_leverage("BTCUSD_PERP", 20)

    assert [r.path_url for r in transport.sent] == ["/dapi/v1/leverage"]


def test_every_call_gets_the_default_timeout(make: Any) -> None:
    client, transport, _ = make(Reply(body={}), Reply(body=LEVERAGE_OK))

    client.ping()
    client.change_leverage("BTCUSD_PERP", 20)

    assert transport.timeouts == [10.0, 10.0]


def test_timeout_is_configurable(make: Any) -> None:
    client, transport, _ = make(Reply(body={}), timeout=(1.0, 2.5))

    client.ping()

    assert transport.timeouts == [(1.0, 2.5)]


# --- construction --------------------------------------------------------------


def test_conflicting_credentials_are_refused() -> None:
    with pytest.raises(ValueError):
        DapiClient(BASE, KEY, secret="s", private_key="pem")
    with pytest.raises(ValueError):
        DapiClient(BASE, secret="s")
    with pytest.raises(ValueError):
        DapiClient(BASE, KEY, secret="s", params_in="json")  # type: ignore[arg-type]


def test_client_closes_only_a_session_it_created() -> None:
    closed: list[bool] = []

    class Session(requests.Session):
        def close(self) -> None:
            closed.append(True)

    with DapiClient(BASE, session=Session()):
        pass
    assert closed == []


# --- on a real socket ----------------------------------------------------------


def test_the_bytes_on_the_wire_are_the_bytes_that_were_signed() -> None:
    """urllib3 must not re-encode what the signer saw; checked with a stdlib server."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[tuple[str, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            seen.append((self.path, self.rfile.read(length)))
            body = json.dumps(LEVERAGE_OK).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        for params_in in ("query", "body", "split"):
            with DapiClient(base, KEY, secret=SECRET, params_in=params_in) as client:
                client.request(
                    "POST",
                    "/dapi/v1/leverage",
                    {"symbol": "BTC USD/€~*", "leverage": 20},
                    signed=True,
                )
    finally:
        server.shutdown()
        server.server_close()

    assert len(seen) == 3
    for path, body in seen:
        query = urlsplit(path).query.encode()
        if body:
            signed, _, signature = body.rpartition(b"&signature=")
            payload = query + signed
        else:
            payload, _, signature = query.rpartition(b"&signature=")
        assert b"BTC+USD%2F%E2%82%AC~%2A" in payload
        expected = hmac_hex(payload, SECRET)
        assert signature.decode() == expected
