"""The WSGI fast path and the Flask views answer Binance routes identically."""

from __future__ import annotations

import pytest
from werkzeug.test import Client

from tests.mockserver.conftest import FROZEN_MS, signed


def _flask_only(client) -> Client:
    """A test client on the Flask app behind ServerGlue, so every route goes through a view."""
    return Client(client.app.wsgi_app.app)


@pytest.mark.parametrize(
    ("method", "path", "query"),
    [
        ("POST", "/dapi/v1/leverage", {"symbol": "BTCUSD_PERP", "leverage": 50}),
        ("POST", "/dapi/v1/leverage", {"symbol": "ETHUSD_PERP", "leverage": 101}),
        ("GET", "/dapi/v1/positionRisk", {"pair": "BTCUSD"}),
        ("GET", "/dapi/v1/exchangeInfo", None),
        ("GET", "/dapi/v1/ping", None),
    ],
)
def test_fast_path_and_flask_view_give_the_same_answer(make_client, method, path, query):
    fast, viewed = make_client(), make_client()
    query_string = signed({**query, "timestamp": FROZEN_MS}) if query else ""
    headers = {"X-MBX-APIKEY": "dapimockdemokey"}
    a = fast.request(method, path, query_string)
    b = _flask_only(viewed).open(path, method=method, query_string=query_string, headers=headers)
    assert (a.status_code, a.get_data(), a.content_type) == (
        b.status_code,
        b.get_data(),
        b.content_type,
    )
    assert a.headers["X-MBX-USED-WEIGHT-1M"] == b.headers["X-MBX-USED-WEIGHT-1M"]
    assert (
        fast.exchange.journal.entries()[0]["status"]
        == viewed.exchange.journal.entries()[0]["status"]
    )


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
