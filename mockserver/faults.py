"""Fault rules: match a request, pick whether it fires, say what to do instead
(docs/behaviour.md#faults)."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Any

ACTIONS = ("error", "delay", "rate_limit", "apply_then_error", "drop", "malformed")
ACTION_KEYS = {
    "error": ("status", "code", "msg"),
    "apply_then_error": ("status", "code", "msg"),
    "delay": ("ms",),
    "rate_limit": ("status", "retry_after"),
    "drop": (),
    "malformed": (),
}
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")
MAX_DELAY_MS = 600_000
# docs/behaviour.md#reliability: rules and what they hold are bounded.
MAX_RULES = 1000
MAX_MSG_BYTES = 1024
MAX_PATH_CHARS = 1024  # the journal keeps no more of a path either
MAX_API_KEY_CHARS = 64  # the longest api key form


class FaultRuleError(ValueError):
    """A rule the control plane cannot accept; the message says which field is wrong."""


@dataclass
class FaultRule:
    id: int
    match: dict[str, str]
    action: dict[str, Any]
    times: int | None = None
    every: int | None = None
    probability: float | None = None
    seed: int | None = None
    fired: int = 0
    matched: int = 0
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def matches(self, method: str, path: str, api_key: str | None) -> bool:
        m = self.match
        return (
            m["method"] == method
            and m["path"] == path
            and ("api_key" not in m or m["api_key"] == api_key)
        )

    def fires(self) -> bool:
        """Called once per matching request; counts the match and decides."""
        self.matched += 1
        if self.times is not None:
            return self.fired < self.times
        if self.every is not None:
            return self.matched % self.every == 0
        if self.probability is not None:
            return self._rng.random() < self.probability
        return True

    def as_dict(self) -> dict[str, Any]:
        rule: dict[str, Any] = {"id": self.id, "match": self.match, "action": self.action}
        for key in ("times", "every", "probability", "seed"):
            if getattr(self, key) is not None:
                rule[key] = getattr(self, key)
        rule["fired"] = self.fired
        return rule


def _int(data: dict[str, Any], key: str, low: int, high: int) -> int:
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise FaultRuleError(f"{key} must be a whole number from {low} to {high}")
    return value


def _string(data: dict[str, Any], key: str, max_chars: int) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not 0 < len(value) <= max_chars:
        raise FaultRuleError(f"{key} must be a string of 1 to {max_chars} characters")
    return value


def _action(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict) or raw.get("type") not in ACTIONS:
        raise FaultRuleError(f"action.type must be one of {', '.join(ACTIONS)}")
    kind = raw["type"]
    unknown = sorted(set(raw) - {"type", *ACTION_KEYS[kind]})
    if unknown:
        raise FaultRuleError(f"unknown key(s) for a {kind} action: {', '.join(unknown)}")
    if kind in ("error", "apply_then_error"):
        msg = raw.get("msg")
        if not isinstance(msg, str) or len(msg.encode("utf-8", "replace")) > MAX_MSG_BYTES:
            raise FaultRuleError(f"msg must be a string of at most {MAX_MSG_BYTES} bytes (UTF-8)")
        return {
            "type": kind,
            "status": _int(raw, "status", 400, 599),
            "code": _int(raw, "code", -(2**31), 2**31 - 1),
            "msg": raw["msg"],
        }
    if kind == "delay":
        return {"type": kind, "ms": _int(raw, "ms", 0, MAX_DELAY_MS)}
    if kind == "rate_limit":
        status = _int(raw, "status", 418, 429)
        if status not in (418, 429):
            raise FaultRuleError("rate_limit status must be 429 or 418")
        return {"type": kind, "status": status, "retry_after": _int(raw, "retry_after", 0, 86400)}
    return {"type": kind}


def parse_rule(rule_id: int, data: Any) -> FaultRule:
    """Validate a rule posted to /__admin/faults."""
    if not isinstance(data, dict):
        raise FaultRuleError("a fault rule is a JSON object with match and action")
    unknown = set(data) - {"match", "action", "times", "every", "probability", "seed"}
    if unknown:
        raise FaultRuleError(f"unknown key(s): {', '.join(sorted(unknown))}")
    match = data.get("match")
    if not isinstance(match, dict) or set(match) - {"method", "path", "api_key"}:
        raise FaultRuleError("match must be an object with method, path and optional api_key")
    method = _string(match, "method", 16).upper()
    if method not in METHODS:
        raise FaultRuleError(f"match.method must be one of {', '.join(METHODS)}")
    matcher = {"method": method, "path": _string(match, "path", MAX_PATH_CHARS)}
    if "api_key" in match:
        matcher["api_key"] = _string(match, "api_key", MAX_API_KEY_CHARS)
    whens = [k for k in ("times", "every", "probability") if k in data]
    if len(whens) > 1:
        raise FaultRuleError("give at most one of times, every, probability")
    rule = FaultRule(rule_id, matcher, _action(data.get("action")))
    if "times" in data:
        rule.times = _int(data, "times", 1, 2**31)
    if "every" in data:
        rule.every = _int(data, "every", 1, 2**31)
    if "probability" in data:
        p = data["probability"]
        if not isinstance(p, int | float) or isinstance(p, bool) or not 0 <= p <= 1:
            raise FaultRuleError("probability must be a number from 0 to 1")
        rule.probability = float(p)
        rule.seed = _int(data, "seed", 0, 2**63) if "seed" in data else 0
        rule._rng = random.Random(rule.seed)
    elif "seed" in data:
        raise FaultRuleError("seed goes with probability")
    return rule


class FaultBook:
    """The active rules, oldest first; at most one fires per request.

    Rules are indexed by (method, path), so a request's cost does not grow with
    rules that cannot match it (docs/behaviour.md#reliability).
    """

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._by_route: dict[tuple[str, str], list[FaultRule]] = {}
        self._delay_routes: frozenset[tuple[str, str]] = frozenset()
        self._next_id = 1
        self._lock = threading.Lock()

    def add(self, data: Any) -> FaultRule:
        with self._lock:
            if len(self._rules) >= MAX_RULES:
                raise FaultRuleError(f"at most {MAX_RULES} fault rules; delete some first")
            rule = parse_rule(self._next_id, data)
            self._next_id += 1
            self._set([*self._rules, rule])
            return rule

    def _set(self, rules: list[FaultRule]) -> None:
        """Swap in new lists (readers outside the lock see the old or the new, whole)."""
        by_route: dict[tuple[str, str], list[FaultRule]] = {}
        for rule in rules:
            by_route.setdefault((rule.match["method"], rule.match["path"]), []).append(rule)
        self._rules = rules
        self._by_route = by_route
        self._delay_routes = frozenset(
            route
            for route, route_rules in by_route.items()
            if any(rule.action["type"] == "delay" for rule in route_rules)
        )

    def remove(self, rule_id: int) -> bool:
        with self._lock:
            kept = [r for r in self._rules if r.id != rule_id]
            found = len(kept) != len(self._rules)
            self._set(kept)
            return found

    def clear(self) -> None:
        with self._lock:
            self._set([])

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.as_dict() for r in self._rules]

    def may_delay(self, method: str, path: str) -> bool:
        """Whether a delay rule may hold a request with this method and path; asked for
        every request the server reads, so it is a dict lookup."""
        return (method, path) in self._delay_routes

    def pick(self, method: str, path: str, api_key: str | None) -> FaultRule | None:
        route = (method, path)
        if route not in self._by_route:  # the common case, without taking the lock
            return None
        chosen = None
        with self._lock:
            # Every matching rule counts the match, so `every` and a seeded `probability`
            # behave the same whether or not an older rule fired on this request.
            for rule in self._by_route.get(route, ()):
                if rule.matches(method, path, api_key) and rule.fires() and chosen is None:
                    chosen = rule
            if chosen is not None:
                chosen.fired += 1
        return chosen
