"""Fixtures for the interop suite.

``dapi_mock`` (server handle, reset before each test) comes from the
project's pytest plugin, ``mockserver.pytest_plugin``.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .drivers import HMAC, Credentials, Driver, key_pair


@pytest.fixture(autouse=True, scope="module")
def _release_client_sockets() -> Iterator[None]:
    """Close keep-alive sockets that only garbage collection can reach.

    With urllib3 2.x, ``Session.close()`` drops its pools without closing them;
    their sockets close when the pool is collected. A client error caught by
    ``pytest.raises`` keeps its response (and so the pool) alive in a reference
    cycle, the socket stays open, and the mock server's shutdown then waits
    for it (5 s). One collection per module releases them before that.
    """
    yield
    gc.collect()


# API keys for the accounts registered per test (key form: [A-Za-z0-9]{1,64}).
API_KEYS = {"rsa": "interopRsaKey", "ed25519": "interopEd25519Key"}


def make_credentials(dapi_mock: Any, key_type: str) -> Credentials:
    """Credentials of the given type for an account the mock knows."""
    if key_type == HMAC:
        return Credentials(key_type=HMAC, api_key=dapi_mock.api_key, secret=dapi_mock.secret)
    private_pem, public_pem = key_pair(key_type)
    api_key = API_KEYS[key_type]
    dapi_mock.accounts.add(api_key, public_key=public_pem)
    return Credentials(
        key_type=key_type,
        api_key=api_key,
        private_key_pem=private_pem,
        public_key_pem=public_pem,
    )


@pytest.fixture
def creds(dapi_mock: Any, driver: Driver, key_type: str) -> Credentials:
    """Credentials for a (driver, key_type) pair; skips what the client cannot sign."""
    reason = driver.skip_reason(key_type)
    if reason:
        pytest.skip(reason)
    return make_credentials(dapi_mock, key_type)


@pytest.fixture
def hmac_creds(dapi_mock: Any) -> Credentials:
    """The plugin's HMAC demo account."""
    return make_credentials(dapi_mock, HMAC)


@pytest.fixture
def journal(dapi_mock: Any) -> Callable[[], list[dict[str, Any]]]:
    """A function returning the mock's request journal (oldest first)."""

    def read() -> list[dict[str, Any]]:
        return list(dapi_mock.requests())

    return read
