"""make's venv step from nothing: a Python too old gets one message, a half-made .venv is
made again (docs/behaviour.md#packaging)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

OLD_PYTHON = """#!/bin/sh
# stands in for a Python 3.9: fails the version check, reports its version when asked
case "$*" in
  *version_info*) exit 1 ;;
  *version.split*) echo 3.9.18 ;;
esac
"""


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    if shutil.which("make") is None:
        pytest.skip("needs make")
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def make(checkout: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_python_older_than_3_11_gets_one_clear_message_and_no_venv(checkout: Path) -> None:
    old = checkout / "python3.9"
    old.write_text(OLD_PYTHON)
    old.chmod(0o755)
    result = make(checkout, "serve", f"PYTHON={old}")
    assert result.returncode != 0
    assert "dapi-mock needs Python 3.11 or newer" in result.stderr
    assert "is 3.9.18" in result.stderr
    assert "PYTHON=python3.11" in result.stderr
    assert not (checkout / ".venv").exists()


def test_a_missing_python_is_named(checkout: Path) -> None:
    result = make(checkout, "test", "PYTHON=python-that-is-not-there")
    assert result.returncode != 0
    assert "PYTHON=python-that-is-not-there is not found" in result.stderr


def test_a_half_made_venv_is_made_again(checkout: Path) -> None:
    half = checkout / ".venv" / "bin"
    half.mkdir(parents=True)
    (half / "python").write_text("#!/bin/sh\nexit 1\n")  # an earlier try stopped here
    (half / "python").chmod(0o755)
    result = make(checkout, ".venv/.made", f"PYTHON={sys.executable}")
    assert result.returncode == 0, result.stderr
    check = subprocess.run(
        [str(half / "python"), "-c", "import sys; print(sys.prefix != sys.base_prefix)"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.stdout.strip() == "True"
