"""Bad input never gives a 500, a traceback, an HTML page or changed state (issue: hardening).

First a table of bad-input classes through the Flask test client, each answered
with Binance's JSON error, the state untouched and one journal entry. Then the
same over a real socket where the WSGI server matters: bodies of several MB,
long headers, chunked bodies, malformed HTTP, slow senders, clients that go
away mid-request, and many clients changing one account's leverage at once.
"""

from __future__ import annotations

import http.client
import json
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from werkzeug.test import TestResponse

from mockserver import errors
from mockserver.config import DEMO_API_KEY
from mockserver.exchange import MAX_HEADER_BYTES, Exchange
from mockserver.harness import DapiMock, MockServer
from tests.helpers import FROZEN_MS, hmac_hex, run_at_once
from tests.mockserver.conftest import ContractClient
from tests.openapi_check import check_werkzeug_response

LEVERAGE = "/dapi/v1/leverage"
SYMBOL = "BTCUSD_PERP"
TS = str(FROZEN_MS).encode()
GOOD = b"symbol=BTCUSD_PERP&leverage=20&timestamp=" + TS
MB = 1024 * 1024

ILLEGAL = (400, -1100, errors.illegal_characters("").msg)
ILLEGAL_SYMBOL = (400, -1100, errors.illegal_symbol("").msg)
DUPLICATE = (400, -1101, errors.duplicate_param("").msg)
TOO_MANY = errors.too_many_params(400, "").msg
BODY_TOO_LARGE = (413, -1101, TOO_MANY)
HEADERS_TOO_LARGE = (431, -1101, TOO_MANY)
KEY_FORMAT = (401, -2014, errors.api_key_format_invalid("").msg)


def mandatory(name: str) -> tuple[int, int, str]:
    return 400, -1102, errors.mandatory_param(name, "").msg


def invalid(name: str) -> tuple[int, int, str]:
    return 400, -1130, errors.invalid_param(name, "").msg


def route(path: str, method: str, status: int) -> tuple[int, int, str]:
    return status, -5000, f"Path {path}, Method {method} is invalid"


def with_signature(query: bytes, body: bytes = b"") -> tuple[bytes, bytes]:
    """HMAC-sign the raw bytes as sent (the demo secret); the signature goes last."""
    signature = b"&signature=" + hmac_hex(query + body).encode()
    return (query, body + signature) if body else (query + signature, body)


# -- the bad-input table, through the Flask test client ------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    expected: tuple[int, int, str]
    query: bytes = b""
    body: bytes = b""
    method: str = "POST"
    path: str = LEVERAGE
    headers: dict[str, str] = field(default_factory=lambda: {"X-MBX-APIKEY": DEMO_API_KEY})
    sign: bool = True  # a valid signature over the bytes, so only the bad part can fail


def signed_leverage(raw: bytes) -> bytes:
    return b"symbol=BTCUSD_PERP&leverage=" + raw + b"&timestamp=" + TS


CASES = [
    # malformed percent-encoding, invalid UTF-8, NUL and other control characters
    Case("percent-missing-digits", ILLEGAL, signed_leverage(b"%2")),
    Case("percent-not-hex", ILLEGAL, b"sym%zzbol=BTCUSD_PERP&leverage=20&timestamp=" + TS),
    Case("invalid-utf8-encoded", ILLEGAL, signed_leverage(b"%C3%28")),
    Case("invalid-utf8-raw-byte", ILLEGAL, signed_leverage(b"\xff20")),
    Case("nul-encoded", ILLEGAL, signed_leverage(b"20%00")),
    Case("nul-raw", ILLEGAL, signed_leverage(b"20\x00")),
    Case("nul-in-body", ILLEGAL, body=GOOD + b"&x=%00"),
    Case("newline", ILLEGAL, signed_leverage(b"20%0A")),
    Case("c1-control-char", ILLEGAL, signed_leverage(b"%C2%8520")),
    # empty keys
    Case("empty-key", ILLEGAL, GOOD + b"&=20"),
    Case("empty-key-no-value", ILLEGAL, GOOD + b"&="),
    Case("empty-key-in-body", ILLEGAL, body=GOOD + b"&=1"),
    # duplicated parameters
    Case("duplicate-in-query", DUPLICATE, GOOD + b"&leverage=20"),
    Case("duplicate-in-body", DUPLICATE, body=GOOD + b"&leverage=21"),
    Case("duplicate-after-decoding", DUPLICATE, GOOD + b"&%6Ceverage=20"),
    Case("signature-twice", DUPLICATE, GOOD + b"&signature=00", b"signature=00", sign=False),
    # arrays
    Case(
        "array-leverage", mandatory("leverage"), b"symbol=BTCUSD_PERP&leverage[]=20&timestamp=" + TS
    ),
    Case(
        "array-indexed", mandatory("leverage"), b"symbol=BTCUSD_PERP&leverage[0]=20&timestamp=" + TS
    ),
    Case("array-symbol", mandatory("symbol"), b"symbol[]=BTCUSD_PERP&leverage=20&timestamp=" + TS),
    # huge values
    Case("leverage-1e400", mandatory("leverage"), signed_leverage(b"1e400")),
    Case("leverage-20-digits", mandatory("leverage"), signed_leverage(b"99999999999999999999")),
    Case("leverage-4000-digits", mandatory("leverage"), signed_leverage(b"9" * 4000)),
    Case(
        "leverage-int64-max",
        (400, -4028, "Leverage 9223372036854775807 is not valid"),
        signed_leverage(b"9223372036854775807"),
    ),
    Case(
        "timestamp-20-digits",
        mandatory("timestamp"),
        b"symbol=BTCUSD_PERP&leverage=20&timestamp=15917026139430000000",
    ),
    Case(
        "timestamp-1e400", mandatory("timestamp"), b"symbol=BTCUSD_PERP&leverage=20&timestamp=1e400"
    ),
    Case("recvwindow-20-digits", invalid("recvWindow"), GOOD + b"&recvWindow=99999999999999999999"),
    # signs, spaces, decimals, other digits
    Case("leverage-plus-raw", mandatory("leverage"), signed_leverage(b"+20")),  # "+" is a space
    Case("leverage-plus-encoded", mandatory("leverage"), signed_leverage(b"%2B20")),
    Case("leverage-leading-space", mandatory("leverage"), signed_leverage(b"%2020")),
    Case("leverage-trailing-space", mandatory("leverage"), signed_leverage(b"20%20")),
    Case("leverage-decimal", mandatory("leverage"), signed_leverage(b"20.0")),
    Case("leverage-hex", mandatory("leverage"), signed_leverage(b"0x14")),
    Case("leverage-full-width", mandatory("leverage"), signed_leverage("２０".encode())),
    Case("leverage-arabic-indic", mandatory("leverage"), signed_leverage("٢٠".encode())),
    Case("leverage-empty", mandatory("leverage"), signed_leverage(b"")),
    Case("leverage-negative", (400, -4028, "Leverage -20 is not valid"), signed_leverage(b"-20")),
    Case(
        "timestamp-plus",
        mandatory("timestamp"),
        b"symbol=BTCUSD_PERP&leverage=20&timestamp=%2B" + TS,
    ),
    Case("recvwindow-plus", invalid("recvWindow"), GOOD + b"&recvWindow=%2B5000"),
    Case("recvwindow-negative", invalid("recvWindow"), GOOD + b"&recvWindow=-1"),
    # symbols outside ^[A-Z0-9-_.]{1,20}$
    Case("symbol-lowercase", ILLEGAL_SYMBOL, b"symbol=btcusd_perp&leverage=20&timestamp=" + TS),
    Case("symbol-space", ILLEGAL_SYMBOL, b"symbol=BTCUSD_PERP%20&leverage=20&timestamp=" + TS),
    Case(
        "symbol-21-chars", ILLEGAL_SYMBOL, b"symbol=" + b"A" * 21 + b"&leverage=20&timestamp=" + TS
    ),
    Case("symbol-full-width", ILLEGAL_SYMBOL, "symbol=ＢＴＣＵＳＤ&leverage=20".encode()),
    # size limits: a body of several MB, too many parameters, very long headers
    Case("body-5-mb", BODY_TOO_LARGE, body=b"a" * (5 * MB), sign=False),
    Case("body-one-byte-over", BODY_TOO_LARGE, body=b"a" * 65537, sign=False),
    Case("65-parameters", (400, -1101, TOO_MANY), b"&".join(b"p%d=1" % i for i in range(65))),
    Case(
        "header-64-kib",
        HEADERS_TOO_LARGE,
        GOOD,
        headers={"X-MBX-APIKEY": DEMO_API_KEY, "X-Junk": "a" * 65536},
    ),
    Case("api-key-64-kib", HEADERS_TOO_LARGE, GOOD, headers={"X-MBX-APIKEY": "k" * 65536}),
    # API keys not of key form
    Case("api-key-65-chars", KEY_FORMAT, GOOD, headers={"X-MBX-APIKEY": "k" * 65}),
    Case("api-key-latin1", KEY_FORMAT, GOOD, headers={"X-MBX-APIKEY": "cl\xe9"}),
    Case("api-key-space", KEY_FORMAT, GOOD, headers={"X-MBX-APIKEY": "dapimock demokey"}),
    Case("api-key-missing", KEY_FORMAT, GOOD, headers={}),
    # JSON bodies: read as form-urlencoded, as Binance does
    Case(
        "json-body-compact",
        mandatory("timestamp"),
        body=b'{"symbol":"BTCUSD_PERP","leverage":20,"timestamp":' + TS + b"}",
        headers={"X-MBX-APIKEY": DEMO_API_KEY, "Content-Type": "application/json"},
        sign=False,
    ),
    Case(
        "json-body-pretty",
        ILLEGAL,
        body=b'{\n  "symbol": "BTCUSD_PERP"\n}',
        headers={"X-MBX-APIKEY": DEMO_API_KEY, "Content-Type": "application/json"},
        sign=False,
    ),
    # wrong methods and unknown paths
    Case("get-on-leverage", route(LEVERAGE, "GET", 405), GOOD, method="GET"),
    Case("put-on-leverage", route(LEVERAGE, "PUT", 405), GOOD, method="PUT"),
    Case("delete-on-leverage", route(LEVERAGE, "DELETE", 405), GOOD, method="DELETE"),
    Case("options-on-leverage", route(LEVERAGE, "OPTIONS", 405), method="OPTIONS", sign=False),
    Case("made-up-method", route(LEVERAGE, "BREW", 405), GOOD, method="BREW"),
    Case("post-on-ping", route("/dapi/v1/ping", "POST", 405), path="/dapi/v1/ping", sign=False),
    Case("typo-path", route("/dapi/v1/leverag", "POST", 404), GOOD, path="/dapi/v1/leverag"),
    Case("trailing-slash", route(LEVERAGE + "/", "POST", 404), GOOD, path=LEVERAGE + "/"),
    Case("double-slash", route("/dapi//v1/leverage", "POST", 404), path="/dapi//v1/leverage"),
    Case("upper-case-path", route("/DAPI/V1/PING", "GET", 404), method="GET", path="/DAPI/V1/PING"),
    Case("root", route("/", "GET", 404), method="GET", path="/", sign=False),
]


def send(client: ContractClient, case: Case) -> TestResponse:
    query, body = with_signature(case.query, case.body) if case.sign else (case.query, case.body)
    # Raw bytes in, as a WSGI server hands them over: QUERY_STRING is the request line's bytes
    # read as latin-1, PATH_INFO the percent-decoded path read the same way.
    response = client.app.test_client().open(
        "/",
        method=case.method,
        data=body,
        headers=case.headers,
        environ_overrides={
            "QUERY_STRING": query.decode("latin-1"),
            "PATH_INFO": case.path.encode().decode("latin-1"),
        },
    )
    check_werkzeug_response(response)
    return response


def binance_error(body: bytes, content_type: str) -> tuple[int, str]:
    """(code, msg) of a body that is exactly Binance's compact `{"code":int,"msg":str}`."""
    assert content_type == "application/json", (content_type, body[:200])
    data = json.loads(body)
    assert list(data) == ["code", "msg"], body[:200]
    assert type(data["code"]) is int and isinstance(data["msg"], str), body[:200]
    assert body == json.dumps(data, separators=(",", ":")).encode(), body[:200]
    return data["code"], data["msg"]


def leverage_state(exchange: Exchange) -> dict[str, int]:
    listing = exchange.market.listing(exchange.clock.now_ms())
    return {
        name: exchange.store.leverage_of(DEMO_API_KEY, s) for name, s in listing.symbols.items()
    }


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_binance_json_error_and_changes_nothing(make_client, case: Case) -> None:
    client = make_client()
    before = leverage_state(client.exchange)
    response = send(client, case)
    assert (response.status_code, *binance_error(response.get_data(), response.content_type)) == (
        case.expected
    )
    assert leverage_state(client.exchange) == before
    assert len(client.exchange.journal.entries()) == 1
    assert client.exchange.unexpected_error_count == 0


def test_the_table_signs_what_the_server_verifies(make_client) -> None:
    """The table's signing helper is right: the good request it mutates succeeds."""
    client = make_client()
    response = send(client, Case("good", (200, 0, ""), signed_leverage(b"7")))
    assert response.status_code == 200
    assert response.get_json() == {"leverage": 7, "maxQty": "400", "symbol": SYMBOL}
    query, body = with_signature(b"symbol=BTCUSD_PERP", b"leverage=8&timestamp=" + TS)
    response = send(client, Case("split", (200, 0, ""), query, body, sign=False))
    assert response.status_code == 200, response.get_data()


def test_every_rejection_is_journaled_with_its_reason(make_client) -> None:
    client = make_client()
    for case in CASES[:10]:
        send(client, case)
    entries = client.exchange.journal.entries()
    assert len(entries) == 10
    assert all(e["code"] == -1100 and e["reason"] for e in entries)


def test_header_limit_is_on_the_sum_of_all_headers(make_client) -> None:
    client = make_client()
    half = "a" * (MAX_HEADER_BYTES // 2)
    headers = {"X-MBX-APIKEY": DEMO_API_KEY, "X-One": half, "X-Two": half}
    response = send(client, Case("two-halves", HEADERS_TOO_LARGE, GOOD, headers=headers))
    assert response.status_code == 431
    headers = {"X-MBX-APIKEY": DEMO_API_KEY, "X-One": "a" * (MAX_HEADER_BYTES - 200)}
    response = send(client, Case("just-under", (200, 0, ""), GOOD, headers=headers))
    assert response.status_code == 200


# -- over a real socket: what waitress does with it ----------------------------------------


@pytest.fixture
def live(dapi_mock: DapiMock, dapi_mock_server: MockServer) -> Live:
    dapi_mock.clock.freeze(FROZEN_MS)
    return Live(dapi_mock, dapi_mock_server)


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def error(self) -> tuple[int, int, str]:
        return (self.status, *binance_error(self.body, self.headers.get("Content-Type", "")))


class Live:
    """The plugin's server, spoken to in raw bytes."""

    def __init__(self, handle: DapiMock, server: MockServer) -> None:
        self.handle = handle
        self.exchange: Exchange = server.app.extensions["dapi_mock"]
        host, port = handle.url.removeprefix("http://").rsplit(":", 1)
        self.address = (host, int(port))

    def connect(self, timeout: float = 10) -> socket.socket:
        return socket.create_connection(self.address, timeout=timeout)

    def send(self, raw: bytes, timeout: float = 10) -> Reply:
        with self.connect(timeout) as sock:
            sock.sendall(raw)
            return read_reply(sock)

    def request(
        self,
        method: str,
        target: str | bytes,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> Reply:
        return self.send(http_request(method, target, body, headers))

    def ping(self) -> Reply:
        return self.request("GET", "/dapi/v1/ping")

    def leverage(self) -> int:
        symbol = self.exchange.market.listing(self.exchange.clock.now_ms()).symbols[SYMBOL]
        return self.exchange.store.leverage_of(DEMO_API_KEY, symbol)


def http_request(
    method: str, target: str | bytes, body: bytes = b"", headers: dict[str, str] | None = None
) -> bytes:
    target = target.encode() if isinstance(target, str) else target
    sent = {"Host": "dapi-mock", "X-MBX-APIKEY": DEMO_API_KEY, "Connection": "close"}
    sent.update(headers or {})
    if body or method == "POST":
        sent.setdefault("Content-Length", str(len(body)))
    head = b"".join(f"{k}: {v}\r\n".encode("latin-1") for k, v in sent.items())
    return method.encode() + b" " + target + b" HTTP/1.1\r\n" + head + b"\r\n" + body


def read_reply(sock: socket.socket, method: str = "GET") -> Reply:
    response = http.client.HTTPResponse(sock, method=method)
    response.begin()
    return Reply(response.status, response.headers, response.read())


def test_several_mb_body_gets_413_json_and_the_server_keeps_serving(live: Live) -> None:
    reply = live.request("POST", "/dapi/v1/leverage?" + GOOD.decode(), b"a" * (5 * MB))
    assert reply.error() == BODY_TOO_LARGE
    assert live.handle.requests()[-1]["code"] == -1101  # answered by the app, journaled
    assert live.ping().status == 200


def test_several_mb_chunked_body_gets_413_json(live: Live) -> None:
    chunk = b"a" * 65536
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(64)) + b"0\r\n\r\n"
    reply = live.request("POST", LEVERAGE, chunks, {"Transfer-Encoding": "chunked"})
    assert reply.error() == BODY_TOO_LARGE
    assert live.ping().status == 200


def test_body_over_the_server_backstop_is_refused_as_json_before_it_is_sent(live: Live) -> None:
    """waitress's own limit (16 MiB here) answers at once, and with Binance's JSON too."""
    reply = live.send(http_request("POST", LEVERAGE, headers={"Content-Length": str(1 << 30)}))
    assert reply.error() == BODY_TOO_LARGE
    assert live.handle.requests() == []  # waitress answered, not the app
    assert live.ping().status == 200


def test_64_kib_of_headers_reach_the_app_and_get_431_json(live: Live) -> None:
    reply = live.request("POST", LEVERAGE, headers={"X-Junk": "a" * 65536})
    assert reply.error() == HEADERS_TOO_LARGE
    [entry] = live.handle.requests()
    assert entry["status"] == 431 and "headers" in entry["reason"]


def test_proxy_headers_count_towards_the_header_limit_too(live: Live) -> None:
    # No proxy stands in front of the mock: X-Forwarded-* is a header like any other,
    # not one the server strips before the app counts.
    reply = live.request("GET", "/dapi/v1/ping", headers={"X-Forwarded-For": "1" * 20_000})
    assert reply.error() == HEADERS_TOO_LARGE


def test_headers_over_the_server_backstop_get_431_json(live: Live) -> None:
    reply = live.request("GET", "/dapi/v1/ping", headers={"X-Junk": "a" * 300_000})
    assert reply.error() == HEADERS_TOO_LARGE
    assert live.ping().status == 200


def test_a_chunked_signed_body_is_read_like_a_plain_one(live: Live) -> None:
    _, body = with_signature(b"", b"symbol=BTCUSD_PERP&leverage=9&timestamp=" + TS)
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:10], body[10:])) + b"0\r\n\r\n"
    reply = live.request("POST", LEVERAGE, chunks, {"Transfer-Encoding": "chunked"})
    assert reply.status == 200, reply.body
    assert live.leverage() == 9


MALFORMED_HTTP = {
    "content-length-not-a-number": http_request("POST", LEVERAGE, headers={"Content-Length": "x"}),
    "bad-chunk-size": http_request(
        "POST", LEVERAGE, b"zz\r\nabc\r\n0\r\n\r\n", {"Transfer-Encoding": "chunked"}
    ),
    "unknown-transfer-encoding": http_request(
        "POST", LEVERAGE, b"abc", {"Transfer-Encoding": "gzip"}
    ),
    "garbage-start-line": b"GARBAGE\r\n\r\n",
    "space-in-target": http_request("GET", "/dapi/v1/ping?a=b c"),
    "non-ascii-target": http_request("GET", b"/dapi/v1/ping?a=\xff"),
    "header-without-colon": b"GET /dapi/v1/ping HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n",
    "space-in-header-name": b"GET /dapi/v1/ping HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n",
}


@pytest.mark.parametrize("raw", MALFORMED_HTTP.values(), ids=MALFORMED_HTTP.keys())
def test_malformed_http_gets_400_json_from_the_server(live: Live, raw: bytes) -> None:
    assert live.send(raw).error() == ILLEGAL
    assert live.ping().status == 200


def test_raw_control_bytes_in_the_query_reach_the_app_and_get_1100(live: Live) -> None:
    reply = live.request("POST", b"/dapi/v1/leverage?" + signed_leverage(b"\x0120"))
    assert reply.error() == ILLEGAL
    assert live.handle.requests()[-1]["code"] == -1100


def test_nul_in_the_path_is_an_unknown_path(live: Live) -> None:
    reply = live.request("GET", "/dapi/v1/ping%00")
    assert reply.error() == route("/dapi/v1/ping\x00", "GET", 404)


def test_a_slow_sender_is_answered_and_does_not_hold_up_others(live: Live) -> None:
    query, _ = with_signature(b"symbol=BTCUSD_PERP&leverage=11&timestamp=" + TS)
    raw = http_request("POST", b"/dapi/v1/leverage?" + query)
    replies: list[Reply] = []
    sent_last_byte = threading.Event()

    def trickle() -> None:  # 8 bytes every 40 ms: about 1.5 s for the request
        with live.connect() as sock:
            for i in range(0, len(raw), 8):
                sock.sendall(raw[i : i + 8])
                time.sleep(0.04)
            sent_last_byte.set()
            replies.append(read_reply(sock))

    slow = threading.Thread(target=trickle)
    slow.start()
    answered_meanwhile = 0
    while not sent_last_byte.is_set():  # others get answers while it trickles
        started = time.perf_counter()
        assert live.ping().status == 200
        assert time.perf_counter() - started < 0.5
        answered_meanwhile += not sent_last_byte.is_set()
        time.sleep(0.05)
    slow.join(timeout=10)
    assert answered_meanwhile >= 3
    assert [r.status for r in replies] == [200]
    assert live.leverage() == 11


DISCONNECTS: dict[str, Callable[[bytes], bytes]] = {
    "mid-start-line": lambda raw: raw[:10],
    "mid-headers": lambda raw: raw[: raw.index(b"\r\n\r\n") - 5],
    "mid-body": lambda raw: raw[:-20],
}


@pytest.mark.parametrize("cut", DISCONNECTS.values(), ids=DISCONNECTS.keys())
def test_a_client_leaving_mid_request_does_not_disturb_the_server(
    live: Live, cut: Callable[[bytes], bytes]
) -> None:
    _, body = with_signature(b"", b"symbol=BTCUSD_PERP&leverage=12&timestamp=" + TS)
    raw = http_request("POST", LEVERAGE, body)
    for _ in range(3):
        with live.connect() as sock:
            sock.sendall(cut(raw))
    assert live.ping().status == 200
    assert live.leverage() == 20  # the cut request never ran
    assert [e["path"] for e in live.handle.requests()] == ["/dapi/v1/ping"]


def test_a_client_leaving_before_the_answer_does_not_disturb_the_server(live: Live) -> None:
    live.handle.faults.add(
        {
            "match": {"method": "GET", "path": "/dapi/v1/time"},
            "action": {"type": "delay", "ms": 200},
        }
    )
    for _ in range(3):
        with live.connect() as sock:
            sock.sendall(http_request("GET", "/dapi/v1/time"))
        # a reset instead of a close: the server writes its answer to a dead socket
        with live.connect() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.sendall(http_request("GET", "/dapi/v1/time"))
    time.sleep(0.5)
    assert live.ping().status == 200
    # A held request whose client left is dropped as soon as the hold sees it (journaled
    # with no status); waitress skips one whose client left before it ran: no exact count.
    for entry in live.handle.requests():
        assert entry["status"] == 200 or "closed the connection" in entry["reason"], entry


def test_many_half_sent_requests_do_not_starve_the_server(live: Live) -> None:
    idle = [live.connect() for _ in range(64)]
    try:
        for sock in idle:
            sock.sendall(b"POST /dapi/v1/leverage HTTP/1.1\r\nContent-Length: 100\r\n\r\nsym")
        started = time.perf_counter()
        assert live.ping().status == 200
        assert time.perf_counter() - started < 1
    finally:
        for sock in idle:
            sock.close()


# -- many clients on one account and symbol ------------------------------------------------

CLIENTS = 8
PER_CLIENT = 15  # CLIENTS * PER_CLIENT distinct leverages, all within BTCUSD_PERP's 125


def test_concurrent_changes_end_with_a_last_acknowledged_value_and_none_is_lost(
    live: Live,
) -> None:
    """Each change uses its own leverage; bad requests are interleaved with the good ones.

    The final leverage must come from a change no other change started after: if A's
    answer arrived before B was sent, B was applied after A, so A's value cannot be last.
    """
    spans: dict[int, tuple[float, float]] = {}  # leverage -> (sent, acknowledged)

    def client(number: int) -> None:
        for step in range(PER_CLIENT):
            leverage = number * PER_CLIENT + step + 1
            query, _ = with_signature(signed_leverage(str(leverage).encode()))
            sent = time.monotonic()
            reply = live.request("POST", b"/dapi/v1/leverage?" + query)
            spans[leverage] = (sent, time.monotonic())
            assert reply.status == 200 and json.loads(reply.body)["leverage"] == leverage
            bad = live.request("POST", b"/dapi/v1/leverage?" + signed_leverage(b"%zz"))
            assert bad.error() == ILLEGAL

    run_at_once(client, CLIENTS)

    final = live.leverage()
    final_ack = spans[final][1]
    started_after = [lev for lev, (sent, _) in spans.items() if sent > final_ack]
    assert started_after == [], f"{final} is final, yet {started_after} began after its answer"
    entries = live.handle.requests()
    assert len(entries) == 2 * CLIENTS * PER_CLIENT
    assert len({e["id"] for e in entries}) == len(entries)
    assert sorted(e["status"] for e in entries) == [200] * (CLIENTS * PER_CLIENT) + [400] * (
        CLIENTS * PER_CLIENT
    )
    position = live.request(
        "GET", "/dapi/v1/positionRisk?" + with_signature(b"timestamp=" + TS)[0].decode()
    )
    row = next(r for r in json.loads(position.body) if r["symbol"] == SYMBOL)
    assert int(row["leverage"]) == final


def test_journal_of_waitress_only_errors_is_untouched(live: Live) -> None:
    """Requests waitress refuses itself never reach the exchange: no journal entry, no weight."""
    for raw in MALFORMED_HTTP.values():
        live.send(raw)
    assert live.handle.requests() == []
    assert live.exchange.limiter.used("127.0.0.1", FROZEN_MS) == 0
