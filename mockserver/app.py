"""The Flask app factory: Binance routes, the control plane, error handlers, request log.

Every request enters through Flask (docs/behaviour.md#endpoints): the exchange's
endpoint table is registered once as Flask rules (routes/dapi.py), 404 and 405 come
from Flask's error handlers as Binance JSON, and the request log is written once per
request, after it is answered.
"""

from __future__ import annotations

import logging
import time
from importlib import resources

from flask import Flask, Response, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from mockserver import config as config_module
from mockserver import errors
from mockserver.config import Config
from mockserver.exchange import Answer, Exchange
from mockserver.request_log import log_request
from mockserver.routes import admin, dapi

log = logging.getLogger("mockserver")


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
    app.extensions["dapi_mock"] = Exchange(config)
    app.register_blueprint(dapi.blueprint())
    app.register_blueprint(admin.bp)

    @app.get("/openapi.yaml", provide_automatic_options=False)
    def openapi_contract() -> Response:
        return Response(contract_bytes(), mimetype="application/yaml")

    app.before_request(_start_clock)
    app.after_request(_log_request)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    return app


def _is_admin_path() -> bool:
    return request.path == "/__admin" or request.path.startswith("/__admin/")


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    if _is_admin_path():
        response = jsonify(error="no such admin route" if status == 404 else exc.name.lower())
        response.status_code = status
    elif status in (404, 405):
        response = dapi.answer(None, status)
    else:
        response = dapi.render(
            Answer.of_error(errors.ExchangeError(status, -1000, exc.name, exc.description))
        )
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        response.headers["Allow"] = ", ".join(sorted(exc.valid_methods))  # RFC 9110
    return response


def _unexpected_error(exc: Exception) -> Response:
    """A bug outside the exchange's own request path (the control plane, the contract)."""
    exchange = dapi.exchange_of(current_app)
    answer = exchange.unexpected(exc, request.method, request.path)
    if not _is_admin_path():
        answer.headers.update(exchange.weight_header(request.remote_addr or "unknown"))
    return dapi.render(answer)


def _start_clock() -> None:
    g.started = time.perf_counter()


def _log_request(response: Response) -> Response:
    answer: Answer | None = g.get("answer")
    log_request(
        request.remote_addr,
        request.method,
        request.path,
        "dropped" if answer is not None and answer.drop else str(response.status_code),
        answer.code if answer is not None else None,
        g.get("started", time.perf_counter()),
        answer.reason if answer is not None else None,
    )
    return response
