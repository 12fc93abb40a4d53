"""`dapi-contract verify-server` against the mock, and against broken servers it must catch.

The broken servers are the mock's own WSGI app wrapped (served by waitress on
port 0): one re-signs every request before the mock sees it, so it accepts any
signature (tests.helpers); two answer a wrong maxQty.
"""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from contracts.cli import main
from contracts.client import DapiClient
from contracts.signing import new_pem_pair
from contracts.verify import DISCOVERY, PROPERTIES, verify_server
from mockserver.config import DEMO_API_KEY, DEMO_SECRET, Config
from mockserver.harness import MockServer, format_errors
from tests.helpers import SkipsSignatureCheck

PORTABLE = [p.name for p in PROPERTIES if not p.mock_rules and not p.changes_settings]
CHANGES_SETTINGS = [p.name for p in PROPERTIES if p.changes_settings]
MOCK_ONLY = [p.name for p in PROPERTIES if p.mock_rules]
#: What a run without flags skips, in catalogue order.
FLAGGED = [p.name for p in PROPERTIES if p.mock_rules or p.changes_settings]

WSGIApp = Callable[..., Any]


def _verify(server: MockServer, **options: Any) -> Any:
    options.setdefault("examples", 3)
    options.setdefault("seed", 20260501)
    options.setdefault("progress", None)
    return verify_server(server.url, DEMO_API_KEY, secret=DEMO_SECRET, **options)


def _outcomes(report: Any) -> dict[str, str]:
    return {v.name: v.outcome for v in report.verdicts}


@pytest.fixture
def exchange() -> Iterator[MockServer]:
    with MockServer(Config(port=0)) as server:
        yield server
        assert server.error_count == 0, format_errors(server.errors_since(0))


# --- broken servers -------------------------------------------------------------------------


class WrongMaxQty:
    """Answers POST /dapi/v1/leverage with a maxQty from `rule(brackets, leverage)`."""

    def __init__(self, app: WSGIApp, server: MockServer, rule: Callable[..., Decimal]) -> None:
        self.app = app
        self.exchange = server.app.extensions["dapi_mock"]
        self.rule = rule

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        held: dict[str, Any] = {}

        def hold(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            held.update(status=status, headers=headers)
            return lambda data: None

        body = b"".join(self.app(environ, hold))
        if environ["PATH_INFO"] == "/dapi/v1/leverage" and held["status"].startswith("200"):
            answer = json.loads(body)
            listing = self.exchange.market.listing(self.exchange.clock.now_ms())
            brackets = listing.symbols[answer["symbol"]].contract.brackets
            answer["maxQty"] = str(self.rule(brackets, answer["leverage"]))
            body = json.dumps(answer, separators=(",", ":")).encode()
        headers = [(k, v) for k, v in held["headers"] if k.lower() != "content-length"]
        start_response(held["status"], [*headers, ("Content-Length", str(len(body)))])
        return [body]


def first_fitting_bracket(brackets: Any, leverage: int) -> Decimal:
    """The classic slip: the *lowest*-numbered bracket that allows the leverage (always #1)."""
    return next(b.qty_cap for b in brackets if b.initial_leverage >= leverage)


def one_bracket_too_far(brackets: Any, leverage: int) -> Decimal:
    """Off by one: the bracket after the right one, so maxQty is too big."""
    fitting = [i for i, b in enumerate(brackets) if b.initial_leverage >= leverage]
    return brackets[min(fitting[-1] + 1, len(brackets) - 1)].qty_cap


def broken(wrap: Callable[[WSGIApp, MockServer], WSGIApp]) -> Iterator[MockServer]:
    with MockServer(Config(port=0)) as server:
        server.app.wsgi_app = wrap(server.app.wsgi_app, server)  # type: ignore[method-assign]
        yield server


# --- the mock holds the contract -------------------------------------------------------------


def test_the_mock_holds_every_property_with_mock_rules(exchange: MockServer) -> None:
    report = _verify(exchange, mock_rules=True, change_account_settings=True)
    assert _outcomes(report) == {DISCOVERY: "pass", **dict.fromkeys(PORTABLE + FLAGGED, "pass")}
    assert report.ok


def test_without_mock_rules_only_portable_properties_run_on_few_requests(
    exchange: MockServer,
) -> None:
    report = _verify(exchange, examples=5)
    outcomes = _outcomes(report)
    assert [n for n, o in outcomes.items() if o == "pass"] == [DISCOVERY, *PORTABLE]
    assert [n for n, o in outcomes.items() if o == "skip"] == FLAGGED
    for verdict in report.verdicts:
        if verdict.name in MOCK_ONLY:
            assert "--mock-rules" in verdict.summary
        if verdict.name in CHANGES_SETTINGS:
            assert "--change-account-settings" in verdict.summary
    # Few requests by default, and none to the control plane without --mock-rules.
    assert report.settings["requests"] < 120
    mock = exchange.handle()
    assert not [e for e in mock.requests() if e["path"].startswith("/__admin")]
    mock.close()


def test_the_run_puts_every_leverage_back(exchange: MockServer) -> None:
    report = _verify(exchange, examples=4)
    assert report.ok
    assert report.settings["restored"]
    with DapiClient(exchange.url, DEMO_API_KEY, secret=DEMO_SECRET) as client:
        assert {row.leverage for row in client.position_risk()} == {20}


def test_wrong_credentials_fail_discovery_and_skip_the_rest(exchange: MockServer) -> None:
    report = verify_server(
        exchange.url, DEMO_API_KEY, secret="not-the-secret", examples=2, seed=1, progress=None
    )
    discovery, *rest = report.verdicts
    assert (discovery.name, discovery.outcome) == (DISCOVERY, "fail")
    assert "expected 200, got 400" in discovery.summary
    assert any('"code":-1022' in line for line in discovery.details)
    assert {v.outcome for v in rest} == {"skip"}
    assert not report.ok


# --- broken servers are caught ---------------------------------------------------------------


def test_a_server_that_skips_the_signature_check_is_caught() -> None:
    for server in broken(lambda app, _: SkipsSignatureCheck(app)):
        report = _verify(server)
    failed = {v.name: v for v in report.verdicts if v.outcome == "fail"}
    assert set(failed) == {"wrong_signature_is_1022"}
    assert "expected 400 -1022, got 200" in failed["wrong_signature_is_1022"].summary
    assert any(
        "POST /dapi/v1/leverage" in line or "GET /dapi" in line
        for line in failed["wrong_signature_is_1022"].details
    )


@pytest.mark.parametrize("rule", [first_fitting_bracket, one_bracket_too_far])
def test_a_server_with_a_wrong_max_qty_is_caught(rule: Callable[..., Decimal]) -> None:
    for server in broken(lambda app, srv: WrongMaxQty(app, srv, rule)):
        report = _verify(server, examples=6)
    failed = {v.name: v for v in report.verdicts if v.outcome == "fail"}
    assert "max_qty_follows_published_brackets" in failed
    assert "the server's own brackets" in failed["max_qty_follows_published_brackets"].summary
    assert not report.ok


# --- position configuration (docs/behaviour.md#position-configuration) ------------------------

SETUP_PROPERTIES = [
    "account_matches_position_risk",
    "balance_matches_account",
    "margin_type_no_change_is_4046",
    "position_mode_no_change_is_4059",
    *CHANGES_SETTINGS,
]


def _state(server: MockServer) -> tuple[bool, set[str]]:
    """The demo account's position mode and the margin types its symbols have."""
    store = server.app.extensions["dapi_mock"].store
    with DapiClient(server.url, DEMO_API_KEY, secret=DEMO_SECRET) as client:
        types = {row.margin_type for row in client.position_risk()}
    return store.dual_side_position(DEMO_API_KEY), types


class Answers:
    """Answers `method path` itself with `status` and `body`: the request never reaches the mock."""

    def __init__(self, app: WSGIApp, method: str, path: str, status: int, body: Any) -> None:
        self.app, self.route, self.status, self.body = app, (method, path), status, body

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if (environ["REQUEST_METHOD"], environ["PATH_INFO"]) != self.route:
            return self.app(environ, start_response)
        data = json.dumps(self.body, separators=(",", ":")).encode()
        phrase = {200: "OK", 400: "Bad Request"}[self.status]
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
        start_response(f"{self.status} {phrase}", [*headers, ("X-MBX-USED-WEIGHT-1M", "1")])
        return [data]


class Rewrites:
    """The mock's answer to `method path`, its JSON body changed by `change`."""

    def __init__(self, app: WSGIApp, method: str, path: str, change: Callable[[Any], Any]) -> None:
        self.app, self.route, self.change = app, (method, path), change

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if (environ["REQUEST_METHOD"], environ["PATH_INFO"]) != self.route:
            return self.app(environ, start_response)
        held: dict[str, Any] = {}

        def hold(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            held.update(status=status, headers=headers)
            return lambda data: None

        body = json.dumps(self.change(json.loads(b"".join(self.app(environ, hold)))))
        data = body.replace(" ", "").encode()
        headers = [(k, v) for k, v in held["headers"] if k.lower() != "content-length"]
        start_response(held["status"], [*headers, ("Content-Length", str(len(data)))])
        return [data]


def test_settings_change_only_with_the_flag_and_are_put_back(exchange: MockServer) -> None:
    without = _verify(exchange, properties=CHANGES_SETTINGS)
    mock = exchange.handle()
    assert not [e for e in mock.requests() if e["method"] == "POST"]  # nothing was sent
    assert {v.outcome for v in without.verdicts[1:]} == {"skip"}

    report = _verify(exchange, properties=CHANGES_SETTINGS, change_account_settings=True)

    assert _outcomes(report) == {DISCOVERY: "pass", **dict.fromkeys(CHANGES_SETTINGS, "pass")}
    changes = {(e["path"], e["status"]) for e in mock.requests() if e["method"] == "POST"}
    assert changes == {("/dapi/v1/marginType", 200), ("/dapi/v1/positionSide/dual", 200)}
    mock.close()
    assert _state(exchange) == (False, {"cross"})


def test_the_set_up_properties_hold_on_a_hedge_mode_account_with_isolated_symbols(
    exchange: MockServer,
) -> None:
    mock = exchange.handle()
    mock.set_position_mode(True)
    mock.set_margin_type("BTCUSD_PERP", "ISOLATED")
    mock.positions.seed("ETHUSD_PERP", 3, position_side="LONG")
    mock.close()

    report = _verify(exchange, properties=SETUP_PROPERTIES, change_account_settings=True)

    outcomes = _outcomes(report)
    assert outcomes.pop("position_mode_reads_back") == "skip"  # a position is open
    assert set(outcomes.values()) == {"pass"}, report.failure_details()
    skipped = next(v for v in report.verdicts if v.name == "position_mode_reads_back")
    assert "a position is open on ETHUSD_PERP" in skipped.summary and "-4068" in skipped.summary
    store = exchange.app.extensions["dapi_mock"].store
    assert store.dual_side_position(DEMO_API_KEY) is True
    assert store.margin_type_of(DEMO_API_KEY, "BTCUSD_PERP") == "isolated"


@pytest.mark.parametrize(
    ("path", "code", "text", "skipped"),
    [
        (
            "/dapi/v1/marginType",
            -4047,
            "Margin type cannot be changed if there exists open orders.",
            "margin_type_reads_back",
        ),
        (
            "/dapi/v1/positionSide/dual",
            -4067,
            "Position side cannot be changed if there exists open orders.",
            "position_mode_reads_back",
        ),
    ],
)
def test_open_orders_on_a_real_account_skip_the_change_naming_the_rule(
    path: str, code: int, text: str, skipped: str
) -> None:
    def open_orders(app: WSGIApp, _: MockServer) -> WSGIApp:
        return Answers(app, "POST", path, 400, {"code": code, "msg": text})

    for server in broken(open_orders):
        report = _verify(server, properties=[skipped], change_account_settings=True)
    (verdict,) = report.verdicts[1:]
    rule = skipped.removesuffix("_reads_back").replace("_", "-")
    assert verdict.outcome == "skip", verdict.summary
    assert verdict.summary.startswith(f"rule {rule}: ")
    assert f"answered {code}: the account has open orders" in verdict.summary
    assert f"(rule {rule})" in verdict.summary


BROKEN_SETUPS = {
    "a -4046 without its final period": (
        Answers,
        (
            "POST",
            "/dapi/v1/marginType",
            400,
            {"code": -4046, "msg": "No need to change margin type"},
        ),
        "margin_type_no_change_is_4046",
        "expected msg 'No need to change margin type.'",
    ),
    "a margin type change that answers success and is lost": (
        Answers,
        ("POST", "/dapi/v1/marginType", 200, {"code": 200, "msg": "success"}),
        "margin_type_reads_back",
        "after a change to ISOLATED, positionRisk shows",
    ),
    "a position mode read that always says one-way": (
        Answers,
        ("GET", "/dapi/v1/positionSide/dual", 200, {"dualSidePosition": False}),
        "position_mode_reads_back",
        "after a change to hedge mode, positionSide/dual reads one-way",
    ),
    "a no-change position mode request that is accepted": (
        Answers,
        ("POST", "/dapi/v1/positionSide/dual", 200, {"code": 200, "msg": "success"}),
        "position_mode_no_change_is_4059",
        "expected 400 -4059, got 200",
    ),
    "account rows that call every symbol isolated": (
        Rewrites,
        (
            "GET",
            "/dapi/v1/account",
            lambda body: {
                **body,
                "positions": [{**p, "isolated": True} for p in body["positions"]],
            },
        ),
        "account_matches_position_risk",
        "the account answer shows leverage",
    ),
    "balance rows that lose the wallet": (
        Rewrites,
        (
            "GET",
            "/dapi/v1/balance",
            lambda rows: [{**r, "balance": "0.00000000"} for r in rows],
        ),
        "balance_matches_account",
        "BTC: balance shows balance 0.00000000, the account answer walletBalance 1.00000000",
    ),
}


@pytest.mark.parametrize("broken_by", list(BROKEN_SETUPS))
def test_a_server_that_breaks_a_set_up_rule_is_caught(broken_by: str) -> None:
    wrapper, arguments, name, message = BROKEN_SETUPS[broken_by]

    def wrap(app: WSGIApp, _: MockServer) -> WSGIApp:
        return wrapper(app, *arguments)  # type: ignore[operator]

    for server in broken(wrap):
        report = _verify(server, properties=[name], change_account_settings=True)
        state = _state(server)
    (verdict,) = report.verdicts[1:]
    assert verdict.outcome == "fail", verdict.summary
    assert message in verdict.summary
    assert state == (False, {"cross"})  # what the run changed was put back all the same


# --- pacing -----------------------------------------------------------------------------------


def test_the_runner_stays_under_the_servers_weight_limit() -> None:
    with MockServer(Config(port=0, weight_per_minute=40)) as server:
        mock = server.handle()
        slept: list[float] = []

        def sleep(seconds: float) -> None:
            # Waiting for the next weight window: move the mock clock instead of real time.
            slept.append(seconds)
            mock.clock.advance(int(seconds * 1000))

        report = _verify(server, examples=4, sleep=sleep, change_account_settings=True)
        journal = mock.requests()
        mock.close()
    assert report.ok, report.failure_details()
    assert slept, "the runner never waited for a new weight window"
    assert not [e for e in journal if e["status"] in (418, 429)]


def test_a_429_is_waited_out_and_the_request_sent_again(exchange: MockServer) -> None:
    mock = exchange.handle()
    mock.faults.add(
        {
            "match": {"method": "POST", "path": "/dapi/v1/leverage"},
            "action": {"type": "rate_limit", "status": 429, "retry_after": 2},
            "times": 1,
        }
    )
    mock.close()
    slept: list[float] = []
    report = _verify(exchange, properties=["valid_signed_requests_succeed"], sleep=slept.append)
    assert report.ok, report.failure_details()
    assert slept and slept[0] >= 2


# --- the command line ----------------------------------------------------------------------------


def test_cli_reports_progress_a_table_junit_and_json(
    exchange: MockServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junit, report_json = tmp_path / "verify.xml", tmp_path / "verify.json"
    status = main(
        [
            "verify-server",
            exchange.url,
            "--api-key",
            DEMO_API_KEY,
            "--secret",
            DEMO_SECRET,
            "--examples",
            "2",
            "--seed",
            "7",
            "--junit-xml",
            str(junit),
            "--json",
            str(report_json),
        ]
    )
    out = capsys.readouterr().out
    assert status == 0
    progress = [line for line in out.splitlines() if line.startswith("[")]
    assert len(progress) == 1 + len(PROPERTIES)
    assert "verify-server: ALL HOLD" in out and "seed 7" in out
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == (
        str(1 + len(PROPERTIES)),
        "0",
        str(len(FLAGGED)),
    )
    data = json.loads(report_json.read_text())
    assert data["ok"] is True and data["seed"] == 7
    assert [v["name"] for v in data["verdicts"]] == [DISCOVERY, *(p.name for p in PROPERTIES)]


def test_cli_exits_1_with_the_failing_request_in_the_report(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for server in broken(lambda app, _: SkipsSignatureCheck(app)):
        status = main(
            [
                *("verify-server", server.url, "--api-key", DEMO_API_KEY, "--secret", DEMO_SECRET),
                *("--examples", "2", "--seed", "3", "--only", "wrong_signature_is_1022"),
            ]
        )
    out = capsys.readouterr().out
    assert status == 1
    assert "FAIL wrong_signature_is_1022" in out
    assert "-> 200 " in out  # the answer that broke the property, under the request


def test_cli_refuses_bad_usage(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(
        [
            *("verify-server", "http://127.0.0.1:9", "--api-key", "k", "--secret", "s"),
            *("--only", "no_such_property"),
        ]
    )
    assert status == 2
    assert "no_such_property" in capsys.readouterr().err


@pytest.mark.parametrize("key_type", ["rsa", "ed25519"])
def test_cli_signs_with_a_private_key_file(
    exchange: MockServer, tmp_path: Path, key_type: str
) -> None:
    pem, public = new_pem_pair(key_type)
    api_key = f"verify{key_type}"
    mock = exchange.handle()
    mock.accounts.add(api_key, public_key=public)
    mock.close()
    key_file = tmp_path / "key.pem"
    key_file.write_text(pem)
    status = main(
        [
            *("verify-server", exchange.url, "--api-key", api_key),
            *("--private-key-file", str(key_file)),
            *("--examples", "2", "--seed", "11", "--mock-rules", "--quiet"),
        ]
    )
    assert status == 0


# --- as a user meets it ---------------------------------------------------------------------


def test_an_unreachable_server_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with MockServer(Config(port=0)) as server:
        url = server.url  # a port where nothing listens once the server is closed
    status = main(["verify-server", url, "--api-key", DEMO_API_KEY, "--secret", DEMO_SECRET])
    captured = capsys.readouterr()
    assert status == 2
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f"dapi-contract: cannot reach {url} (connection refused): is the server running?"
    ]


def test_the_header_and_the_progress_count_the_same_properties(
    exchange: MockServer, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(
        [
            *("verify-server", exchange.url, "--api-key", DEMO_API_KEY, "--secret", DEMO_SECRET),
            *("--examples", "1", "--seed", "5", "--only", "wrong_signature_is_1022"),
        ]
    )
    lines = capsys.readouterr().out.splitlines()
    assert status == 0
    assert lines[0].endswith(
        "2 properties (server_publishes_its_market first), 1 examples each, seed 5"
    )
    verdicts = [line for line in lines if line.startswith("[")]
    assert [line.split()[:3] for line in verdicts] == [
        ["[1/2]", "PASS", DISCOVERY],
        ["[2/2]", "PASS", "wrong_signature_is_1022"],
    ]
    # Not on a terminal: a line as each property starts, before its verdict.
    starts = [line.split()[:2] for line in lines if line.lstrip().startswith("start ")]
    assert starts == [["start", f"{DISCOVERY}:"], ["start", "wrong_signature_is_1022:"]]


def test_skip_reasons_name_the_rule_and_say_it() -> None:
    for prop in PROPERTIES:
        assert prop.reason.startswith(f"rule {prop.rule}: ")
    with MockServer(Config(port=0)) as server:
        report = _verify(server, examples=1)
    skipped = [v for v in report.verdicts if v.outcome == "skip"]
    assert [v.name for v in skipped] == FLAGGED
    by_name = {p.name: p for p in PROPERTIES}
    for verdict in skipped:
        flag = "--mock-rules" if by_name[verdict.name].mock_rules else "--change-account-settings"
        assert verdict.summary.startswith(f"rule {by_name[verdict.name].rule}: ")
        assert "SPEC" not in verdict.summary and flag in verdict.summary


@pytest.mark.parametrize(
    ("only", "error"),
    [
        ("", "--only needs at least one property name"),
        ("no_such_property", "unknown properties: no_such_property"),
        ("wrong_signature_is_1022,nope", "unknown properties: nope"),
    ],
)
def test_a_property_subset_that_cannot_run_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], only: str, error: str
) -> None:
    status = main(
        [
            *("verify-server", "http://127.0.0.1:9", "--api-key", "k", "--secret", "s"),
            *("--only", only),
        ]
    )
    assert status == 2
    assert error in capsys.readouterr().err


def test_the_discovery_alone_is_a_subset_too(exchange: MockServer) -> None:
    report = _verify(exchange, properties=[DISCOVERY])
    assert _outcomes(report) == {DISCOVERY: "pass"}


@pytest.mark.parametrize("argument", [("--examples", "0"), ("--timeout", "0")])
def test_numbers_no_run_can_use_are_usage_errors(
    capsys: pytest.CaptureFixture[str], argument: tuple[str, str]
) -> None:
    status = main(
        ["verify-server", "http://127.0.0.1:9", "--api-key", "k", "--secret", "s", *argument]
    )
    assert status == 2
    assert capsys.readouterr().err.startswith("dapi-contract: ")


def test_help_describes_every_option_default_and_property(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["verify-server", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Check that the server at BASE_URL holds the properties" in text
    assert "--api-key API_KEY the API key the requests are sent with" in text
    assert "(default: 5)" in text and "(default: 10.0)" in text
    assert f"properties ({len(PROPERTIES) + 1};" in text
    for prop in PROPERTIES:
        assert f"{prop.name} rule {prop.reason.removeprefix('rule ')}" in text
    assert "SPEC" not in text


def test_pacing_says_so_while_it_waits() -> None:
    with MockServer(Config(port=0, weight_per_minute=40)) as server:
        mock = server.handle()
        shown = io.StringIO()

        def sleep(seconds: float) -> None:
            mock.clock.advance(int(seconds * 1000))

        report = _verify(server, examples=4, sleep=sleep, progress=shown)
        mock.close()
    assert report.ok, report.failure_details()
    pacing = [line.strip() for line in shown.getvalue().splitlines() if "pacing:" in line]
    assert pacing and "of the server's 40 weight a minute used" in pacing[0]
    assert "waiting" in pacing[0] and "for the next minute" in pacing[0]
