"""The handle's reset runs in process when the server does (docs/behaviour.md#pytest-plugin)."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from mockserver.harness import DapiMock, MockServer


def _the_control_plane_is_gone(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("reset went over HTTP")


def test_reset_in_process_clears_the_state_without_an_http_call(
    dapi_mock: DapiMock, dapi_mock_server: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    dapi_mock.faults.add(
        {"match": {"method": "GET", "path": "/dapi/v1/ping"}, "action": {"type": "drop"}}
    )
    dapi_mock.clock.freeze(1_591_702_613_943)
    requests.get(f"{dapi_mock.url}/dapi/v1/time", timeout=5)
    monkeypatch.setattr(requests.Session, "request", _the_control_plane_is_gone)

    dapi_mock.reset()

    monkeypatch.undo()
    assert dapi_mock.faults.list() == []
    assert dapi_mock.requests() == []
    assert not dapi_mock.clock.state()["frozen"]


def test_a_handle_on_a_server_elsewhere_resets_over_http(dapi_mock_server: MockServer) -> None:
    remote = DapiMock(dapi_mock_server.url, "dapimockdemokey", "dapimockdemosecret")
    try:
        remote.clock.freeze(1_591_702_613_943)
        remote.reset()
        assert not remote.clock.state()["frozen"]
    finally:
        remote.close()
