"""A scripted in-process transport for DapiClient (no network, no sleeping), and readers of
the requests it recorded."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from contracts.client import DapiClient
from tests.helpers import hmac_hex

BASE = "http://fake.invalid"
KEY = "testkey"
SECRET = "testsecret"
LEVERAGE_OK = {"leverage": 20, "maxQty": "150", "symbol": "BTCUSD_PERP"}


@dataclass
class Reply:
    status: int = 200
    body: Any = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def raw(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body, separators=(",", ":")).encode()


Script = Reply | Exception | Callable[[requests.PreparedRequest], Reply]


class FakeTransport(BaseAdapter):
    """Answers from a script, records every request and the timeout it got."""

    def __init__(self, *script: Script) -> None:
        super().__init__()
        self.script = list(script)
        self.sent: list[requests.PreparedRequest] = []
        self.timeouts: list[Any] = []

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, timeout: Any = None, **_: Any
    ) -> requests.Response:
        self.sent.append(request)
        self.timeouts.append(timeout)
        if not self.script:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        item = self.script.pop(0)
        if isinstance(item, Exception):
            raise item
        reply = item(request) if callable(item) else item
        response = requests.Response()
        response.status_code = reply.status
        response._content = reply.raw()
        response.headers = CaseInsensitiveDict(
            {"Content-Type": "application/json", **reply.headers}
        )
        response.request = request
        response.url = request.url or ""
        response.encoding = "utf-8"
        return response

    def close(self) -> None:
        pass


@dataclass
class Harness:
    transport: FakeTransport
    sleeps: list[float]
    clock: list[int]

    def client(self, **kwargs: Any) -> DapiClient:
        session = requests.Session()
        session.mount(BASE, self.transport)
        kwargs.setdefault("api_key", KEY)
        if not {"secret", "private_key", "auth"} & kwargs.keys():
            kwargs["secret"] = SECRET
        return DapiClient(
            BASE,
            session=session,
            sleep=self.sleeps.append,
            clock_ms=lambda: self.clock[0],
            **kwargs,
        )


def request_parts(request: requests.PreparedRequest) -> tuple[str, str]:
    body = request.body or b""
    return urlsplit(request.url or "").query, body.decode() if isinstance(body, bytes) else body


def request_params(request: requests.PreparedRequest) -> dict[str, str]:
    query, body = request_parts(request)
    return {**dict(parse_qsl(body)), **dict(parse_qsl(query))}


def verify_hmac(request: requests.PreparedRequest, secret: str = SECRET) -> str:
    """Server-style check: strip the trailing signature, HMAC query+body, compare."""
    query, body = request_parts(request)
    if body:
        body, _, signature = body.rpartition("&signature=")
    else:
        query, _, signature = query.rpartition("&signature=")
    assert signature == hmac_hex(query + body, secret)
    return signature
