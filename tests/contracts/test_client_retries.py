"""DapiClient's retries: 429/418 and Retry-After, and ambiguous failures of POST and GET."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from contracts.client import (
    InvalidSymbol,
    IpBanned,
    RateLimited,
    RequestTimeout,
    ServerError,
    TransportError,
)
from tests.contracts.client_fakes import LEVERAGE_OK, Reply, request_params, verify_hmac

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
    assert request_params(first)["timestamp"] == "1700000000000"
    assert request_params(second)["timestamp"] == "1700000003000"
    assert verify_hmac(first) != verify_hmac(second)


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
