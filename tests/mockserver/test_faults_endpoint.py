"""Fault rules over /__admin/faults
(docs/behaviour.md#faults): every action, every "when", seen in the journal.

The socket-level actions (drop, delay, malformed) run on the live server of the
`dapi_mock` fixture; the rest on the Flask test client.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests

from tests.helpers import FROZEN_MS, signed
from tests.mockserver.conftest import error_of
from tests.openapi_check import check_requests_response

PATH = "/dapi/v1/leverage"
ERROR_503 = {
    "type": "error",
    "status": 503,
    "code": -1001,
    "msg": "Internal error; unable to process your request. Please try again.",
}
LEVERAGE = {"method": "POST", "path": PATH}
PING = {"method": "GET", "path": "/dapi/v1/ping"}


def add_fault(client, rule: dict[str, Any]) -> int:
    response = client.admin("POST", "/faults", rule)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert list(body) == ["id"]
    return int(body["id"])


def statuses(client, n: int, path: str = "/dapi/v1/ping") -> list[int]:
    return [client.get(path).status_code for _ in range(n)]


def journal(client) -> list[dict[str, Any]]:
    return client.admin("GET", "/requests").get_json()["requests"]


def leverage_now(client, symbol: str = "BTCUSD_PERP") -> str:
    query = signed({"timestamp": client.exchange.clock.now_ms()})
    rows = client.get("/dapi/v1/positionRisk", query).get_json()
    return next(r["leverage"] for r in rows if r["symbol"] == symbol)


# -- actions --------------------------------------------------------------------------------


def test_error_answers_the_rule_instead_and_is_journaled(client):
    rule = add_fault(client, {"match": LEVERAGE, "action": ERROR_503, "times": 1})
    response = client.change_leverage("BTCUSD_PERP", 50)
    assert error_of(response) == (503, -1001, ERROR_503["msg"])
    assert leverage_now(client) == "20"  # not applied
    entry = journal(client)[0]
    assert (entry["status"], entry["code"], entry["fault"]) == (503, -1001, rule)
    assert entry["reason"] == f"fault rule {rule}: error"


def test_a_fault_fires_before_any_validation(client):
    add_fault(client, {"match": LEVERAGE, "action": ERROR_503})
    response = client.post(PATH, "symbol=%zz&symbol=again", api_key=None)
    assert error_of(response)[:2] == (503, -1001)


def test_faulted_requests_count_toward_weight(client):
    add_fault(client, {"match": PING, "action": ERROR_503})
    assert client.get("/dapi/v1/ping").headers["X-MBX-USED-WEIGHT-1M"] == "1"
    assert client.get("/dapi/v1/ping").headers["X-MBX-USED-WEIGHT-1M"] == "2"


def test_rate_limit_429_answers_retry_after_and_the_limit(make_client):
    client = make_client(weight_per_minute=1000)
    rule = add_fault(
        client,
        {"match": LEVERAGE, "action": {"type": "rate_limit", "status": 429, "retry_after": 3}},
    )
    response = client.change_leverage("BTCUSD_PERP", 50)
    assert error_of(response) == (
        429,
        -1003,
        "Too many requests; current limit of IP(127.0.0.1) is 1000 requests per minute. Please "
        "use the websocket for live updates to avoid polling the API.",
    )
    assert response.headers["Retry-After"] == "3"
    assert journal(client)[0]["fault"] == rule


def test_rate_limit_429_names_the_live_limit_when_limits_are_off(make_client):
    client = make_client(weight_per_minute=0)
    add_fault(
        client, {"match": PING, "action": {"type": "rate_limit", "status": 429, "retry_after": 1}}
    )
    assert (
        "current limit of IP(127.0.0.1) is 2400 requests"
        in error_of(client.get("/dapi/v1/ping"))[2]
    )


def test_rate_limit_418_answers_a_ban_until_retry_after(client):
    add_fault(
        client, {"match": PING, "action": {"type": "rate_limit", "status": 418, "retry_after": 30}}
    )
    response = client.get("/dapi/v1/ping")
    assert error_of(response) == (
        418,
        -1003,
        f"Way too many requests; IP(127.0.0.1) banned until {FROZEN_MS + 30_000}. Please use "
        "the websocket for live updates to avoid bans.",
    )
    assert response.headers["Retry-After"] == "30"


def test_a_rate_limit_fault_does_not_touch_the_real_limiter(client):
    add_fault(
        client,
        {
            "match": PING,
            "action": {"type": "rate_limit", "status": 429, "retry_after": 9},
            "times": 1,
        },
    )
    assert client.get("/dapi/v1/ping").status_code == 429
    assert client.get("/dapi/v1/ping").status_code == 200  # no ban for ignoring Retry-After


def test_apply_then_error_changes_state_and_answers_the_error(client):
    action = {"type": "apply_then_error", "status": 502, "code": -1000, "msg": "lost"}
    rule = add_fault(client, {"match": LEVERAGE, "action": action, "times": 1})
    response = client.change_leverage("BTCUSD_PERP", 50)
    assert error_of(response) == (502, -1000, "lost")
    assert "X-MBX-USED-WEIGHT-1M" in response.headers
    assert leverage_now(client) == "50"  # applied
    entry = journal(client)[0]
    assert (entry["status"], entry["code"], entry["fault"]) == (502, -1000, rule)
    assert entry["reason"] == f"fault rule {rule}: applied, then answered an error"


def test_apply_then_error_leaves_a_rejected_request_alone(client):
    action = {"type": "apply_then_error", "status": 502, "code": -1000, "msg": "lost"}
    rule = add_fault(client, {"match": LEVERAGE, "action": action, "times": 1})
    response = client.change_leverage("BTCUSD_PERP", 500)
    assert error_of(response) == (400, -4028, "Leverage 500 is not valid")
    assert leverage_now(client) == "20"
    entry = journal(client)[0]
    assert (entry["code"], entry["fault"]) == (-4028, rule)
    assert entry["reason"] == "BTCUSD_PERP takes leverage 1 to 125"


def test_delay_waits_then_answers_normally(dapi_mock):
    rule = dapi_mock.faults.add({"match": PING, "action": {"type": "delay", "ms": 250}})
    started = time.perf_counter()
    response = requests.get(f"{dapi_mock.url}/dapi/v1/ping", timeout=5)
    elapsed = time.perf_counter() - started
    check_requests_response(response)
    assert (response.status_code, response.json()) == (200, {})
    assert elapsed >= 0.25
    (entry,) = dapi_mock.requests()
    assert (entry["status"], entry["code"], entry["fault"], entry["reason"]) == (
        200,
        None,
        rule,
        None,
    )


def test_delay_then_the_normal_rules_still_apply(dapi_mock):
    dapi_mock.faults.add({"match": LEVERAGE, "action": {"type": "delay", "ms": 200}})
    started = time.perf_counter()
    response = requests.post(f"{dapi_mock.url}{PATH}?symbol=BTCUSD_PERP", timeout=5)
    assert time.perf_counter() - started >= 0.2
    assert (response.status_code, response.json()["code"]) == (401, -2014)


def test_drop_closes_the_connection_without_an_answer(dapi_mock):
    rule = dapi_mock.faults.add({"match": PING, "action": {"type": "drop"}, "times": 1})
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{dapi_mock.url}/dapi/v1/ping", timeout=5)
    response = requests.get(f"{dapi_mock.url}/dapi/v1/ping", timeout=5)  # the server lives on
    assert response.status_code == 200
    dropped, normal = dapi_mock.requests()
    assert (dropped["status"], dropped["code"], dropped["fault"]) == (None, None, rule)
    assert dropped["reason"] == f"fault rule {rule}: drop"
    assert (normal["status"], normal["fault"]) == (200, None)


def test_drop_of_a_leverage_change_does_not_apply_it(dapi_mock):
    dapi_mock.faults.add({"match": LEVERAGE, "action": {"type": "drop"}, "times": 1})
    dapi_mock.clock.freeze(FROZEN_MS)
    query = signed({"symbol": "BTCUSD_PERP", "leverage": 50, "timestamp": FROZEN_MS})
    headers = {"X-MBX-APIKEY": dapi_mock.api_key}
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{dapi_mock.url}{PATH}?{query}", headers=headers, timeout=5)
    rows = requests.get(
        f"{dapi_mock.url}/dapi/v1/positionRisk?{signed({'timestamp': FROZEN_MS})}",
        headers=headers,
        timeout=5,
    ).json()
    assert next(r["leverage"] for r in rows if r["symbol"] == "BTCUSD_PERP") == "20"


def test_malformed_answers_200_json_with_the_body_cut_in_half(dapi_mock):
    dapi_mock.clock.freeze(FROZEN_MS)
    rule = dapi_mock.faults.add({"match": LEVERAGE, "action": {"type": "malformed"}})
    query = signed({"symbol": "BTCUSD_PERP", "leverage": 50, "timestamp": FROZEN_MS})
    response = requests.post(
        f"{dapi_mock.url}{PATH}?{query}", headers={"X-MBX-APIKEY": dapi_mock.api_key}, timeout=5
    )
    whole = b'{"leverage":50,"maxQty":"25","symbol":"BTCUSD_PERP"}'
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.content == whole[: len(whole) // 2]
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)
    (entry,) = dapi_mock.requests()
    assert (entry["status"], entry["fault"]) == (200, rule)
    assert entry["reason"] == f"fault rule {rule}: body cut in half"


def test_malformed_cuts_an_error_body_too(dapi_mock):
    dapi_mock.faults.add({"match": LEVERAGE, "action": {"type": "malformed"}})
    response = requests.post(f"{dapi_mock.url}{PATH}", timeout=5)
    whole = b'{"code":-2014,"msg":"API-key format invalid."}'
    assert response.status_code == 200
    assert response.content == whole[: len(whole) // 2]


# -- when -----------------------------------------------------------------------------------


def test_times_fires_on_the_next_n_matches_only(client):
    rule = add_fault(client, {"match": PING, "action": ERROR_503, "times": 2})
    assert statuses(client, 4) == [503, 503, 200, 200]
    (state,) = client.admin("GET", "/faults").get_json()["faults"]
    assert state == {"id": rule, "match": PING, "action": ERROR_503, "times": 2, "fired": 2}


def test_every_fires_on_each_kth_match(client):
    add_fault(client, {"match": PING, "action": ERROR_503, "every": 3})
    assert statuses(client, 7) == [200, 200, 503, 200, 200, 503, 200]
    assert client.admin("GET", "/faults").get_json()["faults"][0]["fired"] == 2


def test_no_when_fires_on_every_match(client):
    add_fault(client, {"match": PING, "action": ERROR_503})
    assert statuses(client, 3) == [503, 503, 503]


def _seeded_run(make_client, seed: int, n: int = 40) -> list[int]:
    client = make_client()
    add_fault(client, {"match": PING, "action": ERROR_503, "probability": 0.5, "seed": seed})
    return statuses(client, n)


def test_probability_with_a_seed_is_repeatable(make_client):
    first = _seeded_run(make_client, 42)
    assert first == _seeded_run(make_client, 42)
    assert 503 in first and 200 in first
    assert first != _seeded_run(make_client, 7)


def test_probability_is_repeatable_after_a_reset_and_re_add(make_client):
    client = make_client()
    rule = {"match": PING, "action": ERROR_503, "probability": 0.3, "seed": 5}
    add_fault(client, rule)
    first = statuses(client, 30)
    client.admin("POST", "/reset")
    add_fault(client, rule)
    assert statuses(client, 30) == first


@pytest.mark.parametrize(("probability", "expected"), [(0, 200), (1, 503)])
def test_probability_zero_never_fires_and_one_always_does(client, probability, expected):
    add_fault(client, {"match": PING, "action": ERROR_503, "probability": probability, "seed": 1})
    assert statuses(client, 10) == [expected] * 10


# -- matching ---------------------------------------------------------------------------------


def test_a_rule_matches_method_and_exact_path_only(client):
    add_fault(client, {"match": {"method": "get", "path": "/dapi/v1/ping"}, "action": ERROR_503})
    assert client.get("/dapi/v1/time").status_code == 200
    assert client.get("/api/v3/ping").status_code == 200
    assert client.get("/dapi/v1/ping").status_code == 503  # method is case-insensitive
    assert client.post("/dapi/v1/ping").status_code == 405  # wrong method: no route, no fault


def test_a_rule_on_an_unknown_path_never_fires(client):
    add_fault(client, {"match": {"method": "GET", "path": "/dapi/v1/nothing"}, "action": ERROR_503})
    assert error_of(client.get("/dapi/v1/nothing"))[:2] == (404, -5000)


def test_a_rule_with_an_api_key_matches_that_key_only(client):
    add_fault(client, {"match": {**LEVERAGE, "api_key": "otherkey"}, "action": ERROR_503})
    assert client.change_leverage("BTCUSD_PERP", 30).status_code == 200
    assert client.post(PATH, "", api_key="otherkey").status_code == 503
    assert client.post(PATH, "", api_key=None).status_code == 401


def test_the_oldest_matching_rule_fires_and_only_one(client):
    first = add_fault(client, {"match": PING, "action": ERROR_503, "times": 1})
    teapot = {"type": "error", "status": 500, "code": -1000, "msg": "second"}
    second = add_fault(client, {"match": PING, "action": teapot, "times": 1})
    assert statuses(client, 3) == [503, 500, 200]
    assert [e["fault"] for e in journal(client)] == [first, second, None]


# -- the control plane ------------------------------------------------------------------------


def test_rules_are_listed_oldest_first_with_their_fired_counts(client):
    one = add_fault(client, {"match": PING, "action": {"type": "drop"}, "every": 2})
    two = add_fault(
        client,
        {"match": LEVERAGE, "action": {"type": "delay", "ms": 0}, "probability": 0.25, "seed": 3},
    )
    assert client.admin("GET", "/faults").get_json() == {
        "faults": [
            {"id": one, "match": PING, "action": {"type": "drop"}, "every": 2, "fired": 0},
            {
                "id": two,
                "match": LEVERAGE,
                "action": {"type": "delay", "ms": 0},
                "probability": 0.25,
                "seed": 3,
                "fired": 0,
            },
        ]
    }


def test_delete_one_rule_and_all_rules(client):
    one = add_fault(client, {"match": PING, "action": ERROR_503})
    two = add_fault(client, {"match": LEVERAGE, "action": ERROR_503})
    response = client.admin("DELETE", f"/faults/{one}")
    assert (response.status_code, response.get_json()) == (200, {"status": "ok"})
    assert client.get("/dapi/v1/ping").status_code == 200
    assert [r["id"] for r in client.admin("GET", "/faults").get_json()["faults"]] == [two]
    missing = client.admin("DELETE", f"/faults/{one}")
    assert missing.status_code == 404
    assert "error" in missing.get_json()
    assert client.admin("DELETE", "/faults").get_json() == {"status": "ok"}
    assert client.admin("GET", "/faults").get_json() == {"faults": []}


def test_reset_removes_every_rule(client):
    add_fault(client, {"match": PING, "action": ERROR_503})
    client.admin("POST", "/reset")
    assert client.get("/dapi/v1/ping").status_code == 200


@pytest.mark.parametrize(
    "rule",
    [
        {"match": PING},
        {"action": ERROR_503},
        {"match": PING, "action": {"type": "explode"}},
        {"match": PING, "action": ERROR_503, "times": 1, "every": 2},
        {"match": PING, "action": ERROR_503, "seed": 3},
        {"match": PING, "action": ERROR_503, "probability": 1.5},
        {"match": PING, "action": ERROR_503, "times": 0},
        {"match": PING, "action": {"type": "rate_limit", "status": 420, "retry_after": 1}},
        {"match": PING, "action": {"type": "delay"}},
        {"match": {"method": "GET"}, "action": ERROR_503},
        {"match": PING, "action": ERROR_503, "colour": "red"},
        [],
    ],
)
def test_an_invalid_rule_is_refused_with_400(client, rule):
    response = client.admin("POST", "/faults", rule)
    assert response.status_code == 400
    assert list(response.get_json()) == ["error"]
    assert client.admin("GET", "/faults").get_json() == {"faults": []}
