"""Settings, resolved once: defaults < TOML file < env (DAPI_MOCK_<SECTION>_<KEY>) < flags."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from mockserver.clock import RANGE_TEXT, ClockRangeError, check_offset
from mockserver.state import SETUP_KEYS, SetupError, leverage_cap, wallet_balance

DEMO_API_KEY = "dapimockdemokey"
DEMO_SECRET = "dapimockdemosecret"


class ConfigError(ValueError):
    """A setting that cannot be used; the message names the setting and where it came from."""


@dataclass(frozen=True)
class AccountConfig:
    api_key: str
    secret: str = field(default="", repr=False)
    public_key: str = field(default="", repr=False)
    # docs/behaviour.md#settings: the account's trading state at start-up.
    balances: tuple[tuple[str, Decimal], ...] = ()
    dual_side_position: bool = False
    max_leverage: int | None = None
    max_leverage_rule: str | None = None


# docs/behaviour.md#balance: the demo account starts with BTC 1 and ETH 10 (our choice).
DEMO_BALANCES = (("BTC", Decimal(1)), ("ETH", Decimal(10)))


@dataclass(frozen=True)
class Config:
    # [server]
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    threads: int = 16
    admin_token: str = field(default="", repr=False)
    max_body_bytes: int = 65536
    max_params: int = 64
    demo_account: bool = True
    # [exchange]
    symbols_file: str = ""
    recv_window_max: int = 0
    strict_params: bool = False
    weight_per_minute: int = 2400
    ban_seconds: int = 120
    clock_offset_ms: int = 0
    journal_size: int = 10000
    bracket_floor_field: str = "qtyFloor"
    # [[accounts]]
    accounts: tuple[AccountConfig, ...] = ()

    def all_accounts(self) -> tuple[AccountConfig, ...]:
        # docs/behaviour.md#settings: an [[accounts]] entry with the demo key replaces it.
        replaced = any(a.api_key == DEMO_API_KEY for a in self.accounts)
        demo = (AccountConfig(DEMO_API_KEY, DEMO_SECRET, balances=DEMO_BALANCES),)
        return (() if replaced or not self.demo_account else demo) + self.accounts


SECTIONS: dict[str, tuple[str, ...]] = {
    "server": (
        "host",
        "port",
        "workers",
        "threads",
        "admin_token",
        "max_body_bytes",
        "max_params",
        "demo_account",
    ),
    "exchange": (
        "symbols_file",
        "recv_window_max",
        "strict_params",
        "weight_per_minute",
        "ban_seconds",
        "clock_offset_ms",
        "journal_size",
        "bracket_floor_field",
    ),
}
_TYPES = {f.name: f.type for f in dataclasses.fields(Config)}
SECRET_SETTINGS = {"admin_token"}
_NON_NEGATIVE = {
    "port",
    "max_body_bytes",
    "max_params",
    "recv_window_max",
    "weight_per_minute",
    "ban_seconds",
    "journal_size",
}


def load(
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Config:
    """Resolve the settings; `overrides` are already-typed values (command-line flags)."""
    # Each layer is checked as it is read, so a bad value is reported even when a later
    # layer overrides it.
    values: dict[str, Any] = {}
    accounts: list[AccountConfig] = []
    if path:
        values, accounts = _read_file(Path(path))
    environ = os.environ if env is None else env
    for name in sorted(environ):
        key = _setting_named_by(name)
        if key is not None:
            values[key] = _checked(key, _from_env(key, environ[name], name), name)
    for key, value in overrides.items():
        if value is not None:
            values[key] = _checked(key, value, "override")
    return Config(**values, accounts=tuple(accounts))


def _setting_named_by(name: str) -> str | None:
    """The setting DAPI_MOCK_<SECTION>_<KEY> names, or None for other variables.

    docs/behaviour.md#settings: within the sections' prefixes a name that matches no
    setting is an error, like an unknown config key (a typo must not pass unseen); other
    DAPI_MOCK_* names (a user's own DAPI_MOCK_URL) are left alone.
    """
    for section, keys in SECTIONS.items():
        prefix = f"DAPI_MOCK_{section.upper()}_"
        if name.startswith(prefix):
            for key in keys:
                if name == prefix + key.upper():
                    return key
            known = ", ".join(prefix + key.upper() for key in keys)
            raise ConfigError(f"environment {name}: no such setting in [{section}]; known: {known}")
    return None


def _read_file(path: Path) -> tuple[dict[str, Any], list[AccountConfig]]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"config {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config {path}: not UTF-8 (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {path}: not TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"config {path}: nested too deeply") from None
    values: dict[str, Any] = {}
    for section, table in data.items():
        if section == "accounts":
            continue
        if section not in SECTIONS or not isinstance(table, dict):
            raise ConfigError(f"config {path}: unknown section [{section}]")
        for key, value in table.items():
            if key not in SECTIONS[section]:
                raise ConfigError(f"config {path}: unknown key {key!r} in [{section}]")
            values[key] = _checked(key, value, f"config {path}")
    entries = data.get("accounts", [])
    if not isinstance(entries, list):
        raise ConfigError(f"config {path}: accounts must be [[accounts]] tables")
    accounts = [
        _account(entry, path.parent, f"config {path}: accounts[{i}]")
        for i, entry in enumerate(entries)
    ]
    seen: set[str] = set()
    for i, account in enumerate(accounts):
        if account.api_key in seen:
            raise ConfigError(
                f"config {path}: accounts[{i}]: api_key {account.api_key!r} is given twice"
            )
        seen.add(account.api_key)
    return values, accounts


CREDENTIAL_KEYS = ("api_key", "secret", "public_key", "public_key_file")


def _account(entry: Any, base: Path, where: str) -> AccountConfig:
    if not isinstance(entry, dict) or not isinstance(entry.get("api_key"), str):
        raise ConfigError(f"{where}: needs an api_key string")
    for key, value in entry.items():
        if key not in CREDENTIAL_KEYS + SETUP_KEYS:
            raise ConfigError(f"{where}: unknown key {key!r}")
        if key in CREDENTIAL_KEYS and not isinstance(value, str):
            raise ConfigError(f"{where}: {key!r} must be a string")
    secret, public_key = entry.get("secret", ""), entry.get("public_key", "")
    if key_file := entry.get("public_key_file"):
        try:
            public_key = (base / key_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{where}: public_key_file {key_file}: {exc.strerror}") from None
    if bool(secret) == bool(public_key):
        raise ConfigError(f"{where}: give exactly one of secret, public_key, public_key_file")
    return AccountConfig(
        entry["api_key"], secret=secret, public_key=public_key, **_account_setup(entry, where)
    )


def _account_setup(entry: dict[str, Any], where: str) -> dict[str, Any]:
    """The round-2 fields of an [[accounts]] entry, range-checked (assets are checked against
    the market when the exchange starts)."""
    dual = entry.get("dual_side_position", False)
    if not isinstance(dual, bool):
        raise ConfigError(f"{where}: 'dual_side_position' must be true or false")
    balances = entry.get("balances", {})
    if not isinstance(balances, dict):
        raise ConfigError(f"{where}: 'balances' must be a table like {{BTC = \"1.5\"}}")
    try:
        parsed = tuple(
            (asset, wallet_balance(value, f"balances.{asset}")) for asset, value in balances.items()
        )
        cap = leverage_cap(entry.get("max_leverage"), entry.get("max_leverage_rule"))
    except SetupError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return {
        "balances": parsed,
        "dual_side_position": dual,
        "max_leverage": None if cap is None else cap.max_leverage,
        "max_leverage_rule": None if cap is None else cap.rule,
    }


def _from_env(key: str, raw: str, name: str) -> Any:
    kind = _TYPES[key]
    if kind == "bool":
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"{name}={raw!r}: expected true or false")
    if kind == "int":
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r}: expected a whole number") from None
    return raw


def _checked(key: str, value: Any, where: str) -> Any:
    """`value`, when it is a usable value of setting `key`; `where` names its layer."""
    try:
        _check(key, value)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return value


def _check(key: str, value: Any) -> None:
    kind = _TYPES.get(key)
    expected: type | None = {"int": int, "bool": bool, "str": str}.get(str(kind))
    if expected is None:
        raise ConfigError(f"unknown setting {key!r}")
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        kind_name = {int: "whole number", bool: "boolean", str: "string"}[expected]
        shown = "a secret value" if key in SECRET_SETTINGS else repr(value)  # never echo it
        raise ConfigError(f"setting {key!r} must be a {kind_name}, got {shown}")
    if key == "host" and not _is_host(str(value)):
        raise ConfigError(f"setting 'host' must be an IP address or a host name, got {value!r}")
    if not isinstance(value, int):
        return
    if key in _NON_NEGATIVE and value < 0:
        raise ConfigError(f"setting {key!r} must be >= 0")
    if key in ("workers", "threads", "max_params", "max_body_bytes", "journal_size") and value < 1:
        raise ConfigError(f"setting {key!r} must be >= 1")
    if key == "port" and value > 65535:
        raise ConfigError("setting 'port' must be 0 to 65535")
    if key == "clock_offset_ms":
        try:
            check_offset(value)
        except ClockRangeError:
            raise ConfigError(
                f"setting 'clock_offset_ms' {value} puts the mock clock outside {RANGE_TEXT}"
            ) from None


_HOST_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")  # RFC 1123


def _is_host(host: str) -> bool:
    """An IP address, or a host name (whose last label is not all digits: 999.1.1.1 is not)."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        labels = host.split(".")
        return (
            len(host) <= 253
            and all(_HOST_LABEL.fullmatch(label) for label in labels)
            and not labels[-1].isdigit()
        )
