"""The README's pytest example runs as printed, against the installed plugin."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_pytest_example_passes(tmp_path: Path) -> None:
    text = README.read_text(encoding="utf-8")
    start = text.index("```python\n", text.index("<!-- pytest-example:")) + len("```python\n")
    example = tmp_path / "test_example.py"
    example.write_text(text[start : text.index("```", start)], encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(example), "-q", "-p", "no:cacheprovider",
         "-p", "no:schemathesis", "-p", "no:hypothesispytest"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
