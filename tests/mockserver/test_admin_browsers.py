"""No web page can drive or read /__admin (docs/behaviour.md#admin-access).

A page can POST text/plain without a preflight (CSRF), and a DNS-rebinding page
reaches a loopback server under its own host name: content type, Origin and Host
are checked before anything else the control plane does.
"""

from __future__ import annotations

import pytest
import requests

from mockserver.config import DEMO_API_KEY, Config
from mockserver.harness import MockServer
from tests.mockserver.conftest import signed

REPLACE_DEMO_SECRET = b'{"api_key": "dapimockdemokey", "secret": "chosen-by-the-page"}'


def demo_can_still_sign(client) -> bool:
    query = signed({"timestamp": client.exchange.clock.now_ms()})
    return client.get("/dapi/v1/positionRisk", query).status_code == 200


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        None,
    ],
)
def test_a_body_that_is_not_declared_json_is_refused_with_415(client, content_type):
    response = client.request(
        "POST", "/__admin/accounts", body=REPLACE_DEMO_SECRET, content_type=content_type
    )
    assert response.status_code == 415
    assert "application/json" in response.get_json()["error"]
    assert demo_can_still_sign(client)


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8"])
def test_a_json_body_is_taken(client, content_type):
    body = b'{"api_key": "pagekey", "secret": "s"}'
    response = client.request("POST", "/__admin/accounts", body=body, content_type=content_type)
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/__admin/reset"), ("DELETE", "/__admin/requests"), ("DELETE", "/__admin/faults")],
)
def test_bodyless_writes_need_no_content_type(client, method, path):
    assert client.request(method, path, api_key=None).status_code == 200


def test_a_body_on_a_bodyless_route_must_still_be_json(client):
    response = client.request("POST", "/__admin/reset", body=b"x", content_type="text/plain")
    assert response.status_code == 415


@pytest.mark.parametrize(
    "origin", ["http://evil.example", "null", "http://localhost:9999", "https://localhost"]
)
@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/__admin/reset"), ("GET", "/__admin/requests")]
)
def test_another_origin_is_refused_with_403(client, origin, method, path):
    client.get("/dapi/v1/ping")
    response = client.request(method, path, headers={"Origin": origin}, api_key=None)
    assert response.status_code == 403
    assert "origin" in response.get_json()["error"]
    assert client.exchange.journal.entries()  # the reset did not happen


def test_the_servers_own_origin_is_let_through(client):
    # The Flask test client sends Host: localhost.
    response = client.request("POST", "/__admin/reset", headers={"Origin": "http://localhost"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8080", "127.0.0.1.nip.io", "localhost.evil.example"]
)
def test_a_rebound_host_name_cannot_read_a_loopback_server(client, host):
    client.get("/dapi/v1/ping")
    response = client.request("GET", "/__admin/requests", headers={"Host": host}, api_key=None)
    assert response.status_code == 403
    assert "Host" in response.get_json()["error"]


@pytest.mark.parametrize(
    "host", ["localhost", "LOCALHOST:1", "127.0.0.1:8080", "127.9.9.9", "[::1]:8080", "[::1]"]
)
def test_loopback_host_names_are_let_through(client, host):
    response = client.request("GET", "/__admin/clock", headers={"Host": host}, api_key=None)
    assert response.status_code == 200


def test_a_public_bind_with_a_token_takes_any_host_name(make_client):
    client = make_client(host="0.0.0.0", admin_token="tok3n")
    headers = {"Host": "mock.internal:8080", "X-Admin-Token": "tok3n"}
    assert client.request("GET", "/__admin/clock", headers=headers).status_code == 200


def test_the_plugin_handle_and_plain_clients_pass_every_check() -> None:
    with MockServer(Config(port=0)) as server:
        mock = server.handle()
        mock.reset()
        mock.accounts.add("pluginkey", secret="s")
        mock.positions.seed("BTCUSD_PERP", "1", api_key=DEMO_API_KEY)
        mock.faults.add({"match": {"method": "GET", "path": "/x"}, "action": {"type": "drop"}})
        mock.faults.clear()
        mock.accounts.remove("pluginkey")
        assert mock.requests() == []
        reset = requests.post(f"{server.url}/__admin/reset", timeout=5)  # curl -X POST
        assert reset.status_code == 200
        refused = requests.post(
            f"{server.url}/__admin/accounts",
            data=REPLACE_DEMO_SECRET,
            headers={"Content-Type": "text/plain"},
            timeout=5,
        )
        assert refused.status_code == 415
