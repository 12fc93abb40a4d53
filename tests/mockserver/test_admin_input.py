"""What the control plane takes: bad bodies get 400, never a 500 (docs/behaviour.md#reliability)."""

from __future__ import annotations

import json

import pytest

from mockserver.json_input import JSONInputError, parse
from tests.mockserver.conftest import FROZEN_MS, signed

FAULT = {
    "match": {"method": "GET", "path": "/dapi/v1/ping"},
    "action": {"type": "error", "status": 503, "code": -1001, "msg": "busy"},
}


def post_raw(client, path: str, body: bytes | str):
    data = body.encode() if isinstance(body, str) else body
    return client.request(
        "POST", f"/__admin{path}", body=data, content_type="application/json", api_key=None
    )


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/faults", "[" * 100_000 + "]" * 100_000),
        ("/faults", '{"a":' * 100_000 + "1" + "}" * 100_000),
        ("/faults", '{"match":' + "[" * 40 + "]" * 40 + "}"),
        ("/accounts", '{"api_key": "abc", "secret": "\\ud800"}'),
        ("/accounts", '{"api_key": "abc", "secret": "x\\udfffy"}'),
        ("/faults", json.dumps({**FAULT, "action": {**FAULT["action"], "msg": "\ud800"}})),
        ("/faults", '{"\\ud800": 1}'),
        ("/clock", '{"offset_ms": NaN}'),
        ("/clock", '{"offset_ms": -Infinity}'),
        ("/clock", '{"advance_ms": 1' + "0" * 5000 + "}"),
        ("/accounts", b'{"api_key": "abc", "secret": "\xff"}'),
        ("/accounts", "\ufeff{}"),
        ("/accounts", ""),
        ("/accounts", "{"),
    ],
    ids=lambda v: v if len(v) < 30 else f"{v[:25]!r}...",
)
def test_unusable_json_is_400_with_a_reason(client, path, body):
    response = post_raw(client, path, body)
    assert response.status_code == 400
    assert response.get_json()["error"]
    assert client.get("/dapi/v1/ping").status_code == 200
    assert client.exchange.unexpected_error_count == 0


def test_a_body_over_1_mib_is_413_whether_or_not_it_is_declared(client):
    body = json.dumps({"api_key": "abc", "secret": "s" * (1024 * 1024)})
    response = post_raw(client, "/accounts", body)
    assert response.status_code == 413
    assert "1048576" in response.get_json()["error"]


def test_a_body_of_almost_1_mib_is_read(client):
    body = json.dumps({**FAULT, "padding": " " * (1024 * 1024 - 200)})
    assert len(body) <= 1024 * 1024
    response = post_raw(client, "/faults", body)
    assert (response.status_code, response.get_json()["error"]) == (400, "unknown key(s): padding")


def test_the_parser_refuses_deep_nesting_below_pythons_limit() -> None:
    assert parse("[[[]]]", max_depth=3) == [[[]]]
    with pytest.raises(JSONInputError, match="deeper than 3"):
        parse("[[[[]]]]", max_depth=3)
    with pytest.raises(JSONInputError, match="deeper than 3"):
        parse("[" * 500 + "]" * 500, max_depth=3)


# -- caps: memory is bounded in bytes ---------------------------------------------------------


def test_at_most_10000_accounts_are_held(client):
    from mockserver.security import hmac_account

    store = client.exchange.store
    for n in range(10_000 - len(store.accounts)):
        store.put_account(hmac_account(f"filler{n}", "s"), 0)
    response = client.admin("POST", "/accounts", {"api_key": "onetoomany", "secret": "s"})
    assert response.status_code == 400
    assert "at most 10000 accounts" in response.get_json()["error"]
    replaced = client.admin("POST", "/accounts", {"api_key": "filler0", "secret": "t"})
    assert replaced.status_code == 200
    client.admin("DELETE", "/accounts/filler1")
    room = client.admin("POST", "/accounts", {"api_key": "nowroom", "secret": "s"})
    assert room.status_code == 200


def test_more_than_10000_configured_accounts_stop_start_up():
    from mockserver.app import create_app
    from mockserver.config import AccountConfig, Config

    accounts = tuple(AccountConfig(f"key{n}", secret="s") for n in range(10_000))
    with pytest.raises(ValueError, match="at most 10000 accounts"):
        create_app(Config(accounts=accounts))


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ({"api_key": "abc", "secret": "s" * 1025}, "secret must be 1 to 1024 characters"),
        ({"api_key": "abc", "secret": ""}, "secret must be 1 to 1024 characters"),
    ],
)
def test_an_account_secret_is_bounded(client, body, complaint):
    response = client.admin("POST", "/accounts", body)
    assert (response.status_code, response.get_json()["error"]) == (400, complaint)


def test_an_rsa_key_over_16384_bits_is_refused(client):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.RSAPublicNumbers(65537, (1 << 20000) + 1).public_key()
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    response = client.admin("POST", "/accounts", {"api_key": "abc", "public_key": pem})
    assert response.status_code == 400
    assert "16384 bits" in response.get_json()["error"]


def test_at_most_1000_fault_rules_are_held(client):
    for n in range(1000):
        rule = {**FAULT, "match": {"method": "GET", "path": f"/r/{n}"}}
        assert client.admin("POST", "/faults", rule).status_code == 200
    response = client.admin("POST", "/faults", FAULT)
    assert response.status_code == 400
    assert "at most 1000 fault rules" in response.get_json()["error"]
    assert client.get("/dapi/v1/ping").status_code == 200


def test_a_fault_message_over_1_kib_is_refused(client):
    rule = {**FAULT, "action": {**FAULT["action"], "msg": "m" * 1025}}
    response = client.admin("POST", "/faults", rule)
    assert response.status_code == 400
    assert "1024 bytes" in response.get_json()["error"]


# -- numbers are range-checked where they enter ------------------------------------------------


def seed(client, **fields):
    body = {"api_key": "dapimockdemokey", "symbol": "BTCUSD_PERP", "positionAmt": "1", **fields}
    return client.admin("POST", "/positions", body)


def position_risk(client):
    return client.get("/dapi/v1/positionRisk", signed({"timestamp": FROZEN_MS}))


@pytest.mark.parametrize(
    "fields",
    [
        {"markPrice": "1e120000000"},  # took 2 s and 360 MB per positionRisk answer
        {"markPrice": "1e-120000000"},
        {"markPrice": "1000000000.00000001"},
        {"markPrice": "0.000000009"},
        {"markPrice": "Infinity"},
        {"markPrice": "sNaN"},
        {"positionAmt": "1e30"},  # every positionRisk and leverage change answered 500
        {"positionAmt": "1E+999999999"},
        {"positionAmt": "-1000000000.5"},
        {"positionAmt": "0.000000001"},
        {"positionAmt": "-Infinity"},
        {"positionAmt": 10**12},
        {"positionAmt": 1.5},
        {"positionAmt": True},
    ],
)
def test_numbers_out_of_range_or_not_finite_are_400_and_change_nothing(client, fields):
    response = seed(client, **fields)
    assert response.status_code == 400
    assert next(iter(fields)) in response.get_json()["error"]
    response = position_risk(client)
    assert response.status_code == 200
    assert response.get_json()[0]["positionAmt"] == "0"
    assert client.change_leverage("BTCUSD_PERP", 10).status_code == 200


@pytest.mark.parametrize(
    "fields",
    [
        {"positionAmt": "1000000000", "markPrice": "0.00000001"},
        {"positionAmt": "-1000000000", "markPrice": "1000000000"},
        {"positionAmt": "-999999999.99999999", "markPrice": "0.00000003"},
        {"positionAmt": "1.50000000000", "markPrice": "3500.12345678"},
        {"positionAmt": 7},
    ],
)
def test_numbers_at_the_ends_of_the_ranges_are_served(client, fields):
    assert seed(client, **fields).status_code == 200
    response = position_risk(client)
    assert response.status_code == 200
    assert client.change_leverage("BTCUSD_PERP", 1).status_code == 200
    assert client.change_leverage("BTCUSD_PERP", 125).status_code in (200, 400)
    assert client.exchange.unexpected_error_count == 0
