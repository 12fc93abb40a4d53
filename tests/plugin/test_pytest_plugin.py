"""The pytest plugin as another project sees it: installed, no conftest, only the fixtures.

Each pytester run is a fresh pytest process in an empty directory; the plugin
comes from the installed package's `pytest11` entry point, never from `-p`.
The foreign tests use their own client (plain requests + hmac), not ours.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["pytester"]

# Plugins of unrelated packages in this environment, slow to import and not used here.
QUICK = ("-p", "no:schemathesis", "-p", "no:hypothesispytest")

FOREIGN_CLIENT = '''
import hashlib
import hmac
import time
from urllib.parse import urlencode

import requests


class LeverageClient:
    """A small COIN-M client: server-time sync on -1021, retries on 5xx, honours Retry-After."""

    def __init__(self, url, api_key, secret):
        self.url, self.api_key, self.secret = url, api_key, secret
        self.offset_ms = 0
        self.waited = []
        self.session = requests.Session()

    def change_leverage(self, symbol, leverage, attempts=4):
        for _ in range(attempts):
            now = int(time.time() * 1000) + self.offset_ms
            query = urlencode({"symbol": symbol, "leverage": leverage, "timestamp": now})
            signature = hmac.new(self.secret.encode(), query.encode(), hashlib.sha256).hexdigest()
            response = self.session.post(
                f"{self.url}/dapi/v1/leverage?{query}&signature={signature}",
                headers={"X-MBX-APIKEY": self.api_key},
                timeout=5,
            )
            if response.status_code == 200:
                return response.json()
            if response.status_code in (418, 429):
                wait = int(response.headers["Retry-After"])
                self.waited.append(wait)
                time.sleep(wait)
                continue
            if response.status_code >= 500:
                continue
            if response.json()["code"] == -1021:
                server = self.session.get(f"{self.url}/dapi/v1/time", timeout=5).json()
                self.offset_ms = server["serverTime"] - int(time.time() * 1000)
                continue
            raise RuntimeError(response.text)
        raise RuntimeError("gave up")
'''


def write_foreign_project(pytester: pytest.Pytester, tests: str) -> None:
    pytester.makepyfile(leverage_client=FOREIGN_CLIENT, test_foreign=tests)


def outcomes(result: pytest.RunResult) -> dict[str, int]:
    return result.parseoutcomes()


def test_a_foreign_client_recovers_from_1021_503_and_429(pytester: pytest.Pytester) -> None:
    write_foreign_project(
        pytester,
        """
import time

from leverage_client import LeverageClient

ERROR_503 = {"type": "error", "status": 503, "code": -1001, "msg": "try again"}
LEVERAGE = {"method": "POST", "path": "/dapi/v1/leverage"}


def client_for(dapi_mock):
    return LeverageClient(dapi_mock.url, dapi_mock.api_key, dapi_mock.secret)


def answers(dapi_mock):
    return [(e["path"], e["status"], e["code"]) for e in dapi_mock.requests()]


def test_the_handle_describes_the_server(dapi_mock, dapi_mock_server):
    assert dapi_mock.url == dapi_mock_server.url
    assert dapi_mock.url.startswith("http://127.0.0.1:")
    assert (dapi_mock.api_key, dapi_mock.secret) == ("dapimockdemokey", "dapimockdemosecret")


def test_retries_with_server_time_after_1021(dapi_mock):
    dapi_mock.clock.offset(-3_600_000)  # the exchange runs an hour behind this machine
    client = client_for(dapi_mock)
    assert client.change_leverage("BTCUSD_PERP", 25) == {
        "leverage": 25, "maxQty": "25", "symbol": "BTCUSD_PERP"
    }
    assert answers(dapi_mock) == [
        ("/dapi/v1/leverage", 400, -1021),
        ("/dapi/v1/time", 200, None),
        ("/dapi/v1/leverage", 200, None),
    ]


def test_survives_a_503(dapi_mock):
    rule = dapi_mock.faults.add({"match": LEVERAGE, "action": ERROR_503, "times": 1})
    assert client_for(dapi_mock).change_leverage("ETHUSD_PERP", 50)["leverage"] == 50
    first, second = dapi_mock.requests()
    assert (first["status"], first["code"], first["fault"]) == (503, -1001, rule)
    assert (second["status"], second["fault"]) == (200, None)


def test_honours_retry_after(dapi_mock):
    action = {"type": "rate_limit", "status": 429, "retry_after": 1}
    dapi_mock.faults.add({"match": LEVERAGE, "action": action, "times": 1})
    client = client_for(dapi_mock)
    started = time.monotonic()
    client.change_leverage("BTCUSD_PERP", 10)
    assert time.monotonic() - started >= 1
    assert client.waited == [1]
    assert [e["status"] for e in dapi_mock.requests()] == [429, 200]


def test_dirties_the_server(dapi_mock):
    dapi_mock.faults.add({"match": LEVERAGE, "action": ERROR_503})
    dapi_mock.clock.freeze(1_591_702_613_943)
    dapi_mock.accounts.add("extra", secret="extrasecret")
    dapi_mock.positions.seed("BTCUSD_PERP", "10", margin_type="isolated")
    client_for(dapi_mock).session.get(dapi_mock.url + "/dapi/v1/ping", timeout=5)


def test_the_next_test_starts_clean(dapi_mock):
    assert dapi_mock.faults.list() == []
    assert dapi_mock.requests() == []
    assert not dapi_mock.clock.state()["frozen"]
    assert [a["api_key"] for a in dapi_mock.accounts.list()] == ["dapimockdemokey"]
    assert client_for(dapi_mock).change_leverage("BTCUSD_PERP", 1)["leverage"] == 1
""",
    )
    result = pytester.runpytest_subprocess(*QUICK, "-v")
    assert outcomes(result) == {"passed": 6}, result.stdout.str()
    result.stdout.fnmatch_lines(["plugins:*dapi-mock*"])  # loaded from the entry point


SERVER_BUG = """
import hashlib
import hmac
import time
from urllib.parse import urlencode

import requests


def break_the_server(dapi_mock_server, monkeypatch):
    def explode(*args):
        raise RuntimeError("injected server bug")

    store = dapi_mock_server.app.extensions["dapi_mock"].store
    monkeypatch.setattr(store, "change_leverage", explode)


def send_change(dapi_mock):
    now = int(time.time() * 1000)
    query = urlencode({"symbol": "BTCUSD_PERP", "leverage": 5, "timestamp": now})
    signature = hmac.new(dapi_mock.secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    return requests.post(
        f"{dapi_mock.url}/dapi/v1/leverage?{query}&signature={signature}",
        headers={"X-MBX-APIKEY": dapi_mock.api_key},
        timeout=5,
    )


def test_expects_a_change(dapi_mock, dapi_mock_server, monkeypatch):
    break_the_server(dapi_mock_server, monkeypatch)
    assert send_change(dapi_mock).status_code == 200


def test_swallows_the_500(dapi_mock, dapi_mock_server, monkeypatch):
    break_the_server(dapi_mock_server, monkeypatch)
    assert send_change(dapi_mock).json() == {
        "code": -1000, "msg": "An unknown error occured while processing the request."
    }


def test_a_healthy_test_after_them(dapi_mock):
    assert requests.get(dapi_mock.url + "/dapi/v1/ping", timeout=5).json() == {}
"""


def test_an_exception_inside_the_server_fails_the_test_with_its_traceback(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_server_bug=SERVER_BUG)
    result = pytester.runpytest_subprocess(*QUICK)
    # Each broken test fails (a teardown error when it passed itself); the healthy one passes.
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert outcomes(result) == {"failed": 1, "passed": 2, "errors": 2}, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_expects_a_change*",
            "*the dapi-mock server raised while serving this test:",
            "Traceback (most recent call last):",
            "*in explode",
            "*RuntimeError: injected server bug",
            "*ERROR at teardown of test_swallows_the_500*",
            "*RuntimeError: injected server bug",
        ]
    )
    result.stdout.no_fnmatch_line("*ERROR at teardown of test_a_healthy_test_after_them*")


XDIST_TESTS = """
import os
import json
from pathlib import Path

import pytest
import requests


@pytest.mark.parametrize("n", range(4))
def test_each_worker_has_its_own_server(dapi_mock, n):
    worker = os.environ["PYTEST_XDIST_WORKER"]
    seen = Path({seen!r}) / f"{{worker}}-{{n}}.json"
    seen.write_text(json.dumps({{"worker": worker, "url": dapi_mock.url}}))
    assert requests.get(dapi_mock.url + "/dapi/v1/ping", timeout=5).status_code == 200
    assert [e["path"] for e in dapi_mock.requests()] == ["/dapi/v1/ping"]
"""


def test_under_xdist_each_worker_gets_its_own_server(pytester: pytest.Pytester) -> None:
    seen = pytester.mkdir("seen")
    pytester.makepyfile(test_workers=XDIST_TESTS.format(seen=str(seen)))
    result = pytester.runpytest_subprocess(*QUICK, "-n", "2")
    assert outcomes(result) == {"passed": 4}, result.stdout.str()
    records: list[dict[str, Any]] = [json.loads(p.read_text()) for p in Path(seen).iterdir()]
    url_of: dict[str, set[str]] = {}
    for record in records:
        url_of.setdefault(record["worker"], set()).add(record["url"])
    assert sorted(url_of) == ["gw0", "gw1"]
    assert all(len(urls) == 1 for urls in url_of.values())  # one server per worker
    assert url_of["gw0"] != url_of["gw1"]


def test_ini_options_give_the_admin_token_and_a_config_file(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        """
        [pytest]
        dapi_mock_config = mock.toml
        dapi_mock_admin_token = s3cret
        """
    )
    (pytester.path / "mock.toml").write_text(
        '[exchange]\nweight_per_minute = 5\n\n[[accounts]]\napi_key = "ciKey"\nsecret = "ciS"\n'
    )
    pytester.makepyfile(
        test_settings="""
import requests


def test_the_settings_apply(dapi_mock):
    assert requests.get(dapi_mock.url + "/__admin/clock", timeout=5).status_code == 401
    dapi_mock.clock.freeze(1_591_702_613_943)  # the handle sends the token
    info = requests.get(dapi_mock.url + "/dapi/v1/exchangeInfo", timeout=5).json()
    assert info["rateLimits"][0]["limit"] == 5
    keys = sorted(a["api_key"] for a in dapi_mock.accounts.list())
    assert keys == ["ciKey", "dapimockdemokey"]
"""
    )
    result = pytester.runpytest_subprocess(*QUICK)
    assert outcomes(result) == {"passed": 1}, result.stdout.str()


# -- the handle in this very process ------------------------------------------------------


def test_the_handle_drives_the_control_plane(dapi_mock: Any) -> None:
    dapi_mock.clock.freeze(1_591_702_613_943)
    dapi_mock.clock.advance(57)
    assert dapi_mock.clock.now_ms() == 1_591_702_614_000
    dapi_mock.clock.offset(-5000)
    assert not dapi_mock.clock.state()["frozen"]
    dapi_mock.clock.real()
    assert dapi_mock.clock.state()["offset_ms"] == 0

    dapi_mock.accounts.add("second", secret="secondsecret")
    assert {"api_key": "second", "type": "hmac"} in dapi_mock.accounts.list()
    dapi_mock.accounts.remove("second")
    assert "second" not in [a["api_key"] for a in dapi_mock.accounts.list()]

    rule = dapi_mock.faults.add(
        {"match": {"method": "GET", "path": "/dapi/v1/ping"}, "action": {"type": "drop"}}
    )
    assert [f["id"] for f in dapi_mock.faults.list()] == [rule]
    dapi_mock.faults.remove(rule)
    dapi_mock.faults.add(
        {"match": {"method": "GET", "path": "/dapi/v1/ping"}, "action": {"type": "drop"}}
    )
    dapi_mock.faults.clear()
    assert dapi_mock.faults.list() == []


def test_the_handle_arranges_position_configuration(dapi_mock: Any) -> None:
    dapi_mock.clock.freeze(1_591_702_613_943)
    dapi_mock.accounts.add(
        "capped",
        secret="cappedsecret",
        balances={"BTC": "1.5"},
        max_leverage=20,
        max_leverage_rule="kyc",
    )
    dapi_mock.balances.set("ETH", "3.25")
    dapi_mock.balances.set("BTC", "0", api_key="capped")
    dapi_mock.set_margin_type("BTCUSD_PERP", "ISOLATED")
    dapi_mock.set_position_mode(True)
    dapi_mock.positions.seed("BTCUSD_PERP", "-4", position_side="SHORT")
    state = {a["api_key"]: a for a in dapi_mock.state()["accounts"]}
    demo, capped = state["dapimockdemokey"], state["capped"]
    assert demo["dual_side_position"] is True
    assert demo["balances"]["ETH"] == {"walletBalance": "3.25000000", "updateTime": 1591702613943}
    assert demo["symbols"] == {"BTCUSD_PERP": {"leverage": 20, "marginType": "ISOLATED"}}
    assert demo["positions"] == [
        {
            "symbol": "BTCUSD_PERP",
            "positionSide": "SHORT",
            "positionAmt": "-4",
            "markPrice": "100000",
        }
    ]
    assert (capped["max_leverage"], capped["max_leverage_rule"]) == (20, "kyc")
    assert capped["balances"]["BTC"]["walletBalance"] == "0.00000000"


def test_seeding_without_a_margin_type_leaves_the_symbols(dapi_mock: Any) -> None:
    dapi_mock.set_margin_type("ETHUSD_PERP", "ISOLATED")
    dapi_mock.positions.seed("ETHUSD_PERP", "2")
    [demo] = dapi_mock.state()["accounts"]
    assert demo["symbols"]["ETHUSD_PERP"]["marginType"] == "ISOLATED"
    dapi_mock.positions.seed("ETHUSD_PERP", "2", margin_type="cross")
    [demo] = dapi_mock.state()["accounts"]
    assert demo["symbols"] == {}


def test_control_plane_refusals_raise_admin_error(dapi_mock: Any) -> None:
    from mockserver.harness import AdminRefused

    with pytest.raises(AdminRefused, match="404"):
        dapi_mock.accounts.remove("nosuchkey")
    with pytest.raises(AdminRefused, match="api_key must name an existing account"):
        dapi_mock.positions.seed("BTCUSD_PERP", "1", api_key="nosuchkey")
    with pytest.raises(AdminRefused, match="hedge mode"):
        dapi_mock.positions.seed("BTCUSD_PERP", "1", position_side="LONG")
    with pytest.raises(AdminRefused, match="8 decimals"):
        dapi_mock.balances.set("BTC", "0.123456789")


def test_closing_the_server_is_prompt_with_keep_alive_clients_connected() -> None:
    import time

    import requests

    from mockserver.harness import MockServer

    server = MockServer()
    session = requests.Session()  # keeps its connection open
    assert session.get(f"{server.url}/dapi/v1/ping", timeout=5).status_code == 200
    started = time.monotonic()
    server.close()
    assert time.monotonic() - started < 1
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{server.url}/dapi/v1/ping", timeout=5)
    session.close()
    server.close()  # twice is harmless
