"""Fixtures for the server's tests: a Flask test client whose every response meets openapi.yaml."""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from werkzeug.test import TestResponse

from mockserver.app import create_app
from mockserver.config import DEMO_API_KEY, DEMO_SECRET, Config
from mockserver.exchange import Exchange
from tests.openapi_check import check_werkzeug_response

# 2020-06-09, the timestamp of Binance's own signing examples.
FROZEN_MS = 1591702613943


def run_at_once(work: Callable[[int], None], count: int) -> None:
    """`work(0)` to `work(count - 1)`, each on its own thread, released together by a
    barrier; fails with the first few of their failures."""
    start = threading.Barrier(count)
    failures: list[BaseException] = []

    def run(number: int) -> None:
        try:
            start.wait(timeout=10)
            work(number)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures, failures[:3]


def hmac_hex(payload: str | bytes, secret: str = DEMO_SECRET) -> str:
    data = payload.encode() if isinstance(payload, str) else payload
    return hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


def signed(params: dict[str, Any] | list[tuple[str, Any]], secret: str = DEMO_SECRET) -> str:
    """`params` urlencoded in the given order, with the HMAC signature appended last."""
    text = urlencode(params)
    return f"{text}&signature={hmac_hex(text, secret)}"


class ContractClient:
    """Sends raw query/body bytes to the app; checks each response against the contract."""

    def __init__(self, config: Config) -> None:
        self.app = create_app(config)
        self.exchange: Exchange = self.app.extensions["dapi_mock"]
        self._client = self.app.test_client()

    def request(
        self,
        method: str,
        path: str,
        query: str = "",
        body: str | bytes = b"",
        headers: dict[str, str] | None = None,
        content_type: str | None = None,
        api_key: str | None = DEMO_API_KEY,
    ) -> TestResponse:
        sent = dict(headers or {})
        if api_key is not None:
            sent.setdefault("X-MBX-APIKEY", api_key)
        response = self._client.open(
            path,
            method=method,
            query_string=query,
            data=body.encode() if isinstance(body, str) else body,
            headers=sent,
            content_type=content_type,
        )
        check_werkzeug_response(response)
        return response

    def get(self, path: str, query: str = "", **kwargs: Any) -> TestResponse:
        return self.request("GET", path, query, **kwargs)

    def post(
        self, path: str, query: str = "", body: str | bytes = b"", **kwargs: Any
    ) -> TestResponse:
        return self.request("POST", path, query, body, **kwargs)

    def change_leverage(self, symbol: str, leverage: int | str, **extra: Any) -> TestResponse:
        params = {"symbol": symbol, "leverage": leverage, **extra}
        params.setdefault("timestamp", self.exchange.clock.now_ms())
        return self.post("/dapi/v1/leverage", signed(params))

    def admin(self, method: str, path: str, json: Any = None, **headers: str) -> TestResponse:
        response = self._client.open(f"/__admin{path}", method=method, json=json, headers=headers)
        check_werkzeug_response(response)
        return response


@pytest.fixture
def make_client() -> Callable[..., ContractClient]:
    """A client on a fresh app built with Config(**settings), clock frozen at FROZEN_MS."""

    def build(**settings: Any) -> ContractClient:
        client = ContractClient(Config(**settings))
        client.exchange.clock.freeze_at(FROZEN_MS)
        return client

    return build


@pytest.fixture
def client(make_client: Callable[..., ContractClient]) -> ContractClient:
    return make_client()


def error_of(response: TestResponse) -> tuple[int, int, str]:
    """(HTTP status, Binance code, msg) of an error answer, checking its exact form."""
    assert response.content_type == "application/json"
    body = response.get_data(as_text=True)
    data = response.get_json()
    assert list(data) == ["code", "msg"], body
    assert body == f'{{"code":{data["code"]},"msg":"{data["msg"]}"}}'
    return response.status_code, data["code"], data["msg"]
