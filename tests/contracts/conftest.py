"""The `make` fixture: a DapiClient on the scripted transport of client_fakes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from contracts.client import DapiClient
from tests.contracts.client_fakes import FakeTransport, Harness, Script


@pytest.fixture
def make(
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., tuple[DapiClient, FakeTransport, Harness]]:
    # A request that escapes the fake transport must fail loudly, not reach the network.
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("real network used")

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", refuse)

    def build(*script: Script, **kwargs: Any) -> tuple[DapiClient, FakeTransport, Harness]:
        harness = Harness(FakeTransport(*script), [], [1_700_000_000_000])
        return harness.client(**kwargs), harness.transport, harness

    return build
