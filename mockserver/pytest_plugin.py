"""pytest plugin: a session-scoped mock on a free port and a `dapi_mock` handle reset per test.

Enabled by installing the package (entry point `pytest11`). Under pytest-xdist
each worker process starts its own server.

Loaded at every pytest start of a project that installs dapi-mock, so it imports only
pytest until a test asks for the mock (docs/behaviour.md#packaging): Flask, waitress and
requests load with the first `dapi_mock_server`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from mockserver.harness import DapiMock, MockServer


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("dapi_mock_config", "TOML config file for the dapi_mock server", default="")
    parser.addini("dapi_mock_admin_token", "admin token for the dapi_mock server", default="")


@pytest.fixture(scope="session")
def dapi_mock_server(pytestconfig: pytest.Config) -> Iterator[MockServer]:
    """The running mock (one per session, or per xdist worker)."""
    from mockserver import config as config_module
    from mockserver.harness import MockServer

    path = str(pytestconfig.getini("dapi_mock_config")) or None
    if path:
        path = str(pytestconfig.rootpath / path)
    token = str(pytestconfig.getini("dapi_mock_admin_token"))
    settings = config_module.load(path, host="127.0.0.1", port=0, admin_token=token or None)
    server = MockServer(settings)
    yield server
    server.close()


@pytest.fixture
def dapi_mock(dapi_mock_server: MockServer) -> Iterator[DapiMock]:
    """A handle on the mock, reset before the test; the test fails if the server raised."""
    from mockserver.harness import format_errors

    handle = dapi_mock_server.handle()
    handle.reset()
    errors_before = dapi_mock_server.error_count
    yield handle
    handle.close()
    new_errors = dapi_mock_server.errors_since(errors_before)
    if new_errors:
        pytest.fail(
            "the dapi-mock server raised while serving this test:\n" + format_errors(new_errors),
            pytrace=False,
        )
