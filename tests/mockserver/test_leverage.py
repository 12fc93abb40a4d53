"""POST /dapi/v1/leverage: Binance's vectors, every request shape, every error row, state."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from mockserver.config import AccountConfig
from tests.helpers import FROZEN_MS, hmac_hex, signed
from tests.mockserver.conftest import error_of

PATH = "/dapi/v1/leverage"
DOCS_SECRET = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9"
SPOT_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SPOT_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"


# -- docs/behaviour.md#signatures' test vectors, clock frozen at their timestamps ------------------


@pytest.fixture
def docs_client(make_client):
    client = make_client(
        accounts=(AccountConfig("coinmdocs", DOCS_SECRET), AccountConfig(SPOT_KEY, SPOT_SECRET))
    )
    return client


def test_coinm_vector_in_the_query_string_answers_200(docs_client):
    query = "symbol=BTCUSD_PERP&leverage=20&recvWindow=5000&timestamp=1591702613943"
    sig = "83a07953347e512d8a0f130921d17abae021972610e032fa4622dfaf84a2b006"
    assert hmac_hex(query, DOCS_SECRET) == sig
    response = docs_client.post(PATH, f"{query}&signature={sig}", api_key="coinmdocs")
    assert response.status_code == 200
    assert response.get_data() == b'{"leverage":20,"maxQty":"150","symbol":"BTCUSD_PERP"}'


def test_coinm_vector_split_between_query_and_body_answers_200(docs_client):
    sig = "46860a15641daca1e2a79a25a1717854970f6b167e4d0dc111fae97be4d244e1"
    response = docs_client.post(
        PATH,
        "symbol=BTCUSD_PERP&leverage=20",
        f"recvWindow=5000&timestamp=1591702613943&signature={sig}",
        api_key="coinmdocs",
    )
    assert response.status_code == 200
    assert response.get_data() == b'{"leverage":20,"maxQty":"150","symbol":"BTCUSD_PERP"}'


SPOT_QUERY = (
    "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
    "&recvWindow=5000&timestamp=1499827319559"
)


def test_spot_vector_passes_the_signature_and_fails_on_missing_leverage(docs_client):
    docs_client.exchange.clock.freeze_at(1499827319559)
    sig = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
    response = docs_client.post(PATH, f"{SPOT_QUERY}&signature={sig}", api_key=SPOT_KEY)
    assert error_of(response) == (
        400,
        -1102,
        "Mandatory parameter 'leverage' was not sent, was empty/null, or malformed.",
    )


def test_spot_vector_split_passes_the_signature_and_fails_on_missing_leverage(docs_client):
    docs_client.exchange.clock.freeze_at(1499827319559)
    sig = "0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77"
    response = docs_client.post(
        PATH,
        "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC",
        f"quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559&signature={sig}",
        api_key=SPOT_KEY,
    )
    assert error_of(response)[:2] == (400, -1102)


# -- every request shape real clients send -----------------------------------------------

OK_BODY = {"leverage": 25, "maxQty": "25", "symbol": "BTCUSD_PERP"}


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json;charset=utf-8",  # binance-futures-connector
        "application/json",  # official npm SDK
        "application/x-www-form-urlencoded",  # npm binance
        None,  # official Python SDK, binance-api-node
    ],
)
def test_query_only_with_empty_body_works_under_any_content_type(client, content_type):
    query = signed({"symbol": "BTCUSD_PERP", "leverage": 25, "timestamp": FROZEN_MS})
    response = client.post(PATH, query, b"", content_type=content_type)
    assert response.status_code == 200
    assert response.get_json() == OK_BODY


def test_form_body_with_sorted_keys_works(client):  # python-binance
    body = signed(
        {"leverage": 25, "recvWindow": 10000, "symbol": "BTCUSD_PERP", "timestamp": FROZEN_MS}
    )
    response = client.post(PATH, "", body, content_type="application/x-www-form-urlencoded")
    assert response.get_json() == OK_BODY


def test_form_body_with_timestamp_first_works(client):  # ccxt
    body = signed(
        [("timestamp", FROZEN_MS), ("symbol", "BTCUSD_PERP"), ("leverage", 25), ("recvWindow", 1)]
    )
    response = client.post(PATH, "", body, content_type="application/x-www-form-urlencoded")
    assert response.get_json() == OK_BODY


def test_mixed_query_and_body_is_signed_as_query_then_body(client):
    query = "symbol=BTCUSD_PERP&leverage=25"
    body = f"timestamp={FROZEN_MS}"
    sig = hmac_hex(query + body)
    response = client.post(PATH, query, f"{body}&signature={sig}")
    assert response.get_json() == OK_BODY


def test_signature_in_the_query_covers_a_body_too(client):
    query = "symbol=BTCUSD_PERP&leverage=25"
    body = f"timestamp={FROZEN_MS}"
    sig = hmac_hex(query + body)
    assert client.post(PATH, f"{query}&signature={sig}", body).get_json() == OK_BODY


def test_a_name_in_both_query_and_body_takes_the_query_value(client):
    query = "symbol=BTCUSD_PERP&leverage=25"
    body = f"leverage=10&timestamp={FROZEN_MS}"
    sig = hmac_hex(query + body)
    assert client.post(PATH, query, f"{body}&signature={sig}").get_json() == OK_BODY


def test_signature_is_checked_over_the_raw_percent_encoded_bytes(client):
    # An extra parameter with reserved characters: signed as sent, never re-encoded.
    query = f"symbol=BTCUSD_PERP&leverage=25&note=a%2Fb%20c+d&timestamp={FROZEN_MS}"
    response = client.post(PATH, f"{query}&signature={hmac_hex(query)}")
    assert response.get_json() == OK_BODY
    reencoded = f"symbol=BTCUSD_PERP&leverage=25&note=a/b c d&timestamp={FROZEN_MS}"
    response = client.post(PATH, f"{query}&signature={hmac_hex(reencoded)}")
    assert error_of(response)[1] == -1022


def test_hmac_signature_is_case_insensitive(client):
    query = f"symbol=BTCUSD_PERP&leverage=25&timestamp={FROZEN_MS}"
    response = client.post(PATH, f"{query}&signature={hmac_hex(query).upper()}")
    assert response.status_code == 200


def test_leading_zeros_in_leverage_are_accepted(client):
    response = client.change_leverage("BTCUSD_PERP", "025")
    assert response.get_json() == OK_BODY


# -- RSA and Ed25519 accounts --------------------------------------------------------------


def _pem(public_key: Any) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
@pytest.mark.parametrize("where", ["query", "body"])
def test_asymmetric_accounts_verify_base64_percent_encoded_signatures(make_client, kind, where):
    if kind == "rsa":
        key: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        sign = lambda data: key.sign(data, padding.PKCS1v15(), hashes.SHA256())  # noqa: E731
    else:
        key = ed25519.Ed25519PrivateKey.generate()
        sign = key.sign
    client = make_client(accounts=(AccountConfig("asym", public_key=_pem(key.public_key())),))
    payload = f"symbol=ETHUSD_PERP&leverage=100&timestamp={FROZEN_MS}"
    signature = quote(base64.b64encode(sign(payload.encode())).decode(), safe="")
    query, body = (
        (f"{payload}&signature={signature}", "")
        if where == "query"
        else (
            "",
            f"{payload}&signature={signature}",
        )
    )
    response = client.post(PATH, query, body, api_key="asym")
    assert response.get_json() == {"leverage": 100, "maxQty": "15", "symbol": "ETHUSD_PERP"}

    forged = base64.b64encode(sign(payload.replace("100", "99").encode())).decode()
    response = client.post(PATH, f"{payload}&signature={quote(forged, safe='')}", api_key="asym")
    assert error_of(response)[1] == -1022


def test_unencoded_plus_in_a_base64_signature_is_rejected_with_1022(make_client):
    key = ed25519.Ed25519PrivateKey.generate()
    client = make_client(accounts=(AccountConfig("asym", public_key=_pem(key.public_key())),))
    for leverage in range(1, 60):  # find a signature containing '+'
        payload = f"symbol=ETHUSD_PERP&leverage={leverage}&timestamp={FROZEN_MS}"
        signature = base64.b64encode(key.sign(payload.encode())).decode()
        if "+" in signature:
            break
    response = client.post(PATH, f"{payload}&signature={signature}", api_key="asym")
    assert error_of(response)[1] == -1022


# -- the error table, row by row ------------------------------------------------------------


def test_unknown_path_is_404_5000(client):
    assert error_of(client.get("/dapi/v1/nothing")) == (
        404,
        -5000,
        "Path /dapi/v1/nothing, Method GET is invalid",
    )


def test_wrong_method_is_405_5000(client):
    assert error_of(client.get(PATH)) == (
        405,
        -5000,
        "Path /dapi/v1/leverage, Method GET is invalid",
    )
    assert error_of(client.request("PUT", PATH))[:2] == (405, -5000)
    assert error_of(client.request("OPTIONS", PATH))[:2] == (405, -5000)


def test_body_over_max_body_bytes_is_413_1101(make_client):
    client = make_client(max_body_bytes=100)
    response = client.post(PATH, "", "a=" + "x" * 200)
    assert error_of(response) == (413, -1101, "Too many parameters sent for this endpoint.")


def test_more_than_max_params_is_400_1101(make_client):
    client = make_client(max_params=4)
    response = client.post(PATH, "a=1&b=2&c=3", "d=4&e=5")
    assert error_of(response) == (400, -1101, "Too many parameters sent for this endpoint.")


@pytest.mark.parametrize(
    "query",
    ["symbol=BTC%zzUSD", "symbol=%ff", "note=a%00b", "note=a%0Ab", "=5", "symbol=BTCUSD_PERP&=1"],
)
def test_illegal_characters_are_400_1100(client, query):
    assert error_of(client.post(PATH, query)) == (
        400,
        -1100,
        "Illegal characters found in a parameter.",
    )


@pytest.mark.parametrize("symbol", ["btcusd_perp", "BTCUSD PERP", "B" * 21, "BTC$"])
def test_symbol_outside_its_pattern_is_400_1100_naming_symbol(client, symbol):
    response = client.change_leverage(symbol, 20)
    assert error_of(response) == (
        400,
        -1100,
        "Illegal characters found in parameter 'symbol'; legal range is '^[A-Z0-9-_.]{1,20}$'.",
    )


@pytest.mark.parametrize(
    ("query", "body"),
    [("leverage=1&leverage=2", ""), ("", "symbol=A&symbol=B"), ("signature=a", "signature=b")],
)
def test_duplicate_parameters_are_400_1101(client, query, body):
    assert error_of(client.post(PATH, query, body)) == (
        400,
        -1101,
        "Duplicate values for a parameter detected.",
    )


@pytest.mark.parametrize("api_key", [None, "", "has space", "k" * 65, "dash-key"])
def test_missing_or_malformed_api_key_is_401_2014(client, api_key):
    query = signed({"symbol": "BTCUSD_PERP", "leverage": 20, "timestamp": FROZEN_MS})
    headers = {} if api_key is None else {"X-MBX-APIKEY": api_key}
    response = client.post(PATH, query, headers=headers, api_key=None)
    assert error_of(response) == (401, -2014, "API-key format invalid.")


def test_unknown_api_key_is_401_2015(client):
    query = signed({"symbol": "BTCUSD_PERP", "leverage": 20, "timestamp": FROZEN_MS})
    response = client.post(PATH, query, api_key="nosuchkey")
    assert error_of(response) == (401, -2015, "Invalid API-key, IP, or permissions for action")


def _mandatory(name: str) -> tuple[int, int, str]:
    return (400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


@pytest.mark.parametrize("timestamp", [None, "", "abc", "1.5e12", "+1591702613943", "9" * 20])
def test_missing_or_malformed_timestamp_is_1102(client, timestamp):
    params: dict[str, Any] = {"symbol": "BTCUSD_PERP", "leverage": 20}
    if timestamp is not None:
        params["timestamp"] = timestamp
    assert error_of(client.post(PATH, signed(params))) == _mandatory("timestamp")


def test_missing_signature_is_1102(client):
    query = f"symbol=BTCUSD_PERP&leverage=20&timestamp={FROZEN_MS}"
    assert error_of(client.post(PATH, query)) == _mandatory("signature")
    assert error_of(client.post(PATH, query + "&signature=")) == _mandatory("signature")


@pytest.mark.parametrize(
    ("params", "missing"),
    [
        ({"leverage": 20}, "symbol"),
        ({"symbol": "", "leverage": 20}, "symbol"),
        ({"symbol": "BTCUSD_PERP"}, "leverage"),
        ({"symbol": "BTCUSD_PERP", "leverage": ""}, "leverage"),
        ({"symbol": "BTCUSD_PERP", "leverage": "20.0"}, "leverage"),
        ({"symbol": "BTCUSD_PERP", "leverage": "+20"}, "leverage"),
        ({"symbol": "BTCUSD_PERP", "leverage": " 20"}, "leverage"),
        ({"symbol": "BTCUSD_PERP", "leverage": "1e3"}, "leverage"),
        ({"symbol": "BTCUSD_PERP", "leverage": "２０"}, "leverage"),
        ({"symbol": "BTCUSD_PERP", "leverage": "99999999999999999999"}, "leverage"),
        ({}, "symbol"),  # symbol comes before leverage in the documented order
    ],
)
def test_missing_empty_or_malformed_mandatory_parameter_is_1102(client, params, missing):
    response = client.post(PATH, signed({**params, "timestamp": FROZEN_MS}))
    assert error_of(response) == _mandatory(missing)


@pytest.mark.parametrize("recv_window", ["abc", "-1", "5000.5", "", "99999999999999999999"])
def test_malformed_recv_window_is_1130(client, recv_window):
    response = client.change_leverage("BTCUSD_PERP", 20, recvWindow=recv_window)
    assert error_of(response) == (400, -1130, "Data sent for parameter 'recvWindow' is not valid.")


def test_recv_window_over_a_configured_cap_is_1130(make_client):
    client = make_client(recv_window_max=60000)
    assert client.change_leverage("BTCUSD_PERP", 20, recvWindow=60000).status_code == 200
    response = client.change_leverage("BTCUSD_PERP", 20, recvWindow=60001)
    assert error_of(response)[:2] == (400, -1130)


def test_recv_window_has_no_cap_by_default(client):
    response = client.change_leverage(
        "BTCUSD_PERP", 20, recvWindow=9999999, timestamp=FROZEN_MS - 9999999
    )
    assert response.status_code == 200


STALE = (400, -1021, "Timestamp for this request is outside of the recvWindow.")
AHEAD = (400, -1021, "Timestamp for this request was 1000ms ahead of the server's time.")


@pytest.mark.parametrize(
    ("timestamp", "extra", "expected"),
    [
        (FROZEN_MS - 5000, {}, None),
        (FROZEN_MS - 5001, {}, STALE),
        (FROZEN_MS - 100, {"recvWindow": 100}, None),
        (FROZEN_MS - 101, {"recvWindow": 100}, STALE),
        (FROZEN_MS, {"recvWindow": 0}, None),
        (FROZEN_MS + 999, {}, None),
        (FROZEN_MS + 1000, {}, AHEAD),
        (FROZEN_MS + 30000, {}, AHEAD),
    ],
)
def test_timing_window_follows_binance_rule(client, timestamp, extra, expected):
    response = client.change_leverage("BTCUSD_PERP", 20, timestamp=timestamp, **extra)
    if expected is None:
        assert response.status_code == 200
    else:
        assert error_of(response) == expected


def test_wrong_signature_is_1022(client):
    query = f"symbol=BTCUSD_PERP&leverage=20&timestamp={FROZEN_MS}"
    response = client.post(PATH, f"{query}&signature={hmac_hex(query, 'wrong')}")
    assert error_of(response) == (400, -1022, "Signature for this request is not valid.")


def test_signature_not_last_is_1022(client):
    query = f"symbol=BTCUSD_PERP&leverage=20&timestamp={FROZEN_MS}"
    response = client.post(PATH, f"signature={hmac_hex(query)}&{query}")
    assert error_of(response)[1] == -1022
    # not last in the body either, although the query has nothing else
    response = client.post(PATH, "", f"{query}&signature={hmac_hex(query)}&extra=1")
    assert error_of(response)[1] == -1022


def test_unknown_parameter_is_ignored_unless_strict(make_client):
    loose = make_client()
    assert loose.change_leverage("BTCUSD_PERP", 20, colour="blue").status_code == 200
    strict = make_client(strict_params=True)
    response = strict.change_leverage("BTCUSD_PERP", 20, colour="blue", shade="dark")
    assert error_of(response) == (
        400,
        -1104,
        "Not all sent parameters were read; read '4' parameter(s) but was sent '6'.",
    )
    assert strict.change_leverage("BTCUSD_PERP", 20, recvWindow=5000).status_code == 200


@pytest.mark.parametrize("symbol", ["BTCUSDT", "XRPUSD_PERP", "BTCUSD_200327"])
def test_unlisted_symbol_is_1121(client, symbol):
    assert error_of(client.change_leverage(symbol, 20)) == (400, -1121, "Invalid symbol.")


@pytest.mark.parametrize(
    ("symbol", "leverage"),
    [("BTCUSD_PERP", 0), ("BTCUSD_PERP", -5), ("BTCUSD_PERP", 126), ("ETHUSD_PERP", 101)],
)
def test_leverage_out_of_range_is_4028(client, symbol, leverage):
    assert error_of(client.change_leverage(symbol, leverage)) == (
        400,
        -4028,
        f"Leverage {leverage} is not valid",
    )


def test_quarterly_symbols_take_at_most_50x(client):
    listing = client.exchange.market.listing(FROZEN_MS)
    quarter = next(s for s in listing.symbols.values() if s.contract_type == "CURRENT_QUARTER")
    assert client.change_leverage(quarter.name, 50).get_json()["maxQty"] == "10"
    assert error_of(client.change_leverage(quarter.name, 51))[1] == -4028


def test_an_unexpected_exception_is_500_1000_and_logged(client, monkeypatch, caplog):
    def explode(*args: Any) -> None:
        raise RuntimeError("injected failure")

    monkeypatch.setattr(client.exchange.store, "change_leverage", explode)
    response = client.change_leverage("BTCUSD_PERP", 20)
    assert error_of(response) == (
        500,
        -1000,
        "An unknown error occured while processing the request.",
    )
    assert "injected failure" in caplog.text
    assert "Traceback" in caplog.text
    assert client.exchange.unexpected_error_count == 1


# -- docs/behaviour.md#order-of-checks ------------------------------------------------------


def test_illegal_characters_come_before_the_api_key(client):
    assert error_of(client.post(PATH, "symbol=%zz", api_key=None))[1] == -1100


def test_api_key_comes_before_timestamp_and_signature(client):
    assert error_of(client.post(PATH, "symbol=BTCUSD_PERP", api_key=None))[1] == -2014


def test_timing_comes_before_the_signature(client):
    query = f"symbol=BTCUSD_PERP&leverage=20&timestamp={FROZEN_MS - 60000}"
    assert error_of(client.post(PATH, f"{query}&signature=bad"))[1] == -1021


def test_signature_comes_before_mandatory_parameters(client):
    assert error_of(client.post(PATH, f"timestamp={FROZEN_MS}&signature=bad"))[1] == -1022


def test_symbol_comes_before_leverage_range(client):
    assert error_of(client.change_leverage("NOPE", 500))[1] == -1121


# -- state ------------------------------------------------------------------------------------


def _position_leverage(client, symbol: str, api_key: str = "dapimockdemokey", secret=None) -> str:
    kwargs = {} if secret is None else {"secret": secret}
    query = signed({"timestamp": FROZEN_MS}, **kwargs)
    rows = client.get("/dapi/v1/positionRisk", query, api_key=api_key).get_json()
    row = next(r for r in rows if r["symbol"] == symbol)
    return row["leverage"], row["maxQty"]


def test_a_fresh_account_starts_at_20x(client):
    assert _position_leverage(client, "BTCUSD_PERP") == ("20", "150")


def test_a_change_is_what_position_risk_reports(client):
    client.change_leverage("BTCUSD_PERP", 125)
    assert _position_leverage(client, "BTCUSD_PERP") == ("125", "5")
    assert _position_leverage(client, "ETHUSD_PERP") == ("20", "1500")


def test_setting_the_current_leverage_again_succeeds(client):
    assert client.change_leverage("BTCUSD_PERP", 20).status_code == 200
    assert client.change_leverage("BTCUSD_PERP", 20).get_json()["leverage"] == 20


def test_leverage_is_kept_per_account(make_client):
    client = make_client(accounts=(AccountConfig("other", "othersecret"),))
    client.change_leverage("BTCUSD_PERP", 5)
    assert _position_leverage(client, "BTCUSD_PERP", "other", "othersecret") == ("20", "150")


def test_a_rejected_change_leaves_state_alone(client):
    client.change_leverage("BTCUSD_PERP", 10)
    client.change_leverage("BTCUSD_PERP", 500)
    assert _position_leverage(client, "BTCUSD_PERP") == ("10", "400")


def test_every_answer_carries_the_used_weight(client):
    assert client.get("/dapi/v1/ping").headers["X-MBX-USED-WEIGHT-1M"] == "1"
    assert client.change_leverage("BTCUSD_PERP", 0).headers["X-MBX-USED-WEIGHT-1M"] == "2"
    assert client.change_leverage("BTCUSD_PERP", 5).headers["X-MBX-USED-WEIGHT-1M"] == "3"
