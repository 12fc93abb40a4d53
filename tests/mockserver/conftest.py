"""Fixtures for the server's tests: a Flask test client whose every response meets openapi.yaml."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from werkzeug.test import TestResponse

from mockserver.app import create_app
from mockserver.config import DEMO_API_KEY, Config
from mockserver.exchange import Exchange
from tests.helpers import FROZEN_MS, signed
from tests.openapi_check import check_werkzeug_response


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
