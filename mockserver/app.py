"""The Flask app factory: Binance routes, the control plane, error handlers, request log."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from http import HTTPStatus
from importlib import resources
from typing import Any

from flask import Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from mockserver import config as config_module
from mockserver import errors
from mockserver.config import Config
from mockserver.exchange import ENDPOINTS, WEIGHT_HEADER, Answer, Endpoint, Exchange
from mockserver.routes import admin, dapi

log = logging.getLogger("mockserver")
request_log = logging.getLogger("mockserver.requests")

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def contract_bytes() -> bytes:
    """openapi.yaml as shipped in the package (a link to the repo root's file)."""
    return resources.files("mockserver").joinpath("data/openapi.yaml").read_bytes()


def create_app(config: Config | None = None) -> Flask:
    config = config or config_module.load(env={})
    app = Flask(__name__)
    # Werkzeug would answer `/dapi//v1/ping` with an HTML 308 redirect; Binance paths are exact.
    app.url_map.merge_slashes = False
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.compact = True  # type: ignore[attr-defined]
    exchange = Exchange(config)
    app.extensions["dapi_mock"] = exchange
    app.register_blueprint(dapi.blueprint())
    app.register_blueprint(admin.bp)

    @app.get("/openapi.yaml", provide_automatic_options=False)
    def openapi_contract() -> Response:
        return Response(contract_bytes(), mimetype="application/yaml")

    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    app.wsgi_app = ServerGlue(app.wsgi_app, exchange)  # type: ignore[method-assign]
    return app


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    if request.path == "/__admin" or request.path.startswith("/__admin/"):
        response = jsonify(error="no such admin route" if status == 404 else exc.name.lower())
        response.status_code = status
    elif status in (404, 405):
        response = dapi.serve(None, status)
    else:
        return _binance_error(errors.ExchangeError(status, -1000, exc.name, exc.description))
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        response.headers["Allow"] = ", ".join(sorted(exc.valid_methods))  # RFC 9110
    return response


def _unexpected_error(exc: Exception) -> Response:
    """A bug: logged with its traceback, kept for the pytest plugin, answered 500 -1000."""
    log.exception("unexpected error on %s %s", request.method, request.path)
    exchange = dapi.exchange_of(current_app)
    exchange.note_unexpected(exc)
    response = _binance_error(errors.unknown_error(f"{type(exc).__name__}: {exc}"))
    if not request.path.startswith("/__admin"):
        used = exchange.limiter.used(request.remote_addr or "unknown", exchange.clock.now_ms())
        response.headers[WEIGHT_HEADER] = str(used)
    return response


def _binance_error(exc: errors.ExchangeError) -> Response:
    request.environ[dapi.CODE_KEY] = exc.code
    request.environ[dapi.REASON_KEY] = exc.reason
    body = Answer.of_error(exc).body()
    return Response(body, exc.status, mimetype="application/json")


class ConnectionDropped(Exception):
    """Raised to the WSGI server to close the connection without an answer."""


def drop_connection(environ: dict[str, Any]) -> None:
    """Close the client's connection with no response, in the serving WSGI server's own way."""
    if "waitress.client_disconnected" in environ:
        from waitress.channel import ClientDisconnected

        # waitress closes the socket, writing nothing, when a task raises this.
        raise ClientDisconnected("drop fault")
    sock = environ.get("werkzeug.socket") or environ.get("gunicorn.socket")
    if sock is not None:
        import socket

        sock.shutdown(socket.SHUT_RDWR)
        return
    raise ConnectionDropped("this WSGI server offers no way to drop a connection")


def status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:  # a fault may answer any status from 400 to 599
        return f"{status} Unknown"


class ServerGlue:
    """WSGI middleware: Binance routes straight to the exchange, the request log, `drop`.

    An exact (method, path) match of a Binance route is answered here, without
    Flask's request context, which cost more than the exchange's own checks.
    Everything else (the control plane, HEAD, 404/405) goes through Flask.
    """

    def __init__(self, app: WSGIApp, exchange: Exchange) -> None:
        self.app = app
        self.exchange = exchange
        self.routes = {(e.method, e.path): e for e in ENDPOINTS}

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        endpoint = self.routes.get((environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")))
        if endpoint is not None:
            return self._exchange_route(endpoint, environ, start_response, started)
        sent_status = ""

        def capture(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            nonlocal sent_status
            sent_status = status
            if environ.get(dapi.DROP_KEY):
                return lambda _data: None
            return start_response(status, headers, *args)

        result = self.app(environ, capture)
        if environ.get(dapi.DROP_KEY):
            if hasattr(result, "close"):
                result.close()
            self._log(environ, "dropped", started)
            drop_connection(environ)
            return []
        self._log(environ, sent_status.split(" ", 1)[0], started)
        return result

    def _exchange_route(
        self,
        endpoint: Endpoint,
        environ: dict[str, Any],
        start_response: StartResponse,
        started: float,
    ) -> Iterable[bytes]:
        exchange = self.exchange
        answer = exchange.handle(
            dapi.call_from_environ(environ, exchange.config.max_body_bytes), endpoint
        )
        dapi.note_outcome(environ, answer)
        if answer.drop:
            self._log(environ, "dropped", started)
            drop_connection(environ)
            return []
        body = answer.body()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        headers.extend(answer.headers.items())
        start_response(status_line(answer.status), headers)
        self._log(environ, str(answer.status), started)
        return [body]

    @staticmethod
    def _log(environ: dict[str, Any], status: str, started: float) -> None:
        log_request(
            environ.get("REMOTE_ADDR"),
            environ.get("REQUEST_METHOD"),
            environ.get("PATH_INFO"),
            status,
            environ.get(dapi.CODE_KEY),
            started,
            environ.get(dapi.REASON_KEY),
        )


def log_request(
    client: str | None,
    method: str | None,
    path: str | None,
    status: str,
    code: int | None,
    started: float,
    reason: str | None,
) -> None:
    """One line of the request log (SPEC 3); `started` is a `time.perf_counter()` value."""
    if not request_log.isEnabledFor(logging.INFO):
        return
    request_log.info(
        "request",
        extra={
            "request_fields": {
                "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "client": client,
                "method": method,
                "path": path,
                "status": status,
                "code": code,
                "ms": round((time.perf_counter() - started) * 1000, 2),
                "reason": reason,
            }
        },
    )


class RequestLogFormatter(logging.Formatter):
    """Formats the request log as one text line or one JSON object per request."""

    def __init__(self, as_json: bool) -> None:
        super().__init__()
        self.as_json = as_json

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "request_fields", None)
        if fields is None:
            return super().format(record)
        if self.as_json:
            return json.dumps(fields, separators=(",", ":"))
        line = (
            f"{fields['time']} {fields['client']} {fields['method']} {fields['path']} "
            f"{fields['status']} {fields['code'] if fields['code'] is not None else '-'} "
            f"{fields['ms']}ms"
        )
        return f"{line} {fields['reason']}" if fields["reason"] and fields["code"] else line
