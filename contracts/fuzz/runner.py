"""`fuzz-client`: run a client against the mock once per scenario and judge each run.

Each scenario gets a fresh account (so a fresh 20x leverage, its own journal
entries and its own fault rules), one client run with the DAPI_* environment,
then a verdict from three sources: the mock's journal (what the client sent),
the mock's state (whether the change really happened) and the client's exit
status (what it claimed). See ``SCENARIO_RULES`` for the rules applied.
"""

from __future__ import annotations

import contextlib
import random
import secrets
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from contracts.client import DapiClient, DapiError
from contracts.fuzz.client_under_test import (
    ClientEnv,
    ClientRun,
    ClientSpec,
    describe,
    run_callable,
    run_command,
)
from contracts.fuzz.extra_fields import ExtraFields
from contracts.fuzz.judging import ScenarioAccount, judge_journal
from contracts.fuzz.scenarios import (
    KEY_TYPES,
    LEVERAGE_PATH,
    MAX_HOLD_MS,
    Scenario,
    choose_scenarios,
)
from contracts.reporting import Progress, Report, Verdict
from contracts.signing import new_pem_pair

DEFAULT_LEVERAGE = 20


class ClientFuzzer:
    """The mock (with the extra-fields wrapper), fresh accounts and the per-scenario verdicts."""

    def __init__(
        self,
        *,
        seed: int = 0,
        symbols: Sequence[str] | None = None,
        time_limit_s: float = 30.0,
        progress: Progress | None = None,
    ) -> None:
        from mockserver.config import Config
        from mockserver.harness import MockServer

        self.rng = random.Random(seed)
        self.time_limit_s = time_limit_s
        self.progress = progress or Progress(0)
        # No weight limit: scenarios share 127.0.0.1, and 429/418 come from the scenarios.
        self.server = MockServer(Config(port=0, weight_per_minute=0, journal_size=100_000))
        self.extra_fields = ExtraFields(self.server.app.wsgi_app)
        self.server.app.wsgi_app = self.extra_fields  # type: ignore[method-assign]
        self.mock = self.server.handle()
        self.mock.reset()
        self._keys_dir = tempfile.TemporaryDirectory(prefix="dapi-fuzz-")
        self._key_pairs: dict[str, tuple[str, str]] = {}
        self.max_leverage = self._listed_max_leverage()
        self.symbols = list(symbols) if symbols else sorted(self.max_leverage)
        missing = [s for s in self.symbols if s not in self.max_leverage]
        if missing:
            raise ValueError(f"not listed by the mock: {', '.join(missing)}")

    def close(self) -> None:
        self.mock.close()
        # A client under test may leave keep-alive connections open, which can make
        # waitress fail while closing (EBADF); the verdicts are complete by now.
        with contextlib.suppress(OSError):
            self.server.close()
        self._keys_dir.cleanup()

    def __enter__(self) -> ClientFuzzer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _listed_max_leverage(self) -> dict[str, int]:
        with DapiClient(self.mock.url, self.mock.api_key, secret=self.mock.secret) as client:
            return {
                row.symbol: max(b.initial_leverage for b in row.brackets)
                for row in client.leverage_brackets()
            }

    # accounts

    def _key_pair(self, key_type: str) -> tuple[str, str]:
        if key_type not in self._key_pairs:
            self._key_pairs[key_type] = new_pem_pair(key_type)
        return self._key_pairs[key_type]

    def new_account(self, key_type: str, number: int) -> ScenarioAccount:
        api_key = f"fuzz{number}x{secrets.token_hex(6)}"
        if key_type == "hmac":
            account = ScenarioAccount(api_key, key_type, secret=secrets.token_hex(24))
            self.mock.accounts.add(api_key, secret=account.secret)
            return account
        private, public = self._key_pair(key_type)
        path = Path(self._keys_dir.name) / f"{key_type}.pem"
        if not path.exists():
            path.write_text(private)
            path.chmod(0o600)
        self.mock.accounts.add(api_key, public_key=public)
        return ScenarioAccount(api_key, key_type, None, private, public, str(path))

    def leverage_shown(self, account: ScenarioAccount, symbol: str) -> int | None:
        """The account's leverage for `symbol` as positionRisk shows it now."""
        with DapiClient(
            self.mock.url,
            account.api_key,
            secret=account.secret,
            private_key=account.private_key_pem,
            time_sync=True,
        ) as client:
            for row in client.position_risk():
                if row.symbol == symbol:
                    return row.leverage
        return None

    # one scenario

    def run(self, client: ClientSpec, scenario: Scenario, number: int) -> Verdict:
        started = time.perf_counter()
        account = self.new_account(scenario.key_type, number)
        symbol = self.rng.choice(self.symbols)
        top = self.max_leverage[symbol]
        if scenario.above_max:
            leverage = top + self.rng.randint(1, 25)
        else:
            leverage = self.rng.choice([v for v in range(1, top + 1) if v != DEFAULT_LEVERAGE])
        env = ClientEnv(
            self.mock.url,
            account.api_key,
            account.secret,
            account.private_key_file,
            symbol,
            leverage,
        )
        retry_after: dict[int, int] = {}  # rate-limit fault id -> its Retry-After
        for rule in scenario.faults:
            match = {"method": "POST", "path": LEVERAGE_PATH, "api_key": account.api_key}
            rule_id = self.mock.faults.add({"match": match, **rule})
            if rule["action"]["type"] == "rate_limit":
                retry_after[rule_id] = rule["action"]["retry_after"]
        if scenario.clock_offset_ms:
            self.mock.clock.offset(scenario.clock_offset_ms)
        self.extra_fields.active = scenario.extra_fields
        limit = self.time_limit_s + (scenario.holds_ms / 1000 if scenario.waits_for_hold else 0)
        if scenario.holds_ms:
            self.progress.note(
                f"the mock holds the first leverage answer up to {scenario.holds_ms / 1000:g} s; "
                f"the run ends when the client gives up (at most {limit:g} s)"
            )
        try:
            outcome = (
                run_callable(client, env, limit)
                if callable(client)
                else run_command(client, env, limit)
            )
            # Judged as the client left it: a held answer that has not ended by now is dropped
            # by the reset below (connection closed, nothing changed), never waited out.
            entries = [
                e for e in self.mock.requests() if e.get("api_key") in (account.api_key, None)
            ]
            self.extra_fields.active = False
            try:
                shown = self.leverage_shown(account, symbol)
            except DapiError as exc:
                shown = None
                state_error = f"could not read the state: {exc}"
            else:
                state_error = ""
        finally:
            # docs/behaviour.md#control-plane: a reset drops held requests, faults, the clock
            # offset, this scenario's account and journal: the next scenario starts clean.
            self.extra_fields.active = False
            self.mock.reset()
        applied = shown == leverage
        problems = self._outcome_problems(scenario, outcome, applied, shown, leverage, limit)
        if state_error:
            problems.append(state_error)
        problems += judge_journal(entries, scenario, account, symbol, leverage, retry_after)
        return self._verdict(
            scenario, env, outcome, applied, shown, entries, problems, started, account
        )

    @staticmethod
    def _outcome_problems(
        scenario: Scenario,
        outcome: ClientRun,
        applied: bool,
        shown: int | None,
        leverage: int,
        limit: float,
    ) -> list[str]:
        if not outcome.ended:
            return [f"time: still running after {limit:.1f} s"]
        problems = []
        if outcome.exit_status == 0 and not applied:
            problems.append(f"honesty: exited 0, but the leverage is {shown}, not {leverage}")
        if outcome.exit_status != 0 and scenario.must_succeed:
            problems.append(
                f"honesty: failed (exit {outcome.exit_status}) where nothing went wrong"
            )
        elif outcome.exit_status != 0 and applied and not scenario.ambiguous:
            problems.append(
                f"honesty: failed (exit {outcome.exit_status}) although the change was applied "
                "and answered 200"
            )
        return problems

    @staticmethod
    def _verdict(
        scenario: Scenario,
        env: ClientEnv,
        outcome: ClientRun,
        applied: bool,
        shown: int | None,
        entries: Sequence[dict[str, Any]],
        problems: list[str],
        started: float,
        account: ScenarioAccount,
    ) -> Verdict:
        requests = [
            {
                "id": e["id"],
                "method": e["method"],
                "path": e["path"],
                "query": e["query"],
                "body": e["body"],
                "status": e["status"],
                "code": e["code"],
                "fault": e["fault"],
                "reason": e["reason"],
            }
            for e in entries
        ]
        ending = "did not end" if not outcome.ended else f"exit {outcome.exit_status}"
        state = f"leverage now {shown} ({'applied' if applied else 'not applied'})"
        summary = (
            "; ".join(problems[:3]) + (f" (+{len(problems) - 3} more)" if len(problems) > 3 else "")
            if problems
            else f"{ending}, {state}, {len(entries)} requests"
        )
        details = [
            f"scenario: {scenario.title}",
            f"asked: {env.symbol} at {env.leverage}x with a {account.key_type} key",
            f"client: {ending} after {outcome.seconds:.2f} s; {state}",
        ]
        if outcome.output:
            details.append(
                "client output: " + outcome.output.strip().replace("\n", "\n    ")[-800:]
            )
        details += [
            f"request #{r['id']}: {r['method']} {r['path']} -> {r['status']} {r['code']}"
            + (f" [fault {r['fault']}]" if r["fault"] else "")
            for r in requests
        ]
        details += [f"problem: {p}" for p in problems]
        return Verdict(
            scenario.name,
            "fail" if problems else "pass",
            summary,
            details,
            time.perf_counter() - started,
            {
                "title": scenario.title,
                "symbol": env.symbol,
                "leverage": env.leverage,
                "key_type": account.key_type,
                "exit_status": outcome.exit_status,
                "client_seconds": round(outcome.seconds, 3),
                "applied": applied,
                "leverage_shown": shown,
                "requests": requests,
                "problems": problems,
            },
        )


def fuzz_client(
    client: ClientSpec,
    *,
    scenarios: int | None = None,
    seed: int | None = None,
    symbols: Sequence[str] | None = None,
    key_types: Sequence[str] = ("hmac",),
    slow_ms: int = 12_000,
    time_limit_s: float = 30.0,
    only: Sequence[str] | None = None,
    progress: TextIO | None = sys.stdout,
) -> Report:
    """Run `client` (a callable, or a command as an argv list) once per scenario; the report.

    A callable gets ``base_url, api_key, api_secret, private_key_file, symbol,
    leverage`` as keyword arguments and returns on success or raises; a
    command gets them as DAPI_* environment variables and exits 0 on success.
    Raises ValueError for options no run can use.
    """
    key_types = list(dict.fromkeys(key_types))  # "hmac,hmac" is one key type
    unknown = sorted(set(key_types) - set(KEY_TYPES))
    if unknown or not key_types:
        raise ValueError(
            f"key types must be among {', '.join(KEY_TYPES)}"
            + (f", not {', '.join(unknown)}" if unknown else "")
        )
    if not 1 <= slow_ms <= MAX_HOLD_MS:
        raise ValueError(f"the slow answer's delay must be 1..{MAX_HOLD_MS} ms, not {slow_ms}")
    if not 0 < time_limit_s <= MAX_HOLD_MS / 1000 - 2:
        raise ValueError(
            f"the time limit must be above 0 and at most {MAX_HOLD_MS // 1000 - 2} s, "
            f"not {time_limit_s}"
        )
    seed = random.SystemRandom().randrange(2**32) if seed is None else seed
    rng = random.Random(seed)
    chosen = choose_scenarios(scenarios, rng, slow_ms, key_types, only, time_limit_s)
    report = Report(
        "fuzz-client",
        describe(client),
        seed,
        {
            "scenarios": len(chosen),
            "key_types": ",".join(key_types),
            "slow_ms": slow_ms,
            "time_limit_s": time_limit_s,
        },
    )
    started = time.perf_counter()
    with (
        Progress(len(chosen), progress) as show,
        ClientFuzzer(
            seed=seed, symbols=symbols, time_limit_s=time_limit_s, progress=show
        ) as fuzzer,
    ):
        show.line(
            f"fuzz-client {report.target}: {len(chosen)} scenarios against {fuzzer.mock.url}, "
            f"seed {seed}"
        )
        for number, scenario in enumerate(chosen, start=1):
            show.start(scenario.name, scenario.title)
            verdict = fuzzer.run(client, scenario, number)
            report.verdicts.append(verdict)
            show(verdict)
    report.seconds = time.perf_counter() - started
    return report
