"""Every property `verify-server` checks, in the order it runs them.

Portable properties use only Binance's routes, so they hold for Binance itself
(testnet included). Properties marked ``mock_rules`` rest on the mock's own
choices where Binance is silent: they run only with ``--mock-rules`` and may use
the mock's /__admin control plane. Properties marked ``changes_settings`` change
the account's position mode or a margin type: they run only with
``--change-account-settings`` and put back what they changed.
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
from contracts.verify.configuration import (
    check_account_matches_position_risk,
    check_bad_margin_type_is_1130,
    check_bad_position_mode_is_1130,
    check_balance_matches_account,
    check_leverage_cap_is_enforced,
    check_margin_type_no_change_is_4046,
    check_margin_type_reads_back,
    check_open_position_blocks_changes,
    check_position_mode_no_change_is_4059,
    check_position_mode_reads_back,
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
        "account_matches_position_risk",
        "account",
        "GET account answers a schema-valid body with a position row for each side "
        "positionRisk shows (BOTH in one-way mode; BOTH, LONG and SHORT in hedge mode), with "
        "the same amount, leverage and margin type",
        check_account_matches_position_risk,
        needs_symbols=False,
        once=True,
    ),
    Property(
        "balance_matches_account",
        "balance",
        "GET balance answers schema-valid rows under one account alias, each asset with the "
        "wallet balance the account answer shows",
        check_balance_matches_account,
        needs_symbols=False,
        once=True,
    ),
    Property(
        "margin_type_no_change_is_4046",
        "margin-type",
        "asking for the margin type a symbol already has is answered 400 -4046 'No need to "
        "change margin type.' and changes nothing",
        check_margin_type_no_change_is_4046,
    ),
    Property(
        "position_mode_no_change_is_4059",
        "position-mode",
        "asking for the position mode the account is in is answered 400 -4059 'No need to "
        "change position side.' and changes nothing",
        check_position_mode_no_change_is_4059,
        needs_symbols=False,
        once=True,
    ),
    Property(
        "margin_type_reads_back",
        "margin-type",
        "a margin type change answers 200 success, every positionRisk and account row of the "
        "symbol shows it, and changing back restores it",
        check_margin_type_reads_back,
        changes_settings=True,
        once=True,
    ),
    Property(
        "position_mode_reads_back",
        "position-mode",
        "a position mode change answers 200 success, positionSide/dual reads it back, "
        "positionRisk shows that mode's sides, and changing back restores it",
        check_position_mode_reads_back,
        changes_settings=True,
        needs_symbols=False,
        once=True,
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
        "change-leverage",
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
    Property(
        "bad_margin_type_is_1130",
        "margin-type",
        "a marginType other than exactly ISOLATED or CROSSED is answered 400 -1130 and "
        "changes nothing",
        check_bad_margin_type_is_1130,
        mock_rules=True,
    ),
    Property(
        "bad_position_mode_is_1130",
        "position-mode",
        "a dualSidePosition other than true or false (any letter case) is answered 400 -1130 "
        "and changes nothing",
        check_bad_position_mode_is_1130,
        mock_rules=True,
        needs_symbols=False,
    ),
    Property(
        "open_position_blocks_setting_changes",
        "position-configuration",
        "with a position open on a symbol, changing its margin type is answered 400 -4048 and "
        "the position mode 400 -4068, and neither changes (on an account made for the check)",
        check_open_position_blocks_changes,
        mock_rules=True,
        needs_symbols=False,
        once=True,
    ),
    Property(
        "leverage_cap_is_enforced",
        "leverage-cap",
        "an account capped at N starts at most at Nx, may set Nx, and is refused N+1 with its "
        "rule's code and text, after the symbol's own range (-4028) (on accounts made for the "
        "check)",
        check_leverage_cap_is_enforced,
        mock_rules=True,
        needs_symbols=False,
    ),
)
PROPERTY_NAMES = tuple(p.name for p in PROPERTIES)
