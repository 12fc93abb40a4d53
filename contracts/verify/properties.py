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

#: The first check of every run: the server answers the reads the properties rest on.
DISCOVERY = "server_publishes_its_market"
DISCOVERY_RULE = "endpoints"
DISCOVERY_STATEMENT = (
    "time, exchangeInfo, v2 leverageBracket and positionRisk answer schema-valid bodies"
)

PROPERTIES: tuple[Property, ...] = (
    Property(
        "valid_signed_requests_succeed",
        "change-leverage",
        "a valid signed leverage change succeeds wherever its parameters are, and every "
        "answer is schema-valid",
        check_valid_requests_succeed,
    ),
    Property(
        "max_qty_follows_published_brackets",
        "brackets",
        "maxQty is the qtyCap the server's own brackets give for the leverage, and never "
        "grows with leverage",
        check_max_qty_follows_brackets,
        before=check_bracket_tables_are_monotone,
    ),
    Property(
        "wrong_signature_is_1022",
        "signatures",
        "a request with a wrong signature is answered 400 -1022 and changes nothing",
        check_wrong_signature_is_1022,
        after=state_unchanged,
    ),
    Property(
        "stale_or_future_timestamp_is_1021",
        "timing",
        "a timestamp older than recvWindow or 1000 ms or more ahead of server time is "
        "answered 400 -1021 and changes nothing",
        check_bad_timestamp_is_1021,
        before=sync_time,
        after=state_unchanged,
    ),
    Property(
        "out_of_range_leverage_is_4028",
        "change-leverage",
        "a leverage above the symbol's maximum is answered 400 -4028 and changes nothing",
        check_out_of_range_leverage_is_4028,
        after=state_unchanged,
    ),
    Property(
        "repeating_a_change_is_harmless",
        "change-leverage",
        "repeating a change leaves the leverage and maxQty of the first",
        check_repeating_a_change_is_harmless,
    ),
    Property(
        "leverage_below_one_is_4028",
        "change-leverage",
        "a leverage of 0 or below is answered 400 -4028 'Leverage N is not valid'",
        check_leverage_below_one_is_4028,
        mock_rules=True,
        after=state_unchanged,
    ),
    Property(
        "duplicate_parameters_are_1101",
        "parameters",
        "a parameter sent twice in the query or the body is answered 400 -1101",
        check_duplicates_are_1101,
        mock_rules=True,
        after=state_unchanged,
    ),
    Property(
        "fresh_account_starts_at_20",
        "position-risk",
        "a fresh account shows every symbol at 20x with that leverage's maxQty",
        check_fresh_account_starts_at_20,
        mock_rules=True,
        needs_symbols=False,  # a fresh account has no position, whatever this one holds
        once=True,
    ),
    Property(
        "same_leverage_again_succeeds",
        "change-leverage",
        "setting the current leverage again answers 200 with the same body",
        check_same_leverage_again_succeeds,
        mock_rules=True,
    ),
    Property(
        "unknown_parameters_are_ignored",
        "parameters",
        "a parameter the endpoint does not know is ignored (strict_params off)",
        check_unknown_parameters_are_ignored,
        mock_rules=True,
    ),
    Property(
        "recv_window_has_no_cap",
        "timing",
        "a recvWindow above 60000 is honoured: there is no cap by default",
        check_recv_window_has_no_cap,
        mock_rules=True,
        before=sync_time,
    ),
    Property(
        "malformed_integers_are_1102",
        "values",
        "an integer parameter that is not ASCII -?[0-9]+ is answered 400 -1102; leading "
        "zeros are fine",
        check_malformed_integers_are_1102,
        mock_rules=True,
        after=state_unchanged,
    ),
    Property(
        "timing_window_is_exact",
        "timing",
        "a timestamp is accepted exactly when it is less than 1000 ms ahead of server time "
        "and at most recvWindow ms behind it, to the millisecond",
        check_timing_window_is_exact,
        mock_rules=True,
        before=sync_time,
    ),
    Property(
        "misplaced_signature_is_1022",
        "signatures",
        "a right signature that is not the last parameter is answered 400 -1022",
        check_misplaced_signature_is_1022,
        mock_rules=True,
        after=state_unchanged,
    ),
)
PROPERTY_NAMES = tuple(p.name for p in PROPERTIES)
