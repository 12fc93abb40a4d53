"""DapiClient against a scripted in-process transport (no network, no sleeping)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.hashes import SHA256
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from contracts.client import (
    ApiError,
    ApiKeyFormatInvalid,
    ApiKeyRejected,
    AuthError,
    BadRequest,
    ClientError,
    DapiClient,
    IllegalCharacters,
    InvalidLeverage,
    InvalidParameter,
    InvalidSignature,
    InvalidSymbol,
    IpBanned,
    LeverageCapExceeded,
    MalformedResponse,
    MissingParameter,
    NoChangeNeeded,
    NotFound,
    OpenOrdersExist,
    PositionExists,
    RateLimited,
    RequestTimeout,
    ServerError,
    TimestampOutsideWindow,
    TooManyParameters,
    TransportError,
)
from tests.helpers import COINM_SECRET, hmac_hex

BASE = "http://fake.invalid"
KEY = "testkey"
SECRET = "testsecret"
LEVERAGE_OK = {"leverage": 20, "maxQty": "150", "symbol": "BTCUSD_PERP"}


@dataclass
class Reply:
    status: int = 200
    body: Any = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def raw(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body, separators=(",", ":")).encode()


Script = Reply | Exception | Callable[[requests.PreparedRequest], Reply]


class FakeTransport(BaseAdapter):
    """Answers from a script, records every request and the timeout it got."""

    def __init__(self, *script: Script) -> None:
        super().__init__()
        self.script = list(script)
        self.sent: list[requests.PreparedRequest] = []
        self.timeouts: list[Any] = []

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, timeout: Any = None, **_: Any
    ) -> requests.Response:
        self.sent.append(request)
        self.timeouts.append(timeout)
        if not self.script:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        item = self.script.pop(0)
        if isinstance(item, Exception):
            raise item
        reply = item(request) if callable(item) else item
        response = requests.Response()
        response.status_code = reply.status
        response._content = reply.raw()
        response.headers = CaseInsensitiveDict(
            {"Content-Type": "application/json", **reply.headers}
        )
        response.request = request
        response.url = request.url or ""
        response.encoding = "utf-8"
        return response

    def close(self) -> None:
        pass


@dataclass
class Harness:
    transport: FakeTransport
    sleeps: list[float]
    clock: list[int]

    def client(self, **kwargs: Any) -> DapiClient:
        session = requests.Session()
        session.mount(BASE, self.transport)
        kwargs.setdefault("api_key", KEY)
        if not {"secret", "private_key", "auth"} & kwargs.keys():
            kwargs["secret"] = SECRET
        return DapiClient(
            BASE,
            session=session,
            sleep=self.sleeps.append,
            clock_ms=lambda: self.clock[0],
            **kwargs,
        )


@pytest.fixture
def make(
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., tuple[DapiClient, FakeTransport, Harness]]:
    # A request that escapes the fake transport must fail loudly, not reach the network.
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("real network used")

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", refuse)

    def build(*script: Script, **kwargs: Any) -> tuple[DapiClient, FakeTransport, Harness]:
        harness = Harness(FakeTransport(*script), [], [1_700_000_000_000])
        return harness.client(**kwargs), harness.transport, harness

    return build


def _parts(request: requests.PreparedRequest) -> tuple[str, str]:
    body = request.body or b""
    return urlsplit(request.url or "").query, body.decode() if isinstance(body, bytes) else body


def _params(request: requests.PreparedRequest) -> dict[str, str]:
    query, body = _parts(request)
    return {**dict(parse_qsl(body)), **dict(parse_qsl(query))}


def _verify_hmac(request: requests.PreparedRequest, secret: str = SECRET) -> str:
    """Server-style check: strip the trailing signature, HMAC query+body, compare."""
    query, body = _parts(request)
    if body:
        body, _, signature = body.rpartition("&signature=")
    else:
        query, _, signature = query.rpartition("&signature=")
    assert signature == hmac_hex(query + body, secret)
    return signature


# --- signing placement ---------------------------------------------------------


def test_post_defaults_to_a_signed_form_body(make: Any) -> None:
    client, transport, _ = make(Reply(body=LEVERAGE_OK))

    client.change_leverage("BTCUSD_PERP", 20)

    (sent,) = transport.sent
    query, body = _parts(sent)
    assert sent.method == "POST"
    assert query == ""
    assert body.startswith("symbol=BTCUSD_PERP&leverage=20&timestamp=1700000000000&signature=")
    assert sent.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert sent.headers["X-MBX-APIKEY"] == KEY
    _verify_hmac(sent)


def test_params_in_query_reproduces_the_spec_vector(make: Any) -> None:
    client, transport, harness = make(
        Reply(body=LEVERAGE_OK), secret=COINM_SECRET, recv_window=5000, params_in="query"
    )
    harness.clock[0] = 1591702613943

    client.change_leverage("BTCUSD_PERP", 20)

    query, body = _parts(transport.sent[0])
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

    query, body = _parts(transport.sent[0])
    assert query == "symbol=BTCUSD_PERP&leverage=20"
    assert body == (
        "recvWindow=5000&timestamp=1591702613943"
        "&signature=46860a15641daca1e2a79a25a1717854970f6b167e4d0dc111fae97be4d244e1"
    )


def test_signed_get_goes_in_the_query_whatever_params_in_says(make: Any) -> None:
    client, transport, _ = make(Reply(body=[]), params_in="body")

    client.position_risk(pair="BTCUSD")

    (sent,) = transport.sent
    query, body = _parts(sent)
    assert query.startswith("pair=BTCUSD&timestamp=1700000000000&signature=")
    assert not body
    _verify_hmac(sent)


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
    _, body = _parts(transport.sent[0])
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
        _, body = _parts(transport.sent[0])
        payload, _, value = body.rpartition("&signature=")
        raw = base64.b64decode(unquote(value))
        if isinstance(key, rsa.RSAPrivateKey):
            key.public_key().verify(raw, payload.encode(), padding.PKCS1v15(), SHA256())
        else:
            key.public_key().verify(raw, payload.encode())


# --- 429 / 418 -----------------------------------------------------------------


def _limited(status: int = 429, retry_after: str | None = "3") -> Reply:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    msg = "Too many requests; current limit is 2400 requests per minute."
    return Reply(status, {"code": -1003, "msg": msg}, headers)


def test_429_waits_retry_after_then_resigns_with_a_fresh_timestamp(make: Any) -> None:
    def advance_clock_and_limit(request: requests.PreparedRequest) -> Reply:
        harness.clock[0] += 3000
        return _limited(retry_after="3")

    client, transport, harness = make(advance_clock_and_limit, Reply(body=LEVERAGE_OK))

    assert client.change_leverage("BTCUSD_PERP", 20).leverage == 20

    first, second = transport.sent
    assert harness.sleeps == [3.0]
    assert _params(first)["timestamp"] == "1700000000000"
    assert _params(second)["timestamp"] == "1700000003000"
    assert _verify_hmac(first) != _verify_hmac(second)


def test_418_with_a_short_retry_after_is_retried_too(make: Any) -> None:
    client, transport, harness = make(_limited(418, "1"), Reply(body=LEVERAGE_OK))

    client.change_leverage("BTCUSD_PERP", 20)

    assert len(transport.sent) == 2
    assert harness.sleeps == [1.0]


def test_retry_after_longer_than_the_cap_raises_at_once(make: Any) -> None:
    client, transport, harness = make(_limited(429, "60"), max_retry_after=5.0)

    with pytest.raises(RateLimited) as caught:
        client.change_leverage("BTCUSD_PERP", 20)

    assert caught.value.retry_after == 60.0
    assert caught.value.status == 429
    assert caught.value.code == -1003
    assert harness.sleeps == []
    assert len(transport.sent) == 1


def test_ban_raises_ip_banned_which_is_a_rate_limit(make: Any) -> None:
    client, _, _ = make(_limited(418, "120"))

    with pytest.raises(IpBanned) as caught:
        client.server_time()

    assert isinstance(caught.value, RateLimited)
    assert caught.value.retry_after == 120.0


def test_rate_limit_retries_are_bounded(make: Any) -> None:
    client, transport, harness = make(*[_limited(retry_after="0")] * 3, rate_limit_retries=2)

    with pytest.raises(RateLimited):
        client.change_leverage("BTCUSD_PERP", 20)

    assert len(transport.sent) == 3
    assert harness.sleeps == [0.0, 0.0]


@pytest.mark.parametrize("retry_after", [None, "Wed, 21 Oct 2015 07:28:00 GMT", "-1"])
def test_429_without_a_usable_retry_after_is_not_retried(
    make: Any, retry_after: str | None
) -> None:
    client, transport, _ = make(_limited(retry_after=retry_after))

    with pytest.raises(RateLimited) as caught:
        client.server_time()

    assert caught.value.retry_after is None
    assert len(transport.sent) == 1


# --- ambiguous failures --------------------------------------------------------

SERVICE_UNAVAILABLE = Reply(
    503, {"code": -1001, "msg": "Internal error; unable to process your request. Please try again."}
)


def test_post_is_not_retried_on_503(make: Any) -> None:
    client, transport, harness = make(SERVICE_UNAVAILABLE, Reply(body=LEVERAGE_OK))

    with pytest.raises(ServerError) as caught:
        client.change_leverage("BTCUSD_PERP", 20)

    assert (caught.value.status, caught.value.code) == (503, -1001)
    assert len(transport.sent) == 1
    assert harness.sleeps == []


@pytest.mark.parametrize(
    ("failure", "raised"),
    [
        (requests.ReadTimeout("read timed out"), RequestTimeout),
        (requests.ConnectionError("connection reset"), TransportError),
    ],
)
def test_post_is_not_retried_on_transport_failures(
    make: Any, failure: Exception, raised: type[Exception]
) -> None:
    client, transport, _ = make(failure, Reply(body=LEVERAGE_OK))

    with pytest.raises(raised) as caught:
        client.change_leverage("BTCUSD_PERP", 20)

    assert isinstance(caught.value, TransportError)
    assert caught.value.request is transport.sent[0]
    assert len(transport.sent) == 1


def test_retry_post_opts_in_to_retrying_ambiguous_posts(make: Any) -> None:
    client, transport, _ = make(SERVICE_UNAVAILABLE, Reply(body=LEVERAGE_OK), retry_post=True)

    client.change_leverage("BTCUSD_PERP", 20)

    assert len(transport.sent) == 2


def test_get_is_retried_on_5xx_and_transport_errors_with_backoff(make: Any) -> None:
    client, transport, harness = make(
        SERVICE_UNAVAILABLE,
        requests.ConnectionError("dropped"),
        Reply(body={"serverTime": 5}),
        retry_backoff=0.5,
    )

    assert client.server_time() == 5
    assert len(transport.sent) == 3
    assert harness.sleeps == [0.5, 1.0]


def test_get_retries_are_bounded(make: Any) -> None:
    client, transport, _ = make(*[SERVICE_UNAVAILABLE] * 3, get_retries=2)

    with pytest.raises(ServerError):
        client.server_time()

    assert len(transport.sent) == 3


def test_get_retries_can_be_turned_off(make: Any) -> None:
    client, transport, _ = make(requests.ReadTimeout("slow"), get_retries=0)

    with pytest.raises(RequestTimeout):
        client.server_time()

    assert len(transport.sent) == 1


def test_4xx_is_never_retried(make: Any) -> None:
    client, transport, _ = make(Reply(400, {"code": -1121, "msg": "Invalid symbol."}))

    with pytest.raises(InvalidSymbol):
        client.exchange_info()

    assert len(transport.sent) == 1


# --- error mapping -------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "msg", "cls"),
    [
        (
            400,
            -1021,
            "Timestamp for this request is outside of the recvWindow.",
            TimestampOutsideWindow,
        ),
        (400, -1022, "Signature for this request is not valid.", InvalidSignature),
        (400, -1100, "Illegal characters found in a parameter.", IllegalCharacters),
        (400, -1101, "Duplicate values for a parameter detected.", TooManyParameters),
        (
            400,
            -1102,
            "Mandatory parameter 'leverage' was not sent, was empty/null, or malformed.",
            MissingParameter,
        ),
        (400, -1130, "Data sent for parameter 'recvWindow' is not valid.", InvalidParameter),
        (400, -1121, "Invalid symbol.", InvalidSymbol),
        (400, -4028, "Leverage 101 is not valid", InvalidLeverage),
        (400, -2027, "Exceeded the maximum allowable position at current leverage.", BadRequest),
        (400, -4046, "No need to change margin type.", NoChangeNeeded),
        (400, -4059, "No need to change position side.", NoChangeNeeded),
        (
            400,
            -4047,
            "Margin type cannot be changed if there exists open orders.",
            OpenOrdersExist,
        ),
        (
            400,
            -4067,
            "Position side cannot be changed if there exists open orders.",
            OpenOrdersExist,
        ),
        (400, -4048, "Margin type cannot be changed if there exists position.", PositionExists),
        (400, -4068, "Position side cannot be changed if there exists position.", PositionExists),
        (
            400,
            -4201,
            "Users in your location/country can only access a maximum leverage of 10",
            LeverageCapExceeded,
        ),
        (401, -2014, "API-key format invalid.", ApiKeyFormatInvalid),
        (401, -2015, "Invalid API-key, IP, or permissions for action", ApiKeyRejected),
        (401, -1002, "You are not authorized to execute this request.", AuthError),
        (404, -5000, "Path /dapi/v1/nope, Method GET is invalid", NotFound),
        (405, -5000, "Path /dapi/v1/leverage, Method GET is invalid", NotFound),
        (413, -1101, "Too many parameters sent for this endpoint.", ClientError),
        (403, -1000, "WAF", ClientError),
        (500, -1000, "An unknown error occured while processing the request.", ServerError),
        # A code arriving with an unexpected status is classed by the status.
        (401, -1021, "odd", AuthError),
        (503, -4028, "odd", ServerError),
        (429, -4046, "odd", RateLimited),
    ],
)
def test_error_answers_map_to_typed_exceptions(
    make: Any, status: int, code: int, msg: str, cls: type[ApiError]
) -> None:
    client, _, _ = make(Reply(status, {"code": code, "msg": msg}, {"X-MBX-USED-WEIGHT-1M": "7"}))

    with pytest.raises(ApiError) as caught:
        client.request("POST", "/dapi/v1/anything")

    error = caught.value
    assert type(error) is cls
    assert (error.status, error.code, error.msg) == (status, code, msg)
    assert error.headers["x-mbx-used-weight-1m"] == "7"
    assert error.response is not None
    assert str(code) in str(error)
    assert client.used_weight == 7


@pytest.mark.parametrize(
    ("code", "msg", "cap"),
    [
        (-4201, "Users in your location/country can only access a maximum leverage of 10", 10),
        (
            -4200,
            "More than 20x leverage is available 30 days after Futures account registration.",
            20,
        ),
        (
            -4194,
            "Intermediate Personal Verification is required for adjusting leverage over 20x.",
            20,
        ),
        (
            -4202,
            "Current symbol leverage cannot exceed 20 when using position limit adjustment "
            "service.",
            20,
        ),
        (-4201, "Users in your location/country can only access a maximum leverage of %s", None),
    ],
)
def test_a_leverage_cap_error_names_the_cap_its_text_gives(
    make: Any, code: int, msg: str, cap: int | None
) -> None:
    client, _, _ = make(Reply(400, {"code": code, "msg": msg}))

    with pytest.raises(LeverageCapExceeded) as caught:
        client.change_leverage("BTCUSD_PERP", 50)

    assert caught.value.code == code
    assert caught.value.max_leverage == cap


def test_error_body_that_is_not_binance_json_keeps_the_text(make: Any) -> None:
    client, _, _ = make(Reply(502, b"<html>Bad Gateway</html>"), get_retries=0)

    with pytest.raises(ServerError) as caught:
        client.server_time()

    assert caught.value.code is None
    assert caught.value.msg == "<html>Bad Gateway</html>"


# --- typed answers and malformed 2xx ------------------------------------------


@pytest.mark.parametrize("max_qty", ["150", "0.5", "3500", "0.00000001"])
def test_max_qty_is_an_exact_decimal(make: Any, max_qty: str) -> None:
    client, _, _ = make(Reply(body={**LEVERAGE_OK, "maxQty": max_qty}))

    change = client.change_leverage("BTCUSD_PERP", 20)

    assert change.max_qty == Decimal(max_qty)
    assert isinstance(change.max_qty, Decimal)
    assert (change.leverage, change.symbol) == (20, "BTCUSD_PERP")


@pytest.mark.parametrize(
    "body",
    [
        b'{"leverage":20,"maxQty":"15',
        b"<html>ok</html>",
        b"",
        [],
        {"leverage": 20, "maxQty": "150"},
        {"leverage": "20", "maxQty": "150", "symbol": "BTCUSD_PERP"},
        {"leverage": True, "maxQty": "150", "symbol": "BTCUSD_PERP"},
        {"leverage": 20, "maxQty": 150, "symbol": "BTCUSD_PERP"},
        {"leverage": 20, "maxQty": "1e3", "symbol": "BTCUSD_PERP"},
        {"leverage": 20, "maxQty": "NaN", "symbol": "BTCUSD_PERP"},
        {"leverage": 20, "maxQty": " 150", "symbol": "BTCUSD_PERP"},
    ],
)
def test_2xx_of_the_wrong_shape_is_malformed(make: Any, body: Any) -> None:
    client, _, _ = make(Reply(body=body))

    with pytest.raises(MalformedResponse) as caught:
        client.change_leverage("BTCUSD_PERP", 20)

    assert caught.value.status == 200
    assert caught.value.response is not None


def test_time_answer_of_the_wrong_shape_is_malformed(make: Any) -> None:
    client, _, _ = make(Reply(body={"serverTime": "123"}))

    with pytest.raises(MalformedResponse, match="serverTime"):
        client.server_time()


BRACKET_ROW = {
    "bracket": 1,
    "initialLeverage": 125,
    "qtyCap": 5,
    "qtyFloor": 0,
    "maintMarginRatio": 0.004,
    "cum": 0,
}


@pytest.mark.parametrize("floor_field", ["qtyFloor", "qtylFloor"])
def test_brackets_read_either_floor_spelling_as_exact_decimals(make: Any, floor_field: str) -> None:
    row = {k: v for k, v in BRACKET_ROW.items() if k != "qtyFloor"}
    last = {
        "bracket": 10,
        "initialLeverage": 1,
        "qtyCap": 3500,
        "maintMarginRatio": 0.5,
        "cum": 837.93,
    }
    row[floor_field] = 0
    last[floor_field] = 2400
    raw = json.dumps([{"symbol": "BTCUSD_PERP", "brackets": [row, last]}]).encode()
    client, transport, _ = make(Reply(body=raw))

    (table,) = client.leverage_brackets("BTCUSD_PERP")

    assert _params(transport.sent[0])["symbol"] == "BTCUSD_PERP"
    assert table.symbol == "BTCUSD_PERP"
    assert table.notional_coef is None
    first, tenth = table.brackets
    assert first.maint_margin_ratio == Decimal("0.004")
    assert (first.initial_leverage, first.qty_cap, first.qty_floor) == (125, Decimal(5), Decimal(0))
    assert tenth.cum == Decimal("837.93")
    assert tenth.qty_floor == Decimal(2400)


def test_brackets_without_a_floor_are_malformed(make: Any) -> None:
    row = {k: v for k, v in BRACKET_ROW.items() if k != "qtyFloor"}
    client, _, _ = make(Reply(body=[{"symbol": "BTCUSD_PERP", "brackets": [row]}]))

    with pytest.raises(MalformedResponse, match="qtyFloor"):
        client.leverage_brackets()


def test_v1_brackets_are_keyed_by_pair(make: Any) -> None:
    client, transport, _ = make(Reply(body=[{"pair": "BTCUSD", "brackets": [BRACKET_ROW]}]))

    (table,) = client.leverage_brackets_v1("BTCUSD")

    assert transport.sent[0].path_url.startswith("/dapi/v1/leverageBracket?pair=BTCUSD&")
    assert table.pair == "BTCUSD"
    assert table.brackets[0].initial_leverage == 125


POSITION_ROW = {
    "symbol": "BTCUSD_PERP",
    "positionAmt": "-3",
    "entryPrice": "100000",
    "breakEvenPrice": "100000",
    "markPrice": "100000",
    "unRealizedProfit": "0",
    "liquidationPrice": "0",
    "leverage": "20",
    "maxQty": "150",
    "marginType": "isolated",
    "isolatedMargin": "0.00000000",
    "isAutoAddMargin": "false",
    "positionSide": "BOTH",
    "notionalValue": "-0.003",
    "isolatedWallet": "0",
    "updateTime": 0,
}


def test_position_risk_rows_are_typed(make: Any) -> None:
    docs_row = {
        k: v
        for k, v in POSITION_ROW.items()
        if k not in ("notionalValue", "isolatedWallet", "breakEvenPrice")
    }
    client, transport, _ = make(Reply(body=[POSITION_ROW, docs_row]))

    full, sparse = client.position_risk(margin_asset="BTC")

    assert _params(transport.sent[0])["marginAsset"] == "BTC"
    assert full.leverage == 20
    assert full.max_qty == Decimal(150)
    assert full.position_amt == Decimal(-3)
    assert full.notional_value == Decimal("-0.003")
    assert full.is_auto_add_margin is False
    assert (full.margin_type, full.position_side, full.update_time) == ("isolated", "BOTH", 0)
    assert sparse.notional_value is None and sparse.break_even_price is None


@pytest.mark.parametrize(
    ("key", "value"), [("leverage", 20), ("positionAmt", 0), ("isAutoAddMargin", False)]
)
def test_position_risk_rows_with_wrong_types_are_malformed(make: Any, key: str, value: Any) -> None:
    client, _, _ = make(Reply(body=[{**POSITION_ROW, key: value}]))

    with pytest.raises(MalformedResponse, match=key):
        client.position_risk()


def test_exchange_info_is_returned_as_json_after_a_shape_check(make: Any) -> None:
    info = {"timezone": "UTC", "serverTime": 1, "rateLimits": [], "symbols": [{"symbol": "X"}]}
    client, _, _ = make(Reply(body=info), Reply(body={"timezone": "UTC"}))

    assert client.exchange_info() == info
    with pytest.raises(MalformedResponse, match="symbols"):
        client.exchange_info()


def test_spot_ping_and_time_use_api_v3(make: Any) -> None:
    client, transport, _ = make(Reply(body={}), Reply(body={"serverTime": 42}))

    client.spot_ping()
    assert client.spot_time() == 42

    assert [r.path_url for r in transport.sent] == ["/api/v3/ping", "/api/v3/time"]


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
    assert _params(first)["timestamp"] == str(1_700_000_000_010 + 29_995)
    assert _params(second)["timestamp"] == str(1_700_000_001_010 + 29_995)


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


# --- the set-up sequence: margin type, position mode, account, balance ----------

SUCCESS = {"code": 200, "msg": "success"}
ASSET_ROW = {
    "asset": "BTC",
    "walletBalance": "1.50000000",
    "unrealizedProfit": "0.00000000",
    "marginBalance": "1.50000000",
    "maintMargin": "0.00000000",
    "initialMargin": "0.00000000",
    "positionInitialMargin": "0.00000000",
    "openOrderInitialMargin": "0.00000000",
    "maxWithdrawAmount": "1.50000000",
    "crossWalletBalance": "1.50000000",
    "crossUnPnl": "0.00000000",
    "availableBalance": "1.50000000",
    "updateTime": 1_700_000_000_000,
}
ACCOUNT_POSITION_ROW = {
    "symbol": "BTCUSD_PERP",
    "positionAmt": "-3",
    "initialMargin": "0",
    "maintMargin": "0",
    "unrealizedProfit": "0.00000000",
    "positionInitialMargin": "0",
    "openOrderInitialMargin": "0",
    "leverage": "20",
    "isolated": True,
    "positionSide": "SHORT",
    "entryPrice": "100000.00000000",
    "breakEvenPrice": "100000.00000000",
    "maxQty": "150",
    "updateTime": 5,
}
ACCOUNT = {
    "assets": [ASSET_ROW],
    "positions": [ACCOUNT_POSITION_ROW],
    "canDeposit": True,
    "canTrade": True,
    "canWithdraw": False,
    "feeTier": 0,
    "updateTime": 0,
}
BALANCE_ROW = {
    "accountAlias": "SgsR",
    "asset": "BTC",
    "balance": "1.50000000",
    "withdrawAvailable": "1.50000000",
    "crossWalletBalance": "1.50000000",
    "crossUnPnl": "0.00000000",
    "availableBalance": "1.50000000",
    "updateTime": 1_700_000_000_000,
}


def test_change_margin_type_posts_a_signed_form(make: Any) -> None:
    client, transport, _ = make(Reply(body=SUCCESS))

    assert client.change_margin_type("BTCUSD_PERP", "ISOLATED") is None

    (sent,) = transport.sent
    assert (sent.method, sent.path_url) == ("POST", "/dapi/v1/marginType")
    assert _parts(sent)[1].startswith(
        "symbol=BTCUSD_PERP&marginType=ISOLATED&timestamp=1700000000000&signature="
    )
    _verify_hmac(sent)


@pytest.mark.parametrize(("dual", "wire"), [(True, "true"), (False, "false")])
def test_change_position_mode_sends_true_or_false(make: Any, dual: bool, wire: str) -> None:
    client, transport, _ = make(Reply(body=SUCCESS))

    client.change_position_mode(dual)

    (sent,) = transport.sent
    assert (sent.method, sent.path_url) == ("POST", "/dapi/v1/positionSide/dual")
    assert _params(sent)["dualSidePosition"] == wire
    _verify_hmac(sent)


@pytest.mark.parametrize("dual", [True, False])
def test_position_mode_reads_the_json_boolean(make: Any, dual: bool) -> None:
    client, transport, _ = make(Reply(body={"dualSidePosition": dual}))

    assert client.position_mode() is dual
    (sent,) = transport.sent
    assert sent.method == "GET" and sent.path_url.startswith(
        "/dapi/v1/positionSide/dual?timestamp="
    )
    _verify_hmac(sent)


@pytest.mark.parametrize(
    ("call", "body"),
    [
        (lambda c: c.change_margin_type("BTCUSD_PERP", "CROSSED"), {"code": 0, "msg": "success"}),
        (lambda c: c.change_margin_type("BTCUSD_PERP", "CROSSED"), []),
        (lambda c: c.change_position_mode(True), {"msg": "success"}),
        (lambda c: c.position_mode(), {"dualSidePosition": "true"}),
        (lambda c: c.position_mode(), {"dualSidePosition": 1}),
        (lambda c: c.position_mode(), {}),
    ],
)
def test_set_up_answers_of_the_wrong_shape_are_malformed(
    make: Any, call: Callable[[DapiClient], Any], body: Any
) -> None:
    client, _, _ = make(Reply(body=body))

    with pytest.raises(MalformedResponse):
        call(client)


def test_account_is_typed_with_exact_decimals(make: Any) -> None:
    sparse = {k: v for k, v in ACCOUNT_POSITION_ROW.items() if k != "breakEvenPrice"}
    client, transport, _ = make(
        Reply(body={**ACCOUNT, "positions": [ACCOUNT_POSITION_ROW, sparse]})
    )

    account = client.account()

    assert transport.sent[0].path_url.startswith("/dapi/v1/account?timestamp=")
    (btc,) = account.assets
    assert account.asset("BTC") == btc and account.asset("ETH") is None
    assert btc.wallet_balance == Decimal("1.5") and isinstance(btc.wallet_balance, Decimal)
    assert (btc.available_balance, btc.update_time) == (Decimal("1.5"), 1_700_000_000_000)
    short, no_break_even = account.positions
    assert (short.position_amt, short.leverage, short.isolated) == (Decimal(-3), 20, True)
    assert (short.position_side, short.max_qty, short.update_time) == ("SHORT", Decimal(150), 5)
    assert no_break_even.break_even_price is None
    assert (account.can_trade, account.can_withdraw, account.fee_tier) == (True, False, 0)


@pytest.mark.parametrize(
    ("where", "key", "value"),
    [
        ("asset", "walletBalance", 1.5),
        ("asset", "updateTime", "0"),
        ("position", "isolated", "true"),
        ("position", "leverage", 20),
        ("account", "canTrade", "true"),
        ("account", "feeTier", True),
        ("account", "assets", {}),
    ],
)
def test_account_answers_with_wrong_types_are_malformed(
    make: Any, where: str, key: str, value: Any
) -> None:
    body = {
        "asset": {**ACCOUNT, "assets": [{**ASSET_ROW, key: value}]},
        "position": {**ACCOUNT, "positions": [{**ACCOUNT_POSITION_ROW, key: value}]},
        "account": {**ACCOUNT, key: value},
    }[where]
    client, _, _ = make(Reply(body=body))

    with pytest.raises(MalformedResponse, match=key):
        client.account()


def test_balance_rows_are_typed(make: Any) -> None:
    client, transport, _ = make(Reply(body=[BALANCE_ROW, {**BALANCE_ROW, "asset": "ETH"}]))

    btc, eth = client.balance()

    assert transport.sent[0].path_url.startswith("/dapi/v1/balance?timestamp=")
    assert (btc.account_alias, btc.asset, btc.balance) == ("SgsR", "BTC", Decimal("1.5"))
    assert btc.cross_un_pnl == Decimal(0) and btc.update_time == 1_700_000_000_000
    assert eth.asset == "ETH"


@pytest.mark.parametrize("body", [{}, [{**BALANCE_ROW, "balance": "1e3"}], [{"asset": "BTC"}]])
def test_balance_of_the_wrong_shape_is_malformed(make: Any, body: Any) -> None:
    client, _, _ = make(Reply(body=body))

    with pytest.raises(MalformedResponse):
        client.balance()
