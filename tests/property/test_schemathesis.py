"""schemathesis against the live mock over a real socket, every signed request signed like a client.

Binance routes: positive and negative data, the stateful phase over the links
`contracts.schemathesis_auth` adds; no 5xx, every answer conforms to
openapi.yaml, invalid data is refused with Binance's codes. The admin plane
runs on its own mock (it resets and rewrites state) behind an admin token.
Why two built-in checks are replaced is in `contracts/schemathesis_auth.py`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import hypothesis
import pytest
import requests
import schemathesis
from schemathesis import Case

from contracts import schemathesis_auth
from mockserver.config import Config
from mockserver.harness import MockServer, format_errors
from tests.helpers import SkipsSignatureCheck

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
EXAMPLES = {"ci": 12, "dev": 150}.get(PROFILE, 12)
STATEFUL_EXAMPLES = {"ci": 8, "dev": 100}.get(PROFILE, 8)
ADMIN_TOKEN = "schemathesisAdminToken"
CONTRACT = Path(__file__).resolve().parents[2] / "openapi.yaml"


def _config(**checks: dict[str, object]) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "seed": 20260501,
            "generation": {
                "mode": "all",
                "max-examples": EXAMPLES,
                "database": "none",
                "allow-extra-parameters": False,
            },
            "checks": {
                **{name: {"enabled": False} for name in schemathesis_auth.DISABLED_CHECKS},
                **checks,
            },
        }
    )


def _serve(config: Config) -> Iterator[MockServer]:
    server = MockServer(config)
    try:
        yield server
    finally:
        server.close()
    assert server.error_count == 0, format_errors(server.errors_since(0))


binance_api = schemathesis.openapi.from_path(CONTRACT, config=_config())
binance_api = binance_api.exclude(tag="admin").exclude(path="/openapi.yaml")
admin_api = schemathesis.openapi.from_path(CONTRACT, config=_config(ignored_auth={"enabled": True}))
admin_api = admin_api.include(tag="admin")


@pytest.fixture(scope="module")
def exchange() -> Iterator[MockServer]:
    for server in _serve(Config(port=0, weight_per_minute=0)):
        assert (
            requests.get(f"{server.url}/openapi.yaml", timeout=5).content == CONTRACT.read_bytes()
        )
        # A frozen clock makes every answer a function of the request alone (replays agree).
        handle = server.handle()
        handle.clock.freeze(handle.clock.now_ms())
        handle.close()
        yield server


@pytest.fixture(scope="module")
def admin_plane() -> Iterator[MockServer]:
    yield from _serve(Config(port=0, weight_per_minute=0, admin_token=ADMIN_TOKEN))


@binance_api.parametrize()
def test_binance_routes_keep_the_contract(case: Case, exchange: MockServer) -> None:
    case.call_and_validate(base_url=exchange.url)


def test_linked_binance_calls_keep_the_contract(exchange: MockServer) -> None:
    class LinkedCalls(binance_api.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Case) -> dict[str, object]:
            return {"base_url": exchange.url}

    LinkedCalls.run(
        settings=hypothesis.settings(
            max_examples=STATEFUL_EXAMPLES,
            stateful_step_count=6,
            deadline=None,
            database=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
    )


@admin_api.parametrize()
def test_admin_routes_keep_the_contract(case: Case, admin_plane: MockServer) -> None:
    case.call_and_validate(base_url=admin_plane.url, headers={"X-Admin-Token": ADMIN_TOKEN})


def _signed_position_case(url: str) -> tuple[Case, object]:
    operation = binance_api["/dapi/v1/positionRisk"]["GET"]
    case = operation.Case(query={"pair": "BTCUSD", "timestamp": schemathesis_auth.FRESH_TIMESTAMP})
    case._auth = schemathesis_auth.FreshlySigned(schemathesis_auth.signer_from_env())
    return case, case.call(base_url=url)


def test_the_auth_check_passes_the_mock_and_catches_a_server_that_ignores_signatures(
    exchange: MockServer,
) -> None:
    case, response = _signed_position_case(exchange.url)
    assert response.status_code == 200
    schemathesis_auth.binance_auth_is_enforced(None, response, case)

    with MockServer(Config(port=0)) as careless:
        careless.app.wsgi_app = SkipsSignatureCheck(careless.app.wsgi_app)
        case, response = _signed_position_case(careless.url)
        with pytest.raises(AssertionError) as caught:
            schemathesis_auth.binance_auth_is_enforced(None, response, case)
    message = str(caught.value)
    assert "a wrong signature: expected 400 -1022, got 200" in message
    assert "no signature" not in message  # a missing one is still refused there,
    assert "stale" not in message  # and so are the key and timing checks


def test_a_schema_valid_rejection_needs_an_explanation_in_the_request() -> None:
    operation = binance_api["/dapi/v1/leverage"]["POST"]
    signer = schemathesis_auth.FreshlySigned(schemathesis_auth.signer_from_env())
    stamp = schemathesis_auth.FRESH_TIMESTAMP
    with MockServer(Config(port=0)) as server:
        unlisted = operation.Case(
            query={"symbol": "XRPUSD_PERP", "leverage": 5, "timestamp": stamp}
        )
        unlisted._auth = signer
        answer = unlisted.call(base_url=server.url)
        assert schemathesis_auth.explained_rejection(unlisted, answer) == (
            "symbol XRPUSD_PERP is not listed"
        )
        too_high = operation.Case(
            query={"symbol": "ETHUSD_PERP", "leverage": 101, "timestamp": stamp}
        )
        too_high._auth = signer
        answer = too_high.call(base_url=server.url)
        assert "outside ETHUSD_PERP's 1..100" in str(
            schemathesis_auth.explained_rejection(too_high, answer)
        )
        # A server refusing a listed symbol at a valid leverage has no excuse.
        mock = server.handle()
        mock.faults.add(
            {
                "match": {"method": "POST", "path": "/dapi/v1/leverage"},
                "action": {"type": "error", "status": 400, "code": -1121, "msg": "Invalid symbol."},
            }
        )
        mock.close()
        fine = operation.Case(query={"symbol": "BTCUSD_PERP", "leverage": 20, "timestamp": stamp})
        fine._auth = signer
        answer = fine.call(base_url=server.url)
        assert answer.status_code == 400
        assert schemathesis_auth.explained_rejection(fine, answer) is None


def test_405_lists_the_allowed_methods(exchange: MockServer) -> None:
    response = requests.delete(f"{exchange.url}/dapi/v1/ping", timeout=5)
    assert response.status_code == 405
    assert response.headers.get("Allow") == "GET, HEAD"


def test_an_empty_pair_filter_reads_as_not_sent(exchange: MockServer) -> None:
    from contracts.client import DapiClient

    with DapiClient(
        exchange.url, "dapimockdemokey", secret="dapimockdemosecret", time_sync=True
    ) as client:
        rows = client.request("GET", "/dapi/v1/positionRisk", [("pair", "")], signed=True)
        assert len(rows) == len(client.request("GET", "/dapi/v1/positionRisk", [], signed=True))


def test_a_clock_beyond_the_calendar_is_refused() -> None:
    with MockServer(Config(port=0)) as server:
        frozen = requests.post(
            f"{server.url}/__admin/clock", json={"freeze_at_ms": 2**62}, timeout=5
        )
        listing = requests.get(f"{server.url}/dapi/v1/exchangeInfo", timeout=5)
    assert (frozen.status_code, listing.status_code) == (400, 200)


def test_an_unknown_form_key_is_ignored_as_spec_1_says(exchange: MockServer) -> None:
    from contracts.client import DapiClient

    with DapiClient(
        exchange.url, "dapimockdemokey", secret="dapimockdemosecret", time_sync=True
    ) as client:
        answer = client.request(
            "POST",
            "/dapi/v1/leverage",
            [("symbol", "BTCUSD_PERP"), ("leverage", 20), ("unknownKey", "1")],
            signed=True,
        )
        assert answer["leverage"] == 20


def test_a_fault_for_an_unknown_method_is_refused() -> None:
    rule = {"match": {"method": "FETCH", "path": "/dapi/v1/ping"}, "action": {"type": "drop"}}
    with MockServer(Config(port=0)) as server:
        answer = requests.post(f"{server.url}/__admin/faults", json=rule, timeout=5)
    assert answer.status_code == 400
