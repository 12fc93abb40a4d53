"""Schemathesis hooks for the dapi contract: Binance signing, links for the stateful phase, checks.

    SCHEMATHESIS_HOOKS=contracts.schemathesis_auth schemathesis run \
        http://127.0.0.1:8080/openapi.yaml --exclude-tag admin --exclude-path /openapi.yaml \
        --exclude-checks ignored_auth,positive_data_acceptance

(pytest: import this module.) Credentials: ``DAPI_API_KEY`` with
``DAPI_API_SECRET`` or ``DAPI_PRIVATE_KEY_FILE``; default the demo account.

How schemathesis' auth checks meet Binance's 400/401 mapping. Binance
authenticates in two layers: the API key says *who* calls (missing or
malformed -> 401 -2014, unknown -> 401 -2015), while the signature and the
timestamp say the request is *intact and fresh*, and their failures are
ordinary request errors: 400 -1102 (no signature), 400 -1022 (a wrong one),
400 -1021 (stale or future). The built-in ``ignored_auth`` expects every
credential failure to be 401/403, and ``positive_data_acceptance`` expects
schema-valid data to be accepted. Making the mock answer 401 to a bad
signature would please the first and break the clients it exists for (they
map -1022/-1021 from a 400, as docs/behaviour.md#error-table and openapi.yaml document); and "valid
for the schema" cannot say which symbols are listed or how high each one's
leverage goes. So both checks are switched off (``DISABLED_CHECKS``) and
replaced by stricter ones that know the mapping:
``binance_auth_is_enforced`` probes each signed operation, once it has
succeeded, with no key, a malformed key, an unknown key, no signature, a
wrong signature and a stale timestamp, and wants the exact status *and* code
of each; ``binance_positive_data_acceptance`` takes a schema-valid request's
400 only when the request itself explains it (-1121 for an unlisted symbol,
-4028 above that symbol's published maximum, -1102 naming a parameter that
was not sent, -1100 for a control character, -1021 for a recvWindow under a
second). ``binance_error_envelope`` adds the exact error body (docs/behaviour.md#parameters).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

import requests
import schemathesis
from requests.auth import AuthBase
from schemathesis import Case, CheckContext, HookContext, Response
from schemathesis.core.parameters import ParameterLocation

from contracts.signing import API_KEY_HEADER, HmacAuth, SigningAuth, auth_from_private_key

DEMO_API_KEY = "dapimockdemokey"
DEMO_SECRET = "dapimockdemosecret"
#: Built-in checks that do not know Binance's mapping; replaced by the checks below.
DISABLED_CHECKS = ("ignored_auth", "positive_data_acceptance")
SIGNATURE_SCHEME = "signature"
_INT = re.compile(r"-?[0-9]+")
_MANDATORY = re.compile(r"Mandatory parameter '([^']+)'")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def signer_from_env() -> SigningAuth:
    """The request signer for DAPI_API_KEY + DAPI_API_SECRET / DAPI_PRIVATE_KEY_FILE."""
    api_key = os.environ.get("DAPI_API_KEY", DEMO_API_KEY)
    key_file = os.environ.get("DAPI_PRIVATE_KEY_FILE")
    if key_file:
        return auth_from_private_key(api_key, Path(key_file).read_bytes())
    return HmacAuth(api_key, os.environ.get("DAPI_API_SECRET", DEMO_SECRET))


def is_signed(case: Case) -> bool:
    """Whether the operation needs Binance's signature (TRADE and USER_DATA)."""
    security = case.operation.definition.raw.get("security", [])
    return any(SIGNATURE_SCHEME in requirement for requirement in security)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _server_offset_ms(origin: str) -> int:
    before = time.time_ns() // 1_000_000
    answer = requests.get(f"{origin}/dapi/v1/time", timeout=10).json()
    after = time.time_ns() // 1_000_000
    return int(answer["serverTime"]) - (before + after) // 2


def _is_long(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    return isinstance(value, str) and bool(_INT.fullmatch(value)) and _is_long(int(value))


def _is_signature_text(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def _signature_required(case: Case) -> bool:
    """The operation declares `signature` required, so a case without one left it out on purpose."""
    return any(p.name == "signature" and p.is_required for p in case.operation.iter_parameters())


# --- signing ------------------------------------------------------------------------------

#: A well-formed timestamp the generated case carries until the request is sent.
FRESH_TIMESTAMP = 1111111111111
_FRESH = re.compile(rf"(^|&)timestamp={FRESH_TIMESTAMP}(?=&|$)")


class FreshlySigned(AuthBase):
    """At send time: puts the server's current time where the case said "fresh", then signs.

    Cases are generated long before they are sent (examples at collection,
    shrinking, the stateful phase), so the timestamp is filled in here, from
    the server's clock, right before signing. The offset is cached for half a
    second per origin: short enough that a frozen mock clock never sees a
    timestamp 1000 ms ahead.
    """

    _offsets: ClassVar[dict[str, tuple[float, int]]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, signer: SigningAuth) -> None:
        self.signer = signer

    @classmethod
    def server_now_ms(cls, origin: str) -> int:
        with cls._lock:
            cached = cls._offsets.get(origin)
            if cached is None or time.monotonic() - cached[0] > 0.5:
                cached = cls._offsets[origin] = (time.monotonic(), _server_offset_ms(origin))
        return time.time_ns() // 1_000_000 + cached[1]

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        url = r.url or ""
        fresh = r"\g<1>timestamp=" + str(self.server_now_ms(_origin(url)))
        base, mark, query = url.partition("?")
        if mark:
            r.url = base + "?" + _FRESH.sub(fresh, query)
        if isinstance(r.body, str | bytes) and r.body:
            body = r.body.decode("utf-8") if isinstance(r.body, bytes) else r.body
            r.body = _FRESH.sub(fresh, body).encode("utf-8")
            r.headers["Content-Length"] = str(len(r.body))
        return self.signer(r)


@schemathesis.auth(refresh_interval=None)
class BinanceSigner:
    """Signs generated requests of signed operations: fresh timestamp, HMAC/RSA/Ed25519.

    A generated `signature` is dropped and the real one appended last, unless
    the generator broke it on purpose (empty, not a string, or a required one
    left out): then the case goes out unsigned, as the negative case it is.
    Only a timestamp that is a well-formed LONG becomes "fresh": malformed or
    missing ones are the negative cases and stay as generated. When the body
    is the negated part, its names are dropped from the query: the server
    reads the query's value first (docs/behaviour.md#parameters), and would never see the body's.
    """

    def get(self, case: Case, ctx: Any) -> SigningAuth | None:
        return signer_from_env() if is_signed(case) else None

    def set(self, case: Case, signer: SigningAuth | None, ctx: Any) -> None:
        if signer is None:
            return
        containers = [c for c in (case.query, case.body) if isinstance(c, dict)]
        generated = [c["signature"] for c in containers if "signature" in c]
        if any(not _is_signature_text(value) for value in generated):
            return
        if not generated and _signature_required(case):
            return
        negated_body = case.meta is not None and case.meta.is_negative_at(ParameterLocation.BODY)
        if negated_body and isinstance(case.query, dict) and isinstance(case.body, dict):
            for name in set(case.query) & set(case.body):
                del case.query[name]
        for container in containers:
            container.pop("signature", None)
            if "timestamp" in container and _is_long(container["timestamp"]):
                container["timestamp"] = FRESH_TIMESTAMP
        if isinstance(case.headers, dict):
            case.headers.pop(API_KEY_HEADER, None)
        case._auth = FreshlySigned(signer)


# --- links for the stateful phase -----------------------------------------------------------

LINKS: dict[tuple[str, str], dict[str, dict[str, Any]]] = {
    ("/dapi/v1/exchangeInfo", "get"): {
        "ChangeLeverageOfFirstSymbol": {
            "operationId": "changeInitialLeverage",
            "parameters": {"symbol": "$response.body#/symbols/0/symbol"},
        },
        "ChangeLeverageOfThirdSymbol": {
            "operationId": "changeInitialLeverage",
            "parameters": {"symbol": "$response.body#/symbols/2/symbol"},
        },
        "BracketsOfSecondSymbol": {
            "operationId": "leverageBracketV2",
            "parameters": {"symbol": "$response.body#/symbols/1/symbol"},
        },
        "PositionsOfFirstPair": {
            "operationId": "positionRisk",
            "parameters": {"pair": "$response.body#/symbols/0/pair"},
        },
        "PairBracketsOfFourthSymbol": {
            "operationId": "leverageBracketV1",
            "parameters": {"pair": "$response.body#/symbols/3/pair"},
        },
    },
    ("/dapi/v2/leverageBracket", "get"): {
        "ChangeToTheMaximum": {
            "operationId": "changeInitialLeverage",
            "parameters": {
                "symbol": "$response.body#/0/symbol",
                "leverage": "$response.body#/0/brackets/0/initialLeverage",
            },
        },
        "ChangeToTheFourthBracket": {
            "operationId": "changeInitialLeverage",
            "parameters": {
                "symbol": "$response.body#/0/symbol",
                "leverage": "$response.body#/0/brackets/3/initialLeverage",
            },
        },
    },
    ("/dapi/v1/leverage", "post"): {
        "RepeatTheChange": {
            "operationId": "changeInitialLeverage",
            "parameters": {
                "symbol": "$response.body#/symbol",
                "leverage": "$response.body#/leverage",
            },
        },
        "BracketsOfTheChangedSymbol": {
            "operationId": "leverageBracketV2",
            "parameters": {"symbol": "$response.body#/symbol"},
        },
    },
}


@schemathesis.hook
def before_load_schema(context: HookContext, raw_schema: dict[str, Any]) -> None:
    """Add OpenAPI links between the Binance operations, so the stateful phase has paths."""
    for (path, method), links in LINKS.items():
        operation = raw_schema.get("paths", {}).get(path, {}).get(method)
        if operation is None:
            continue
        ok = operation.get("responses", {}).get("200")
        if isinstance(ok, dict) and "$ref" not in ok:
            ok.setdefault("links", {}).update(links)


# --- checks -------------------------------------------------------------------------------


def _sent_params(request: requests.PreparedRequest) -> dict[str, str]:
    """Parameters as the server reads them: body first, then the query wins."""
    body = request.body or b""
    text = body.decode("latin-1") if isinstance(body, bytes) else str(body)
    params = dict(parse_qsl(text, keep_blank_values=True, errors="replace"))
    query = urlsplit(request.url or "").query
    params.update(parse_qsl(query, keep_blank_values=True, errors="replace"))
    return params


class _Market:
    """The server's listed symbols and maximum leverage, read once per base URL."""

    _lock: ClassVar[threading.Lock] = threading.Lock()
    _cache: ClassVar[dict[str, tuple[float, dict[str, int], set[str]]]] = {}

    @classmethod
    def of(cls, base_url: str) -> tuple[dict[str, int], set[str]]:
        with cls._lock:
            cached = cls._cache.get(base_url)
            if cached is None or time.monotonic() - cached[0] > 60:
                info = requests.get(f"{base_url}/dapi/v1/exchangeInfo", timeout=10).json()
                pairs = {row["pair"] for row in info["symbols"]}
                signer = signer_from_env()
                query = f"timestamp={FreshlySigned.server_now_ms(base_url)}"
                signature = signer.signature(query.encode())
                tables = requests.get(
                    f"{base_url}/dapi/v2/leverageBracket?{query}&signature={signature}",
                    headers={API_KEY_HEADER: signer.api_key},
                    timeout=10,
                ).json()
                maxima = {
                    row["symbol"]: max(b["initialLeverage"] for b in row["brackets"])
                    for row in tables
                }
                cached = cls._cache[base_url] = (time.monotonic(), maxima, pairs)
            return cached[1], cached[2]


def explained_rejection(case: Case, response: Response) -> str | None:
    """Why a schema-valid request may still get this 400, or None when nothing explains it."""
    try:
        payload = json.loads(response.content)
    except ValueError:
        return None
    code = payload.get("code") if isinstance(payload, dict) else None
    sent = _sent_params(response.request)
    maxima, pairs = _Market.of(_origin(response.request.url or ""))
    symbol = sent.get("symbol")
    if code == -1121:
        if symbol and symbol not in maxima:
            return f"symbol {symbol} is not listed"
        if sent.get("pair") and sent["pair"] not in pairs:
            return f"pair {sent['pair']} is not listed"
    if code == -4028 and symbol in maxima and _is_long(sent.get("leverage")):
        leverage = int(sent["leverage"])
        if not 1 <= leverage <= maxima[symbol]:
            return f"leverage {leverage} is outside {symbol}'s 1..{maxima[symbol]}"
    if code == -1102:
        missing = _MANDATORY.search(str(payload.get("msg", "")))
        if missing and not sent.get(missing.group(1)):
            return f"{missing.group(1)} was not sent (it may travel in the query or the body)"
    if code == -1100 and any(_CONTROL.search(k + v) or "\ufffd" in k + v for k, v in sent.items()):
        return "a value holds a control character or invalid UTF-8 (rule error-table: -1100)"
    if code in (-4046, -4059):
        # docs/behaviour.md#margin-type, #position-mode: the state, not the request, decides.
        return "the account already has that margin type or position mode (no change)"
    if code == -1021 and _is_long(sent.get("recvWindow")) and int(sent["recvWindow"]) < 1000:
        return f"recvWindow {sent['recvWindow']} ms is shorter than the round trip"
    return None


@schemathesis.check
def binance_positive_data_acceptance(ctx: CheckContext, response: Response, case: Case) -> None:
    """A schema-valid request succeeds, or is refused for a reason the request itself shows."""
    from schemathesis import GenerationMode

    if case.meta is None or case.meta.generation.mode != GenerationMode.POSITIVE:
        return None
    if case.operation.path.startswith("/__admin") or response.status_code < 400:
        return None
    if response.status_code in (429, 418) or response.status_code >= 500:
        return None  # rate limits are the caller's pace; 5xx is not_a_server_error's
    if response.status_code == 400 and explained_rejection(case, response) is not None:
        return None
    raise AssertionError(
        f"schema-valid {case.operation.label} answered {response.status_code} "
        f"{response.content[:300]!r}, and nothing in the request explains it"
    )


@schemathesis.check
def binance_error_envelope(ctx: CheckContext, response: Response, case: Case) -> None:
    """Every Binance error is compact JSON `{"code":<int>,"msg":"..."}`, code first."""
    if case.operation.path.startswith("/__admin") or response.status_code < 400:
        return None
    content_type = (response.headers.get("content-type") or [""])[0]
    if not content_type.startswith("application/json"):
        raise AssertionError(f"error answer with Content-Type {content_type!r}")
    try:
        payload = json.loads(response.content)
    except ValueError:
        raise AssertionError(f"error body is not JSON: {response.content[:200]!r}") from None
    if not isinstance(payload, dict) or list(payload) != ["code", "msg"]:
        raise AssertionError(f"error body is not exactly code then msg: {response.content!r}")
    if response.content != json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode():
        raise AssertionError(f"error body is not compact JSON: {response.content!r}")


_PROBED: set[tuple[str, str]] = set()
_PROBED_LOCK = threading.Lock()


def auth_probes(
    request: requests.PreparedRequest, signer: SigningAuth
) -> list[tuple[str, dict[str, str], str, bytes, int, int]]:
    """(what, headers, url, body, status, code) for each way a signed request's auth can fail."""
    url = request.url or ""
    base, _, query = url.partition("?")
    body = request.body or b""
    body = body.encode() if isinstance(body, str) else body
    unsigned_query, unsigned_body = _without_signature(query), _without_signature(body.decode())
    # The body changes from probe to probe, so its framing headers are left to requests:
    # the original Content-Length on a probe with no body would leave the server waiting.
    dropped = {API_KEY_HEADER.lower(), "content-length", "transfer-encoding"}
    headers = {k: v for k, v in request.headers.items() if k.lower() not in dropped}

    def signed(query: str, body: str, by: SigningAuth) -> tuple[str, bytes]:
        element = f"signature={by.signature((query + body).encode())}"
        if body:
            return f"{base}?{query}" if query else base, f"{body}&{element}".encode()
        return f"{base}?{query + '&' if query else ''}{element}", b""

    stranger = HmacAuth("stranger", "not-the-secret-of-any-account")
    # Stale for the default window: timestamp 1000 (1970), recvWindow left out.
    stale_query, stale_body = (_stale(unsigned_query), _stale(unsigned_body))
    with_key = {**headers, API_KEY_HEADER: signer.api_key}
    no_signature_url = f"{base}?{unsigned_query}" if unsigned_query else base
    wrong_url, wrong_body = signed(unsigned_query, unsigned_body, stranger)
    stale_url, stale_body_bytes = signed(stale_query, stale_body, signer)
    return [
        ("no API key", headers, url, body, 401, -2014),
        ("a malformed API key", {**headers, API_KEY_HEADER: "not a key!"}, url, body, 401, -2014),
        ("an unknown API key", {**headers, API_KEY_HEADER: "nosuchkey0"}, url, body, 401, -2015),
        ("no signature", with_key, no_signature_url, unsigned_body.encode(), 400, -1102),
        ("a wrong signature", with_key, wrong_url, wrong_body, 400, -1022),
        ("a stale timestamp", with_key, stale_url, stale_body_bytes, 400, -1021),
    ]


def _without_signature(part: str) -> str:
    return "&".join(e for e in part.split("&") if e and not e.startswith("signature="))


def _stale(part: str) -> str:
    elements = [e for e in part.split("&") if e and not e.startswith("recvWindow=")]
    return "&".join("timestamp=1000" if e.startswith("timestamp=") else e for e in elements)


@schemathesis.check
def binance_auth_is_enforced(ctx: CheckContext, response: Response, case: Case) -> None:
    """A signed operation that just succeeded refuses each broken variant with Binance's code."""
    if not is_signed(case) or not 200 <= response.status_code < 300:
        return None
    key = (_origin(response.request.url or ""), case.operation.label)
    with _PROBED_LOCK:
        if key in _PROBED:
            return None
        _PROBED.add(key)
    wrong = []
    for what, headers, url, body, status, code in auth_probes(response.request, signer_from_env()):
        answer = requests.request(
            response.request.method or "GET", url, headers=headers, data=body or None, timeout=10
        )
        try:
            payload = answer.json()
        except ValueError:
            payload = None
        got = payload.get("code") if isinstance(payload, dict) else None
        if (answer.status_code, got) != (status, code):
            wrong.append(f"{what}: expected {status} {code}, got {answer.status_code} {got}")
    if wrong:
        with _PROBED_LOCK:
            _PROBED.discard(key)  # a replay must fail the same way
        raise AssertionError(f"{case.operation.label} with " + "; ".join(wrong))
