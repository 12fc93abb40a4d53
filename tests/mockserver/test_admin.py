"""The control plane: health, reset, clock, accounts (docs/behaviour.md#control-plane)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from tests.helpers import FROZEN_MS, signed
from tests.mockserver.conftest import error_of


def test_health(client):
    assert client.admin("GET", "/health").get_json() == {"status": "ok"}


def test_admin_routes_carry_no_weight_header_and_are_not_journaled(client):
    response = client.admin("GET", "/health")
    assert "X-MBX-USED-WEIGHT-1M" not in response.headers
    assert client.exchange.journal.entries() == []


def test_unknown_admin_route_is_404_with_an_error_object(client):
    response = client.admin("GET", "/nothing")
    assert response.status_code == 404
    assert response.get_json() == {"error": "no such admin route"}


# -- clock -----------------------------------------------------------------------------------


def test_clock_reads_frozen_state(client):
    assert client.admin("GET", "/clock").get_json() == {
        "now_ms": FROZEN_MS,
        "offset_ms": 0,
        "frozen": True,
        "frozen_at_ms": FROZEN_MS,
    }


def test_clock_offset_unfreezes_and_shifts_real_time(client):
    state = client.admin("POST", "/clock", {"offset_ms": -30000}).get_json()
    assert state["frozen"] is False
    assert state["frozen_at_ms"] is None
    assert state["offset_ms"] == -30000
    server = client.get("/dapi/v1/time").get_json()["serverTime"]
    import time

    assert abs(server - (time.time() * 1000 - 30000)) < 2000


def test_clock_freeze_and_advance(client):
    client.admin("POST", "/clock", {"freeze_at_ms": FROZEN_MS})
    state = client.admin("POST", "/clock", {"advance_ms": 500}).get_json()
    assert state["now_ms"] == FROZEN_MS + 500
    assert state["frozen_at_ms"] == FROZEN_MS + 500
    assert client.get("/dapi/v1/time").get_json() == {"serverTime": FROZEN_MS + 500}


def test_clock_advance_when_running_adds_to_the_offset(client):
    client.admin("POST", "/clock", {"offset_ms": 100})
    assert client.admin("POST", "/clock", {"advance_ms": 50}).get_json()["offset_ms"] == 150


def test_clock_real_unfreezes_with_no_offset(client):
    client.admin("POST", "/clock", {"offset_ms": 100})
    state = client.admin("POST", "/clock", {"real": True}).get_json()
    assert (state["frozen"], state["offset_ms"]) == (False, 0)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"offset_ms": 1, "advance_ms": 2},
        {"offset_ms": "10"},
        {"freeze_at_ms": 1.5},
        {"advance_ms": True},
        {"real": False},
        {"tick": 1},
        [1],
    ],
)
def test_bad_clock_commands_are_400_with_an_error(client, body):
    response = client.admin("POST", "/clock", body)
    assert response.status_code == 400
    assert set(response.get_json()) == {"error"}
    assert client.exchange.clock.now_ms() == FROZEN_MS


def test_a_moved_clock_drives_the_timing_check(client):
    client.admin("POST", "/clock", {"advance_ms": 60_000})
    query = signed({"symbol": "BTCUSD_PERP", "leverage": 20, "timestamp": FROZEN_MS})
    assert error_of(client.post("/dapi/v1/leverage", query))[1] == -1021


# -- accounts ---------------------------------------------------------------------------------


def _public_pem(key) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def test_accounts_list_types_and_never_secrets(client):
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    client.admin("POST", "/accounts", {"api_key": "hmacone", "secret": "s3cr3tvalue"})
    client.admin("POST", "/accounts", {"api_key": "rsaone", "public_key": _public_pem(rsa_key)})
    ed_key = ed25519.Ed25519PrivateKey.generate()
    added = client.admin(
        "POST", "/accounts", {"api_key": "edone", "public_key": _public_pem(ed_key)}
    )
    assert added.get_json() == {"api_key": "edone", "type": "ed25519"}
    response = client.admin("GET", "/accounts")
    assert response.get_json() == {
        "accounts": [
            {"api_key": "dapimockdemokey", "type": "hmac"},
            {"api_key": "hmacone", "type": "hmac"},
            {"api_key": "rsaone", "type": "rsa"},
            {"api_key": "edone", "type": "ed25519"},
        ]
    }
    assert b"s3cr3tvalue" not in response.get_data()
    assert b"dapimockdemosecret" not in response.get_data()


def test_an_added_account_can_sign(client):
    client.admin("POST", "/accounts", {"api_key": "fresh", "secret": "freshsecret"})
    query = signed({"symbol": "BTCUSD_PERP", "leverage": 7, "timestamp": FROZEN_MS}, "freshsecret")
    assert client.post("/dapi/v1/leverage", query, api_key="fresh").status_code == 200


def test_posting_an_existing_key_replaces_it(client):
    client.admin("POST", "/accounts", {"api_key": "dapimockdemokey", "secret": "rotated"})
    old = signed({"symbol": "BTCUSD_PERP", "leverage": 7, "timestamp": FROZEN_MS})
    assert error_of(client.post("/dapi/v1/leverage", old))[1] == -1022
    new = signed({"symbol": "BTCUSD_PERP", "leverage": 7, "timestamp": FROZEN_MS}, "rotated")
    assert client.post("/dapi/v1/leverage", new).status_code == 200


def test_deleting_an_account_makes_its_key_unknown(client):
    assert client.admin("DELETE", "/accounts/dapimockdemokey").status_code == 200
    query = signed({"symbol": "BTCUSD_PERP", "leverage": 7, "timestamp": FROZEN_MS})
    assert error_of(client.post("/dapi/v1/leverage", query))[1] == -2015
    assert client.admin("DELETE", "/accounts/dapimockdemokey").status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"api_key": "bad key", "secret": "x"},
        {"api_key": "k" * 65, "secret": "x"},
        {"api_key": "ok"},
        {"api_key": "ok", "secret": "x", "public_key": "y"},
        {"api_key": "ok", "secret": ""},
        {"api_key": "ok", "secret": 5},
        {"api_key": "ok", "public_key": "not a pem"},
        {"secret": "x"},
    ],
)
def test_bad_accounts_are_400_with_an_error(client, body):
    response = client.admin("POST", "/accounts", body)
    assert response.status_code == 400
    assert set(response.get_json()) == {"error"}


def test_an_ec_public_key_is_refused(client):
    key = ec.generate_private_key(ec.SECP256R1())
    response = client.admin(
        "POST", "/accounts", {"api_key": "eckey", "public_key": _public_pem(key)}
    )
    assert response.status_code == 400
    assert "RSA or Ed25519" in response.get_json()["error"]


# -- reset --------------------------------------------------------------------------------------


def test_reset_restores_start_up_state(client):
    client.change_leverage("BTCUSD_PERP", 5)
    client.admin("POST", "/accounts", {"api_key": "extra", "secret": "x"})
    client.admin("DELETE", "/accounts/dapimockdemokey")
    client.admin("POST", "/clock", {"offset_ms": 5000})
    assert client.admin("POST", "/reset").get_json() == {"status": "ok"}
    keys = [a["api_key"] for a in client.admin("GET", "/accounts").get_json()["accounts"]]
    assert keys == ["dapimockdemokey"]
    clock = client.admin("GET", "/clock").get_json()
    assert (clock["frozen"], clock["offset_ms"]) == (False, 0)
    assert client.exchange.journal.entries() == []
    btc = client.exchange.listed_symbol("BTCUSD_PERP")
    assert client.exchange.store.leverage_of("dapimockdemokey", btc) == 20


def test_reset_returns_the_clock_to_the_configured_offset(make_client):
    client = make_client(clock_offset_ms=-7000)
    client.admin("POST", "/reset")
    assert client.admin("GET", "/clock").get_json()["offset_ms"] == -7000


# -- access ---------------------------------------------------------------------------------------


def test_admin_token_is_required_when_set(make_client):
    client = make_client(admin_token="tok3n")
    unauthorized = {"code": -1002, "msg": "You are not authorized to execute this request."}
    response = client.admin("GET", "/clock")
    assert (response.status_code, response.get_json()) == (401, unauthorized)
    response = client.admin("GET", "/clock", **{"X-Admin-Token": "wrong"})
    assert response.status_code == 401
    assert client.admin("GET", "/clock", **{"X-Admin-Token": "tok3n"}).status_code == 200


def test_non_loopback_host_without_token_closes_the_control_plane(make_client):
    client = make_client(host="0.0.0.0")
    response = client.admin("GET", "/clock")
    assert response.status_code == 403
    assert response.get_json()["code"] == -1002
    assert client.get("/dapi/v1/ping").status_code == 200


@pytest.mark.parametrize(
    "settings",
    [{"admin_token": "tok3n"}, {"host": "0.0.0.0"}, {"host": "0.0.0.0", "admin_token": "t"}, {}],
)
@pytest.mark.parametrize(
    "headers", [{}, {"Host": "probe.internal:8080"}, {"Origin": "http://elsewhere.example"}]
)
def test_health_always_answers_for_container_probes(make_client, settings, headers):
    response = make_client(**settings).admin("GET", "/health", **headers)
    assert (response.status_code, response.get_json()) == (200, {"status": "ok"})


@pytest.mark.parametrize(
    "body",
    [
        {"freeze_at_ms": 2**62},
        {"freeze_at_ms": -1},
        {"freeze_at_ms": 253_370_764_800_000},  # 9999-01-01: /time answered 500 after it
        {"freeze_at_ms": 946_684_799_999},
        {"freeze_at_ms": 4_102_444_800_000},
        {"offset_ms": -(2**50)},
        {"offset_ms": 10**17},
        {"advance_ms": 2**62},
    ],
)
def test_the_clock_stays_within_2000_to_2099(client, body):
    response = client.admin("POST", "/clock", body)
    assert response.status_code == 400
    assert "2000-01-01..2099-12-31" in response.get_json()["error"]
    assert client.get("/dapi/v1/exchangeInfo").status_code == 200
    assert client.get("/dapi/v1/time").get_json() == {"serverTime": FROZEN_MS}


@pytest.mark.parametrize("at_ms", [946_684_800_000, 4_102_444_799_999])
def test_the_clock_reaches_both_ends_of_the_range(client, at_ms):
    assert client.admin("POST", "/clock", {"freeze_at_ms": at_ms}).status_code == 200
    assert client.get("/dapi/v1/time").get_json() == {"serverTime": at_ms}
    assert client.get("/dapi/v1/exchangeInfo").status_code == 200


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/accounts", {"api_key": "k", "secret": "s", "role": "admin"}),
        ("/positions", {"api_key": "dapimockdemokey", "symbol": "BTCUSD_PERP",
                        "positionAmt": "1", "leverage": 5}),
    ],
)  # fmt: skip
def test_unknown_keys_in_admin_bodies_are_refused(client, path, body):
    response = client.admin("POST", path, body)
    assert response.status_code == 400
    assert "unknown key" in response.get_json()["error"]


def test_a_wrong_method_lists_the_allowed_ones(client):
    response = client.request("DELETE", "/dapi/v1/leverage")
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert client.admin("PUT", "/clock").headers["Allow"] == "GET, HEAD, OPTIONS, POST"
