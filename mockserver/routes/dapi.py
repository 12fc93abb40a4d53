"""Binance's routes (/dapi, and the /api/v3 and /sapi ones clients call first): thin views.

Each view hands the raw request to `Exchange.handle`; all rules live there.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, current_app, request

from mockserver.exchange import ENDPOINTS, Answer, Call, Endpoint, Exchange

DROP_KEY = "dapi_mock.drop"
CODE_KEY = "dapi_mock.code"
REASON_KEY = "dapi_mock.reason"


def exchange_of(app: Flask) -> Exchange:
    exchange: Exchange = app.extensions["dapi_mock"]
    return exchange


def call_from_request(max_body_bytes: int) -> Call:
    environ = request.environ
    declared = request.content_length
    body: bytes | None
    if declared is not None and declared > max_body_bytes:
        body = None
    else:
        body = environ["wsgi.input"].read(max_body_bytes + 1) if declared != 0 else b""
        if len(body) > max_body_bytes:
            body = None
    return Call(
        method=request.method,
        path=request.path,
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


def render(answer: Answer) -> Response:
    environ = request.environ
    environ[CODE_KEY] = answer.code
    environ[REASON_KEY] = answer.reason
    if answer.drop:
        environ[DROP_KEY] = True
        return Response(b"", 200)
    return Response(answer.body(), answer.status, answer.headers, mimetype="application/json")


def serve(endpoint: Endpoint | None, route_status: int = 200) -> Response:
    exchange = exchange_of(current_app)
    call = call_from_request(exchange.config.max_body_bytes)
    return render(exchange.handle(call, endpoint, route_status))


def _view_for(endpoint: Endpoint):
    def view() -> Response:
        return serve(endpoint)

    return view


def blueprint() -> Blueprint:
    bp = Blueprint("dapi", __name__)
    for endpoint in ENDPOINTS:
        bp.add_url_rule(
            endpoint.path,
            endpoint=endpoint.path,
            view_func=_view_for(endpoint),
            methods=[endpoint.method],
            provide_automatic_options=False,
        )
    return bp
