"""The control plane, /__admin: clock, accounts, positions, journal, faults (SPEC 4).

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

from mockserver.clock import ClockRangeError
from mockserver.exchange import MARGIN_TYPE_PARAM
from mockserver.faults import FaultRuleError
from mockserver.routes.dapi import exchange_of
from mockserver.security import AccountError, hmac_account, public_key_account
from mockserver.state import (
    MARGIN_TYPES,
    POSITION_SIDES,
    SETUP_KEYS,
    SetupError,
    leverage_cap,
    wallet_balance,
)

NOT_AUTHORIZED = {"code": -1002, "msg": "You are not authorized to execute this request."}
CLOCK_COMMANDS = ("offset_ms", "freeze_at_ms", "advance_ms", "real")

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
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@bp.before_request
def _authorize() -> tuple[Response, int] | None:
    config = exchange_of(current_app).config
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
    return None


def _body(allowed: tuple[str, ...] | None = None) -> dict[str, Any]:
    data = request.get_json(silent=True, force=True)
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
    except (AccountError, SetupError) as exc:
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


def _decimal(data: dict[str, Any], key: str) -> Decimal:
    value = data.get(key)
    try:
        number = (
            Decimal(value) if isinstance(value, str | int) and not isinstance(value, bool) else None
        )
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        raise AdminError(400, f"{key} must be a decimal string")
    return number


@bp.post("/positions")
def positions_seed() -> Response:
    data = _body(("api_key", "symbol", "positionAmt", "marginType", "markPrice", "positionSide"))
    exchange = exchange_of(current_app)
    api_key = _account_key(data)
    symbol = _listed_symbol(data)
    amount = _decimal(data, "positionAmt")
    # docs/behaviour.md#control-plane: marginType, when given, sets the symbol's; absent
    # leaves it as it is.
    margin_type = data.get("marginType")
    if margin_type is not None and margin_type not in MARGIN_TYPES:
        raise AdminError(400, "marginType must be cross or isolated")
    mark_price = _decimal(data, "markPrice") if "markPrice" in data else None
    if mark_price is not None and mark_price <= 0:
        raise AdminError(400, "markPrice must be above 0")
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


@bp.get("/requests")
def journal_list() -> Response:
    return jsonify(requests=exchange_of(current_app).journal.entries())


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
