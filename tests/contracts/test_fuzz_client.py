"""`dapi-contract fuzz-client`: the reference client passes, broken clients are caught.

Third-party clients (those of the interop tests) are fuzzed too; their reports
are kept under a temporary directory and their summaries printed, not
asserted green: what they do under faults is theirs to decide.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from contracts.cli import main
from contracts.fuzz import KEY_TYPES, catalogue, fuzz_client, reference_client
from contracts.fuzz.judging import ScenarioAccount, signed_payload
from contracts.fuzz.scenarios import DOCUMENTED_ERRORS
from tests.helpers import COINM_SECRET, hmac_hex
from tests.interop import drivers

SEED = 20260501
# Answers held 1.5 s (past the reference client's 1 s timeout), a client run bounded at 3 s.
FAST = {"slow_ms": 1500, "time_limit_s": 3.0, "progress": None, "seed": SEED}


def _fuzz(client: Any, **options: Any) -> Any:
    return fuzz_client(client, **{**FAST, **options})


def _failed(report: Any) -> dict[str, list[str]]:
    return {v.name: v.data["problems"] for v in report.verdicts if v.outcome == "fail"}


# --- the reference client ----------------------------------------------------------------------


def test_the_reference_client_passes_every_scenario_with_every_key_type() -> None:
    report = _fuzz(reference_client(timeout=1.0), key_types=KEY_TYPES)
    assert [v.name for v in report.verdicts] == [s.name for s in catalogue(1500, KEY_TYPES, 3.0)]
    assert report.ok, report.failure_details()
    by_name = {v.name: v.data for v in report.verdicts}
    # The verdicts rest on real outcomes: the kit saw both successes and failures.
    assert by_name["plain"]["exit_status"] == 0 and by_name["plain"]["applied"]
    assert by_name["error-bad-signature-1022"]["exit_status"] == 1
    assert not by_name["error-bad-signature-1022"]["applied"]
    assert by_name["applied-then-503"]["applied"] and by_name["applied-then-503"]["exit_status"]


def test_the_reference_client_as_a_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "change_leverage.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, sys
            from pathlib import Path
            from contracts.client import DapiClient, DapiError

            key_file = os.environ.get("DAPI_PRIVATE_KEY_FILE")
            try:
                with DapiClient(
                    os.environ["DAPI_BASE_URL"],
                    os.environ["DAPI_API_KEY"],
                    secret=os.environ.get("DAPI_API_SECRET"),
                    private_key=Path(key_file).read_text() if key_file else None,
                    time_sync=True,
                    timeout=1.0,
                ) as client:
                    leverage = int(os.environ["DAPI_LEVERAGE"])
                    client.change_leverage(os.environ["DAPI_SYMBOL"], leverage)
            except DapiError as exc:
                sys.exit(f"change refused: {exc}")
            """
        )
    )
    junit, report_json = tmp_path / "fuzz.xml", tmp_path / "fuzz.json"
    only = "plain,rsa-plain,error-bad-signature-1022,applied-then-503,server-clock-behind-1h"
    status = main(
        [
            *("fuzz-client", "--seed", "5", "--key-types", "hmac,rsa", "--only", only),
            *("--slow-ms", "1500", "--junit-xml", str(junit), "--json", str(report_json)),
            *("--", sys.executable, str(script)),
        ]
    )
    out = capsys.readouterr().out
    assert status == 0
    assert len([line for line in out.splitlines() if line.startswith("[")]) == 5
    assert "fuzz-client: ALL HOLD (5 passed" in out
    data = json.loads(report_json.read_text())
    assert [v["name"] for v in data["verdicts"]] == only.split(",")
    assert data["verdicts"][2]["data"]["exit_status"] == 1
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("failures")) == ("5", "0")


# --- broken clients the kit must catch ---------------------------------------------------------


def _post_change(
    base_url: str,
    api_key: str,
    secret: str,
    params: list[tuple[str, str]],
    *,
    signed_text: str | None = None,
    timeout: float | None = 5.0,
) -> requests.Response:
    """A hand-rolled client: form body, HMAC over `signed_text` (default: the body sent)."""
    body = urlencode(params)
    text = body if signed_text is None else signed_text
    signature = hmac_hex(text, secret)
    with requests.Session() as session:
        return session.post(
            f"{base_url}/dapi/v1/leverage",
            data=f"{body}&signature={signature}",
            headers={
                "X-MBX-APIKEY": api_key,
                "Content-Type": "application/x-www-form-urlencoded",
            },
            timeout=timeout,
        )


def _stamp() -> str:
    return str(time.time_ns() // 1_000_000)


def resorting_signer(
    base_url: str, api_key: str, api_secret: str, symbol: str, leverage: int, **_: Any
) -> None:
    """Re-serialises before signing: signs the parameters sorted, sends them in call order."""
    params = [("symbol", symbol), ("leverage", str(leverage)), ("timestamp", _stamp())]
    answer = _post_change(
        base_url, api_key, api_secret, params, signed_text=urlencode(sorted(params))
    )
    answer.raise_for_status()


def optimistic(
    base_url: str, api_key: str, api_secret: str, symbol: str, leverage: int, **_: Any
) -> None:
    """Reports success whatever the exchange said."""
    params = [("symbol", symbol), ("leverage", str(leverage)), ("timestamp", _stamp())]
    with contextlib.suppress(requests.RequestException):
        _post_change(base_url, api_key, api_secret, params)


def without_timeout(
    base_url: str, api_key: str, api_secret: str, symbol: str, leverage: int, **_: Any
) -> None:
    """Waits for an answer forever."""
    params = [("symbol", symbol), ("leverage", str(leverage)), ("timestamp", _stamp())]
    _post_change(base_url, api_key, api_secret, params, timeout=None).raise_for_status()


def impatient(
    base_url: str, api_key: str, api_secret: str, symbol: str, leverage: int, **_: Any
) -> None:
    """Sends again at once after a 429, whatever Retry-After says."""
    for _attempt in range(3):
        params = [("symbol", symbol), ("leverage", str(leverage)), ("timestamp", _stamp())]
        answer = _post_change(base_url, api_key, api_secret, params)
        if answer.status_code != 429:
            answer.raise_for_status()
            return
    raise RuntimeError("still rate limited")


def hammering(
    base_url: str, api_key: str, api_secret: str, symbol: str, leverage: int, **_: Any
) -> None:
    """Retries every error, ten times."""
    for _attempt in range(10):
        params = [("symbol", symbol), ("leverage", str(leverage)), ("timestamp", _stamp())]
        if _post_change(base_url, api_key, api_secret, params).status_code == 200:
            return
    raise RuntimeError("gave up")


def wide_window(
    base_url: str, api_key: str, api_secret: str, symbol: str, leverage: int, **_: Any
) -> None:
    """Sends recvWindow 120000, twice what a careful client allows itself."""
    params = [
        ("symbol", symbol),
        ("leverage", str(leverage)),
        ("recvWindow", "120000"),
        ("timestamp", _stamp()),
    ]
    _post_change(base_url, api_key, api_secret, params).raise_for_status()


def decimal_leverage(
    base_url: str, api_key: str, api_secret: str, symbol: str, leverage: int, **_: Any
) -> None:
    """Sends the leverage as `20.0` and an undocumented parameter."""
    params = [
        ("symbol", symbol),
        ("leverage", f"{leverage}.0"),
        ("newClientOrderId", "x1"),
        ("timestamp", _stamp()),
    ]
    _post_change(base_url, api_key, api_secret, params).raise_for_status()


def strict_reader(
    base_url: str, api_key: str, api_secret: str, symbol: str, leverage: int, **_: Any
) -> None:
    """Refuses an answer with any key it does not know."""
    params = [("symbol", symbol), ("leverage", str(leverage)), ("timestamp", _stamp())]
    answer = _post_change(base_url, api_key, api_secret, params)
    answer.raise_for_status()
    if set(answer.json()) != {"leverage", "maxQty", "symbol"}:
        raise ValueError(f"unexpected keys in {answer.text}")


BROKEN: list[tuple[Callable[..., None], list[str], dict[str, Any], str, str]] = [
    (resorting_signer, ["plain"], {}, "plain", "signature: the client's signature does not cover"),
    (
        optimistic,
        ["plain", "error-unavailable-503"],
        {},
        "error-unavailable-503",
        "honesty: exited 0, but the leverage is 20",
    ),
    (without_timeout, ["hung-answer"], {"time_limit_s": 1.0}, "hung-answer", "time: still running"),
    (impatient, ["retry-after-429"], {}, "retry-after-429", "after a 429 with Retry-After: 1"),
    (
        hammering,
        ["error-bad-signature-1022"],
        {},
        "error-bad-signature-1022",
        "patience: 10 leverage requests",
    ),
    (wide_window, ["plain"], {}, "plain", "params: recvWindow 120000 is above 60000"),
    (
        decimal_leverage,
        ["plain"],
        {},
        "plain",
        "params: undocumented parameter(s) newClientOrderId",
    ),
    (
        strict_reader,
        ["plain", "extra-response-fields"],
        {},
        "extra-response-fields",
        "honesty: failed (exit 1) where nothing went wrong",
    ),
]


@pytest.mark.parametrize(
    ("client", "only", "options", "scenario", "problem"),
    BROKEN,
    ids=[entry[0].__name__ for entry in BROKEN],
)
def test_a_broken_client_is_caught(
    client: Callable[..., None],
    only: list[str],
    options: dict[str, Any],
    scenario: str,
    problem: str,
) -> None:
    report = _fuzz(client, only=only, **options)
    failed = _failed(report)
    assert scenario in failed, report.summary_table()
    assert any(problem in p for p in failed[scenario]), failed[scenario]
    assert not report.ok


def test_the_leverage_text_rule_is_caught_with_the_server_answer() -> None:
    report = _fuzz(decimal_leverage, only=["plain"])
    problems = _failed(report)["plain"]
    assert any("params: leverage '" in p and ".0'" in p for p in problems)
    assert any("rejected -1102" in p for p in problems)


# --- the kit's own signature check -------------------------------------------------------------


def test_the_kit_reads_the_signed_payload_independently() -> None:
    query = "symbol=BTCUSD_PERP&leverage=20"
    body = (
        "recvWindow=5000&timestamp=1591702613943"
        "&signature=46860a15641daca1e2a79a25a1717854970f6b167e4d0dc111fae97be4d244e1"
    )
    payload, signature, last = signed_payload(query, body)
    assert payload == (query + "recvWindow=5000&timestamp=1591702613943").encode()
    assert last and signature is not None
    assert ScenarioAccount("k", "hmac", secret=COINM_SECRET).verify(payload, signature)
    moved = signed_payload("signature=abc&" + query, "")
    assert moved[2] is False


# --- third-party clients: reports kept, not asserted green ---------------------------------


def _driver_client(driver: drivers.Driver) -> Callable[..., None]:
    def change_leverage(
        base_url: str,
        api_key: str,
        api_secret: str | None,
        private_key_file: str | None,
        symbol: str,
        leverage: int,
    ) -> None:
        pem = Path(private_key_file).read_text() if private_key_file else None
        key_type = drivers.HMAC if api_secret else ("rsa" if pem and len(pem) > 200 else "ed25519")
        creds = drivers.Credentials(key_type, api_key, api_secret, pem)
        driver.change_leverage(base_url, creds, symbol, leverage)

    change_leverage.__qualname__ = driver.id
    return change_leverage


@pytest.mark.interop
@pytest.mark.parametrize("driver", drivers.CLIENTS, ids=[d.id for d in drivers.CLIENTS])
def test_third_party_client_fuzz_report(
    driver: drivers.Driver, tmp_path_factory: pytest.TempPathFactory
) -> None:
    reports = tmp_path_factory.mktemp("fuzz-reports")
    # Perpetuals only (the ccxt driver names perpetuals). 1.5 s holds are within the drivers'
    # 10 s timeouts; `hung-answer` would hold each run past that, 12 s a client: left out.
    kinds = [s.name for s in catalogue(1500, time_limit_s=10.0) if s.name != "hung-answer"]
    report = _fuzz(
        _driver_client(driver),
        symbols=["BTCUSD_PERP", "ETHUSD_PERP"],
        time_limit_s=10.0,
        only=kinds,
    )
    report.write_json(reports / f"{driver.id}.json")
    report.write_junit(reports / f"{driver.id}.xml")
    print(f"\n{driver.id}: reports in {reports}\n{report.summary_table()}")
    assert [v.name for v in report.verdicts] == kinds
    assert json.loads((reports / f"{driver.id}.json").read_text())["target"] == driver.id
    assert ET.parse(reports / f"{driver.id}.xml").getroot().find("testsuite") is not None


# --- as a user meets it --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("only", "count"),
    [
        (["plain"], 4),
        (["server-clock-behind-2s"], 3),
        (["plain", "retry-after-429"], 4),
        (["error-unavailable-503", "server-clock-ahead-6s"], 4),
        (["plain", "transient-503", "leverage-above-max"], 1),
        (None, 2),
    ],
)
def test_every_subset_a_user_can_type_runs(only: list[str] | None, count: int) -> None:
    report = _fuzz(reference_client(timeout=1.0), only=only, scenarios=count)
    assert len(report.verdicts) == count
    assert len({v.name for v in report.verdicts}) == count
    assert report.ok, report.failure_details()


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        (["--scenarios", "0"], "--scenarios must be 1 or more, not 0"),
        (["--only", ""], "--only needs at least one scenario name"),
        (["--only", "nope"], "unknown scenarios: nope (known: plain, "),
        (["--only", "rsa-plain"], "rsa-plain need their key type in --key-types"),
        (["--key-types", "dsa"], "key types must be among hmac, rsa, ed25519, not dsa"),
        (["--key-types", ","], "key types must be among hmac, rsa, ed25519"),
        (["--slow-ms", "0"], "the slow answer's delay must be 1..600000 ms, not 0"),
        (["--time-limit", "0"], "the time limit must be above 0"),
        (["--symbols", "NOPE_PERP"], "not listed by the mock: NOPE_PERP"),
    ],
)
def test_options_no_run_can_use_are_one_clear_usage_error(
    capsys: pytest.CaptureFixture[str], arguments: list[str], error: str
) -> None:
    status = main(["fuzz-client", *arguments, "--", sys.executable, "-c", "pass"])
    captured = capsys.readouterr()
    assert status == 2
    assert captured.err.startswith("dapi-contract: ") and error in captured.err


def test_held_answers_end_when_the_client_gives_up() -> None:
    # The shipped delays (12 s, and 32 s past the 30 s limit) against a client with a 1 s
    # timeout: each run ends when the client does, the holds are not waited out.
    report = fuzz_client(
        reference_client(timeout=1.0),
        only=["slow-answer", "hung-answer"],
        seed=SEED,
        progress=None,
    )
    assert report.ok, report.failure_details()
    seconds = {v.name: v.seconds for v in report.verdicts}
    assert all(s < 8 for s in seconds.values()), seconds
    for verdict in report.verdicts:
        assert verdict.data["exit_status"] == 1 and not verdict.data["applied"]


def test_help_lists_every_scenario_and_the_rules(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["fuzz-client", "--help"])
    text = capsys.readouterr().out
    assert "DAPI_BASE_URL" in text and "DAPI_PRIVATE_KEY_FILE" in text
    for scenario in catalogue(key_types=KEY_TYPES):
        assert f"  {scenario.name}  " in text
    assert "(default: 12000)" in text and "(default: 30.0)" in text
    assert "Rules applied to every scenario" in text


# --- the README's Node client ----------------------------------------------------------------

NODE_EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ccxt-node"


def _why_node_ccxt_cannot_run() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed (the README's Node example needs it)"
    if not (NODE_EXAMPLE / "node_modules" / "ccxt").is_dir():
        return "ccxt is not installed for the Node example: run `npm ci` in examples/ccxt-node"
    return None


@pytest.mark.interop
def test_the_readme_node_ccxt_client_is_fuzzed_as_a_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    why = _why_node_ccxt_cannot_run()
    if why is not None:
        pytest.skip(why)
    only = "plain,extra-response-fields,error-bad-signature-1022,server-clock-behind-1h"
    report_json = tmp_path / "node.json"
    status = main(
        [
            *("fuzz-client", "--seed", str(SEED), "--only", only, "--json", str(report_json)),
            *("--", "node", str(NODE_EXAMPLE / "set_leverage.js")),
        ]
    )
    out = capsys.readouterr().out
    assert status == 0, out
    verdicts = {v["name"]: v["data"] for v in json.loads(report_json.read_text())["verdicts"]}
    assert list(verdicts) == only.split(",")
    assert verdicts["plain"]["exit_status"] == 0 and verdicts["plain"]["applied"]
    assert verdicts["error-bad-signature-1022"]["exit_status"] == 1


def test_the_kits_scripted_errors_read_as_the_mock_sends_them() -> None:
    """The kit keeps its own copy of each text (it describes the exchange on its own); every
    copy reads as the mock's (docs/behaviour.md#error-table), IP(...) as the local run sees it."""
    from mockserver import errors

    mock = {
        "unknown-path-404": errors.route_invalid("/dapi/v1/leverage", "POST", 404),
        "wrong-method-405": errors.route_invalid("/dapi/v1/leverage", "POST", 405),
        "body-too-large-413": errors.too_many_params(413, ""),
        "illegal-characters-1100": errors.illegal_characters(""),
        "duplicate-parameter-1101": errors.duplicate_param("leverage"),
        "api-key-format-2014": errors.api_key_format_invalid(""),
        "api-key-rejected-2015": errors.api_key_invalid(),
        "mandatory-parameter-1102": errors.mandatory_param("leverage", ""),
        "invalid-recv-window-1130": errors.invalid_param("recvWindow", ""),
        "stale-timestamp-1021": errors.timestamp_outside_window(""),
        "ahead-timestamp-1021": errors.timestamp_ahead(""),
        "bad-signature-1022": errors.signature_invalid(""),
        "unread-parameters-1104": errors.params_not_read(4, 5, ["x"]),
        "invalid-symbol-1121": errors.invalid_symbol(""),
        "invalid-leverage-4028": errors.invalid_leverage(200, ""),
        "position-too-large-2027": errors.position_exceeds_max_qty(""),
        "leverage-cap-4201": errors.leverage_over_cap("country", 10, ""),
        "isolated-reduction-4150": errors.isolated_leverage_reduction(""),
        "too-many-requests-1003": errors.too_many_requests("127.0.0.1", 2400, 1, ""),
        "unknown-error-500": errors.unknown_error(""),
    }
    scripted = {suffix: (status, code, msg) for suffix, status, code, msg in DOCUMENTED_ERRORS}
    for suffix, error in mock.items():
        assert scripted[suffix] == (error.status, error.code, error.msg), suffix
    # The one the mock never answers by itself: Binance's 503 "status unknown".
    assert set(scripted) - set(mock) == {"unavailable-503"}
