"""The position-configuration examples in openapi.yaml are what the mock answers in the
scenario each one describes (shipped data, demo account, clock at FROZEN_MS)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tests.mockserver.conftest import FROZEN_MS, signed

CONTRACT = Path(__file__).resolve().parents[2] / "openapi.yaml"
DEMO = "dapimockdemokey"


@cache
def contract() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(CONTRACT.read_text(encoding="utf-8"))
    return loaded


def media(method: str, path: str, status: str = "200") -> dict[str, Any]:
    response = contract()["paths"][path][method]["responses"][status]
    if "$ref" in response:
        response = contract()["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    found: dict[str, Any] = response["content"]["application/json"]
    return found


def answer(client, path: str, **params: Any) -> Any:
    response = client.get(path, signed({**params, "timestamp": FROZEN_MS}))
    assert response.status_code == 200
    return response.get_json()


def admin_ok(client, path: str, body: dict[str, Any]) -> None:
    assert client.admin("POST", path, body).status_code == 200


def seed(client, symbol: str, amount: str, **extra: Any) -> None:
    admin_ok(
        client, "/positions", {"api_key": DEMO, "symbol": symbol, "positionAmt": amount, **extra}
    )


def fund(client) -> None:
    """The demo account's start balances, set at FROZEN_MS."""
    for asset, wallet in (("BTC", "1"), ("ETH", "10")):
        admin_ok(client, "/balances", {"api_key": DEMO, "asset": asset, "walletBalance": wallet})


def test_position_risk_examples(client):
    examples = media("get", "/dapi/v1/positionRisk")["examples"]
    seed(client, "BTCUSD_PERP", "10")
    rows = answer(client, "/dapi/v1/positionRisk")
    wanted = [r for r in rows if r["symbol"] in ("BTCUSD_PERP", "ETHUSD_PERP")]
    assert [list(r.items()) for r in wanted] == [
        list(r.items()) for r in examples["seededAndFlat"]["value"]
    ]
    seed(client, "BTCUSD_PERP", "0")
    admin_ok(client, "/position_mode", {"api_key": DEMO, "dualSidePosition": True})
    seed(client, "ETHUSD_PERP", "-35", positionSide="SHORT", marginType="isolated")
    rows = answer(client, "/dapi/v1/positionRisk", pair="ETHUSD")
    assert [r for r in rows if r["symbol"] == "ETHUSD_PERP"] == examples["hedgeMode"]["value"]


def test_account_example(client):
    example = media("get", "/dapi/v1/account")["example"]
    fund(client)
    seed(client, "BTCUSD_PERP", "10", marginType="isolated")
    account = answer(client, "/dapi/v1/account")
    assert account["assets"][0] == example["assets"][0]
    assert account["positions"][0] == example["positions"][0]
    shown = {k: v for k, v in account.items() if k not in ("assets", "positions")}
    assert shown == {k: v for k, v in example.items() if k not in ("assets", "positions")}


def test_balance_example(client):
    fund(client)
    assert answer(client, "/dapi/v1/balance") == media("get", "/dapi/v1/balance")["example"]


def test_position_mode_example(client):
    example = media("get", "/dapi/v1/positionSide/dual")["example"]
    assert answer(client, "/dapi/v1/positionSide/dual") == example


def test_signed_form_examples_are_accepted_as_they_stand(client):
    for path in ("/dapi/v1/marginType", "/dapi/v1/positionSide/dual"):
        operation = contract()["paths"][path]["post"]
        form = operation["requestBody"]["content"]["application/x-www-form-urlencoded"]
        body = "&".join(f"{k}={v}" for k, v in form["example"].items())
        response = client.post(path, body=body)
        assert response.get_json() == {"code": 200, "msg": "success"}, path


def test_state_example(client):
    example = contract()["paths"]["/__admin/state"]["get"]["responses"]["200"]["content"][
        "application/json"
    ]["example"]
    fund(client)
    client.change_leverage("BTCUSD_PERP", 50)
    admin_ok(
        client, "/margin_type", {"api_key": DEMO, "symbol": "BTCUSD_PERP", "marginType": "ISOLATED"}
    )
    seed(client, "BTCUSD_PERP", "10")
    assert client.admin("GET", "/state").get_json() == example
