"""Judging a client run by the mock's journal: what the client sent, signed and waited for.

The kit checks every signature itself over the raw query + body, independently
of the server, so a wrong signature is told from a server that rejects a right one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

from contracts import strategies as S
from contracts.fuzz.scenarios import LEVERAGE_PATH, Scenario

LEVERAGE_PARAMS = frozenset({"symbol", "leverage", "recvWindow", "timestamp", "signature"})
#: More leverage requests than this in one run is hammering, whatever the answers were.
MAX_LEVERAGE_ATTEMPTS = 5
#: Slack for clock granularity when judging whether Retry-After was honoured.
RETRY_AFTER_SLACK_MS = 100


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
class ScenarioAccount:
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
    account: ScenarioAccount,
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


def _entry_problems(
    entry: dict[str, Any], scenario: Scenario, account: ScenarioAccount
) -> list[str]:
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
