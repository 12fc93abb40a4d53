"""The control plane, /__admin: clock, accounts, positions, journal, faults
(docs/behaviour.md#control-plane).

JSON in, JSON out; errors are `{"error": "..."}`. Not journaled, not weighted,
and it never returns a secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
from decimal import Decimal, InvalidOperation
from importlib.resources import files
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from mockserver import json_input
from mockserver.clock import ClockRangeError
from mockserver.exchange import MARGIN_TYPE_PARAM
from mockserver.faults import FaultRuleError
from mockserver.journal import PAGE_LIMIT
from mockserver.routes.dapi import exchange_of
from mockserver.security import AccountError, hmac_account, public_key_account
from mockserver.state import (
    MARGIN_TYPES,
    POSITION_SIDES,
    SETUP_KEYS,
    SetupError,
    TooManyAccounts,
    leverage_cap,
    wallet_balance,
)

NOT_AUTHORIZED = {"code": -1002, "msg": "You are not authorized to execute this request."}
CLOCK_COMMANDS = ("offset_ms", "freeze_at_ms", "advance_ms", "real")
# docs/behaviour.md#reliability: nginx's default client_max_body_size, answered 413 as nginx does.
MAX_BODY_BYTES = 1024 * 1024
MAX_BODY_DEPTH = 32  # the deepest admin body (a fault rule) has 3 levels
# docs/behaviour.md#control-plane: the ranges of a seeded position, in contracts and USD.
MAX_POSITION_AMT = Decimal(10**9)
MIN_MARK_PRICE = Decimal("1e-8")
MAX_MARK_PRICE = Decimal(10**9)

bp = Blueprint("admin", __name__, url_prefix="/__admin")


class AdminError(Exception):
    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error


@bp.errorhandler(AdminError)
def _admin_error(exc: AdminError) -> tuple[Response, int]:
    return jsonify(error=exc.error), exc.status


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_name(host: str) -> str:
    """The name in a Host header, without its port: `[::1]:80` -> `::1`."""
    if host.startswith("["):
        return host[1 : host.find("]")]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _has_body() -> bool:
    return (
        bool(request.content_length)
        or "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    )


@bp.before_request
def _authorize() -> tuple[Response, int] | None:
    if request.endpoint == "admin.health":
        return None  # docs/behaviour.md#admin-access: container probes always get an answer
    config = exchange_of(current_app).config
    # docs/behaviour.md#admin-access: no web page may drive or read the control plane.
    if is_loopback(config.host) and not is_loopback(_host_name(request.host)):
        raise AdminError(
            403,
            "on a loopback bind /__admin answers only a Host of localhost or a loopback address",
        )
    origin = request.headers.get("Origin")
    if origin is not None and origin.lower() != f"{request.scheme}://{request.host}".lower():
        raise AdminError(403, "/__admin refuses requests sent from another origin (a web page)")
    if config.admin_token:
        given = request.headers.get("X-Admin-Token", "")
        # docs/behaviour.md#journal-page: the page's shell holds no data and asks for the
        # token itself, then sends it on every read.
        if request.endpoint != "admin.journal_page" and not hmac.compare_digest(
            given.encode(), config.admin_token.encode()
        ):
            return jsonify(NOT_AUTHORIZED), 401
    elif not is_loopback(config.host):
        return jsonify(NOT_AUTHORIZED), 403
    if _has_body():
        if request.mimetype != "application/json":
            raise AdminError(415, "an /__admin request with a body must be application/json")
        if (request.content_length or 0) > MAX_BODY_BYTES:
            raise AdminError(413, f"/__admin bodies are at most {MAX_BODY_BYTES} bytes")
    return None


def _body(allowed: tuple[str, ...] | None = None) -> dict[str, Any]:
    raw = request.stream.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise AdminError(413, f"/__admin bodies are at most {MAX_BODY_BYTES} bytes")
    try:
        data = json_input.parse(raw, MAX_BODY_DEPTH)
    except json_input.JSONInputError as exc:
        raise AdminError(400, f"the body is not a usable JSON object: {exc}") from None
    if not isinstance(data, dict):
        raise AdminError(400, "the body must be a JSON object")
    unknown = sorted(set(data) - set(allowed)) if allowed is not None else []
    if unknown:
        raise AdminError(400, f"unknown key(s): {', '.join(unknown)}")
    return data


def _whole_number(data: dict[str, Any], key: str) -> int:
    value = data[key]
    if not isinstance(value, int) or isinstance(value, bool):
        raise AdminError(400, f"{key} must be a whole number of ms")
    return value


def _page_with_policy() -> tuple[bytes, str]:
    """The journal page and a Content-Security-Policy that lets only its own inline script
    and style run, and lets it fetch only from this server: whatever a client sent that the
    page shows, nothing in it can run."""
    page = files("mockserver").joinpath("data/journal.html").read_text(encoding="utf-8")

    def sources(tag: str) -> str:
        blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", page, flags=re.DOTALL)
        digests = (base64.b64encode(hashlib.sha256(b.encode()).digest()).decode() for b in blocks)
        return " ".join(f"'sha256-{digest}'" for digest in digests)

    policy = (
        f"default-src 'none'; script-src {sources('script')}; style-src {sources('style')}; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return page.encode("utf-8"), policy


JOURNAL_PAGE, JOURNAL_PAGE_POLICY = _page_with_policy()


@bp.get("/")
def journal_page() -> Response:
    """docs/behaviour.md#journal-page: the same HTML for everyone; its script reads the data."""
    return Response(
        JOURNAL_PAGE,
        content_type="text/html; charset=utf-8",
        headers={
            "Content-Security-Policy": JOURNAL_PAGE_POLICY,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        },
    )


@bp.get("/health")
def health() -> Response:
    return jsonify(status="ok")


@bp.post("/reset")
def reset() -> Response:
    exchange_of(current_app).reset()
    return jsonify(status="ok")


def _clock_view() -> Response:
    clock = exchange_of(current_app).clock
    return jsonify(clock.state.as_dict(clock.now_ms()))


@bp.get("/clock")
def clock_get() -> Response:
    return _clock_view()


@bp.post("/clock")
def clock_set() -> Response:
    data = _body()
    if len(data) != 1 or next(iter(data)) not in CLOCK_COMMANDS:
        raise AdminError(400, f"give exactly one of {', '.join(CLOCK_COMMANDS)}")
    clock = exchange_of(current_app).clock
    try:
        if "real" in data:
            if data["real"] is not True:
                raise AdminError(400, "real must be true")
            clock.real()
        elif "offset_ms" in data:
            clock.set_offset(_whole_number(data, "offset_ms"))
        elif "freeze_at_ms" in data:
            clock.freeze_at(_whole_number(data, "freeze_at_ms"))
        else:
            clock.advance(_whole_number(data, "advance_ms"))
    except ClockRangeError as exc:
        raise AdminError(400, str(exc)) from None
    return _clock_view()


@bp.get("/accounts")
def accounts_list() -> Response:
    accounts = exchange_of(current_app).store.accounts.values()
    return jsonify(accounts=[{"api_key": a.api_key, "type": a.type} for a in accounts])


@bp.post("/accounts")
def accounts_add() -> Response:
    data = _body(("api_key", "secret", "public_key", *SETUP_KEYS))
    api_key, secret, public_key = data.get("api_key"), data.get("secret"), data.get("public_key")
    if not isinstance(api_key, str):
        raise AdminError(400, "api_key must be a string")
    if (secret is None) == (public_key is None):
        raise AdminError(400, "give exactly one of secret (HMAC) or public_key (PEM)")
    if not isinstance(secret if secret is not None else public_key, str):
        raise AdminError(400, "secret and public_key must be strings")
    exchange = exchange_of(current_app)
    exchange.listing_now()  # a delivered symbol's positions must not block a mode change
    try:
        account = (
            hmac_account(api_key, secret)
            if secret is not None
            else (public_key_account(api_key, str(public_key)))
        )
        exchange.store.put_account(account, exchange.clock.now_ms(), **_account_setup(data))
    except (AccountError, SetupError, TooManyAccounts) as exc:
        raise AdminError(400, str(exc)) from None
    return jsonify(api_key=account.api_key, type=account.type)


def _account_setup(data: dict[str, Any]) -> dict[str, Any]:
    """The settings given in an account body (docs/behaviour.md#control-plane); absent keys
    leave a replaced account's own."""
    setup: dict[str, Any] = {}
    if "dual_side_position" in data:
        setup["dual_side_position"] = _boolean(data, "dual_side_position")
    if "max_leverage" in data or "max_leverage_rule" in data:
        setup["cap"] = leverage_cap(data.get("max_leverage"), data.get("max_leverage_rule"))
    if "balances" in data:
        balances = data["balances"]
        if not isinstance(balances, dict):
            raise AdminError(400, 'balances must be an object like {"BTC": "1.5"}')
        setup["balances"] = {
            asset: wallet_balance(value, f"balances.{asset}") for asset, value in balances.items()
        }
    return setup


def _boolean(data: dict[str, Any], key: str) -> bool:
    value = data.get(key)
    if not isinstance(value, bool):
        raise AdminError(400, f"{key} must be true or false")
    return value


def _account_key(data: dict[str, Any]) -> str:
    api_key = data.get("api_key")
    if not isinstance(api_key, str) or api_key not in exchange_of(current_app).store.accounts:
        raise AdminError(400, "api_key must name an existing account")
    return api_key


def _listed_symbol(data: dict[str, Any]) -> str:
    symbol = data.get("symbol")
    if not isinstance(symbol, str):
        raise AdminError(400, "symbol must be a string")
    try:
        return exchange_of(current_app).listed_symbol(symbol).name
    except KeyError:
        raise AdminError(400, f"symbol {symbol!r} is not listed now") from None


@bp.delete("/accounts/<api_key>")
def accounts_remove(api_key: str) -> Response:
    if not exchange_of(current_app).store.remove_account(api_key):
        raise AdminError(404, f"no account with api_key {api_key!r}")
    return jsonify(status="ok")


def _decimal_in_range(
    data: dict[str, Any], key: str, low: Decimal, high: Decimal, places: int = 8
) -> Decimal:
    """A decimal string (or whole JSON number) from low to high with at most `places` decimals.

    docs/behaviour.md#reliability: every number is range-checked where it enters, so
    nothing later (rendering, maxQty checks) meets a value it cannot handle.
    """
    value = data.get(key)
    number = None
    if isinstance(value, str | int) and not isinstance(value, bool):
        try:
            number = Decimal(value)
        except (InvalidOperation, ValueError):
            number = None
    if (
        number is None
        or not (number.is_finite() and low <= number <= high)
        or number != number.quantize(Decimal(1).scaleb(-places))
    ):
        raise AdminError(
            400,
            f"{key} must be a decimal string from {low:f} to {high:f} "
            f"with at most {places} decimals",
        )
    return number


@bp.post("/positions")
def positions_seed() -> Response:
    data = _body(("api_key", "symbol", "positionAmt", "marginType", "markPrice", "positionSide"))
    exchange = exchange_of(current_app)
    api_key = _account_key(data)
    symbol = _listed_symbol(data)
    amount = _decimal_in_range(data, "positionAmt", -MAX_POSITION_AMT, MAX_POSITION_AMT)
    # docs/behaviour.md#control-plane: marginType, when given, sets the symbol's; absent
    # leaves it as it is.
    margin_type = data.get("marginType")
    if margin_type is not None and margin_type not in MARGIN_TYPES:
        raise AdminError(400, "marginType must be cross or isolated")
    mark_price = (
        _decimal_in_range(data, "markPrice", MIN_MARK_PRICE, MAX_MARK_PRICE)
        if "markPrice" in data
        else None
    )
    side = data.get("positionSide", "BOTH")
    if side not in POSITION_SIDES:
        raise AdminError(400, f"positionSide must be one of {', '.join(POSITION_SIDES)}")
    try:
        exchange.seed_position(api_key, symbol, amount, margin_type, mark_price, side)
    except SetupError as exc:
        raise AdminError(400, str(exc)) from None
    return jsonify(status="ok")


@bp.post("/position_mode")
def position_mode_set() -> Response:
    data = _body(("api_key", "dualSidePosition"))
    api_key = _account_key(data)
    dual_side_position = _boolean(data, "dualSidePosition")
    exchange = exchange_of(current_app)
    exchange.listing_now()  # a delivered symbol's positions must not block the change
    try:
        exchange.store.set_position_mode(api_key, dual_side_position)
    except SetupError as exc:
        raise AdminError(400, str(exc)) from None
    return jsonify(status="ok")


@bp.post("/margin_type")
def margin_type_set() -> Response:
    data = _body(("api_key", "symbol", "marginType"))
    api_key = _account_key(data)
    symbol = _listed_symbol(data)
    value = data.get("marginType")
    margin_type = MARGIN_TYPE_PARAM.get(value) if isinstance(value, str) else None
    if margin_type is None:
        raise AdminError(400, "marginType must be ISOLATED or CROSSED")
    exchange_of(current_app).store.set_margin_type(api_key, symbol, margin_type)
    return jsonify(status="ok")


@bp.post("/balances")
def balance_set() -> Response:
    data = _body(("api_key", "asset", "walletBalance"))
    exchange = exchange_of(current_app)
    api_key = _account_key(data)
    asset = data.get("asset")
    if not isinstance(asset, str):
        raise AdminError(400, "asset must be a string")
    try:
        wallet = wallet_balance(data.get("walletBalance"), "walletBalance")
        exchange.store.set_balance(api_key, asset, wallet, exchange.clock.now_ms())
    except SetupError as exc:
        raise AdminError(400, str(exc)) from None
    return jsonify(status="ok")


@bp.get("/state")
def state_view() -> Response:
    return jsonify(exchange_of(current_app).state_view())


def _query_count(name: str, low: int, high: int) -> int | None:
    """An optional whole-number query parameter within low..high."""
    raw = request.args.get(name)
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 19 and low <= int(raw) <= high):
        raise AdminError(400, f"{name} must be a whole number from {low} to {high}")
    return int(raw)


@bp.get("/requests")
def journal_list() -> Response:
    # docs/behaviour.md#journal: since_id and limit page through the journal; last_id resumes.
    since_id = _query_count("since_id", 0, 2**63 - 1)
    limit = _query_count("limit", 1, PAGE_LIMIT)
    entries, last_id = exchange_of(current_app).journal.page(since_id, limit)
    return jsonify(requests=entries, last_id=last_id)


@bp.delete("/requests")
def journal_clear() -> Response:
    exchange_of(current_app).journal.clear()
    return jsonify(status="ok")


@bp.get("/faults")
def faults_list() -> Response:
    return jsonify(faults=exchange_of(current_app).faults.rules())


@bp.post("/faults")
def faults_add() -> Response:
    try:
        rule = exchange_of(current_app).faults.add(_body())
    except FaultRuleError as exc:
        raise AdminError(400, str(exc)) from None
    return jsonify(id=rule.id)


@bp.delete("/faults")
def faults_clear() -> Response:
    exchange_of(current_app).faults.clear()
    return jsonify(status="ok")


@bp.delete("/faults/<int:rule_id>")
def faults_remove(rule_id: int) -> Response:
    if not exchange_of(current_app).faults.remove(rule_id):
        raise AdminError(404, f"no fault rule with id {rule_id}")
    return jsonify(status="ok")
