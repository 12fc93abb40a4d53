"""Binance's error answers mapped onto DapiClient's error tree."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.client import (
    ApiError,
    ApiKeyFormatInvalid,
    ApiKeyRejected,
    AuthError,
    BadRequest,
    ClientError,
    IllegalCharacters,
    InvalidLeverage,
    InvalidParameter,
    InvalidSignature,
    InvalidSymbol,
    LeverageCapExceeded,
    MissingParameter,
    NoChangeNeeded,
    NotFound,
    OpenOrdersExist,
    PositionExists,
    RateLimited,
    ServerError,
    TimestampOutsideWindow,
    TooManyParameters,
)
from tests.contracts.client_fakes import Reply

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
