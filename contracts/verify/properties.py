"""Every property `verify-server` checks, in the order it runs them.

Portable properties use only Binance's routes, so they hold for Binance itself
(testnet included). Properties marked ``mock_rules`` rest on the mock's own
choices where Binance is silent: they run only with ``--mock-rules`` and may use
the mock's /__admin control plane.
"""

from __future__ import annotations

from contracts.verify.changes import (
    check_bracket_tables_are_monotone,
    check_fresh_account_starts_at_20,
    check_max_qty_follows_brackets,
    check_repeating_a_change_is_harmless,
    check_same_leverage_again_succeeds,
    check_valid_requests_succeed,
)
from contracts.verify.context import Property, state_unchanged, sync_time
from contracts.verify.parameters import (
    check_duplicates_are_1101,
    check_leverage_below_one_is_4028,
    check_malformed_integers_are_1102,
    check_out_of_range_leverage_is_4028,
    check_unknown_parameters_are_ignored,
)
from contracts.verify.signatures import (
    check_misplaced_signature_is_1022,
    check_wrong_signature_is_1022,
)
from contracts.verify.timing import (
    check_bad_timestamp_is_1021,
    check_recv_window_has_no_cap,
    check_timing_window_is_exact,
)

PROPERTIES: tuple[Property, ...] = (
    Property(
        "valid_signed_requests_succeed",
        "valid signed requests succeed, and every answer is schema-valid",
        check_valid_requests_succeed,
    ),
    Property(
        "max_qty_follows_published_brackets",
        "maxQty is the qtyCap the server's own brackets give, and never grows with leverage",
        check_max_qty_follows_brackets,
        before=check_bracket_tables_are_monotone,
    ),
    Property(
        "wrong_signature_is_1022",
        "a wrong signature is always 400 -1022, and changes nothing",
        check_wrong_signature_is_1022,
        after=state_unchanged,
    ),
    Property(
        "stale_or_future_timestamp_is_1021",
        "a stale or future timestamp is always 400 -1021, and changes nothing",
        check_bad_timestamp_is_1021,
        before=sync_time,
        after=state_unchanged,
    ),
    Property(
        "out_of_range_leverage_is_4028",
        "leverage above the symbol's maximum is always 400 -4028, and changes nothing",
        check_out_of_range_leverage_is_4028,
        after=state_unchanged,
    ),
    Property(
        "repeating_a_change_is_harmless",
        "repeating a change leaves the leverage and maxQty of the first",
        check_repeating_a_change_is_harmless,
    ),
    Property(
        "leverage_below_one_is_4028",
        "leverage 0 or below is 400 -4028 'Leverage N is not valid' (our choice)",
        check_leverage_below_one_is_4028,
        mock_rules=True,
        after=state_unchanged,
    ),
    Property(
        "duplicate_parameters_are_1101",
        "a parameter twice in the query or the body is 400 -1101 (our choice)",
        check_duplicates_are_1101,
        mock_rules=True,
        after=state_unchanged,
    ),
    Property(
        "fresh_account_starts_at_20",
        "a fresh account shows every symbol at 20x (our choice)",
        check_fresh_account_starts_at_20,
        mock_rules=True,
        once=True,
    ),
    Property(
        "same_leverage_again_succeeds",
        "setting the current leverage again is 200 with the same body (our choice)",
        check_same_leverage_again_succeeds,
        mock_rules=True,
    ),
    Property(
        "unknown_parameters_are_ignored",
        "an unknown parameter is ignored (strict_params off, our choice)",
        check_unknown_parameters_are_ignored,
        mock_rules=True,
    ),
    Property(
        "recv_window_has_no_cap",
        "recvWindow above 60000 is honoured (no cap by default, our choice)",
        check_recv_window_has_no_cap,
        mock_rules=True,
        before=sync_time,
    ),
    Property(
        "malformed_integers_are_1102",
        "an INT that is not ASCII -?[0-9]+ is -1102; leading zeros are fine (our choice)",
        check_malformed_integers_are_1102,
        mock_rules=True,
        after=state_unchanged,
    ),
    Property(
        "timing_window_is_exact",
        "timestamp < serverTime + 1000 and serverTime - timestamp <= recvWindow, to the ms",
        check_timing_window_is_exact,
        mock_rules=True,
        before=sync_time,
    ),
    Property(
        "misplaced_signature_is_1022",
        "a right signature that is not the last element is 400 -1022",
        check_misplaced_signature_is_1022,
        mock_rules=True,
        after=state_unchanged,
    ),
)
PROPERTY_NAMES = tuple(p.name for p in PROPERTIES)
