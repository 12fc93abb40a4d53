"""faults: rule validation, when rules fire, and which one (docs/behaviour.md#faults)."""

from __future__ import annotations

from typing import Any

import pytest

from mockserver.faults import FaultBook, FaultRuleError, parse_rule

PATH = "/dapi/v1/leverage"
ERROR_ACTION = {
    "type": "error",
    "status": 503,
    "code": -1001,
    "msg": "Internal error; unable to process your request. Please try again.",
}


def rule(**extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"match": {"method": "POST", "path": PATH}, "action": ERROR_ACTION}
    data.update(extra)
    return data


def firing_sequence(book: FaultBook, count: int, api_key: str | None = None) -> list[int | None]:
    """The id of the rule that fired on each of `count` matching requests (None: none fired)."""
    picked = [book.pick("POST", PATH, api_key) for _ in range(count)]
    return [r.id if r is not None else None for r in picked]


# -- parse_rule -----------------------------------------------------------------------------


def test_spec_example_rule_parses() -> None:
    parsed = parse_rule(1, rule(times=1))
    assert parsed.as_dict() == {
        "id": 1,
        "match": {"method": "POST", "path": PATH},
        "action": ERROR_ACTION,
        "times": 1,
        "fired": 0,
    }


def test_method_is_uppercased() -> None:
    parsed = parse_rule(1, rule(match={"method": "post", "path": PATH}))
    assert parsed.match == {"method": "POST", "path": PATH}


@pytest.mark.parametrize(
    ("action", "kept"),
    [
        ({"type": "delay", "ms": 250}, {"type": "delay", "ms": 250}),
        (
            {"type": "rate_limit", "status": 418, "retry_after": 30},
            {"type": "rate_limit", "status": 418, "retry_after": 30},
        ),
        ({"type": "drop"}, {"type": "drop"}),
        ({"type": "malformed"}, {"type": "malformed"}),
        (
            {"type": "error", "status": 503, "code": -1001, "msg": ""},
            {"type": "error", "status": 503, "code": -1001, "msg": ""},
        ),
        (
            {"type": "apply_then_error", "status": 500, "code": -1000, "msg": "x"},
            {"type": "apply_then_error", "status": 500, "code": -1000, "msg": "x"},
        ),
    ],
)
def test_each_action_type_parses(action: dict[str, Any], kept: dict[str, Any]) -> None:
    assert parse_rule(1, rule(action=action)).action == kept


@pytest.mark.parametrize(
    ("data", "complaint"),
    [
        ("not a rule", "JSON object"),
        (rule(extra=1), "unknown key(s): extra"),
        (rule(match="POST"), "match must be an object"),
        (rule(match={"method": "POST"}), "path must be a string of 1 to 1024 characters"),
        (rule(match={"path": PATH}), "method must be a string of 1 to 16 characters"),
        (rule(match={"method": "GET", "path": "/" * 1025}), "path must be a string of 1 to 1024"),
        (
            rule(match={"method": "GET", "path": PATH, "api_key": "k" * 65}),
            "api_key must be a string of 1 to 64 characters",
        ),
        (
            rule(action={"type": "error", "status": 503, "code": -1, "msg": "m" * 1025}),
            "msg must be a string of at most 1024 bytes",
        ),
        (
            rule(action={"type": "apply_then_error", "status": 503, "code": -1, "msg": "é" * 513}),
            "msg must be a string of at most 1024 bytes",
        ),
        (rule(match={"method": "POST", "path": PATH, "host": "x"}), "match must be an object"),
        (rule(match={"method": "POST", "path": PATH, "api_key": ""}), "api_key"),
        (rule(action=None), "action.type must be one of"),
        (rule(action={"type": "explode"}), "action.type must be one of"),
        (rule(action={**ERROR_ACTION, "status": 200}), "status must be a whole number"),
        (rule(action={**ERROR_ACTION, "status": "503"}), "status must be a whole number"),
        (rule(action={**ERROR_ACTION, "code": True}), "code must be a whole number"),
        (rule(action={**ERROR_ACTION, "msg": 5}), "msg must be a string"),
        (rule(action={"type": "malformed", "extra": 1}), "unknown key(s) for a malformed action"),
        (rule(match={"method": "FETCH", "path": PATH}), "match.method must be one of"),
        (rule(action={"type": "delay"}), "ms must be a whole number"),
        (rule(action={"type": "delay", "ms": -1}), "ms must be a whole number"),
        (rule(action={"type": "delay", "ms": 600_001}), "ms must be a whole number"),
        (rule(action={"type": "rate_limit", "status": 420, "retry_after": 1}), "429 or 418"),
        (rule(action={"type": "rate_limit", "status": 429}), "retry_after"),
        (rule(times=0), "times must be a whole number"),
        (rule(times=1.5), "times must be a whole number"),
        (rule(every=0), "every must be a whole number"),
        (rule(probability=1.5), "probability must be a number from 0 to 1"),
        (rule(probability=-0.1), "probability must be a number from 0 to 1"),
        (rule(probability="0.5"), "probability must be a number from 0 to 1"),
        (rule(probability=True), "probability must be a number from 0 to 1"),
        (rule(probability=0.5, seed=-1), "seed must be a whole number"),
        (rule(seed=3), "seed goes with probability"),
        (rule(times=1, every=2), "at most one of times, every, probability"),
        (rule(every=2, probability=0.5), "at most one of times, every, probability"),
    ],
)
def test_invalid_rule_is_refused_with_a_message_naming_the_field(data: Any, complaint: str) -> None:
    with pytest.raises(FaultRuleError) as caught:
        parse_rule(1, data)
    assert complaint in str(caught.value)


# -- when a rule fires ----------------------------------------------------------------------


def test_rule_without_a_when_fires_on_every_match() -> None:
    book = FaultBook()
    added = book.add(rule())
    assert firing_sequence(book, 5) == [added.id] * 5


def test_times_fires_on_the_next_n_matches_only() -> None:
    book = FaultBook()
    added = book.add(rule(times=2))
    assert firing_sequence(book, 4) == [added.id, added.id, None, None]
    assert book.rules()[0]["fired"] == 2


def test_every_fires_on_each_kth_match() -> None:
    book = FaultBook()
    added = book.add(rule(every=3))
    assert firing_sequence(book, 7) == [None, None, added.id, None, None, added.id, None]


def test_probability_zero_never_fires_and_one_always_fires() -> None:
    never, always = FaultBook(), FaultBook()
    never.add(rule(probability=0, seed=1))
    always.add(rule(probability=1, seed=1))
    assert firing_sequence(never, 20) == [None] * 20
    assert firing_sequence(always, 20) == [1] * 20


def test_same_seed_gives_the_same_firing_sequence() -> None:
    first, second = FaultBook(), FaultBook()
    first.add(rule(probability=0.5, seed=42))
    second.add(rule(probability=0.5, seed=42))
    sequence = firing_sequence(first, 50)
    assert sequence == firing_sequence(second, 50)
    assert None in sequence and 1 in sequence


def test_different_seeds_give_different_firing_sequences() -> None:
    first, second = FaultBook(), FaultBook()
    first.add(rule(probability=0.5, seed=1))
    second.add(rule(probability=0.5, seed=2))
    assert firing_sequence(first, 50) != firing_sequence(second, 50)


def test_probability_without_seed_uses_seed_zero() -> None:
    implicit, explicit = FaultBook(), FaultBook()
    implicit.add(rule(probability=0.5))
    explicit.add(rule(probability=0.5, seed=0))
    assert implicit.rules()[0]["seed"] == 0
    assert firing_sequence(implicit, 30) == firing_sequence(explicit, 30)


# -- which rule fires -----------------------------------------------------------------------


def test_at_most_one_rule_fires_per_request_oldest_first() -> None:
    book = FaultBook()
    first, second = book.add(rule()), book.add(rule())
    assert firing_sequence(book, 3) == [first.id] * 3
    assert [r["fired"] for r in book.rules()] == [3, 0]
    assert second.fired == 0


def test_when_the_oldest_rule_is_used_up_the_next_one_fires() -> None:
    book = FaultBook()
    first, second = book.add(rule(times=1)), book.add(rule(times=1))
    assert firing_sequence(book, 3) == [first.id, second.id, None]


def test_a_rule_that_does_not_fire_lets_a_younger_one_fire() -> None:
    book = FaultBook()
    first, second = book.add(rule(every=2)), book.add(rule())
    assert firing_sequence(book, 4) == [second.id, first.id, second.id, first.id]


@pytest.mark.parametrize(
    ("method", "path"), [("GET", PATH), ("POST", "/dapi/v1/leverage/"), ("POST", "/dapi/v1/ping")]
)
def test_rule_matches_exact_method_and_path_only(method: str, path: str) -> None:
    book = FaultBook()
    book.add(rule())
    assert book.pick(method, path, None) is None


def test_rule_with_api_key_matches_only_that_key() -> None:
    book = FaultBook()
    added = book.add(rule(match={"method": "POST", "path": PATH, "api_key": "k1"}))
    assert book.pick("POST", PATH, "k2") is None
    assert book.pick("POST", PATH, None) is None
    assert book.pick("POST", PATH, "k1") is added


def test_rule_without_api_key_matches_any_caller() -> None:
    book = FaultBook()
    added = book.add(rule())
    assert book.pick("POST", PATH, None) is added
    assert book.pick("POST", PATH, "k1") is added


def test_non_matching_requests_do_not_count_toward_every() -> None:
    book = FaultBook()
    added = book.add(rule(every=2))
    book.pick("GET", "/dapi/v1/ping", None)
    assert firing_sequence(book, 2) == [None, added.id]


# -- the book -------------------------------------------------------------------------------


def test_ids_increase_and_are_not_reused_after_removal() -> None:
    book = FaultBook()
    first = book.add(rule())
    assert book.remove(first.id) is True
    assert book.add(rule()).id == first.id + 1


def test_remove_unknown_rule_reports_false() -> None:
    assert FaultBook().remove(99) is False


def test_clear_removes_every_rule() -> None:
    book = FaultBook()
    book.add(rule())
    book.add(rule(times=1))
    book.clear()
    assert book.rules() == []
    assert book.pick("POST", PATH, None) is None


def test_invalid_rule_is_not_added() -> None:
    book = FaultBook()
    with pytest.raises(FaultRuleError):
        book.add(rule(times=0))
    assert book.rules() == []


def test_rules_lists_the_rules_oldest_first_with_their_fired_count() -> None:
    book = FaultBook()
    book.add(rule(every=2))
    book.add(rule(probability=0.25, seed=7))
    firing_sequence(book, 2)
    listed = book.rules()
    assert [r["id"] for r in listed] == [1, 2]
    assert listed[0]["every"] == 2
    assert (listed[1]["probability"], listed[1]["seed"]) == (0.25, 7)
    assert sum(r["fired"] for r in listed) <= 2
    assert listed[0]["fired"] == 1


def test_every_counts_matches_even_when_an_older_rule_fires_first() -> None:
    book = FaultBook()
    first = book.add(
        {"match": {"method": "POST", "path": PATH}, "action": {"type": "drop"}, "times": 1}
    )
    second = book.add(
        {"match": {"method": "POST", "path": PATH}, "action": {"type": "drop"}, "every": 2}
    )
    assert book.pick("POST", "/dapi/v1/leverage", None) is first  # second's 1st match
    assert book.pick("POST", "/dapi/v1/leverage", None) is second  # second's 2nd match
    assert book.pick("POST", "/dapi/v1/leverage", None) is None


# -- bounded, and indexed by route (docs/behaviour.md#reliability) --------------------------


def test_at_most_1000_rules_are_held() -> None:
    book = FaultBook()
    for _ in range(1000):
        book.add(rule())
    with pytest.raises(FaultRuleError, match="at most 1000 fault rules"):
        book.add(rule())
    book.remove(1)
    assert book.add(rule()).id == 1001  # a refused rule takes no id


def test_a_message_of_exactly_1_kib_is_taken() -> None:
    msg = "é" * 512
    taken = parse_rule(1, rule(action={"type": "error", "status": 503, "code": -1, "msg": msg}))
    assert taken.action["msg"] == msg


def test_rules_for_other_routes_are_not_looked_at(monkeypatch: pytest.MonkeyPatch) -> None:
    from mockserver.faults import FaultRule

    book = FaultBook()
    for n in range(999):
        book.add(rule(match={"method": "POST", "path": f"/other/{n}"}))
    book.add(rule(match={"method": "GET", "path": PATH}))
    looked_at: list[int] = []
    original = FaultRule.matches

    def counting(self: FaultRule, *args: Any) -> bool:
        looked_at.append(self.id)
        return original(self, *args)

    monkeypatch.setattr(FaultRule, "matches", counting)
    assert book.pick("POST", PATH, None) is None
    assert book.pick("GET", PATH, None) is not None
    assert looked_at == [1000]


def test_oldest_first_holds_across_routes_added_in_between() -> None:
    book = FaultBook()
    first = book.add(rule(times=1))
    book.add(rule(match={"method": "GET", "path": "/elsewhere"}))
    second = book.add(rule(times=1))
    assert book.pick("POST", PATH, None) is first
    assert book.pick("POST", PATH, None) is second
    assert book.pick("POST", PATH, None) is None
    book.remove(first.id)
    assert [r["id"] for r in book.rules()] == [2, 3]


def test_a_removed_rule_no_longer_fires() -> None:
    book = FaultBook()
    added = book.add(rule())
    book.remove(added.id)
    assert book.pick("POST", PATH, None) is None


def test_may_delay_follows_adds_removals_and_clears_for_its_route_only() -> None:
    book = FaultBook()
    assert book.may_delay("POST", PATH) is False
    delay = book.add(rule(action={"type": "delay", "ms": 1}))
    book.add(rule())
    assert book.may_delay("POST", PATH) is True
    assert book.may_delay("GET", PATH) is False
    assert book.may_delay("POST", "/dapi/v1/ping") is False
    book.remove(delay.id)
    assert book.may_delay("POST", PATH) is False
    book.add(rule(action={"type": "delay", "ms": 1}))
    book.clear()
    assert book.may_delay("POST", PATH) is False
