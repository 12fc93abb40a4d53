"""Every request enters through Flask: one rule per endpoint, 404/405 from its handlers."""

from __future__ import annotations

import pytest
from flask import request

from mockserver.app import create_app
from mockserver.config import Config
from mockserver.exchange import ENDPOINTS
from tests.helpers import FROZEN_MS, signed


def test_a_before_request_hook_sees_every_binance_route():
    app = create_app(Config(weight_per_minute=0))
    seen: list[tuple[str, str]] = []
    app.before_request(lambda: seen.append((request.method, request.path)))
    client = app.test_client()
    for endpoint in ENDPOINTS:
        client.open(endpoint.path, method=endpoint.method)
    client.get("/dapi/v1/nowhere")
    client.delete("/dapi/v1/ping")
    expected = [(e.method, e.path) for e in ENDPOINTS]
    assert seen == [*expected, ("GET", "/dapi/v1/nowhere"), ("DELETE", "/dapi/v1/ping")]


@pytest.mark.parametrize(
    ("method", "path", "query"),
    [
        ("POST", "/dapi/v1/leverage", {"symbol": "BTCUSD_PERP", "leverage": 50}),
        ("GET", "/dapi/v1/positionRisk", {"pair": "BTCUSD"}),
        ("GET", "/dapi/v1/exchangeInfo", None),
    ],
)
def test_each_endpoint_is_one_flask_rule_answered_by_the_exchange(client, method, path, query):
    query_string = signed({**query, "timestamp": FROZEN_MS}) if query else ""
    response = client.request(method, path, query_string)
    assert response.status_code == 200
    assert response.content_type == "application/json"
    assert client.exchange.journal.entries()[0]["path"] == path
    rules = [r for r in client.app.url_map.iter_rules() if r.rule == path]
    assert len(rules) == 1


def test_a_wrong_method_is_binance_405_with_allow(client):
    response = client.request("DELETE", "/dapi/v1/leverage", "")
    assert response.status_code == 405
    assert response.get_json() == {
        "code": -5000,
        "msg": "Path /dapi/v1/leverage, Method DELETE is invalid",
    }
    assert response.headers["Allow"] == "POST"


def test_head_on_a_get_route_goes_through_the_flask_view(client):
    response = client.request("HEAD", "/dapi/v1/ping")
    assert response.status_code == 200
    assert response.get_data() == b""
    assert response.headers["X-MBX-USED-WEIGHT-1M"] == "1"
    assert client.exchange.journal.entries()[0]["method"] == "HEAD"


def test_a_non_ascii_path_is_a_binance_404(client):
    response = client.get("/dapi/v1/pïng")
    assert response.status_code == 404
    assert response.get_json()["code"] == -5000
