"""Binance's routes (/dapi, and the /api/v3 and /sapi ones clients call first): thin views.

Every endpoint of `exchange.ENDPOINTS` is one Flask rule. Its view hands the raw
request to `Exchange.handle`, and `render` turns the `Answer` into a response;
unknown paths and wrong methods reach `Exchange.handle` the same way, from the
app's 404/405 error handler. All rules live in the exchange.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request

from mockserver.exchange import ENDPOINTS, Answer, Call, Endpoint, Exchange, never_gone


def exchange_of(app: Flask) -> Exchange:
    exchange: Exchange = app.extensions["dapi_mock"]
    return exchange


def _declared_length(environ: dict[str, Any]) -> int | None:
    try:
        return int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None


def call_of(environ: dict[str, Any], max_body_bytes: int) -> Call:
    """The raw request as the exchange sees it; the body is None when over the limit."""
    declared = _declared_length(environ)
    body: bytes | None
    if declared is not None and declared > max_body_bytes:
        body = None
    else:
        body = environ["wsgi.input"].read(max_body_bytes + 1) if declared != 0 else b""
        if len(body) > max_body_bytes:
            body = None
    client_gone = environ.get("waitress.client_disconnected")
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
        client_gone=client_gone if callable(client_gone) else never_gone,
    )


def answer(endpoint: Endpoint | None, route_status: int = 200) -> Response:
    """The exchange's answer to the current request (`endpoint` None: no such route)."""
    exchange = exchange_of(current_app)
    call = call_of(request.environ, exchange.config.max_body_bytes)
    return render(exchange.handle(call, endpoint, route_status))


def render(answer: Answer) -> Response:
    """The one way an `Answer` becomes an HTTP response; the request log reads it from `g`."""
    g.answer = answer
    if answer.drop:
        return Response(_Dropped(request.environ), 200)
    return Response(answer.body(), answer.status, answer.headers, mimetype="application/json")


class ConnectionDropped(Exception):
    """Raised to the WSGI server to close the connection without an answer."""


class _Dropped:
    """A response body that closes the client's connection instead of being sent (`drop`)."""

    def __init__(self, environ: dict[str, Any]) -> None:
        self.environ = environ

    def __iter__(self) -> Iterator[bytes]:
        if "waitress.client_disconnected" in self.environ:
            from waitress.channel import ClientDisconnected

            # waitress writes nothing before the first body chunk, and closes the socket
            # when the body raises this.
            raise ClientDisconnected("drop fault")
        sock = self.environ.get("werkzeug.socket") or self.environ.get("gunicorn.socket")
        if sock is None:
            raise ConnectionDropped("this WSGI server offers no way to drop a connection")
        import socket

        sock.shutdown(socket.SHUT_RDWR)
        return iter(())


def _view_for(endpoint: Endpoint) -> Callable[[], Response]:
    def view() -> Response:
        return answer(endpoint)

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
