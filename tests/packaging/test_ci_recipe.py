"""The README's CI recipe: its wait loop, run as written, against a server that starts and one
that does not (docs/behaviour.md#packaging)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = "<!-- ci-wait-loop"


def wait_loop() -> str:
    text = README.read_text()
    assert MARKER in text, "README lost its CI wait loop"
    found = re.search(r"```sh\n(.*?)```", text[text.index(MARKER) :], re.DOTALL)
    assert found is not None
    return found.group(1)


def run_recipe(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    if shutil.which("curl") is None:
        pytest.skip("the recipe probes health with curl")
    # The installed dapi-mock first on PATH, as after the recipe's install step. After a
    # good start, stop the server the block left running, so the test leaves nothing behind.
    script = wait_loop() + 'kill "$server"; wait "$server"; echo "server stopped"\n'
    github_env = tmp_path / "github_env"
    return subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=90,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("DAPI_MOCK_")},
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "GITHUB_ENV": str(github_env),
            "DAPI_MOCK_SERVER_PORT": "0",
            **env,
        },
    )


def test_the_wait_loop_passes_once_the_server_is_healthy(tmp_path: Path) -> None:
    result = run_recipe(tmp_path, {})
    assert result.returncode == 0, result.stderr
    url = re.search(r"dapi-mock is up at (http://127\.0\.0\.1:\d+)", result.stdout)
    assert url is not None, result.stdout
    assert (tmp_path / "github_env").read_text() == f"DAPI_MOCK_URL={url.group(1)}\n"
    assert "server stopped" in result.stdout


@pytest.mark.parametrize(
    "env",
    [{"DAPI_MOCK_SERVER_PORT": "eighty"}, {"DAPI_MOCK_SERVER_PROT": "8080"}],
    ids=["bad-setting", "unknown-setting"],
)
def test_the_wait_loop_fails_at_once_when_the_server_does_not_start(
    tmp_path: Path, env: dict[str, str]
) -> None:
    started = time.monotonic()
    result = run_recipe(tmp_path, env)
    assert result.returncode == 1
    assert "dapi-mock failed to start" in result.stderr
    assert next(iter(env)) in result.stderr  # the server's own reason, from its log
    assert "is up at" not in result.stdout
    assert time.monotonic() - started < 25  # well before the loop's 30 s limit
