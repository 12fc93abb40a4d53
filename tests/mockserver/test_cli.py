"""`dapi-mock serve`: a real process on waitress, its start-up line, flags and refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

SERVE = [sys.executable, "-m", "mockserver.cli", "serve"]


@contextmanager
def serving(
    *args: str, env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen]]:
    process = subprocess.Popen(
        [*SERVE, "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("listening on http://"), (line, process.stderr.read())
        yield line.removeprefix("listening on "), process
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_serve_prints_its_real_port_and_answers_within_a_second():
    started = time.monotonic()
    with serving("--quiet") as (url, _):
        assert url.startswith("http://127.0.0.1:")
        assert not url.endswith(":0")
        response = requests.get(f"{url}/dapi/v1/ping", timeout=5)
        assert response.status_code == 200
        assert time.monotonic() - started < 1.0 + 1.0  # 1 s budget, plus interpreter noise
        assert response.headers["Server"] == "dapi-mock"


def test_serve_logs_one_line_per_request_with_the_reason():
    with serving() as (url, process):
        requests.post(f"{url}/dapi/v1/leverage?symbol=BTCUSD_PERP", timeout=5)
        requests.get(f"{url}/dapi/v1/ping", timeout=5)
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    lines = [line for line in stderr.splitlines() if "/dapi/v1/" in line]
    assert len(lines) == 2
    assert "POST /dapi/v1/leverage 401 -2014" in lines[0]
    assert "X-MBX-APIKEY header missing" in lines[0]
    assert "GET /dapi/v1/ping 200" in lines[1]


def test_serve_logs_json_lines_on_request():
    with serving("--log-format", "json") as (url, process):
        requests.get(f"{url}/dapi/v1/nothing", timeout=5)
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    entry = json.loads(next(line for line in stderr.splitlines() if "nothing" in line))
    assert entry["status"] == "404"
    assert entry["code"] == -5000
    assert set(entry) == {"time", "client", "method", "path", "status", "code", "ms", "reason"}


def test_quiet_serve_logs_no_requests():
    with serving("--quiet") as (url, process):
        requests.get(f"{url}/dapi/v1/ping", timeout=5)
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert "/dapi/v1/ping" not in stderr


def test_config_file_env_and_flags_layer(tmp_path: Path):
    config = tmp_path / "mock.toml"
    config.write_text(
        "[exchange]\nweight_per_minute = 700\nstrict_params = true\n"
        '[[accounts]]\napi_key = "fromfile"\nsecret = "filesecret"\n'
    )
    env = {"DAPI_MOCK_EXCHANGE_WEIGHT_PER_MINUTE": "900"}
    with serving("--quiet", "--config", str(config), env=env) as (url, _):
        info = requests.get(f"{url}/dapi/v1/exchangeInfo", timeout=5).json()
        assert info["rateLimits"][0]["limit"] == 900
        accounts = requests.get(f"{url}/__admin/accounts", timeout=5).json()["accounts"]
        assert {"api_key": "fromfile", "type": "hmac"} in accounts


def test_more_than_one_worker_is_refused_with_a_reason():
    result = subprocess.run([*SERVE, "--workers", "2"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "--workers must be 1" in result.stderr
    assert "not shared" in result.stderr


def test_a_bad_config_is_reported_without_a_traceback(tmp_path: Path):
    config = tmp_path / "bad.toml"
    config.write_text("[server]\nport = 'eighty'\n")
    result = subprocess.run(
        [*SERVE, "--config", str(config)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "setting 'port' must be a whole number" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_symbols_file_is_reported_clearly(tmp_path: Path):
    symbols = tmp_path / "symbols.json"
    symbols.write_text('{"contracts": []}')
    config = tmp_path / "mock.toml"
    config.write_text(f'[exchange]\nsymbols_file = "{symbols}"\n')
    result = subprocess.run(
        [*SERVE, "--config", str(config), "--port", "0"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "non-empty 'contracts' list" in result.stderr


# -- docs/behaviour.md#running-it: what the CLI tells about itself --------------------------


def test_version_prints_the_installed_version():
    from importlib.metadata import version

    result = subprocess.run(
        [sys.executable, "-m", "mockserver.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0
    assert result.stdout.strip() == f"dapi-mock {version('dapi-mock')}"


def test_serve_help_lists_flags_defaults_settings_demo_account_and_routes():
    from mockserver.config import DEMO_API_KEY, DEMO_SECRET, SECTIONS

    result = subprocess.run(
        [*SERVE, "--help"], capture_output=True, text=True, timeout=30, check=True
    )
    text = " ".join(result.stdout.split())  # argparse wraps lines where it likes
    for flag, default in [
        ("--host", "default 127.0.0.1"),
        ("--port", "default 8080"),
        ("--config", "default none"),
        ("--workers", "default 1"),
        ("--threads", "default 16"),
        ("--quiet", "default: log"),
        ("--log-format", "default text"),
    ]:
        assert flag in text and default in text, flag
    assert "DAPI_MOCK_<SECTION>_<KEY>" in text
    assert all(key in text for keys in SECTIONS.values() for key in keys)
    assert DEMO_API_KEY in text and DEMO_SECRET in text
    assert "/__admin/" in text and "/openapi.yaml" in text


def test_an_environment_variable_naming_no_setting_stops_serve_in_one_line():
    result = subprocess.run(
        [*SERVE, "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "DAPI_MOCK_SERVER_PROT": "9000", "DAPI_MOCK_URL": "x"},
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "DAPI_MOCK_SERVER_PROT" in result.stderr and "DAPI_MOCK_URL" not in result.stderr


# -- a bad configuration stops start-up with one line (docs/behaviour.md#reliability) -----------

DEEP = b'{"contracts": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
HUGE_CONTRACT = {
    "contracts": [
        {
            "pair": "BTCUSD",
            "contractType": "PERPETUAL",
            "symbol": "BTCUSD_PERP",
            "deliveryDate": 4133404800000,
            "onboardDate": 1597042800000,
            "contractSize": "1e5000",
            "markPrice": 100000,
            "brackets": [
                {"initialLeverage": 125, "qtyFloor": 0, "qtyCap": 5,
                 "maintMarginRatio": 0.004, "cum": 0}
            ],
        }
    ]
}  # fmt: skip


@pytest.mark.parametrize(
    ("files", "args", "env", "expected"),
    [
        ({"c.toml": b"[server]\nport = 0\n# caf\xe9\n"}, ["--config", "c.toml"], {}, "not UTF-8"),
        ({"c.toml": b'[server]\nhost = "999.1.1.1"\n'}, ["--config", "c.toml"], {}, "'host'"),
        (
            {"c.toml": b'[exchange]\nsymbols_file = "s.json"\n', "s.json": DEEP},
            ["--config", "c.toml"],
            {},
            "nested deeper than 16",
        ),
        (
            {
                "c.toml": b'[exchange]\nsymbols_file = "s.json"\n',
                "s.json": json.dumps(HUGE_CONTRACT).encode(),
            },
            ["--config", "c.toml"],
            {},
            "'contractSize' must be a number from",
        ),
        (
            {"c.toml": b'[[accounts]]\napi_key = "k"\nsecret = "a"\n'
                       b'[[accounts]]\napi_key = "k"\nsecret = "b"\n'},
            ["--config", "c.toml"],
            {},
            "given twice",
        ),
        (
            {"c.toml": b"[server]\nport = 'x'\n"},
            ["--config", "c.toml", "--port", "0"],
            {},
            "'port'",
        ),
        ({}, [], {"DAPI_MOCK_EXCHANGE_CLOCK_OFFSET_MS": "100000000000000000"}, "clock_offset_ms"),
    ],
    ids=["latin1", "host", "deep", "contract-size", "twice", "hidden-by-flag", "offset"],
)  # fmt: skip
def test_a_bad_configuration_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch, capsys, files, args, env, expected
):
    from mockserver import serving
    from mockserver.cli import main

    def refuse_to_serve(server, exchange) -> None:
        server.close()
        pytest.fail("the bad configuration was served")

    monkeypatch.setattr(serving, "run_until_stopped", refuse_to_serve)
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    monkeypatch.chdir(tmp_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["serve", "--port", "0", "--quiet", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith("dapi-mock: ") and expected in line
    assert "Traceback" not in captured.err


def test_a_bad_configuration_stops_the_process_without_a_traceback(tmp_path: Path):
    config = tmp_path / "c.toml"
    config.write_bytes(b'[server]\nhost = "999.1.1.1"\n')
    result = subprocess.run(
        [*SERVE, "--config", str(config), "--port", "0"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "'host'" in result.stderr
