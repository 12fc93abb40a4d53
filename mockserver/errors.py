"""Binance's error answers: one exception type, one factory per row of
docs/behaviour.md#error-table.

Every rejection the exchange gives is an `ExchangeError` carrying the HTTP
status, Binance's numeric code and its message, plus a `reason` in plain words
for the request log and journal (never shown to the client, never a secret).
"""

from __future__ import annotations


class ExchangeError(Exception):
    """A Binance error answer: HTTP status + `{"code": ..., "msg": ...}`."""

    def __init__(
        self,
        status: int,
        code: int,
        msg: str,
        reason: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(msg)
        self.status = status
        self.code = code
        self.msg = msg
        self.reason = reason or msg
        self.headers = headers or {}


def route_invalid(path: str, method: str, status: int) -> ExchangeError:
    """404 for an unknown path, 405 for a known path with the wrong method."""
    why = "no such path" if status == 404 else "method not allowed on this path"
    return ExchangeError(status, -5000, f"Path {path}, Method {method} is invalid", why)


def too_many_params(status: int, reason: str) -> ExchangeError:
    return ExchangeError(status, -1101, "Too many parameters sent for this endpoint.", reason)


def duplicate_param(name: str) -> ExchangeError:
    return ExchangeError(
        400, -1101, "Duplicate values for a parameter detected.", f"parameter {name!r} sent twice"
    )


def illegal_characters(reason: str) -> ExchangeError:
    return ExchangeError(400, -1100, "Illegal characters found in a parameter.", reason)


SYMBOL_PATTERN = "^[A-Z0-9-_.]{1,20}$"


def illegal_symbol(value: str) -> ExchangeError:
    return ExchangeError(
        400,
        -1100,
        f"Illegal characters found in parameter 'symbol'; legal range is '{SYMBOL_PATTERN}'.",
        f"symbol {value!r} does not match {SYMBOL_PATTERN}",
    )


def api_key_format_invalid(reason: str) -> ExchangeError:
    return ExchangeError(401, -2014, "API-key format invalid.", reason)


def api_key_invalid() -> ExchangeError:
    return ExchangeError(
        401,
        -2015,
        # docs/behaviour.md#error-table: futures sends it without the spot text's final period.
        "Invalid API-key, IP, or permissions for action",
        "no account has this API key",
    )


def mandatory_param(name: str, reason: str) -> ExchangeError:
    return ExchangeError(
        400,
        -1102,
        f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.",
        reason,
    )


def invalid_param(name: str, reason: str) -> ExchangeError:
    return ExchangeError(400, -1130, f"Data sent for parameter '{name}' is not valid.", reason)


def timestamp_outside_window(reason: str) -> ExchangeError:
    return ExchangeError(
        400, -1021, "Timestamp for this request is outside of the recvWindow.", reason
    )


def timestamp_ahead(reason: str) -> ExchangeError:
    return ExchangeError(
        400, -1021, "Timestamp for this request was 1000ms ahead of the server's time.", reason
    )


def signature_invalid(reason: str) -> ExchangeError:
    return ExchangeError(400, -1022, "Signature for this request is not valid.", reason)


def params_not_read(read: int, sent: int, unknown: list[str]) -> ExchangeError:
    return ExchangeError(
        400,
        -1104,
        f"Not all sent parameters were read; read '{read}' parameter(s) but was sent '{sent}'.",
        f"unknown parameter(s) {', '.join(unknown)} with strict_params on",
    )


def invalid_symbol(reason: str) -> ExchangeError:
    return ExchangeError(400, -1121, "Invalid symbol.", reason)


def invalid_leverage(leverage: int, reason: str) -> ExchangeError:
    return ExchangeError(400, -4028, f"Leverage {leverage} is not valid", reason)


def position_exceeds_max_qty(reason: str) -> ExchangeError:
    return ExchangeError(
        400, -2027, "Exceeded the maximum allowable position at current leverage.", reason
    )


def isolated_leverage_reduction(reason: str) -> ExchangeError:
    return ExchangeError(
        400,
        -4150,
        "Leverage reduction is not supported in Isolated Margin Mode with open positions.",
        reason,
    )


# docs/behaviour.md#rate-limits: the futures texts name the client's IP as the server saw it.
# docs/behaviour.md#leverage-cap: each rule answers its own code; all but country name 20x.
LEVERAGE_CAP_ERRORS = {
    "country": (-4201, "Users in your location/country can only access a maximum leverage of {}"),
    "new_account": (
        -4200,
        "More than 20x leverage is available 30 days after Futures account registration.",
    ),
    "kyc": (
        -4194,
        "Intermediate Personal Verification is required for adjusting leverage over 20x.",
    ),
    "position_limit": (
        -4202,
        "Current symbol leverage cannot exceed 20 when using position limit adjustment service.",
    ),
}


def leverage_over_cap(rule: str, cap: int, reason: str) -> ExchangeError:
    code, text = LEVERAGE_CAP_ERRORS[rule]
    return ExchangeError(400, code, text.format(cap), reason)


def no_need_to_change_margin_type(reason: str) -> ExchangeError:
    # ccxt raises MarginModeAlreadySet only on this exact text.
    return ExchangeError(400, -4046, "No need to change margin type.", reason)


def margin_type_change_with_position(reason: str) -> ExchangeError:
    return ExchangeError(
        400, -4048, "Margin type cannot be changed if there exists position.", reason
    )


def no_need_to_change_position_side(reason: str) -> ExchangeError:
    return ExchangeError(400, -4059, "No need to change position side.", reason)


def position_side_change_with_position(reason: str) -> ExchangeError:
    return ExchangeError(
        400, -4068, "Position side cannot be changed if there exists position.", reason
    )


def too_many_requests(ip: str, limit: int, retry_after_s: int, reason: str) -> ExchangeError:
    return ExchangeError(
        429,
        -1003,
        f"Too many requests; current limit of IP({ip}) is {limit} requests per minute. Please "
        "use the websocket for live updates to avoid polling the API.",
        reason,
        {"Retry-After": str(retry_after_s)},
    )


def ip_banned(ip: str, until_ms: int, retry_after_s: int, reason: str) -> ExchangeError:
    return ExchangeError(
        418,
        -1003,
        f"Way too many requests; IP({ip}) banned until {until_ms}. Please use the websocket "
        "for live updates to avoid bans.",
        reason,
        {"Retry-After": str(retry_after_s)},
    )


def unknown_error(reason: str) -> ExchangeError:
    return ExchangeError(
        500, -1000, "An unknown error occured while processing the request.", reason
    )
