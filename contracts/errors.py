"""Every exception the reference client raises; the whole tree::

    DapiError                         base of everything this client raises
    ├── TransportError                no HTTP answer: refused, reset, dropped (.request)
    │   └── RequestTimeout            connect or read timeout (.request)
    ├── MalformedResponse             a 2xx whose body is not JSON or not the documented
    │                                 shape (.response, .status)
    └── ApiError                      an HTTP error answer (.status, .code, .msg, .headers,
        │                             .response); code is None when the body is not
        │                             Binance's {"code","msg"}
        ├── ClientError               any other 4xx
        │   ├── BadRequest            400, any other code
        │   │   ├── TimestampOutsideWindow   -1021
        │   │   ├── InvalidSignature         -1022
        │   │   ├── IllegalCharacters        -1100
        │   │   ├── TooManyParameters        -1101 (also duplicates)
        │   │   ├── MissingParameter         -1102
        │   │   ├── InvalidParameter         -1130
        │   │   ├── InvalidSymbol            -1121
        │   │   ├── InvalidLeverage          -4028
        │   │   ├── NoChangeNeeded           -4046 margin type, -4059 position mode: already so
        │   │   ├── OpenOrdersExist          -4047 margin type, -4067 position mode: open orders
        │   │   ├── PositionExists           -4048 margin type, -4068 position mode: a position
        │   │   └── LeverageCapExceeded      -4194 -4200 -4201 -4202: above the account's cap
        │   │                                (.max_leverage, or None when the text names none)
        │   ├── AuthError             401, any other code
        │   │   ├── ApiKeyFormatInvalid      -2014
        │   │   └── ApiKeyRejected           -2015
        │   ├── NotFound              404 and 405 (-5000)
        │   └── RateLimited           429 (.retry_after, seconds or None)
        │       └── IpBanned          418 (.retry_after)
        └── ServerError               5xx

A code-specific class is used only when the HTTP status is the one that code
comes with (400 or 401); otherwise the class follows the status.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import ClassVar

import requests
from requests.structures import CaseInsensitiveDict

# The cap as each text names it: "a maximum leverage of 10" (-4201), "More than 20x
# leverage" (-4200), "leverage over 20x" (-4194), "cannot exceed 20" (-4202).
_CAP_IN_TEXT = re.compile(r"(?:maximum leverage of |over |exceed )(\d+)|(\d+)x leverage")


class DapiError(Exception):
    """Base of every exception raised by :class:`DapiClient`."""


class TransportError(DapiError):
    """No HTTP answer arrived (connection refused, reset or dropped)."""

    def __init__(self, message: str, request: requests.PreparedRequest | None = None) -> None:
        super().__init__(message)
        self.request = request


class RequestTimeout(TransportError):
    """The connect or read timeout expired."""


class MalformedResponse(DapiError):
    """A 2xx answer whose body is not JSON or not the documented shape."""

    def __init__(self, message: str, response: requests.Response | None = None) -> None:
        super().__init__(message)
        self.response = response
        self.status = response.status_code if response is not None else None


class ApiError(DapiError):
    """An HTTP error answer; ``code``/``msg`` come from Binance's error body."""

    #: HTTP statuses a code-specific subclass belongs to (empty: any).
    statuses: ClassVar[frozenset[int]] = frozenset()

    def __init__(
        self,
        status: int,
        code: int | None,
        msg: str,
        headers: Mapping[str, str] | None = None,
        response: requests.Response | None = None,
    ) -> None:
        super().__init__(f"HTTP {status}, code {code}: {msg}")
        self.status = status
        self.code = code
        self.msg = msg
        self.headers: CaseInsensitiveDict[str] = CaseInsensitiveDict(headers or {})
        self.response = response


class ClientError(ApiError):
    """A 4xx answer: the request was refused; fix it before sending again."""


class BadRequest(ClientError):
    """HTTP 400."""

    statuses = frozenset({400})


class TimestampOutsideWindow(BadRequest):
    """-1021: the timestamp is too old for recvWindow, or 1000 ms ahead."""


class InvalidSignature(BadRequest):
    """-1022: the signature does not match."""


class IllegalCharacters(BadRequest):
    """-1100: illegal characters in a parameter (lowercase symbols too)."""


class TooManyParameters(BadRequest):
    """-1101: too many parameters, or one sent twice."""


class MissingParameter(BadRequest):
    """-1102: a mandatory parameter was not sent, empty or malformed."""


class InvalidParameter(BadRequest):
    """-1130: an optional parameter's value is not valid."""


class InvalidSymbol(BadRequest):
    """-1121: unknown or delivered symbol, or unknown pair."""


class InvalidLeverage(BadRequest):
    """-4028: leverage outside 1 .. the symbol's maximum."""


class NoChangeNeeded(BadRequest):
    """-4046 / -4059: the margin type or position mode is already the one asked for.

    A set-up sequence that only needs the setting to hold may treat it as success.
    """


class OpenOrdersExist(BadRequest):
    """-4047 / -4067: open orders forbid changing the margin type or position mode."""


class PositionExists(BadRequest):
    """-4048 / -4068: an open position forbids changing the margin type or position mode."""


class LeverageCapExceeded(BadRequest):
    """-4194, -4200, -4201, -4202: the account may not use this much leverage.

    ``max_leverage`` is the cap the message names (the number in -4201's text, 20 in the
    others'), or None when the text names none.
    """

    def __init__(
        self,
        status: int,
        code: int | None,
        msg: str,
        headers: Mapping[str, str] | None = None,
        response: requests.Response | None = None,
    ) -> None:
        super().__init__(status, code, msg, headers, response)
        found = _CAP_IN_TEXT.search(msg)
        self.max_leverage = int(next(g for g in found.groups() if g)) if found else None


class AuthError(ClientError):
    """HTTP 401: the API key was not accepted."""

    statuses = frozenset({401})


class ApiKeyFormatInvalid(AuthError):
    """-2014: the X-MBX-APIKEY header is missing or not of key form."""


class ApiKeyRejected(AuthError):
    """-2015: unknown key, or IP/permissions not allowed."""


class NotFound(ClientError):
    """HTTP 404 or 405 (-5000): no such path, or not with this method."""

    statuses = frozenset({404, 405})


class RateLimited(ClientError):
    """HTTP 429: over the request weight; ``retry_after`` in seconds (or None)."""

    statuses = frozenset({429})

    def __init__(
        self,
        status: int,
        code: int | None,
        msg: str,
        headers: Mapping[str, str] | None = None,
        response: requests.Response | None = None,
    ) -> None:
        super().__init__(status, code, msg, headers, response)
        self.retry_after = _parse_retry_after(self.headers.get("Retry-After"))


class IpBanned(RateLimited):
    """HTTP 418: the IP is banned for ``retry_after`` seconds."""

    statuses = frozenset({418})


class ServerError(ApiError):
    """A 5xx answer: the outcome is unknown (a POST may have been applied)."""


_BY_CODE: dict[int, type[ApiError]] = {
    -1021: TimestampOutsideWindow,
    -1022: InvalidSignature,
    -1100: IllegalCharacters,
    -1101: TooManyParameters,
    -1102: MissingParameter,
    -1130: InvalidParameter,
    -1121: InvalidSymbol,
    -4028: InvalidLeverage,
    -4046: NoChangeNeeded,
    -4059: NoChangeNeeded,
    -4047: OpenOrdersExist,
    -4067: OpenOrdersExist,
    -4048: PositionExists,
    -4068: PositionExists,
    -4194: LeverageCapExceeded,
    -4200: LeverageCapExceeded,
    -4201: LeverageCapExceeded,
    -4202: LeverageCapExceeded,
    -2014: ApiKeyFormatInvalid,
    -2015: ApiKeyRejected,
}
_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: AuthError,
    404: NotFound,
    405: NotFound,
    418: IpBanned,
    429: RateLimited,
}


def error_from_response(response: requests.Response) -> ApiError:
    """The typed exception for a non-2xx response (not raised, returned)."""
    status = response.status_code
    code: int | None = None
    msg = response.text[:500]
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if isinstance(body, dict):
        raw_code, raw_msg = body.get("code"), body.get("msg")
        if isinstance(raw_code, int) and not isinstance(raw_code, bool):
            code = raw_code
        if isinstance(raw_msg, str):
            msg = raw_msg
    cls = _class_for(status, code)
    return cls(status, code, msg, response.headers, response)


def _class_for(status: int, code: int | None) -> type[ApiError]:
    by_code = _BY_CODE.get(code) if code is not None else None
    if by_code is not None and status in by_code.statuses:
        return by_code
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if 400 <= status < 500:
        return ClientError
    if status >= 500:
        return ServerError
    return ApiError


def _parse_retry_after(value: str | None) -> float | None:
    # Binance sends delta-seconds; an HTTP-date or garbage means "unknown".
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 and seconds == seconds else None
