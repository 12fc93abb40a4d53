"""Hypothesis strategies for requests to the dapi contract: valid ones, and each way of being wrong.

Shared by `verify-server`, the stateful property test and the fuzz kit, so
that "a malformed INT" or "a stale timestamp" means the same everywhere.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from urllib.parse import urlencode

from hypothesis import strategies as st

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
DEFAULT_RECV_WINDOW_MS = 5000
AHEAD_TOLERANCE_MS = 1000
#: What a well-behaved client never goes above (Binance's spot cap; a client-quality rule).
CLIENT_RECV_WINDOW_MAX_MS = 60_000
#: Slack for network latency and clock reading when a timestamp must be clearly outside the window.
TIMING_MARGIN_MS = 2000

#: docs/behaviour.md#error-table: a symbol outside this pattern is -1100 before anything else
#: is looked at.
SYMBOL_FORM = re.compile(r"[A-Z0-9\-_.]{1,20}")

Placement = str  # "query", "body" or "split"
PLACEMENTS: tuple[Placement, ...] = ("query", "body", "split")

# Parameters and values travel as ASCII in every request the kit builds itself.
_KEY_CHARS = string.ascii_letters + string.digits


def placements() -> st.SearchStrategy[Placement]:
    """Where the parameters go: all in the query, all in a form body, or split between the two."""
    return st.sampled_from(PLACEMENTS)


def leverages_within(max_leverage: int) -> st.SearchStrategy[int]:
    """A leverage the symbol accepts: 1 to its bracket-1 initialLeverage."""
    return st.integers(1, max_leverage)


def leverage_pairs(max_leverage: int) -> st.SearchStrategy[tuple[int, int]]:
    """Two different valid leverages, lower first (for "maxQty never grows with leverage")."""
    return (
        st.lists(leverages_within(max_leverage), min_size=2, max_size=2, unique=True)
        .map(sorted)
        .map(tuple)  # type: ignore[arg-type]
    )


def leverages_above(max_leverage: int, limit: int = INT64_MAX) -> st.SearchStrategy[int]:
    """Above the symbol's maximum, up to `limit` (Binance itself: keep it small)."""
    return st.one_of(st.just(max_leverage + 1), st.integers(max_leverage + 1, limit))


def leverages_below_one() -> st.SearchStrategy[int]:
    """Zero and negative leverages, with 0 and -1 tried first
    (-4028, docs/behaviour.md#our-choices)."""
    return st.one_of(st.sampled_from((0, -1)), st.integers(INT64_MIN, 0))


def recv_windows(upto: int = CLIENT_RECV_WINDOW_MAX_MS) -> st.SearchStrategy[int | None]:
    """An optional recvWindow: absent (5000 applies) or 1000 ms up to `upto`."""
    return st.one_of(st.none(), st.integers(1000, upto))


def stale_ages(recv_window: int) -> st.SearchStrategy[int]:
    """How far behind server time a timestamp is when it is clearly too old for `recv_window`."""
    return st.integers(recv_window + TIMING_MARGIN_MS, recv_window + 10**9)


def ahead_leads() -> st.SearchStrategy[int]:
    """How far ahead of server time a timestamp is when it is clearly in the future."""
    return st.integers(AHEAD_TOLERANCE_MS + TIMING_MARGIN_MS, 10**9)


def timestamp_skews(recv_window: int) -> st.SearchStrategy[int]:
    """Client time minus server time, crowded at the window's edges (for an exact model)."""
    edges = (
        -recv_window - 1,
        -recv_window,
        -recv_window + 1,
        0,
        AHEAD_TOLERANCE_MS - 1,
        AHEAD_TOLERANCE_MS,
    )
    return st.one_of(
        st.sampled_from(edges),
        st.integers(-recv_window - 5, -recv_window + 5),
        st.integers(AHEAD_TOLERANCE_MS - 5, AHEAD_TOLERANCE_MS + 5),
        st.integers(-recv_window * 3, AHEAD_TOLERANCE_MS * 3),
        st.integers(-(10**10), 10**10),
    )


def malformed_integer_texts(value: int) -> st.SearchStrategy[str]:
    """Spellings of `value` that are not ASCII `-?[0-9]+` within int64
    (docs/behaviour.md#values: malformed)."""
    digits = str(abs(value))
    sign = "-" if value < 0 else ""
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in digits)
    fixed = (
        f"+{digits}" if value >= 0 else f"+{sign}{digits}",
        f" {sign}{digits}",
        f"{sign}{digits} ",
        f"{sign}{digits}.0",
        f"{sign}{digits}e0",
        f"{sign}{full_width}",
        f"0x{abs(value):x}",
        f"{sign}{digits}_0",
        str(INT64_MAX + 1 + abs(value)),
        str(INT64_MIN - 1 - abs(value)),
        "null",
        "true",
    )
    return st.sampled_from(fixed)


def leading_zero_texts(value: int) -> st.SearchStrategy[str]:
    """Spellings of a non-negative `value` with leading zeros
    (docs/behaviour.md#values: allowed)."""
    return st.integers(1, 5).map(lambda zeros: "0" * zeros + str(value))


def unknown_parameter_names(known: Sequence[str]) -> st.SearchStrategy[str]:
    """A parameter name the endpoint does not document."""
    return st.text(_KEY_CHARS, min_size=1, max_size=12).filter(
        lambda name: name not in known and name != "signature"
    )


def parameter_values() -> st.SearchStrategy[str]:
    return st.text(_KEY_CHARS, min_size=1, max_size=12)


#: docs/behaviour.md#margin-type: the values marginType takes, exactly so.
MARGIN_TYPES = ("ISOLATED", "CROSSED")
#: docs/behaviour.md#leverage-cap: the rules an account's cap may name.
LEVERAGE_CAP_RULES = ("country", "new_account", "kyc", "position_limit")


def bad_margin_types() -> st.SearchStrategy[str]:
    """A marginType other than ISOLATED/CROSSED: the names in other cases, then any word."""
    near = st.sampled_from(("isolated", "crossed", "Isolated", "CROSS", "cross", "BOTH"))
    words = st.text(_KEY_CHARS + "_-", min_size=1, max_size=12)
    return st.one_of(near, words).filter(lambda v: v not in MARGIN_TYPES)


def bad_position_modes() -> st.SearchStrategy[str]:
    """A dualSidePosition other than true/false in any letter case ("1", "yes", ...)."""
    near = st.sampled_from(("1", "0", "yes", "no", "hedge", "truee", "t"))
    words = st.text(_KEY_CHARS + "_-", min_size=1, max_size=8)
    return st.one_of(near, words).filter(lambda v: v.lower() not in ("true", "false"))


def leverage_caps() -> st.SearchStrategy[tuple[str, int]]:
    """(rule, cap) of a capped account: country caps at 1-124, the other rules at 20."""
    return st.sampled_from(LEVERAGE_CAP_RULES).flatmap(
        lambda rule: st.tuples(
            st.just(rule), st.integers(1, 124) if rule == "country" else st.just(20)
        )
    )


def unlisted_symbols(listed: Sequence[str]) -> st.SearchStrategy[str]:
    """Well-formed symbols that are not listed: other pairs, delivered quarters."""
    candidates = st.one_of(
        st.sampled_from(
            ("XRPUSD_PERP", "BTCUSDT", "BTCUSD_200327", "ETHUSD_190628", "DOGEUSD_PERP")
        ),
        st.from_regex(r"\A[A-Z0-9]{3,8}USD_[0-9]{6}\Z"),
    )
    return candidates.filter(lambda s: s not in listed)


def illegal_symbols() -> st.SearchStrategy[str]:
    """Symbols outside ^[A-Z0-9-_.]{1,20}$: lowercase, other characters, too long (-1100)."""
    return st.one_of(
        st.sampled_from(("btcusd_perp", "BTCUSD PERP", "BTC/USD", "BTCUSD_PERP!", "A" * 21)),
        st.text(string.ascii_lowercase, min_size=1, max_size=20),
    )


SIGNATURE_TAMPERS = ("flipped", "other_key", "other_payload", "reordered", "truncated")


def signature_tampers() -> st.SearchStrategy[str]:
    """Ways a signature goes wrong: a changed character, another key, another payload, ..."""
    return st.sampled_from(SIGNATURE_TAMPERS)


def form(pairs: Sequence[tuple[str, str]]) -> str:
    """Pairs as `application/x-www-form-urlencoded`, in the given order."""
    return urlencode(list(pairs))


def split_params(
    pairs: Sequence[tuple[str, str]], placement: Placement
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(query pairs, body pairs): `split` puts recvWindow and timestamp in the body."""
    pairs = list(pairs)
    if placement == "query":
        return pairs, []
    if placement == "body":
        return [], pairs
    stamps = {"recvWindow", "timestamp"}
    return [p for p in pairs if p[0] not in stamps], [p for p in pairs if p[0] in stamps]
