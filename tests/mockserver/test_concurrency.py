"""32 concurrent clients on the live server: journal, state, weight and faults stay exact."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests

from tests.helpers import FROZEN_MS, run_at_once, signed

CLIENTS = 32
PER_CLIENT = 8
SYMBOL = "BTCUSD_PERP"  # leverage 1 to 125


def run_clients(work: Callable[[int, requests.Session], None]) -> None:
    """CLIENTS threads at once, each with its own connection; re-raises their failures."""

    def client(number: int) -> None:
        with requests.Session() as session:
            work(number, session)

    run_at_once(client, CLIENTS)


def leverage_for(client: int, step: int) -> int:
    return (client * PER_CLIENT + step) % 125 + 1


def change_leverage(dapi_mock: Any, session: requests.Session, leverage: int, tag: str) -> None:
    query = signed({"symbol": SYMBOL, "leverage": leverage, "tag": tag, "timestamp": FROZEN_MS})
    response = session.post(
        f"{dapi_mock.url}/dapi/v1/leverage?{query}",
        headers={"X-MBX-APIKEY": dapi_mock.api_key},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert response.json()["leverage"] == leverage


def leverage_reported(dapi_mock: Any) -> int:
    response = requests.get(
        f"{dapi_mock.url}/dapi/v1/positionRisk?{signed({'timestamp': FROZEN_MS})}",
        headers={"X-MBX-APIKEY": dapi_mock.api_key},
        timeout=10,
    )
    return int(next(r["leverage"] for r in response.json() if r["symbol"] == SYMBOL))


def leverage_entries(dapi_mock: Any) -> list[dict[str, Any]]:
    return [e for e in dapi_mock.requests() if e["path"] == "/dapi/v1/leverage"]


def sent_params(entry: dict[str, Any]) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(entry["query"]).items()}


@pytest.fixture
def frozen_mock(dapi_mock: Any) -> Any:
    dapi_mock.clock.freeze(FROZEN_MS)
    return dapi_mock


def test_every_change_is_journaled_once_and_the_last_one_is_the_state(frozen_mock):
    def work(number: int, session: requests.Session) -> None:
        for step in range(PER_CLIENT):
            change_leverage(frozen_mock, session, leverage_for(number, step), f"c{number}s{step}")

    run_clients(work)

    entries = leverage_entries(frozen_mock)
    assert len(entries) == CLIENTS * PER_CLIENT
    ids = [e["id"] for e in entries]
    assert ids == sorted(set(ids))  # unique, oldest first
    tags = sorted(sent_params(e)["tag"] for e in entries)
    assert tags == sorted(f"c{n}s{s}" for n in range(CLIENTS) for s in range(PER_CLIENT))
    assert all(e["status"] == 200 for e in entries)
    last_acknowledged = max((e for e in entries if e["status"] == 200), key=lambda e: e["id"])
    assert leverage_reported(frozen_mock) == int(sent_params(last_acknowledged)["leverage"])


def test_journal_order_is_the_order_changes_were_applied(
    frozen_mock, dapi_mock_server, monkeypatch
):
    """A slow moment after each change: the journal must still list changes as applied."""
    store = dapi_mock_server.app.extensions["dapi_mock"].store
    apply_change = store.change_leverage
    applied: list[int] = []
    order = threading.Lock()

    def change_then_dawdle(api_key: str, symbol: Any, leverage: int) -> Any:
        with order:  # the order in which the store took the changes, recorded exactly
            max_qty = apply_change(api_key, symbol, leverage)
            applied.append(leverage)
        time.sleep(random.random() / 1000)
        return max_qty

    monkeypatch.setattr(store, "change_leverage", change_then_dawdle)

    def work(number: int, session: requests.Session) -> None:
        for step in range(4):
            change_leverage(frozen_mock, session, leverage_for(number, step), f"c{number}s{step}")

    run_clients(work)

    journaled = [int(sent_params(e)["leverage"]) for e in leverage_entries(frozen_mock)]
    assert journaled == applied
    assert leverage_reported(frozen_mock) == applied[-1]


def test_weight_is_counted_exactly(frozen_mock):
    seen: list[int] = []

    def work(number: int, session: requests.Session) -> None:
        for _ in range(PER_CLIENT):
            response = session.get(f"{frozen_mock.url}/dapi/v1/ping", timeout=10)
            seen.append(int(response.headers["X-MBX-USED-WEIGHT-1M"]))

    run_clients(work)
    assert sorted(seen) == list(range(1, CLIENTS * PER_CLIENT + 1))


def test_a_times_fault_fires_exactly_n_times(frozen_mock):
    error = {"type": "error", "status": 503, "code": -1001, "msg": "busy"}
    rule = frozen_mock.faults.add(
        {"match": {"method": "GET", "path": "/dapi/v1/ping"}, "action": error, "times": 50}
    )
    codes: list[int] = []

    def work(number: int, session: requests.Session) -> None:
        for _ in range(PER_CLIENT):
            codes.append(session.get(f"{frozen_mock.url}/dapi/v1/ping", timeout=10).status_code)

    run_clients(work)
    assert codes.count(503) == 50
    assert codes.count(200) == CLIENTS * PER_CLIENT - 50
    assert [f["fired"] for f in frozen_mock.faults.list()] == [50]
    assert sum(e["fault"] == rule for e in frozen_mock.requests()) == 50
