"""Binance's routes (/dapi, and the /api/v3 and /sapi ones clients call first): thin views.

Each view hands the raw request to `Exchange.handle`; all rules live there.
`app.ServerGlue` answers exact route matches through `call_from_environ` and
`Answer` directly, below Flask's request context (most of a request's cost);
the Flask views registered here serve what is left: HEAD, and through the
error handlers, 404 and 405.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, current_app, request

from mockserver.exchange import ENDPOINTS, Answer, Call, Endpoint, Exchange

DROP_KEY = "dapi_mock.drop"
CODE_KEY = "dapi_mock.code"
REASON_KEY = "dapi_mock.reason"


def exchange_of(app: Flask) -> Exchange:
    exchange: Exchange = app.extensions["dapi_mock"]
    return exchange


def _declared_length(environ: dict[str, Any]) -> int | None:
    try:
        return int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None


def call_from_environ(environ: dict[str, Any], max_body_bytes: int) -> Call:
    """The raw request, from a WSGI environ; the body is None when over the limit."""
    declared = _declared_length(environ)
    body: bytes | None
    if declared is not None and declared > max_body_bytes:
        body = None
    else:
        body = environ["wsgi.input"].read(max_body_bytes + 1) if declared != 0 else b""
        if len(body) > max_body_bytes:
            body = None
    return Call(
        method=environ["REQUEST_METHOD"],
        # WSGI hands the path over as latin-1; Binance paths are ASCII, others read as UTF-8.
        path=environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace"),
        query=environ.get("QUERY_STRING", "").encode("latin-1"),
        body=body,
        api_key=environ.get("HTTP_X_MBX_APIKEY"),
        client_ip=environ.get("REMOTE_ADDR") or "unknown",
        header_bytes=sum(
            len(name) + len(value)
            for name, value in environ.items()
            if name.startswith("HTTP_") or name in ("CONTENT_TYPE", "CONTENT_LENGTH")
        ),
    )


def note_outcome(environ: dict[str, Any], answer: Answer) -> None:
    """What the request log (app.ServerGlue) reports, and whether to drop the connection."""
    environ[CODE_KEY] = answer.code
    environ[REASON_KEY] = answer.reason
    if answer.drop:
        environ[DROP_KEY] = True


def serve(endpoint: Endpoint | None, route_status: int = 200) -> Response:
    exchange = exchange_of(current_app)
    environ = request.environ
    answer = exchange.handle(
        call_from_environ(environ, exchange.config.max_body_bytes), endpoint, route_status
    )
    note_outcome(environ, answer)
    if answer.drop:
        return Response(b"", 200)
    return Response(answer.body(), answer.status, answer.headers, mimetype="application/json")


def _view_for(endpoint: Endpoint):
    def view() -> Response:
        return serve(endpoint)

    return view


def blueprint() -> Blueprint:
    bp = Blueprint("dapi", __name__)
    for endpoint in ENDPOINTS:
        bp.add_url_rule(
            endpoint.path,
            endpoint=f"{endpoint.method} {endpoint.path}",  # one path may take two methods
            view_func=_view_for(endpoint),
            methods=[endpoint.method],
            provide_automatic_options=False,
        )
    return bp
