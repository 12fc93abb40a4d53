"""A mock served in a background thread, and a handle that drives it (over /__admin, or
directly when the server runs in this process).

Used by the pytest plugin and the contract kit; usable from any Python code:

    with MockServer() as server:
        mock = server.handle()
        mock.clock.freeze(1591702613943)
"""

from __future__ import annotations

import threading
import traceback
from typing import TYPE_CHECKING, Any

import requests

from mockserver.config import DEMO_API_KEY, DEMO_SECRET, Config

if TYPE_CHECKING:
    from mockserver.exchange import Exchange


class MockServer:
    """The exchange on waitress, on 127.0.0.1 and a free port, in a daemon thread."""

    def __init__(self, config: Config | None = None) -> None:
        from mockserver.app import create_app
        from mockserver.serving import create_server

        self.config = config or Config(port=0)
        self.app = create_app(self.config)
        # The same server options as `dapi-mock serve`, so tests see what users run.
        self._server = create_server(self.app, self.config)
        port = self._server.effective_port
        self.url = f"http://{self.config.host}:{port}"
        self.thread_errors: list[BaseException] = []
        self._closing = False
        self._admin_session = requests.Session()
        self._thread = threading.Thread(target=self._run, name="dapi-mock", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._server.run()
        except BaseException as exc:  # surfaced to the tests by the plugin
            if not (self._closing and isinstance(exc, OSError)):  # expected while closing
                self.thread_errors.append(exc)

    @property
    def error_count(self) -> int:
        """How many unexpected exceptions the server has raised (each answered a 500)."""
        return len(self.thread_errors) + self.app.extensions["dapi_mock"].unexpected_error_count

    def errors_since(self, count: int) -> list[BaseException]:
        """The exceptions raised since `error_count` was `count` (the latest 100 are kept)."""
        kept = [*self.thread_errors, *self.app.extensions["dapi_mock"].unexpected_errors]
        return kept[-(self.error_count - count) :] if self.error_count > count else []

    def handle(self, api_key: str | None = None, secret: str | None = None) -> DapiMock:
        """A handle acting as `api_key` (default: the demo account, else the first HMAC one)."""
        if api_key is None:
            api_key, secret = default_credentials(self.config)
        # One kept-alive admin connection for every handle; the reset skips it altogether
        # and calls the exchange in this process.
        return DapiMock(
            self.url,
            api_key,
            secret or "",
            self.config.admin_token,
            self._admin_session,
            exchange=self.app.extensions["dapi_mock"],
        )

    def close(self) -> None:
        """Stop serving at once, closing open connections and the worker threads too."""
        from mockserver.serving import close_all_soon

        self._admin_session.close()
        server = self._server
        self._closing = True
        self.app.extensions["dapi_mock"].holds.release_all()  # held requests answer now
        if self._thread.is_alive():
            # In the serving thread: the loop's map empties, so the loop ends now, however
            # many keep-alive connections clients left open (server.close() alone waited).
            close_all_soon(server)
            self._thread.join(timeout=5)
        else:
            server.close()
        server.task_dispatcher.shutdown()

    def __enter__(self) -> MockServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def default_credentials(config: Config) -> tuple[str, str]:
    for account in config.all_accounts():
        if account.secret:
            return account.api_key, account.secret
    return DEMO_API_KEY, DEMO_SECRET  # no HMAC account: requests signed with it get -2015


def format_errors(errors: list[BaseException]) -> str:
    return "\n".join("".join(traceback.format_exception(e)) for e in errors)


class AdminRefused(RuntimeError):
    """The control plane refused a call; the message is its `error` text."""


class _Admin:
    def __init__(self, url: str, token: str, session: requests.Session | None = None) -> None:
        self.url = url
        self.owns_session = session is None
        self.session = session or requests.Session()
        if token:
            self.session.headers["X-Admin-Token"] = token

    def call(self, method: str, path: str, body: Any = None) -> Any:
        response = self.session.request(method, f"{self.url}/__admin{path}", json=body, timeout=10)
        data = response.json()
        if response.status_code != 200:
            raise AdminRefused(f"{method} /__admin{path}: {response.status_code} {data}")
        return data


class ClockControl:
    def __init__(self, admin: _Admin) -> None:
        self._admin = admin

    def now_ms(self) -> int:
        return int(self._admin.call("GET", "/clock")["now_ms"])

    def state(self) -> dict[str, Any]:
        return dict(self._admin.call("GET", "/clock"))

    def offset(self, ms: int) -> None:
        self._admin.call("POST", "/clock", {"offset_ms": ms})

    def freeze(self, at_ms: int) -> None:
        self._admin.call("POST", "/clock", {"freeze_at_ms": at_ms})

    def advance(self, ms: int) -> None:
        self._admin.call("POST", "/clock", {"advance_ms": ms})

    def real(self) -> None:
        self._admin.call("POST", "/clock", {"real": True})


class Accounts:
    def __init__(self, admin: _Admin) -> None:
        self._admin = admin

    def add(
        self,
        api_key: str,
        secret: str | None = None,
        public_key: str | None = None,
        *,
        balances: dict[str, str] | None = None,
        max_leverage: int | None = None,
        max_leverage_rule: str | None = None,
        dual_side_position: bool | None = None,
    ) -> None:
        """Add (or replace) an account; settings not given stay as they are."""
        body: dict[str, Any] = {"api_key": api_key}
        given = {
            "secret": secret,
            "public_key": public_key,
            "balances": balances,
            "max_leverage": max_leverage,
            "max_leverage_rule": max_leverage_rule,
            "dual_side_position": dual_side_position,
        }
        body.update((key, value) for key, value in given.items() if value is not None)
        self._admin.call("POST", "/accounts", body)

    def remove(self, api_key: str) -> None:
        self._admin.call("DELETE", f"/accounts/{api_key}")

    def list(self) -> list[dict[str, str]]:
        return list(self._admin.call("GET", "/accounts")["accounts"])


class Positions:
    def __init__(self, admin: _Admin, default_api_key: str) -> None:
        self._admin = admin
        self._api_key = default_api_key

    def seed(
        self,
        symbol: str,
        position_amt: str | int,
        margin_type: str | None = None,
        mark_price: str | None = None,
        api_key: str | None = None,
        position_side: str = "BOTH",
    ) -> None:
        """Open a position; `margin_type` ("cross"/"isolated"), when given, sets the symbol's."""
        body: dict[str, Any] = {
            "api_key": api_key or self._api_key,
            "symbol": symbol,
            "positionAmt": str(position_amt),
            "positionSide": position_side,
        }
        if margin_type is not None:
            body["marginType"] = margin_type
        if mark_price is not None:
            body["markPrice"] = str(mark_price)
        self._admin.call("POST", "/positions", body)


class Balances:
    def __init__(self, admin: _Admin, default_api_key: str) -> None:
        self._admin = admin
        self._api_key = default_api_key

    def set(self, asset: str, wallet_balance: str, api_key: str | None = None) -> None:
        body = {
            "api_key": api_key or self._api_key,
            "asset": asset,
            "walletBalance": str(wallet_balance),
        }
        self._admin.call("POST", "/balances", body)


class Faults:
    def __init__(self, admin: _Admin) -> None:
        self._admin = admin

    def add(self, rule: dict[str, Any]) -> int:
        return int(self._admin.call("POST", "/faults", rule)["id"])

    def list(self) -> list[dict[str, Any]]:
        return list(self._admin.call("GET", "/faults")["faults"])

    def remove(self, rule_id: int) -> None:
        self._admin.call("DELETE", f"/faults/{rule_id}")

    def clear(self) -> None:
        self._admin.call("DELETE", "/faults")


class DapiMock:
    """Drive a running mock: `url`, `api_key`, `secret` and the control plane as methods."""

    def __init__(
        self,
        url: str,
        api_key: str,
        secret: str,
        admin_token: str = "",
        session: requests.Session | None = None,
        exchange: Exchange | None = None,
    ) -> None:
        """`exchange`: the served exchange when it runs in this process (reset in process)."""
        self.url = url
        self.api_key = api_key
        self.secret = secret
        self._exchange = exchange
        self._admin = _Admin(url, admin_token, session)
        self.clock = ClockControl(self._admin)
        self.accounts = Accounts(self._admin)
        self.positions = Positions(self._admin, api_key)
        self.faults = Faults(self._admin)
        self.balances = Balances(self._admin, api_key)

    def set_position_mode(self, dual_side_position: bool, api_key: str | None = None) -> None:
        """Hedge mode (True) or one-way (False), without the trading API's -4059/-4068."""
        body = {"api_key": api_key or self.api_key, "dualSidePosition": dual_side_position}
        self._admin.call("POST", "/position_mode", body)

    def set_margin_type(self, symbol: str, margin_type: str, api_key: str | None = None) -> None:
        """ISOLATED or CROSSED for a symbol, without the trading API's -4046/-4048."""
        body = {"api_key": api_key or self.api_key, "symbol": symbol, "marginType": margin_type}
        self._admin.call("POST", "/margin_type", body)

    def state(self) -> dict[str, Any]:
        """GET /__admin/state: the clock, each account's trading state, the fault rules."""
        return dict(self._admin.call("GET", "/state"))

    def reset(self) -> None:
        # docs/behaviour.md#pytest-plugin: in process a reset costs microseconds, not a
        # round trip; it is the same Exchange.reset the /__admin/reset route calls.
        if self._exchange is not None:
            self._exchange.reset()
        else:
            self._admin.call("POST", "/reset")

    def requests(self) -> list[dict[str, Any]]:
        return list(self._admin.call("GET", "/requests")["requests"])

    def clear_requests(self) -> None:
        self._admin.call("DELETE", "/requests")

    def close(self) -> None:
        if self._admin.owns_session:
            self._admin.session.close()
