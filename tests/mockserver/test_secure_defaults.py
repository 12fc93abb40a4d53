"""Secure defaults: loopback bind, a locked control plane elsewhere, no secret ever shown, limits.

The start-up and logging checks run `dapi-mock serve` as a real process, since
that is where a bind address, a warning and a log line come from.
"""

from __future__ import annotations

import ast
import hashlib
import hmac
import inspect
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from mockserver import config as config_module
from mockserver import security
from mockserver.cli import build_parser
from mockserver.config import AccountConfig, Config
from mockserver.routes import admin
from mockserver.serving import waitress_options
from tests.mockserver.conftest import error_of

SERVE = [sys.executable, "-m", "mockserver.cli", "serve", "--port", "0"]
NOT_AUTHORIZED = {"code": -1002, "msg": "You are not authorized to execute this request."}
ADMIN_TOKEN = "AdminTokenHardening7f3c9e"
SECRET = "HmacSecretHardening2b81d4"
ADDED_SECRET = "AddedSecretHardening95ae07"
SECRETS = (ADMIN_TOKEN, SECRET, ADDED_SECRET)
API_KEY = "hardeningkey"


@dataclass
class Served:
    url: str  # where to reach it: 127.0.0.1 even when bound to 0.0.0.0
    printed_url: str
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def stop(self) -> tuple[str, str]:
        """Stop the server and return everything it wrote (stdout, stderr)."""
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        return self.stdout.read_text(), self.stderr.read_text()


@contextmanager
def serving(tmp_path: Path, *args: str, config: str | None = None) -> Iterator[Served]:
    """`dapi-mock serve --port 0` with its output in files (no pipe can fill up and block)."""
    command = [*SERVE, *args]
    if config is not None:
        path = tmp_path / "dapi-mock.toml"
        path.write_text(config)
        command += ["--config", str(path)]
    stdout, stderr = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAPI_MOCK_")}
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, env=env)
    try:
        deadline = time.monotonic() + 20
        while "\n" not in stdout.read_text():
            assert process.poll() is None, stderr.read_text()
            assert time.monotonic() < deadline, "no start-up line within 20 s"
            time.sleep(0.02)
        printed = stdout.read_text().splitlines()[0].removeprefix("listening on ")
        port = printed.rsplit(":", 1)[1]
        yield Served(f"http://127.0.0.1:{port}", printed, process, stdout, stderr)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


# -- bind address ----------------------------------------------------------------------------


def test_every_way_to_start_defaults_to_loopback() -> None:
    assert Config().host == "127.0.0.1"
    assert config_module.load(env={}).host == "127.0.0.1"
    assert build_parser().parse_args(["serve"]).host is None  # so the config's default holds
    assert waitress_options(Config())["host"] == "127.0.0.1"


def test_serve_binds_loopback_unless_told_otherwise(tmp_path: Path) -> None:
    with serving(tmp_path, "--quiet") as served:
        assert served.printed_url.startswith("http://127.0.0.1:")
        response = requests.get(f"{served.url}/__admin/health", timeout=5)
        assert (response.status_code, response.json()) == (200, {"status": "ok"})
        _, stderr = served.stop()
    assert "warning" not in stderr


def test_non_loopback_bind_without_token_warns_and_locks_the_control_plane(
    tmp_path: Path,
) -> None:
    with serving(tmp_path, "--quiet", "--host", "0.0.0.0") as served:
        assert served.printed_url.startswith("http://0.0.0.0:")
        for method, path in [("GET", "/clock"), ("POST", "/reset"), ("GET", "/requests")]:
            response = requests.request(method, f"{served.url}/__admin{path}", timeout=5)
            assert response.status_code == 403
            assert response.headers["Content-Type"] == "application/json"
            assert response.json() == NOT_AUTHORIZED
        health = requests.get(f"{served.url}/__admin/health", timeout=5)
        assert (health.status_code, health.json()) == (200, {"status": "ok"})
        assert requests.get(f"{served.url}/dapi/v1/ping", timeout=5).status_code == 200
        _, stderr = served.stop()
    warning = next(line for line in stderr.splitlines() if "warning" in line)
    assert "0.0.0.0" in warning and "admin_token" in warning and "403" in warning


def test_non_loopback_bind_with_a_token_opens_the_control_plane_to_it_alone(
    tmp_path: Path,
) -> None:
    config = f'[server]\nadmin_token = "{ADMIN_TOKEN}"\n'
    with serving(tmp_path, "--quiet", "--host", "0.0.0.0", config=config) as served:
        clock = f"{served.url}/__admin/clock"
        for headers in ({}, {"X-Admin-Token": "wrong"}, {"X-Admin-Token": ADMIN_TOKEN[:-1]}):
            response = requests.get(clock, headers=headers, timeout=5)
            assert (response.status_code, response.json()) == (401, NOT_AUTHORIZED)
        response = requests.get(clock, headers={"X-Admin-Token": ADMIN_TOKEN}, timeout=5)
        assert response.status_code == 200
        assert requests.get(f"{served.url}/__admin/health", timeout=5).status_code == 200
        _, stderr = served.stop()
    assert "warning" not in stderr


# -- secrets -----------------------------------------------------------------------------------


def hmac_signed(params: dict[str, Any], secret: str) -> str:
    text = "&".join(f"{k}={v}" for k, v in params.items())
    return (
        f"{text}&signature={hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()}"
    )


def exercise(url: str) -> list[str]:
    """Good and bad requests of every kind; returns every /__admin answer's text."""
    token = {"X-Admin-Token": ADMIN_TOKEN}
    now = int(requests.get(f"{url}/dapi/v1/time", timeout=5).json()["serverTime"])
    change = {"symbol": "BTCUSD_PERP", "leverage": 7, "timestamp": now}
    with_key = {"X-MBX-APIKEY": API_KEY}
    leverage = f"{url}/dapi/v1/leverage"

    def post(query: str, headers: dict[str, str], body: str = "") -> requests.Response:
        return requests.post(f"{leverage}?{query}", data=body, headers=headers, timeout=5)

    assert post(hmac_signed(change, SECRET), with_key).status_code == 200
    bad = post(hmac_signed(change, "not-the-secret"), with_key)
    assert bad.json()["code"] == -1022
    unknown = post(hmac_signed(change, SECRET), {"X-MBX-APIKEY": "nokey"})
    assert unknown.json()["code"] == -2015
    assert post("", with_key, f"timestamp={now}&signature=zz").json()["code"] == -1022
    assert requests.get(f"{url}/__admin/requests", timeout=5).status_code == 401

    answers = []
    calls: list[tuple[str, str, Any]] = [
        ("GET", "/health", None),
        ("POST", "/accounts", {"api_key": "addedkey", "secret": ADDED_SECRET}),
        ("GET", "/accounts", None),
        ("POST", "/accounts", {"api_key": "bad key", "secret": ADDED_SECRET}),
        ("POST", "/faults", {"match": {"method": "GET", "path": "/x"}, "action": {"type": "drop"}}),
        ("GET", "/faults", None),
        ("GET", "/clock", None),
        ("GET", "/requests", None),
        ("DELETE", "/accounts/addedkey", None),
    ]
    for method, path, body in calls:
        response = requests.request(
            method, f"{url}/__admin{path}", json=body, headers=token, timeout=5
        )
        answers.append(response.text)
    return answers


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_secrets_and_the_admin_token_appear_nowhere(tmp_path: Path, log_format: str) -> None:
    config = (
        f'[server]\nadmin_token = "{ADMIN_TOKEN}"\n'
        f'[[accounts]]\napi_key = "{API_KEY}"\nsecret = "{SECRET}"\n'
    )
    with serving(tmp_path, "--log-format", log_format, config=config) as served:
        answers = exercise(served.url)
        journal = requests.get(
            f"{served.url}/__admin/requests", headers={"X-Admin-Token": ADMIN_TOKEN}, timeout=5
        ).json()["requests"]
        stdout, stderr = served.stop()

    assert len(journal) == 5 and "/dapi/v1/leverage" in stderr  # the checks below saw data
    assert any("-1022" in line for line in stderr.splitlines())
    if log_format == "json":
        for line in stderr.splitlines():
            if "/dapi/" in line:
                json.loads(line)
    for secret in SECRETS:
        assert secret not in stdout
        assert secret not in stderr
        assert secret not in json.dumps(journal)
        for answer in answers:
            assert secret not in answer


def test_no_repr_shows_a_secret() -> None:
    config = Config(admin_token=ADMIN_TOKEN, accounts=(AccountConfig(API_KEY, SECRET),))
    account = security.hmac_account(API_KEY, SECRET)
    for shown in (repr(config), str(config), repr(account), repr(config.accounts[0])):
        assert ADMIN_TOKEN not in shown and SECRET not in shown


# -- constant-time comparisons ------------------------------------------------------------------


def syntax_of(function: Any) -> ast.AST:
    return ast.parse(textwrap.dedent(inspect.getsource(function)))


def calls_in(function: Any) -> set[str]:
    return {ast.unparse(n.func) for n in ast.walk(syntax_of(function)) if isinstance(n, ast.Call)}


def test_signatures_and_the_admin_token_are_compared_in_constant_time() -> None:
    assert "hmac.compare_digest" in calls_in(security.Account.verify)
    assert "hmac.compare_digest" in calls_in(admin._authorize)
    equalities = [
        ast.unparse(node)
        for node in ast.walk(syntax_of(security.Account.verify))
        if isinstance(node, ast.Compare)
        and any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops)
    ]
    assert equalities == ["self.type == 'hmac'"]  # the account's type, never the signature


def test_a_signed_request_goes_through_compare_digest(make_client, monkeypatch) -> None:
    seen: list[tuple[bytes, bytes]] = []
    original = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        seen.append((a, b))
        return original(a, b)

    monkeypatch.setattr(security.hmac, "compare_digest", spy)
    client = make_client()
    response = client.change_leverage("BTCUSD_PERP", 9)
    assert response.status_code == 200
    assert len(seen) == 1 and seen[0][0] == seen[0][1]


# -- limits -------------------------------------------------------------------------------------


def test_limits_are_on_by_default() -> None:
    config = Config()
    assert (config.max_body_bytes, config.max_params, config.journal_size) == (65536, 64, 10000)
    options = waitress_options(config)
    assert options["max_request_body_size"] == 16 * 1024 * 1024  # backstop far above 64 KiB
    assert options["max_request_header_size"] == 256 * 1024


def test_body_over_max_body_bytes_is_413_and_at_the_limit_is_read(make_client) -> None:
    client = make_client(max_body_bytes=100)
    too_big = client.post("/dapi/v1/leverage", body=b"a" * 101)
    assert error_of(too_big) == (413, -1101, "Too many parameters sent for this endpoint.")
    at_limit = client.post("/dapi/v1/leverage", body=b"a" * 100)
    assert error_of(at_limit)[:2] == (400, -1102)  # read, then found wanting


def test_more_than_max_params_is_1101(make_client) -> None:
    client = make_client(max_params=3)
    response = client.post("/dapi/v1/leverage", "a=1&b=2&c=3&d=4")
    assert error_of(response) == (400, -1101, "Too many parameters sent for this endpoint.")
    assert error_of(client.post("/dapi/v1/leverage", "a=1&b=2&c=3"))[:2] == (400, -1102)


def test_journal_keeps_only_the_newest_journal_size_entries(make_client) -> None:
    client = make_client(journal_size=5)
    for _ in range(8):
        client.get("/dapi/v1/ping")
    entries = client.admin("GET", "/requests").get_json()["requests"]
    assert [e["id"] for e in entries] == [4, 5, 6, 7, 8]
