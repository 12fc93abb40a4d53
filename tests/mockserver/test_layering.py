"""Import layering of DESIGN.md: the rule modules stay free of Flask and of the layers above."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import mockserver

PACKAGE = Path(mockserver.__file__).parent
RULE_MODULES = [
    "errors",
    "params",
    "security",
    "doctor",
    "market",
    "state",
    "clock",
    "ratelimit",
    "faults",
    "journal",
    "config",
    "exchange",
    "account_views",
    "holds",
    "json_input",
    "request_log",
]
FORBIDDEN_THIRD_PARTY = {"flask", "werkzeug"}
FORBIDDEN_OWN = {"mockserver.routes", "mockserver.app", "mockserver.cli"}


def package_of(path: Path) -> str:
    """The package a file's relative imports start from (itself for an __init__.py)."""
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])


def imported_modules(source: str, package: str) -> set[str]:
    """Every module a source imports, anywhere in it (functions too), as absolute dotted names."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = parts[: len(parts) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            # `from mockserver import app` imports the submodule mockserver.app
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def imports_of(path: Path) -> set[str]:
    return imported_modules(path.read_text(encoding="utf-8"), package_of(path))


def is_within(module: str, roots: set[str]) -> bool:
    return any(module == root or module.startswith(f"{root}.") for root in roots)


def test_every_rule_module_exists() -> None:
    assert all((PACKAGE / f"{name}.py").is_file() for name in RULE_MODULES)


@pytest.mark.parametrize("name", RULE_MODULES)
def test_rule_module_imports_no_flask_or_werkzeug(name: str) -> None:
    imports = imports_of(PACKAGE / f"{name}.py")
    assert not {m for m in imports if is_within(m, FORBIDDEN_THIRD_PARTY)}


@pytest.mark.parametrize("name", RULE_MODULES)
def test_rule_module_imports_nothing_from_routes_app_or_cli(name: str) -> None:
    imports = imports_of(PACKAGE / f"{name}.py")
    assert not {m for m in imports if is_within(m, FORBIDDEN_OWN)}


@pytest.mark.parametrize(
    "path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_no_mockserver_module_imports_contracts(path: Path) -> None:
    assert not {m for m in imports_of(path) if is_within(m, {"contracts"})}


def test_the_import_check_sees_flask_and_routes_in_app() -> None:
    imports = imports_of(PACKAGE / "app.py")
    assert any(is_within(m, FORBIDDEN_THIRD_PARTY) for m in imports)
    assert any(is_within(m, {"mockserver.routes"}) for m in imports)


def test_the_import_check_resolves_relative_and_nested_imports() -> None:
    source = (
        "from .. import app\n"
        "from ..exchange import Exchange\n"
        "from . import dapi\n"
        "def later():\n"
        "    import flask.json\n"
    )
    assert imported_modules(source, "mockserver.routes") == {
        "mockserver",
        "mockserver.app",
        "mockserver.exchange",
        "mockserver.exchange.Exchange",
        "mockserver.routes",
        "mockserver.routes.dapi",
        "flask.json",
    }
    assert package_of(PACKAGE / "routes" / "__init__.py") == "mockserver.routes"
    assert package_of(PACKAGE / "app.py") == "mockserver"
