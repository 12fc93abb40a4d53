"""Request weight over HTTP
(docs/behaviour.md#rate-limits): the header, 429 then 418, windows of the mock clock."""

from __future__ import annotations

import pytest

from tests.helpers import FROZEN_MS, signed
from tests.mockserver.conftest import error_of
from tests.openapi_check import check_werkzeug_response

WEIGHT = "X-MBX-USED-WEIGHT-1M"
MINUTE_MS = 60_000
# FROZEN_MS is 53.943 s into its minute: the next window starts 6057 ms later.
TO_NEXT_WINDOW_MS = MINUTE_MS - FROZEN_MS % MINUTE_MS
# docs/behaviour.md#rate-limits: the futures texts, with the client's IP (the test client's).
TOO_MANY = (
    "Too many requests; current limit of IP(127.0.0.1) is {} requests per minute. Please use "
    "the websocket for live updates to avoid polling the API."
)
BANNED = (
    "Way too many requests; IP(127.0.0.1) banned until {}. Please use the websocket for live "
    "updates to avoid bans."
)


def _signed_get(client, path: str, **params):
    return client.get(path, signed({**params, "timestamp": client.exchange.clock.now_ms()}))


# -- the header -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "signed_call", "weight"),
    [
        ("/dapi/v1/ping", {}, False, 1),
        ("/dapi/v1/time", {}, False, 1),
        ("/dapi/v1/exchangeInfo", {}, False, 1),
        ("/dapi/v2/leverageBracket", {}, True, 2),
        ("/dapi/v2/leverageBracket", {"symbol": "BTCUSD_PERP"}, True, 1),
        ("/dapi/v1/leverageBracket", {}, True, 1),
        ("/dapi/v1/positionRisk", {}, True, 1),
        ("/api/v3/ping", {}, False, 1),
        ("/api/v3/time", {}, False, 1),
        ("/sapi/v1/capital/config/getall", {}, True, 1),
        ("/sapi/v1/margin/allPairs", {}, True, 1),
    ],
)
def test_each_route_adds_its_weight_to_the_header(client, path, params, signed_call, weight):
    for round_ in (1, 2):
        response = _signed_get(client, path, **params) if signed_call else client.get(path)
        assert response.status_code == 200
        assert response.headers[WEIGHT] == str(weight * round_)


def test_leverage_weighs_one_and_rejections_count_too(client):
    assert client.change_leverage("BTCUSD_PERP", 10).headers[WEIGHT] == "1"
    assert error_of(client.change_leverage("BTCUSD_PERP", 500))[1] == -4028
    rejected = client.post("/dapi/v1/leverage", "symbol=%zz")  # -1100, before the limit check
    assert error_of(rejected)[1] == -1100
    assert rejected.headers[WEIGHT] == "3"
    unsigned = client.post("/dapi/v1/leverage", "symbol=BTCUSD_PERP", api_key=None)
    assert error_of(unsigned)[1] == -2014
    assert unsigned.headers[WEIGHT] == "4"


def test_the_header_counts_also_when_the_limit_is_off(make_client):
    client = make_client(weight_per_minute=0)
    client.exchange.limiter.charge("127.0.0.1", 5000, FROZEN_MS)  # far past the live limit
    response = client.get("/dapi/v1/ping")
    assert response.status_code == 200
    assert response.headers[WEIGHT] == "5001"


def test_admin_routes_and_the_contract_carry_no_weight_header(client):
    client.get("/dapi/v1/ping")
    assert WEIGHT not in client.admin("GET", "/health").headers
    assert WEIGHT not in client.admin("GET", "/requests").headers
    assert WEIGHT not in client.get("/openapi.yaml").headers
    assert client.get("/dapi/v1/ping").headers[WEIGHT] == "2"  # neither of them counted


def test_weight_is_counted_per_client_ip(client):
    def ping_from(ip: str):
        response = client._client.get("/dapi/v1/ping", environ_base={"REMOTE_ADDR": ip})
        check_werkzeug_response(response)
        return response.headers[WEIGHT]

    assert [ping_from("10.0.0.1"), ping_from("10.0.0.1"), ping_from("10.0.0.2")] == ["1", "2", "1"]


# -- windows of the mock clock ------------------------------------------------------------


def test_a_new_minute_of_the_mock_clock_starts_a_new_count(client):
    client.get("/dapi/v1/ping")
    client.exchange.clock.advance(TO_NEXT_WINDOW_MS - 1)
    assert client.get("/dapi/v1/ping").headers[WEIGHT] == "2"  # same minute
    client.exchange.clock.advance(1)
    assert client.get("/dapi/v1/ping").headers[WEIGHT] == "1"


# -- 429, then 418 ------------------------------------------------------------------------


def test_passing_the_configured_limit_answers_429_with_retry_after_to_the_next_window(make_client):
    client = make_client(weight_per_minute=3)
    assert [client.get("/dapi/v1/ping").headers[WEIGHT] for _ in range(3)] == ["1", "2", "3"]
    response = client.get("/dapi/v1/ping")
    assert error_of(response) == (429, -1003, TOO_MANY.format(3))
    assert response.headers["Retry-After"] == str(-(-TO_NEXT_WINDOW_MS // 1000))  # 7
    assert response.headers[WEIGHT] == "3"  # the 429 itself is not counted


def test_a_request_that_would_pass_the_limit_is_refused_by_its_weight(make_client):
    client = make_client(weight_per_minute=3)
    client.get("/dapi/v1/ping")
    client.get("/dapi/v1/ping")
    # v2 leverageBracket without symbol weighs 2: 2 + 2 > 3. The limit comes before the key.
    response = client.get("/dapi/v2/leverageBracket", f"timestamp={FROZEN_MS}", api_key=None)
    assert error_of(response) == (429, -1003, TOO_MANY.format(3))


def test_a_request_before_retry_after_runs_out_is_banned_with_418(make_client):
    client = make_client(weight_per_minute=2, ban_seconds=120)
    client.get("/dapi/v1/ping")
    client.get("/dapi/v1/ping")
    assert error_of(client.get("/dapi/v1/ping"))[0] == 429
    client.exchange.clock.advance(1000)  # Retry-After was 7 s: still pending
    response = client.change_leverage("BTCUSD_PERP", 10)
    ban_end = FROZEN_MS + 1000 + 120_000
    assert error_of(response) == (418, -1003, BANNED.format(ban_end))
    assert response.headers["Retry-After"] == "120"
    assert response.headers[WEIGHT] == "2"  # the 418 is not counted either


def test_a_ban_lasts_ban_seconds_of_the_mock_clock_even_across_windows(make_client):
    client = make_client(weight_per_minute=1, ban_seconds=120)
    client.get("/dapi/v1/ping")
    client.get("/dapi/v1/ping")  # 429
    client.get("/dapi/v1/ping")  # 418, banned until FROZEN_MS + 120 s
    ban_end = FROZEN_MS + 120_000
    client.exchange.clock.advance(60_500)
    response = client.get("/dapi/v1/time")  # a new window, still banned
    assert error_of(response) == (418, -1003, BANNED.format(ban_end))
    assert response.headers["Retry-After"] == "60"  # 59.5 s left, rounded up
    client.exchange.clock.advance(59_499)
    response = client.get("/dapi/v1/ping")
    assert error_of(response)[0] == 418
    assert response.headers["Retry-After"] == "1"
    client.exchange.clock.advance(1)
    response = client.get("/dapi/v1/ping")
    assert response.status_code == 200
    assert response.headers[WEIGHT] == "1"


def test_waiting_out_retry_after_avoids_the_ban(make_client):
    client = make_client(weight_per_minute=1)
    client.get("/dapi/v1/ping")
    response = client.get("/dapi/v1/ping")
    assert error_of(response)[0] == 429
    client.exchange.clock.advance(int(response.headers["Retry-After"]) * 1000)
    response = client.get("/dapi/v1/ping")
    assert response.status_code == 200
    assert response.headers[WEIGHT] == "1"


def test_a_configured_ban_length_is_used(make_client):
    client = make_client(weight_per_minute=1, ban_seconds=5)
    client.get("/dapi/v1/ping")
    client.get("/dapi/v1/ping")
    response = client.get("/dapi/v1/ping")
    assert error_of(response) == (418, -1003, BANNED.format(FROZEN_MS + 5000))
    assert response.headers["Retry-After"] == "5"


def test_another_ip_is_not_banned(make_client):
    client = make_client(weight_per_minute=1)
    client.get("/dapi/v1/ping")
    client.get("/dapi/v1/ping")
    client.get("/dapi/v1/ping")
    other = client._client.get("/dapi/v1/ping", environ_base={"REMOTE_ADDR": "10.9.9.9"})
    check_werkzeug_response(other)
    assert other.status_code == 200


def test_reset_clears_counts_and_bans(make_client):
    client = make_client(weight_per_minute=1)
    for _ in range(3):
        client.get("/dapi/v1/ping")
    assert client.admin("POST", "/reset").get_json() == {"status": "ok"}
    client.exchange.clock.freeze_at(FROZEN_MS)
    response = client.get("/dapi/v1/ping")
    assert response.status_code == 200
    assert response.headers[WEIGHT] == "1"


def test_exchange_info_shows_the_configured_limit(make_client):
    limits = make_client(weight_per_minute=7).get("/dapi/v1/exchangeInfo").get_json()["rateLimits"]
    assert limits[0] == {
        "rateLimitType": "REQUEST_WEIGHT",
        "interval": "MINUTE",
        "intervalNum": 1,
        "limit": 7,
    }
    off = make_client(weight_per_minute=0).get("/dapi/v1/exchangeInfo").get_json()
    assert off["rateLimits"][0]["limit"] == 2400
