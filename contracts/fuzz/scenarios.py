"""The scenarios of `fuzz-client`: each one way the kit varies the mock's answers for a client run.

`SCENARIO_RULES` says how every run is judged; `catalogue` lists every kind
once, `choose_scenarios` picks a seeded subset or adds seeded combinations.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

LEVERAGE_PATH = "/dapi/v1/leverage"
KEY_TYPES = ("hmac", "rsa", "ed25519")
#: The longest delay the mock's `delay` fault takes (docs/behaviour.md#faults).
MAX_HOLD_MS = 600_000


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


#: docs/behaviour.md#error-table, every error the exchange documents: (suffix, status, code, msg).
DOCUMENTED_ERRORS: tuple[tuple[str, int, int, str], ...] = (
    ("unknown-path-404", 404, -5000, "Path /dapi/v1/leverage, Method POST is invalid"),
    ("wrong-method-405", 405, -5000, "Path /dapi/v1/leverage, Method POST is invalid"),
    ("body-too-large-413", 413, -1101, "Too many parameters sent for this endpoint."),
    ("illegal-characters-1100", 400, -1100, "Illegal characters found in a parameter."),
    ("duplicate-parameter-1101", 400, -1101, "Duplicate values for a parameter detected."),
    ("api-key-format-2014", 401, -2014, "API-key format invalid."),
    # Futures sends -2015 without the final period (spot keeps it).
    ("api-key-rejected-2015", 401, -2015, "Invalid API-key, IP, or permissions for action"),
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
        "leverage-cap-4201",
        400,
        -4201,
        "Users in your location/country can only access a maximum leverage of 10",
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
        # The client runs against a mock on 127.0.0.1, the address the text names.
        "Too many requests; current limit of IP(127.0.0.1) is 2400 requests per minute. Please "
        "use the websocket for live updates to avoid polling the API.",
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
            f"the first leverage answer is held {slow_ms} ms (past common timeouts), then applied "
            "if the client still waits; dropped, not applied, once it has given up",
            faults=({"action": {"type": "delay", "ms": slow_ms}, "times": 1},),
            key_type=key,
            ambiguous=True,
        ),
        Scenario(
            "hung-answer",
            f"the first leverage answer is held {hung_ms} ms, past the time limit: the client "
            "must give up on its own (the hold ends when it does)",
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
    """The scenarios of a run; any count and names a user can type, or a ValueError saying why.

    By default every kind (or every kind `only` names) once. Fewer: the first
    of them plus a seeded sample. More: every one, then seeded variations: a
    fault under a skewed clock when both kinds are among them, else one of
    them again (with its own symbol and leverage, as every run draws).
    """
    if count is not None and count < 1:
        raise ValueError(f"--scenarios must be 1 or more, not {count}")
    kinds = catalogue(slow_ms, key_types, time_limit_s)
    if only is not None:
        known = [k.name for k in kinds]
        unknown = sorted(set(only) - set(known))
        if not only:
            raise ValueError("--only needs at least one scenario name")
        if unknown:
            keyed = [n for n in unknown if n.removesuffix("-plain") in KEY_TYPES]
            hint = f"; {', '.join(keyed)} need their key type in --key-types" if keyed else ""
            raise ValueError(
                f"unknown scenarios: {', '.join(unknown)} (known: {', '.join(known)}){hint}"
            )
        kinds = [k for k in kinds if k.name in only]
    if count is None or count == len(kinds):
        return kinds
    if count < len(kinds):
        picked = sorted(rng.sample(range(1, len(kinds)), count - 1))
        return [kinds[0], *(kinds[i] for i in picked)]
    faulted = [k for k in kinds if k.faults]
    skewed = [k for k in kinds if k.clock_offset_ms]
    extra = []
    for number in range(1, count - len(kinds) + 1):
        if faulted and skewed:
            fault, skew = rng.choice(faulted), rng.choice(skewed)
            extra.append(
                replace(
                    fault,
                    name=f"combo-{number}-{fault.name}+{skew.name}",
                    title=f"{fault.title}; {skew.title}",
                    clock_offset_ms=skew.clock_offset_ms,
                    key_type=rng.choice(list(key_types)),
                    extra_fields=rng.random() < 0.5,
                )
            )
        else:
            again = rng.choice(kinds)
            extra.append(replace(again, name=f"again-{number}-{again.name}"))
    return kinds + extra
