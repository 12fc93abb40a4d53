"""config.load: defaults < TOML file < environment < flags, and what it refuses
(docs/behaviour.md#settings)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from mockserver.config import (
    DEMO_API_KEY,
    DEMO_BALANCES,
    DEMO_SECRET,
    AccountConfig,
    Config,
    ConfigError,
    load,
)


def write_config(tmp_path: Path, text: str, name: str = "dapi-mock.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def config_error(path: Path | None = None, **kwargs: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        load(path, **kwargs)
    return str(caught.value)


@pytest.fixture(scope="module")
def public_pem() -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


# -- defaults -------------------------------------------------------------------------------


def test_defaults_are_the_spec_values() -> None:
    config = load(env={})
    assert config == Config()
    assert (config.host, config.port, config.workers) == ("127.0.0.1", 8080, 1)
    assert (config.admin_token, config.max_body_bytes, config.max_params) == ("", 65536, 64)
    assert config.demo_account is True
    assert (config.symbols_file, config.recv_window_max, config.strict_params) == ("", 0, False)
    assert (config.weight_per_minute, config.ban_seconds) == (2400, 120)
    assert (config.clock_offset_ms, config.journal_size) == (0, 10000)
    assert config.bracket_floor_field == "qtyFloor"
    assert config.accounts == ()


def test_config_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        load(env={}).port = 1  # type: ignore[misc]


def test_demo_account_is_present_by_default() -> None:
    demo = AccountConfig(DEMO_API_KEY, DEMO_SECRET, balances=DEMO_BALANCES)
    assert load(env={}).all_accounts() == (demo,)
    assert (DEMO_API_KEY, DEMO_SECRET) == ("dapimockdemokey", "dapimockdemosecret")


def test_admin_token_and_secrets_are_not_in_the_repr(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        '[server]\nadmin_token = "tok3n"\n[[accounts]]\napi_key = "k1"\nsecret = "s3cret"\n',
    )
    text = repr(load(path, env={}))
    assert "tok3n" not in text
    assert "s3cret" not in text


# -- the file -------------------------------------------------------------------------------


def test_file_values_override_defaults(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        """
[server]
host = "0.0.0.0"
port = 9000
admin_token = "tok"
max_body_bytes = 1024
max_params = 10

[exchange]
symbols_file = "custom.json"
recv_window_max = 60000
strict_params = true
weight_per_minute = 0
ban_seconds = 5
clock_offset_ms = -1500
journal_size = 3
bracket_floor_field = "both"
""",
    )
    config = load(path, env={})
    assert (config.host, config.port, config.admin_token) == ("0.0.0.0", 9000, "tok")
    assert (config.max_body_bytes, config.max_params) == (1024, 10)
    assert (config.symbols_file, config.recv_window_max, config.strict_params) == (
        "custom.json",
        60000,
        True,
    )
    assert (config.weight_per_minute, config.ban_seconds, config.clock_offset_ms) == (0, 5, -1500)
    assert (config.journal_size, config.bracket_floor_field) == (3, "both")


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    assert load(write_config(tmp_path, ""), env={}) == Config()


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    assert "nope.toml" in config_error(tmp_path / "nope.toml", env={})


def test_file_that_is_not_toml_is_a_config_error(tmp_path: Path) -> None:
    assert "not TOML" in config_error(write_config(tmp_path, "[server\nport = "), env={})


def test_unknown_section_is_a_config_error_naming_it(tmp_path: Path) -> None:
    message = config_error(write_config(tmp_path, "[sever]\nport = 1\n"), env={})
    assert "[sever]" in message


def test_unknown_key_is_a_config_error_naming_it(tmp_path: Path) -> None:
    message = config_error(write_config(tmp_path, "[server]\nprot = 1\n"), env={})
    assert "'prot'" in message
    assert "[server]" in message


def test_key_in_the_wrong_section_is_a_config_error(tmp_path: Path) -> None:
    assert "'port'" in config_error(write_config(tmp_path, "[exchange]\nport = 1\n"), env={})


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[server]\nport = "8080"\n', "port"),
        ("[server]\nport = 80.5\n", "port"),
        ("[server]\nport = true\n", "port"),
        ('[exchange]\nstrict_params = "yes"\n', "strict_params"),
        ("[exchange]\nstrict_params = 1\n", "strict_params"),
        ("[server]\nhost = 127\n", "host"),
        ("[exchange]\nweight_per_minute = -1\n", "weight_per_minute"),
        ("[server]\nport = 65536\n", "port"),
        ("[server]\nmax_params = 0\n", "max_params"),
        ("[exchange]\njournal_size = 0\n", "journal_size"),
        ("[server]\nworkers = 0\n", "workers"),
    ],
)
def test_bad_value_is_a_config_error_naming_the_key(tmp_path: Path, text: str, key: str) -> None:
    assert f"'{key}'" in config_error(write_config(tmp_path, text), env={})


def test_port_zero_is_accepted(tmp_path: Path) -> None:
    assert load(write_config(tmp_path, "[server]\nport = 0\n"), env={}).port == 0


# -- the environment ------------------------------------------------------------------------


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[server]\nport = 9000\n[exchange]\nstrict_params = false\n")
    config = load(
        path,
        env={"DAPI_MOCK_SERVER_PORT": "9100", "DAPI_MOCK_EXCHANGE_STRICT_PARAMS": "true"},
    )
    assert (config.port, config.strict_params) == (9100, True)


def test_environment_is_read_from_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAPI_MOCK_SERVER_PORT", "9200")
    monkeypatch.setenv("DAPI_MOCK_EXCHANGE_BRACKET_FLOOR_FIELD", "qtylFloor")
    config = load()
    assert (config.port, config.bracket_floor_field) == (9200, "qtylFloor")


@pytest.mark.parametrize(
    ("raw", "value"),
    [("true", True), ("1", True), ("YES", True), ("on", True), ("false", False), ("0", False)],
)
def test_environment_booleans(raw: str, value: bool) -> None:
    assert load(env={"DAPI_MOCK_EXCHANGE_STRICT_PARAMS": raw}).strict_params is value


def test_environment_false_overrides_a_true_file_value(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[server]\ndemo_account = false\n")
    assert load(path, env={"DAPI_MOCK_SERVER_DEMO_ACCOUNT": "true"}).demo_account is True


@pytest.mark.parametrize(
    ("name", "raw", "named"),
    [
        ("DAPI_MOCK_SERVER_PORT", "eighty", "DAPI_MOCK_SERVER_PORT"),
        ("DAPI_MOCK_SERVER_PORT", "80.0", "DAPI_MOCK_SERVER_PORT"),
        ("DAPI_MOCK_EXCHANGE_STRICT_PARAMS", "maybe", "DAPI_MOCK_EXCHANGE_STRICT_PARAMS"),
        ("DAPI_MOCK_SERVER_PORT", "-1", "'port'"),
    ],
)
def test_bad_environment_value_is_a_config_error_naming_it(name: str, raw: str, named: str) -> None:
    assert named in config_error(env={name: raw})


def test_other_dapi_mock_variables_are_left_alone() -> None:
    # a user's own DAPI_MOCK_URL (their tests' setting, not ours) must not break start-up
    env = {"DAPI_MOCK_URL": "http://127.0.0.1:1", "DAPI_MOCK_ADMIN_TOKEN": "t", "PORT": "2"}
    assert load(env=env) == Config()


@pytest.mark.parametrize(
    "name", ["DAPI_MOCK_SERVER_PROT", "DAPI_MOCK_EXCHANGE_JOURNALSIZE", "DAPI_MOCK_SERVER_port"]
)
def test_a_server_or_exchange_variable_naming_no_setting_is_a_config_error(name: str) -> None:
    message = config_error(env={name: "1"})
    assert name in message
    assert "no such setting" in message


# -- the flags ------------------------------------------------------------------------------


def test_overrides_beat_the_environment_and_the_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[server]\nport = 9000\nhost = '0.0.0.0'\n")
    config = load(path, env={"DAPI_MOCK_SERVER_PORT": "9100"}, port=9300)
    assert (config.port, config.host) == (9300, "0.0.0.0")


def test_none_overrides_are_ignored() -> None:
    assert load(env={"DAPI_MOCK_SERVER_PORT": "9100"}, port=None, host=None).port == 9100


def test_unknown_override_is_a_config_error() -> None:
    assert "'bogus'" in config_error(env={}, bogus=1)


def test_override_of_the_wrong_type_is_a_config_error() -> None:
    assert "'port'" in config_error(env={}, port="8080")


# -- accounts -------------------------------------------------------------------------------


def test_accounts_with_a_secret_come_from_the_file(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        '[[accounts]]\napi_key = "k1"\nsecret = "s1"\n'
        '[[accounts]]\napi_key = "k2"\nsecret = "s2"\n',
    )
    config = load(path, env={})
    assert config.accounts == (AccountConfig("k1", secret="s1"), AccountConfig("k2", secret="s2"))
    assert config.all_accounts() == (
        AccountConfig(DEMO_API_KEY, DEMO_SECRET, balances=DEMO_BALANCES),
        AccountConfig("k1", secret="s1"),
        AccountConfig("k2", secret="s2"),
    )


def test_account_with_an_inline_public_key(tmp_path: Path, public_pem: str) -> None:
    path = write_config(
        tmp_path, f'[[accounts]]\napi_key = "ed1"\npublic_key = """{public_pem}"""\n'
    )
    assert load(path, env={}).accounts == (AccountConfig("ed1", public_key=public_pem),)


def test_public_key_file_is_read_relative_to_the_config_file(
    tmp_path: Path, public_pem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "conf"
    (folder / "keys").mkdir(parents=True)
    (folder / "keys" / "ed.pem").write_text(public_pem)
    path = write_config(folder, '[[accounts]]\napi_key = "ed1"\npublic_key_file = "keys/ed.pem"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert load(path, env={}).accounts == (AccountConfig("ed1", public_key=public_pem),)


def test_missing_public_key_file_is_a_config_error(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[[accounts]]\napi_key = "k"\npublic_key_file = "none.pem"\n')
    assert "none.pem" in config_error(path, env={})


@pytest.mark.parametrize(
    "entry",
    [
        'api_key = "k"\nsecret = "s"\npublic_key = "pem"\n',
        'api_key = "k"\n',
        'secret = "s"\n',
        'api_key = 5\nsecret = "s"\n',
    ],
)
def test_account_needs_a_key_and_exactly_one_of_secret_or_public_key(
    tmp_path: Path, entry: str
) -> None:
    message = config_error(write_config(tmp_path, f"[[accounts]]\n{entry}"), env={})
    assert "accounts[0]" in message


def test_demo_account_false_leaves_only_the_configured_accounts(tmp_path: Path) -> None:
    path = write_config(
        tmp_path, '[server]\ndemo_account = false\n[[accounts]]\napi_key = "k1"\nsecret = "s1"\n'
    )
    assert load(path, env={}).all_accounts() == (AccountConfig("k1", secret="s1"),)


def test_account_secret_of_the_wrong_type_is_a_config_error_naming_it(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[[accounts]]\napi_key = "k1"\nsecret = 5\n')
    assert "secret" in config_error(path, env={})


def test_unknown_key_in_an_account_is_a_config_error_naming_it(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[[accounts]]\napi_key = "k1"\nsecret = "s1"\npubic_key = "x"\n')
    assert "pubic_key" in config_error(path, env={})


# -- round 2: every layer validated, accounts unique (docs/behaviour.md#settings) ---------------


@pytest.mark.parametrize(
    ("file_text", "flags", "named"),
    [
        ("[server]\nport = 'x'\n", {"port": 0}, "'port'"),
        ("[server]\nhost = '999.1.1.1'\n", {"host": "127.0.0.1"}, "'host'"),
        ("[exchange]\nclock_offset_ms = 100000000000000000\n", {}, "'clock_offset_ms'"),
    ],
)
def test_a_bad_file_value_is_reported_even_when_a_later_layer_overrides_it(
    tmp_path: Path, file_text: str, flags: dict[str, Any], named: str
) -> None:
    path = write_config(tmp_path, file_text)
    env = {"DAPI_MOCK_EXCHANGE_CLOCK_OFFSET_MS": "0"}
    message = config_error(path, env=env, **flags)
    assert named in message and str(path) in message


def test_a_bad_environment_value_is_reported_even_when_a_flag_overrides_it() -> None:
    message = config_error(env={"DAPI_MOCK_SERVER_PORT": "70000"}, port=0)
    assert "DAPI_MOCK_SERVER_PORT" in message and "'port'" in message


@pytest.mark.parametrize(
    "host",
    ["999.1.1.1", "1.2.3", "", "-bad.example", "bad_name", "a" * 64 + ".example", "localhost."],
)
def test_a_host_that_is_no_address_or_name_is_refused(host: str) -> None:
    assert "'host'" in config_error(env={}, host=host)


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "0.0.0.0", "::1", "::", "localhost", "mock-1.internal", "x1.example"]
)
def test_addresses_and_host_names_are_taken(host: str) -> None:
    assert load(env={}, host=host).host == host


@pytest.mark.parametrize("offset", [10**17, -(10**13), -(2**62)])
def test_a_clock_offset_outside_2000_to_2099_is_refused(offset: int) -> None:
    message = config_error(env={}, clock_offset_ms=offset)
    assert "'clock_offset_ms'" in message and "2000-01-01..2099-12-31" in message


def test_a_config_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b"[server]\nport = 0\n# caf\xe9\n")
    assert "not UTF-8" in config_error(path, env={})


def test_an_api_key_given_twice_is_a_config_error(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        '[[accounts]]\napi_key = "twice"\nsecret = "a"\n'
        '[[accounts]]\napi_key = "twice"\nsecret = "b"\n',
    )
    assert "accounts[1]: api_key 'twice' is given twice" in config_error(path, env={})


def test_an_entry_with_the_demo_key_replaces_the_demo_account(tmp_path: Path) -> None:
    path = write_config(tmp_path, f'[[accounts]]\napi_key = "{DEMO_API_KEY}"\nsecret = "mine"\n')
    accounts = load(path, env={}).all_accounts()
    assert [(a.api_key, a.secret) for a in accounts] == [(DEMO_API_KEY, "mine")]
