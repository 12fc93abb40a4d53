"""Generated raw requests: whatever arrives, the answer is Binance's JSON and state holds.

Two properties. Through the Flask test client: random methods, paths, query
and body bytes (pure noise, or parameters built from hostile parts, sometimes
validly signed so deeper checks run too) and random X-MBX-APIKEY and
Content-Type values. Over a real socket: the same noise in the request line and
headers, where waitress parses first. For every request: never a 5xx, always
`application/json`, an error body exactly `{"code":int,"msg":str}`, no traceback
or HTML, the leverage state changed only by an acknowledged change, and the
journal grown by exactly the one request when the exchange answered it.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from urllib.parse import unquote_to_bytes

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mockserver.config import DEMO_API_KEY, Config
from mockserver.exchange import ENDPOINTS, WEIGHT_HEADER, Exchange
from mockserver.harness import MockServer
from tests.helpers import FROZEN_MS, hmac_hex
from tests.mockserver.conftest import ContractClient
from tests.mockserver.test_hardening import binance_error, leverage_state, read_reply

BINANCE_PATHS = sorted({e.path for e in ENDPOINTS})
LEVERAGE = "/dapi/v1/leverage"
EXAMPLES = max(settings().max_examples, 300)
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "BREW"]

# Parts a hostile or confused client sends; joined at random into parameters.
NAMES = [
    b"symbol",
    b"leverage",
    b"timestamp",
    b"recvWindow",
    b"signature",
    b"pair",
    b"marginAsset",
    b"leverage[]",
    b"symbol[0]",
    b"",
    b"%zz",
    b"sym%00bol",
    b"%6Ceverage",
    b"\xff",
    b"a+b",
]
VALUES = [
    b"BTCUSD_PERP",
    b"ETHUSD_PERP",
    b"btcusd_perp",
    b"BTCUSD_PERP%20",
    b"XYZ",
    b"20",
    b"125",
    b"126",
    b"0",
    b"-20",
    b"+20",
    b"%2B20",
    b"%2020",
    b"20.0",
    b"1e400",
    b"99999999999999999999",
    "２０".encode(),
    b"%EF%BC%92%EF%BC%90",
    b"%zz",
    b"%C3%28",
    b"%00",
    b"\x00",
    b"%0A",
    b"",
    b"5000",
    b"-1",
    str(FROZEN_MS).encode(),
    str(FROZEN_MS + 5000).encode(),
    str(FROZEN_MS - 10_000).encode(),
    b"0" * 30 + b"20",
]

element = st.builds(
    lambda name, value, bare: name if bare else name + b"=" + value,
    st.sampled_from(NAMES) | st.binary(max_size=12),
    st.sampled_from(VALUES) | st.binary(max_size=24),
    st.sampled_from([False, False, False, True]),  # now and then a name without "="
)
parameters = st.lists(element, max_size=10).map(b"&".join)
raw_bytes = st.binary(max_size=300) | parameters | st.just(b"")


@st.composite
def near_valid(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """A valid leverage change's parameters with a few hostile edits, split into query + body.

    Pure noise is rejected at the first check; these get to the later ones too.
    """
    elements = [
        b"symbol=" + draw(st.sampled_from([b"BTCUSD_PERP", b"ETHUSD_PERP"])),
        b"leverage=" + draw(st.sampled_from([b"1", b"20", b"50", b"125", b"00007"])),
        b"timestamp=" + str(FROZEN_MS).encode(),
    ]
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, max(len(elements) - 1, 0)))
        edit = draw(st.sampled_from(["replace", "insert", "delete", "repeat"]))
        if edit == "insert" or not elements:
            elements.insert(at, draw(element))
        elif edit == "replace":
            elements[at] = draw(element)
        elif edit == "delete":
            del elements[at]
        else:
            elements.insert(at, elements[at])
    elements = draw(st.permutations(elements))
    cut = draw(st.integers(0, len(elements)))
    return b"&".join(elements[:cut]), b"&".join(elements[cut:])


query_and_body = st.tuples(raw_bytes, raw_bytes) | near_valid() | near_valid()

header_value = st.text(
    alphabet=st.characters(min_codepoint=0, max_codepoint=255, exclude_characters="\r\n"),
    max_size=80,
)
api_keys = (
    st.just(DEMO_API_KEY) | st.just(DEMO_API_KEY) | st.none() | st.just("k" * 65) | header_value
)
content_types = (
    st.none()
    | st.sampled_from(
        [
            "application/x-www-form-urlencoded",
            "application/json",
            "application/json;charset=utf-8",
            "multipart/form-data; boundary=x",
            "text/plain; charset=utf-16",
        ]
    )
    | header_value
)
paths = (
    st.sampled_from([*BINANCE_PATHS, "/openapi.yaml"])
    | st.sampled_from(BINANCE_PATHS).map(lambda p: p + "/")
    | st.binary(max_size=40).map(lambda b: "/" + b.decode("latin-1"))
).filter(lambda p: not p.startswith("/__admin"))
ROUTES = [(e.method, e.path) for e in ENDPOINTS]
# Mostly routes that exist (the leverage one most), so the requests get past routing.
routes = (
    st.just(("POST", LEVERAGE))
    | st.sampled_from(ROUTES)
    | st.tuples(st.sampled_from(METHODS), paths)
)


def with_signature(query: bytes, body: bytes) -> tuple[bytes, bytes]:
    signature = b"signature=" + hmac_hex(query + body).encode()
    if body:
        return query, body + b"&" + signature
    return (query + b"&" + signature if query else signature), body


def check_answer(status: int, content_type: str, body: bytes, method: str, path: str) -> None:
    assert status < 500, (status, body[:300])
    if path == "/openapi.yaml" and method in ("GET", "HEAD") and status == 200:
        assert content_type == "application/yaml"
        return
    assert b"traceback" not in body.lower() and b"<html" not in body.lower(), body[:300]
    assert content_type == "application/json", (status, content_type, body[:300])
    if method == "HEAD":
        assert body == b""
    elif status >= 400:
        binance_error(body, content_type)
    else:
        json.loads(body)


def expected_state(
    before: dict[str, int], status: int, method: str, path: str, body: bytes
) -> dict[str, int]:
    """Only an acknowledged leverage change changes state, and only its own symbol."""
    if (method, path, status) != ("POST", LEVERAGE, 200):
        return before
    answer = json.loads(body)
    return {**before, answer["symbol"]: answer["leverage"]}


# -- through the Flask test client ----------------------------------------------------------


@pytest.fixture(scope="module")
def app_client() -> ContractClient:
    client = ContractClient(Config(weight_per_minute=0))  # no 429s hiding deeper checks
    client.exchange.clock.freeze_at(FROZEN_MS)
    return client


@settings(max_examples=EXAMPLES, suppress_health_check=[HealthCheck.too_slow])
@given(
    route=routes,
    query_body=query_and_body,
    sign=st.sampled_from([True, True, False]),
    api_key=api_keys,
    content_type=content_types,
)
def test_any_raw_request_gets_binance_json_and_leaves_state_alone(
    app_client: ContractClient,
    route: tuple[str, str],
    query_body: tuple[bytes, bytes],
    sign: bool,
    api_key: str | None,
    content_type: str | None,
) -> None:
    exchange = app_client.exchange
    (method, path), (query, body) = route, query_body
    if sign:
        query, body = with_signature(query, body)
    headers = {}
    if api_key is not None:
        headers["X-MBX-APIKEY"] = api_key
    if content_type is not None:
        headers["Content-Type"] = content_type
    before, journaled = leverage_state(exchange), len(exchange.journal.entries())
    accounts = dict(exchange.store.accounts)

    response = app_client.app.test_client().open(
        "/",
        method=method,
        data=body,
        headers=headers,
        environ_overrides={"QUERY_STRING": query.decode("latin-1"), "PATH_INFO": path},
    )

    data = response.get_data()
    event(f"{response.status_code} {data[:20]!r}")
    check_answer(response.status_code, response.content_type or "", data, method, path)
    assert leverage_state(exchange) == expected_state(
        before, response.status_code, method, path, data
    )
    served_contract = path == "/openapi.yaml" and method in ("GET", "HEAD")
    assert len(exchange.journal.entries()) == journaled + (0 if served_contract else 1)
    assert exchange.store.accounts == accounts
    assert exchange.unexpected_error_count == 0


# -- over a real socket ---------------------------------------------------------------------


def one_line(raw: bytes) -> bytes:
    """CR and LF removed: they would end the line early and change the request's framing."""
    return raw.replace(b"\r", b"").replace(b"\n", b"")


def target_of(path: bytes, query: bytes) -> bytes:
    return path + b"?" + one_line(query) if query else path


line_bytes = st.binary(max_size=60).map(one_line)
tokens = st.sampled_from([m.encode() for m in METHODS]) | st.binary(min_size=1, max_size=8).map(
    lambda b: one_line(b).replace(b" ", b"") or b"X"
)
targets = st.builds(
    target_of,
    st.sampled_from([p.encode() for p in BINANCE_PATHS]) | line_bytes.map(lambda b: b"/" + b),
    raw_bytes | near_valid().map(lambda qb: qb[0] + qb[1]),
)
header_bytes = st.none() | st.just(DEMO_API_KEY.encode()) | line_bytes


@pytest.fixture(scope="module")
def live_server() -> Iterator[MockServer]:
    server = MockServer(Config(port=0, weight_per_minute=0))
    server.app.extensions["dapi_mock"].clock.freeze_at(FROZEN_MS)
    yield server
    server.close()


def exchange_of(server: MockServer) -> Exchange:
    exchange: Exchange = server.app.extensions["dapi_mock"]
    return exchange


@settings(max_examples=EXAMPLES, suppress_health_check=[HealthCheck.too_slow])
@given(
    method=tokens,
    target=targets,
    body=raw_bytes,
    api_key=header_bytes,
    content_type=header_bytes,
    chunked=st.booleans(),
)
def test_any_raw_bytes_on_the_wire_get_binance_json(
    live_server: MockServer,
    method: bytes,
    target: bytes,
    body: bytes,
    api_key: bytes | None,
    content_type: bytes | None,
    chunked: bool,
) -> None:
    exchange = exchange_of(live_server)
    head = [b"Host: dapi-mock", b"Connection: close"]
    if api_key is not None:
        head.append(b"X-MBX-APIKEY: " + api_key)
    if content_type is not None:
        head.append(b"Content-Type: " + content_type)
    if chunked:
        head.append(b"Transfer-Encoding: chunked")
        payload = (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + b"0\r\n\r\n"
    else:
        head.append(b"Content-Length: %d" % len(body))
        payload = body
    raw = method + b" " + target + b" HTTP/1.1\r\n" + b"\r\n".join(head) + b"\r\n\r\n" + payload
    before, journaled = leverage_state(exchange), len(exchange.journal.entries())

    host, port = live_server.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(raw)
        reply = read_reply(sock, method.decode("latin-1"))

    event(f"{reply.status} {reply.body[:20]!r}")
    check_answer(
        reply.status,
        reply.headers.get("Content-Type", ""),
        reply.body,
        method.decode("latin-1"),
        unquote_to_bytes(target.split(b"?")[0]).decode("latin-1"),  # PATH_INFO, as waitress does
    )
    assert leverage_state(exchange) == before
    # The exchange answered it (weight header) exactly when it journaled it; waitress's own
    # refusals (unparsable HTTP) reach neither.
    answered_by_exchange = WEIGHT_HEADER in reply.headers
    assert len(exchange.journal.entries()) == journaled + answered_by_exchange
    assert live_server.error_count == 0
