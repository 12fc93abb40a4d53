"""What `pip install dapi-mock` brings, and what a project that installs it pays at pytest start.

docs/behaviour.md#packaging: the base install is the server, the CLI, the pytest plugin
and the reference client; the property kit is the `kit` extra.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from contracts.entry import KIT_MODULES

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
KIT_AND_TOOLS = {"hypothesis", "schemathesis", "openapi-core", "pyyaml", "rich", "pytest"}
HEAVY_AT_PYTEST_START = {"flask", "werkzeug", "waitress", "requests", "cryptography", "hypothesis"}

# Blocks the kit's libraries as if only the base were installed (they are, in this venv).
WITHOUT_THE_KIT = textwrap.dedent(
    f"""
    import sys
    class WithoutTheKit:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in {sorted(KIT_MODULES)!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
    sys.meta_path.insert(0, WithoutTheKit())
    """
)


def base_requirements() -> list[Requirement]:
    return [Requirement(text) for text in PROJECT["dependencies"]]


def installed_closure(requirements: list[Requirement]) -> set[str]:
    """Every distribution the requirements pull in, as installed here (markers evaluated)."""
    found: set[str] = set()
    todo = list(requirements)
    while todo:
        requirement = todo.pop()
        if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
            continue
        name = canonicalize_name(requirement.name)
        if name in found:
            continue
        found.add(name)
        todo.extend(Requirement(text) for text in metadata.requires(name) or [])
    return found


def test_the_base_install_is_flask_waitress_cryptography_and_requests() -> None:
    assert {r.name.lower() for r in base_requirements()} == {
        "flask",
        "waitress",
        "cryptography",
        "requests",
    }


def test_the_base_install_brings_no_kit_library_and_few_packages() -> None:
    closure = installed_closure(base_requirements())
    assert not closure & KIT_AND_TOOLS
    # Flask 7 (with its own six), waitress 1, cryptography 3 (cffi, pycparser), requests 5
    # (urllib3, idna, charset-normalizer, certifi): the four named libraries' own trees.
    assert len(closure) <= 16, sorted(closure)


def test_the_kit_extra_holds_the_property_kits_libraries() -> None:
    kit = {
        canonicalize_name(Requirement(text).name)
        for text in PROJECT["optional-dependencies"]["kit"]
    }
    assert {"hypothesis", "schemathesis", "openapi-core", "pyyaml", "rich"} <= kit


def test_dapi_contracts_guard_knows_every_kit_library_by_its_import_name() -> None:
    kit = {
        canonicalize_name(Requirement(text).name)
        for text in PROJECT["optional-dependencies"]["kit"]
    }
    distributions_of = metadata.packages_distributions()
    guarded = {
        canonicalize_name(dist)
        for module in KIT_MODULES
        for dist in distributions_of.get(module, [])
    }
    assert kit <= guarded


def test_the_base_install_adds_no_pytest_plugin_but_ours() -> None:
    plugins = {
        (name, entry.value)
        for name in installed_closure(base_requirements())
        for entry in metadata.distribution(name).entry_points
        if entry.group == "pytest11"
    }
    assert plugins == set()
    ours = [
        e.value for e in metadata.distribution("dapi-mock").entry_points if e.group == "pytest11"
    ]
    assert ours == ["mockserver.pytest_plugin"]


def test_the_plugin_imports_nothing_heavy_when_pytest_loads_it() -> None:
    heavy = sorted(HEAVY_AT_PYTEST_START)
    code = (
        "import sys, mockserver.pytest_plugin\n"
        f"print(sorted(m for m in sys.modules if m.partition('.')[0] in {heavy!r}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"


def test_dapi_contract_without_the_kit_says_how_to_install_it() -> None:
    code = WITHOUT_THE_KIT + (
        "from contracts.entry import main\n"
        "sys.exit(main(['verify-server', 'http://127.0.0.1:9', '--api-key', 'k', '--secret', 's']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "the 'kit' extra" in result.stderr
    assert "pip install '.[kit]'" in result.stderr


def test_the_reference_client_needs_no_kit() -> None:
    code = WITHOUT_THE_KIT + (
        "import contracts\n"
        "from contracts import DapiClient, Ed25519Auth, HmacAuth, RsaAuth\n"
        "print('ok')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "ok", result.stderr


def test_dapi_contract_is_the_guarded_entry() -> None:
    scripts = {
        e.name: e.value
        for e in metadata.distribution("dapi-mock").entry_points
        if e.group == "console_scripts"
    }
    assert scripts == {"dapi-mock": "mockserver.cli:main", "dapi-contract": "contracts.entry:main"}
