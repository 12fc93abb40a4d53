"""Run a client against the mock while the kit varies the answers; judge what it sent and did.

Each scenario gets a fresh account (so a fresh 20x leverage, its own journal
entries and its own fault rules), one client run with SPEC 6's environment,
then a verdict from three sources: the mock's journal (what the client sent),
the mock's state (whether the change really happened) and the client's exit
status (what it claimed). See ``SCENARIO_RULES`` for the rules applied.

Unknown response fields are added by a WSGI wrapper around the mock's app
(`ExtraFields`), not by a fault action: it is a test-kit concern, needs no
change to the server's fault format, and only ever runs inside the kit's own
in-process mock.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, TextIO
from urllib.parse import parse_qsl, unquote

from contracts import strategies as S
from contracts.client import DapiClient, DapiError
from contracts.reporting import Progress, Report, Verdict
from contracts.signing import new_pem_pair

LEVERAGE_PATH = "/dapi/v1/leverage"
LEVERAGE_PARAMS = frozenset({"symbol", "leverage", "recvWindow", "timestamp", "signature"})
DEFAULT_LEVERAGE = 20
#: More leverage requests than this in one run is hammering, whatever the answers were.
MAX_LEVERAGE_ATTEMPTS = 5
#: Slack for clock granularity when judging whether Retry-After was honoured.
RETRY_AFTER_SLACK_MS = 100
KEY_TYPES = ("hmac", "rsa", "ed25519")

SCENARIO_RULES = """\
Rules applied to every scenario:
  time       the client ends within the time limit (plus the answer delay of slow scenarios)
  honesty    exit 0 only when the mock's state shows the asked leverage; a failure exit while
             the change was applied is fine only where the client cannot know (applied-then-5xx,
             a delay past its timeout, a malformed body); plain and extra-fields scenarios must
             succeed
  journal    no request the kit did not fault is rejected for its form (-1100 -1101 -1102 -1104
             -1130 -2014 -2015 -1121 -1022, 404/405), for its timestamp (-1021, unless the kit
             skewed the clock) or its leverage (-4028, unless the kit asked for too much)
  signature  the kit verifies every signature itself over the raw query + body: a wrong one is
             the client's fault, a right one answered -1022 is the server's
  params     leverage requests carry exactly the asked symbol and leverage, INT/LONG values as
             ASCII digits, only documented parameters, recvWindow <= 60000
  patience   no request before a 429/418's Retry-After ran out; at most 5 leverage requests
"""


# --- scenarios -------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """One way the kit varies the mock's answers for a single client run."""

    name: str
    title: str
    faults: tuple[dict[str, Any], ...] = ()  # actions and `times`/`every`; the kit adds `match`
    clock_offset_ms: int = 0  # mock clock minus real time during the run
    extra_fields: bool = False
    key_type: str = "hmac"
    above_max: bool = False  # ask for more leverage than the symbol allows
    must_succeed: bool = False
    ambiguous: bool = False  # the client cannot know whether the change applied
    waits_for_hold: bool = True  # the time limit is extended by the hold (not for `hung-answer`)

    @property
    def holds_ms(self) -> int:
        """How long the mock may hold an answer (delay faults)."""
        return max((f["action"].get("ms", 0) for f in self.faults), default=0)


def _error(status: int, code: int, msg: str) -> dict[str, Any]:
    return {"type": "error", "status": status, "code": code, "msg": msg}


#: SPEC 1.3, every error the exchange documents: (scenario suffix, status, code, msg).
DOCUMENTED_ERRORS: tuple[tuple[str, int, int, str], ...] = (
    ("unknown-path-404", 404, -5000, "Path /dapi/v1/leverage, Method POST is invalid"),
    ("wrong-method-405", 405, -5000, "Path /dapi/v1/leverage, Method POST is invalid"),
    ("body-too-large-413", 413, -1101, "Too many parameters sent for this endpoint."),
    ("illegal-characters-1100", 400, -1100, "Illegal characters found in a parameter."),
    ("duplicate-parameter-1101", 400, -1101, "Duplicate values for a parameter detected."),
    ("api-key-format-2014", 401, -2014, "API-key format invalid."),
    ("api-key-rejected-2015", 401, -2015, "Invalid API-key, IP, or permissions for action."),
    (
        "mandatory-parameter-1102",
        400,
        -1102,
        "Mandatory parameter 'leverage' was not sent, was empty/null, or malformed.",
    ),
    ("invalid-recv-window-1130", 400, -1130, "Data sent for parameter 'recvWindow' is not valid."),
    (
        "stale-timestamp-1021",
        400,
        -1021,
        "Timestamp for this request is outside of the recvWindow.",
    ),
    (
        "ahead-timestamp-1021",
        400,
        -1021,
        "Timestamp for this request was 1000ms ahead of the server's time.",
    ),
    ("bad-signature-1022", 400, -1022, "Signature for this request is not valid."),
    (
        "unread-parameters-1104",
        400,
        -1104,
        "Not all sent parameters were read; read '4' parameter(s) but was sent '5'.",
    ),
    ("invalid-symbol-1121", 400, -1121, "Invalid symbol."),
    ("invalid-leverage-4028", 400, -4028, "Leverage 200 is not valid"),
    (
        "position-too-large-2027",
        400,
        -2027,
        "Exceeded the maximum allowable position at current leverage.",
    ),
    (
        "isolated-reduction-4150",
        400,
        -4150,
        "Leverage reduction is not supported in Isolated Margin Mode with open positions.",
    ),
    (
        "too-many-requests-1003",
        429,
        -1003,
        "Too many requests; current limit is 2400 requests per minute. Please use the "
        "websocket for live updates to avoid polling the API.",
    ),
    ("unknown-error-500", 500, -1000, "An unknown error occured while processing the request."),
    (
        "unavailable-503",
        503,
        -1001,
        "Internal error; unable to process your request. Please try again.",
    ),
)
UNAVAILABLE = _error(
    503, -1001, "Internal error; unable to process your request. Please try again."
)


def catalogue(
    slow_ms: int = 12_000, key_types: Sequence[str] = ("hmac",), time_limit_s: float = 30.0
) -> list[Scenario]:
    """Every scenario kind once; `slow_ms` is the delay meant to outlast the client's timeout."""
    hung_ms = int(time_limit_s * 1000) + 2000
    key = "hmac" if "hmac" in key_types else key_types[0]
    found = [
        Scenario("plain", "no fault: the change must succeed", key_type=key, must_succeed=True),
        Scenario(
            "extra-response-fields",
            "every JSON answer carries unknown fields: a tolerant reader succeeds",
            extra_fields=True,
            key_type=key,
            must_succeed=True,
        ),
    ]
    found += [
        Scenario(f"{k}-plain", f"no fault, {k.upper()} key", key_type=k, must_succeed=True)
        for k in key_types
        if k != key
    ]
    found += [
        Scenario(
            f"error-{suffix}",
            f"every leverage request answers {status} {code}",
            faults=({"action": _error(status, code, msg)},),
            key_type=key,
        )
        for suffix, status, code, msg in DOCUMENTED_ERRORS
    ]
    found += [
        Scenario(
            "retry-after-429",
            "the first leverage request answers 429 with Retry-After: 1",
            faults=(
                {"action": {"type": "rate_limit", "status": 429, "retry_after": 1}, "times": 1},
            ),
            key_type=key,
        ),
        Scenario(
            "banned-418",
            "every leverage request answers 418 with Retry-After: 120",
            faults=({"action": {"type": "rate_limit", "status": 418, "retry_after": 120}},),
            key_type=key,
        ),
        Scenario(
            "transient-503",
            "the first leverage request answers 503 -1001 (not applied)",
            faults=({"action": UNAVAILABLE, "times": 1},),
            key_type=key,
        ),
        Scenario(
            "slow-answer",
            f"the first leverage answer is held {slow_ms} ms (past common timeouts), then applied",
            faults=({"action": {"type": "delay", "ms": slow_ms}, "times": 1},),
            key_type=key,
            ambiguous=True,
        ),
        Scenario(
            "hung-answer",
            f"the first leverage answer is held {hung_ms} ms, past the time limit: the client "
            "must give up on its own",
            faults=({"action": {"type": "delay", "ms": hung_ms}, "times": 1},),
            key_type=key,
            ambiguous=True,
            waits_for_hold=False,
        ),
        Scenario(
            "dropped-connection",
            "the first leverage request's connection is closed without an answer (not applied)",
            faults=({"action": {"type": "drop"}, "times": 1},),
            key_type=key,
        ),
        Scenario(
            "malformed-body",
            "the first leverage answer is a 200 cut in half (applied)",
            faults=({"action": {"type": "malformed"}, "times": 1},),
            key_type=key,
            ambiguous=True,
        ),
        Scenario(
            "applied-then-500",
            "the first leverage request is applied, then answered 500 -1000",
            faults=(
                {
                    "action": {
                        **_error(
                            500, -1000, "An unknown error occured while processing the request."
                        ),
                        "type": "apply_then_error",
                    },
                    "times": 1,
                },
            ),
            key_type=key,
            ambiguous=True,
        ),
        Scenario(
            "applied-then-503",
            "the first leverage request is applied, then answered 503 -1001",
            faults=({"action": {**UNAVAILABLE, "type": "apply_then_error"}, "times": 1},),
            key_type=key,
            ambiguous=True,
        ),
        Scenario(
            "server-clock-ahead-6s",
            "the mock clock runs 6 s ahead: unsynced timestamps are stale for recvWindow 5000",
            clock_offset_ms=6_000,
            key_type=key,
        ),
        Scenario(
            "server-clock-behind-2s",
            "the mock clock runs 2 s behind: unsynced timestamps are 1000 ms ahead",
            clock_offset_ms=-2_000,
            key_type=key,
        ),
        Scenario(
            "server-clock-behind-1h",
            "the mock clock runs an hour behind: only a synced client succeeds",
            clock_offset_ms=-3_600_000,
            key_type=key,
        ),
        Scenario(
            "leverage-above-max",
            "the asked leverage is above the symbol's maximum: the mock answers -4028",
            key_type=key,
            above_max=True,
        ),
    ]
    return found


def choose_scenarios(
    count: int | None,
    rng: random.Random,
    slow_ms: int,
    key_types: Sequence[str],
    only: Sequence[str] | None = None,
    time_limit_s: float = 30.0,
) -> list[Scenario]:
    """All kinds by default; fewer: `plain` plus a seeded sample; more: seeded combinations."""
    kinds = catalogue(slow_ms, key_types, time_limit_s)
    if only:
        unknown = sorted(set(only) - {k.name for k in kinds})
        if unknown:
            raise ValueError(f"unknown scenarios: {', '.join(unknown)}")
        kinds = [k for k in kinds if k.name in only]
    if count is None or count == len(kinds):
        return kinds
    if count < len(kinds):
        picked = sorted(rng.sample(range(1, len(kinds)), max(0, count - 1)))
        return [kinds[0], *(kinds[i] for i in picked)][:count]
    faulted = [k for k in kinds if k.faults]
    skewed = [k for k in kinds if k.clock_offset_ms]
    extra = []
    for number in range(count - len(kinds)):
        fault, skew = rng.choice(faulted), rng.choice(skewed)
        extra.append(
            replace(
                fault,
                name=f"combo-{number + 1}-{fault.name}+{skew.name}",
                title=f"{fault.title}; {skew.title}",
                clock_offset_ms=skew.clock_offset_ms,
                key_type=rng.choice(list(key_types)),
                extra_fields=rng.random() < 0.5,
            )
        )
    return kinds + extra


# --- the client under test ---------------------------------------------------------------


@dataclass(frozen=True)
class ClientEnv:
    """What a client is given (SPEC 6)."""

    base_url: str
    api_key: str
    api_secret: str | None
    private_key_file: str | None
    symbol: str
    leverage: int

    def as_environ(self) -> dict[str, str]:
        env = {
            "DAPI_BASE_URL": self.base_url,
            "DAPI_API_KEY": self.api_key,
            "DAPI_SYMBOL": self.symbol,
            "DAPI_LEVERAGE": str(self.leverage),
        }
        if self.api_secret is not None:
            env["DAPI_API_SECRET"] = self.api_secret
        if self.private_key_file is not None:
            env["DAPI_PRIVATE_KEY_FILE"] = self.private_key_file
        return env

    def as_kwargs(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "api_key": self.api_key,
            "api_secret": self.api_secret,
            "private_key_file": self.private_key_file,
            "symbol": self.symbol,
            "leverage": self.leverage,
        }


@dataclass
class ClientRun:
    """How one client run ended: exit status None means it was still running at the limit."""

    exit_status: int | None
    seconds: float
    output: str = ""

    @property
    def ended(self) -> bool:
        return self.exit_status is not None


ClientCallable = Callable[..., object]
ClientSpec = ClientCallable | Sequence[str]


def run_callable(client: ClientCallable, env: ClientEnv, limit_s: float) -> ClientRun:
    """Call `client(**env)` in a daemon thread; returning is exit 0, raising is exit 1."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            client(**env.as_kwargs())
            outcome["status"] = 0
        except BaseException as exc:
            outcome["status"] = 1
            outcome["output"] = f"{type(exc).__module__}.{type(exc).__name__}: {exc}"

    started = time.perf_counter()
    thread = threading.Thread(target=target, name="fuzzed-client", daemon=True)
    thread.start()
    thread.join(limit_s)
    seconds = time.perf_counter() - started
    if thread.is_alive():
        return ClientRun(None, seconds, "still running at the time limit (thread abandoned)")
    return ClientRun(outcome.get("status", 1), seconds, outcome.get("output", ""))


def run_command(command: Sequence[str], env: ClientEnv, limit_s: float) -> ClientRun:
    """Run `command` with the DAPI_* environment; killed (whole process group) at the limit."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(
            list(command),
            env={**os.environ, **env.as_environ()},
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            status: int | None = process.wait(timeout=limit_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            status = None
        output.seek(0)
        text = output.read()[-4000:].decode("utf-8", "replace")
    return ClientRun(status, time.perf_counter() - started, text)


def describe(client: ClientSpec) -> str:
    if callable(client):
        return getattr(client, "__qualname__", None) or repr(client)
    return " ".join(client)


# --- unknown response fields ----------------------------------------------------------


class ExtraFields:
    """WSGI wrapper: while `active`, every JSON object a Binance route answers gets unknown keys."""

    FIELDS: ClassVar[dict[str, Any]] = {
        "dapiMockUnknownField": "added by the fuzz kit",
        "updateTimeNs": 0,
        "unknownList": [1, 2],
        "unknownObject": {"nested": True},
    }

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.active = False

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if not self.active or str(environ.get("PATH_INFO", "")).startswith("/__admin"):
            return self.app(environ, start_response)
        held: dict[str, Any] = {}
        chunks: list[bytes] = []

        def hold(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            held["status"], held["headers"] = status, headers
            return chunks.append

        result = self.app(environ, hold)
        try:
            chunks.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        body = b"".join(chunks)
        if "status" not in held:
            return [body]
        headers = [(k, v) for k, v in held["headers"] if k.lower() != "content-length"]
        if held["status"].startswith("200") and body:
            body = self._widened(body)
        headers.append(("Content-Length", str(len(body))))
        start_response(held["status"], headers)
        return [body]

    def _widened(self, body: bytes) -> bytes:
        try:
            payload = json.loads(body)
        except ValueError:
            return body  # a malformed-body fault: leave it cut
        if isinstance(payload, dict):
            payload = {**payload, **self.FIELDS}
        elif isinstance(payload, list):
            payload = [{**r, **self.FIELDS} if isinstance(r, dict) else r for r in payload]
        return json.dumps(payload, separators=(",", ":")).encode()


# --- judging the journal ---------------------------------------------------------------

FORM_CODES = {
    -1100: "illegal characters",
    -1101: "too many or duplicate parameters",
    -1102: "a mandatory parameter missing or malformed",
    -1104: "unread parameters",
    -1130: "an invalid optional parameter",
    -2014: "an API key of the wrong form",
    -2015: "an unknown API key",
    -1121: "an unlisted symbol",
}


@dataclass
class Account:
    """The fresh account of one scenario; `verify` is the kit's own signature check."""

    api_key: str
    key_type: str
    secret: str | None = None
    private_key_pem: str | None = None
    public_key_pem: str | None = None
    private_key_file: str | None = None

    def verify(self, payload: bytes, signature: str) -> bool:
        if self.secret is not None:
            expected = hmac.new(self.secret.encode(), payload, hashlib.sha256).hexdigest()
            return hmac.compare_digest(expected, signature.lower())
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding, rsa

        public = serialization.load_pem_public_key((self.public_key_pem or "").encode())
        try:
            raw = base64.b64decode(signature, validate=True)
            if isinstance(public, rsa.RSAPublicKey):
                public.verify(raw, payload, padding.PKCS1v15(), hashes.SHA256())
            else:
                public.verify(raw, payload)  # type: ignore[union-attr, call-arg]
        except (InvalidSignature, ValueError):
            return False
        return True


def signed_payload(query: str, body: str) -> tuple[bytes, str | None, bool]:
    """(payload, signature, signature-is-last) read from raw parts, independently of the server."""
    found: list[tuple[str, bool]] = []
    parts: list[str] = []
    for part in (query, body):
        head, _, last = part.rpartition("&")
        if last.partition("=")[0] == "signature":
            found.append((unquote(last.partition("=")[2]), True))
            parts.append(head)
        else:
            elements = [e for e in part.split("&") if e.partition("=")[0] == "signature"]
            found += [(unquote(e.partition("=")[2]), False) for e in elements]
            parts.append(part)
    if not found:
        return (query + body).encode(), None, False
    signature, is_last = found[0]
    return "".join(parts).encode(), signature, is_last and len(found) == 1


def _params(entry: dict[str, Any]) -> list[tuple[str, str]]:
    pairs = []
    for part in (entry.get("query") or "", entry.get("body") or ""):
        pairs += parse_qsl(part, keep_blank_values=True)
    return pairs


def judge_journal(
    entries: Sequence[dict[str, Any]],
    scenario: Scenario,
    account: Account,
    symbol: str,
    leverage: int,
    retry_after: dict[int, int],
) -> list[str]:
    """What is wrong with what the client sent (empty: nothing)."""
    problems: list[str] = []
    leverage_requests = [e for e in entries if e["path"] == LEVERAGE_PATH]
    if len(leverage_requests) > MAX_LEVERAGE_ATTEMPTS:
        problems.append(
            f"patience: {len(leverage_requests)} leverage requests (at most "
            f"{MAX_LEVERAGE_ATTEMPTS})"
        )
    for entry in entries:
        where = f"#{entry['id']} {entry['method']} {entry['path']}"
        problems += [f"{where}: {p}" for p in _entry_problems(entry, scenario, account)]
        if entry["path"] == LEVERAGE_PATH:
            problems += [f"{where}: {p}" for p in _leverage_params(entry, symbol, leverage)]
    problems += _retry_after_problems(entries, retry_after)
    return problems


def _entry_problems(entry: dict[str, Any], scenario: Scenario, account: Account) -> list[str]:
    problems = []
    code, faulted = entry.get("code"), entry.get("fault") is not None
    if not faulted:
        if entry.get("status") in (404, 405):
            problems.append(f"journal: called a route the contract does not have ({code})")
        elif code in FORM_CODES:
            problems.append(f"journal: rejected {code} for {FORM_CODES[code]}: {entry['reason']}")
        elif code == -1021 and not scenario.clock_offset_ms:
            problems.append(f"journal: timestamp outside the window: {entry['reason']}")
        elif code == -4028 and not scenario.above_max:
            problems.append(f"journal: leverage rejected: {entry['reason']}")
        elif code == -1003:
            problems.append(f"journal: rate limit exceeded: {entry['reason']}")
    if entry.get("api_key") != account.api_key:
        return problems
    payload, signature, last = signed_payload(entry.get("query") or "", entry.get("body") or "")
    if signature is None:
        return problems
    valid = last and account.verify(payload, signature)
    if not valid and not faulted:
        what = "is not the last element" if not last else "does not cover the bytes sent"
        problems.append(f"signature: the client's signature {what} (payload {payload[:200]!r})")
    elif valid and code == -1022 and not faulted:
        problems.append("signature: SERVER BUG: a valid signature was answered -1022")
    return problems


def _leverage_params(entry: dict[str, Any], symbol: str, leverage: int) -> list[str]:
    problems = []
    pairs = _params(entry)
    names = [n for n, _ in pairs]
    values = dict(pairs)
    unknown = sorted(set(names) - LEVERAGE_PARAMS)
    if unknown:
        problems.append(f"params: undocumented parameter(s) {', '.join(unknown)}")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        problems.append(f"params: sent twice: {', '.join(twice)}")
    if values.get("symbol") != symbol:
        problems.append(f"params: symbol {values.get('symbol')!r}, asked for {symbol!r}")
    sent = values.get("leverage", "")
    if not _is_long(sent) or int(sent) != leverage:
        problems.append(f"params: leverage {sent!r}, asked for {leverage}")
    for name in ("timestamp", "recvWindow"):
        if name in values and not _is_long(values[name]):
            problems.append(f"params: {name} {values[name]!r} is not a LONG")
    window = values.get("recvWindow")
    if window is not None and _is_long(window) and int(window) > S.CLIENT_RECV_WINDOW_MAX_MS:
        problems.append(f"params: recvWindow {window} is above {S.CLIENT_RECV_WINDOW_MAX_MS}")
    return problems


def _is_long(text: str) -> bool:
    digits = text[1:] if text.startswith("-") else text
    return digits.isascii() and digits.isdigit() and S.INT64_MIN <= int(text) <= S.INT64_MAX


def _retry_after_problems(
    entries: Sequence[dict[str, Any]], retry_after: dict[int, int]
) -> list[str]:
    problems = []
    for entry in entries:
        seconds = retry_after.get(entry.get("fault") or 0)
        if seconds is None or entry.get("status") not in (418, 429):
            continue
        until = entry["time_ms"] + seconds * 1000 - RETRY_AFTER_SLACK_MS
        early = [e for e in entries if e["id"] > entry["id"] and e["time_ms"] < until]
        if early:
            waited = early[0]["time_ms"] - entry["time_ms"]
            problems.append(
                f"patience: #{early[0]['id']} sent {waited} ms after a {entry['status']} "
                f"with Retry-After: {seconds}"
            )
    return problems


# --- the kit ------------------------------------------------------------------------------


class ClientFuzzer:
    """The mock (with the extra-fields wrapper), fresh accounts and the per-scenario verdicts."""

    def __init__(
        self,
        *,
        seed: int = 0,
        symbols: Sequence[str] | None = None,
        key_types: Sequence[str] = ("hmac",),
        slow_ms: int = 12_000,
        time_limit_s: float = 30.0,
    ) -> None:
        from mockserver.config import Config
        from mockserver.harness import MockServer

        unknown = set(key_types) - set(KEY_TYPES)
        if unknown or not key_types:
            raise ValueError(f"key types must be among {', '.join(KEY_TYPES)}")
        self.rng = random.Random(seed)
        self.key_types = tuple(key_types)
        self.slow_ms = slow_ms
        self.time_limit_s = time_limit_s
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

    def new_account(self, key_type: str, number: int) -> Account:
        api_key = f"fuzz{number}x{secrets.token_hex(6)}"
        if key_type == "hmac":
            account = Account(api_key, key_type, secret=secrets.token_hex(24))
            self.mock.accounts.add(api_key, secret=account.secret)
            return account
        private, public = self._key_pair(key_type)
        path = Path(self._keys_dir.name) / f"{key_type}.pem"
        if not path.exists():
            path.write_text(private)
            path.chmod(0o600)
        self.mock.accounts.add(api_key, public_key=public)
        return Account(api_key, key_type, None, private, public, str(path))

    def leverage_shown(self, account: Account, symbol: str) -> int | None:
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
        self.mock.clear_requests()
        for rule in scenario.faults:
            match = {"method": "POST", "path": LEVERAGE_PATH, "api_key": account.api_key}
            rule_id = self.mock.faults.add({"match": match, **rule})
            if rule["action"]["type"] == "rate_limit":
                retry_after[rule_id] = rule["action"]["retry_after"]
        if scenario.clock_offset_ms:
            self.mock.clock.offset(scenario.clock_offset_ms)
        self.extra_fields.active = scenario.extra_fields
        limit = self.time_limit_s + (scenario.holds_ms / 1000 if scenario.waits_for_hold else 0)
        try:
            outcome = (
                run_callable(client, env, limit)
                if callable(client)
                else run_command(client, env, limit)
            )
            # A held answer applies when its delay ends: wait for it before reading the state.
            remaining = started + scenario.holds_ms / 1000 + 0.3 - time.perf_counter()
            if scenario.holds_ms and remaining > 0:
                time.sleep(remaining)
        finally:
            self.extra_fields.active = False
            self.mock.faults.clear()
            if scenario.clock_offset_ms:
                self.mock.clock.offset(0)
        entries = [e for e in self.mock.requests() if e.get("api_key") in (account.api_key, None)]
        try:
            shown = self.leverage_shown(account, symbol)
        except DapiError as exc:
            shown = None
            state_error = f"could not read the state: {exc}"
        else:
            state_error = ""
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
        account: Account,
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
    """
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
    show = Progress(len(chosen), progress)
    started = time.perf_counter()
    with ClientFuzzer(
        seed=seed,
        symbols=symbols,
        key_types=key_types,
        slow_ms=slow_ms,
        time_limit_s=time_limit_s,
    ) as fuzzer:
        if progress is not None:
            print(
                f"fuzz-client {report.target}: {len(chosen)} scenarios against {fuzzer.mock.url}, "
                f"seed {seed}",
                file=progress,
                flush=True,
            )
        for number, scenario in enumerate(chosen, start=1):
            verdict = fuzzer.run(client, scenario, number)
            report.verdicts.append(verdict)
            show(verdict)
    report.seconds = time.perf_counter() - started
    return report


def reference_client(timeout: float = 10.0) -> ClientCallable:
    """The kit's own client (contracts.client) as a fuzz-client callable."""

    def change_leverage(
        base_url: str,
        api_key: str,
        api_secret: str | None,
        private_key_file: str | None,
        symbol: str,
        leverage: int,
    ) -> None:
        key = Path(private_key_file).read_text() if private_key_file else None
        with DapiClient(
            base_url,
            api_key,
            secret=api_secret,
            private_key=key,
            timeout=timeout,
            time_sync=True,
        ) as client:
            answer = client.change_leverage(symbol, leverage)
        if answer.leverage != leverage or answer.max_qty <= Decimal(0):
            raise DapiError(f"unexpected answer {answer}")

    change_leverage.__qualname__ = "contracts.client.DapiClient.change_leverage"
    return change_leverage
