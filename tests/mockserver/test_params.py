"""params.parse and parse_long: raw query/body bytes -> Binance parameters
(docs/behaviour.md#parameters, #values, #error-table)."""

from __future__ import annotations

from urllib.parse import quote_plus, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mockserver.errors import ExchangeError
from mockserver.params import Params, parse, parse_long

MAX = 64
ILLEGAL = "Illegal characters found in a parameter."
ILLEGAL_SYMBOL = (
    "Illegal characters found in parameter 'symbol'; legal range is '^[A-Z0-9-_.]{1,20}$'."
)
DUPLICATE = "Duplicate values for a parameter detected."
TOO_MANY = "Too many parameters sent for this endpoint."


def rejected(
    query: bytes, body: bytes = b"", max_params: int = MAX, check_symbol: bool = False
) -> ExchangeError:
    with pytest.raises(ExchangeError) as caught:
        parse(query, body, max_params, check_symbol)
    return caught.value


# -- request shapes ---------------------------------------------------------------------


def test_query_only_request_gives_its_values_and_payload_without_signature() -> None:
    query = b"symbol=BTCUSD_PERP&leverage=20&timestamp=1591702613943&signature=abc123"
    sent = parse(query, b"", MAX)
    assert sent.values == {
        "symbol": "BTCUSD_PERP",
        "leverage": "20",
        "timestamp": "1591702613943",
        "signature": "abc123",
    }
    assert sent.signature == "abc123"
    assert sent.signature_is_last is True
    assert sent.signed_payload == b"symbol=BTCUSD_PERP&leverage=20&timestamp=1591702613943"


def test_body_only_request_with_sorted_keys_gives_its_values() -> None:
    body = b"leverage=20&recvWindow=5000&symbol=BTCUSD_PERP&timestamp=1&signature=ff"
    sent = parse(b"", body, MAX)
    assert sent.values == {
        "leverage": "20",
        "recvWindow": "5000",
        "symbol": "BTCUSD_PERP",
        "timestamp": "1",
        "signature": "ff",
    }
    assert sent.signature_is_last is True
    assert sent.signed_payload == b"leverage=20&recvWindow=5000&symbol=BTCUSD_PERP&timestamp=1"


def test_body_only_request_with_timestamp_first_keeps_the_raw_order_in_the_payload() -> None:
    body = b"timestamp=1&symbol=BTCUSD_PERP&leverage=20&signature=ff"
    sent = parse(b"", body, MAX)
    assert sent.values["timestamp"] == "1"
    assert sent.signed_payload == b"timestamp=1&symbol=BTCUSD_PERP&leverage=20"


def test_mixed_query_and_body_payload_is_query_then_body_with_no_separator() -> None:
    sent = parse(
        b"symbol=BTCUSD_PERP&leverage=20",
        b"recvWindow=5000&timestamp=1591702613943&signature=ab",
        MAX,
    )
    assert sent.values == {
        "symbol": "BTCUSD_PERP",
        "leverage": "20",
        "recvWindow": "5000",
        "timestamp": "1591702613943",
        "signature": "ab",
    }
    assert sent.signed_payload == (
        b"symbol=BTCUSD_PERP&leverage=20recvWindow=5000&timestamp=1591702613943"
    )


def test_signature_last_in_query_with_a_body_after_it_is_still_last() -> None:
    sent = parse(b"a=1&signature=ab", b"b=2&c=3", MAX)
    assert sent.signature_is_last is True
    assert sent.signed_payload == b"a=1b=2&c=3"


def test_a_name_in_both_query_and_body_takes_the_query_value() -> None:
    sent = parse(b"leverage=20&symbol=BTCUSD_PERP", b"leverage=50&timestamp=1", MAX)
    assert sent.values["leverage"] == "20"
    assert sent.get("timestamp") == "1"
    assert "symbol" in sent


def test_empty_query_and_body_give_no_parameters() -> None:
    assert parse(b"", b"", MAX) == Params({}, None, False, b"")


def test_signature_as_the_only_element_of_the_query_is_removed_whole() -> None:
    sent = parse(b"signature=abc", b"timestamp=1&leverage=2", MAX)
    assert sent.signature_is_last is True
    assert sent.signed_payload == b"timestamp=1&leverage=2"


def test_signature_as_the_only_element_of_the_body_is_removed_whole() -> None:
    sent = parse(b"timestamp=1&leverage=2", b"signature=abc", MAX)
    assert sent.signature_is_last is True
    assert sent.signed_payload == b"timestamp=1&leverage=2"


def test_signed_payload_keeps_bytes_percent_encoded() -> None:
    sent = parse(b"note=a%20b%2Bc&x=%E2%82%AC&signature=%2Babc%3D", b"", MAX)
    assert sent.values["note"] == "a b+c"
    assert sent.values["x"] == "€"
    assert sent.signature == "+abc="
    assert sent.signed_payload == b"note=a%20b%2Bc&x=%E2%82%AC"


def test_the_payload_splits_back_into_its_query_and_body_shares() -> None:
    sent = parse(b"symbol=BTCUSD_PERP&leverage=20", b"timestamp=1&signature=abc", MAX)
    assert sent.signed_query == b"symbol=BTCUSD_PERP&leverage=20"
    assert sent.signed_body == b"timestamp=1"
    assert sent.signature_in_query is False
    in_query = parse(b"timestamp=1&signature=abc", b"leverage=20", MAX)
    assert (in_query.signed_query, in_query.signed_body) == (b"timestamp=1", b"leverage=20")
    assert in_query.signature_in_query is True


def test_signature_not_last_is_reported_and_kept_in_the_payload() -> None:
    sent = parse(b"signature=abc&timestamp=1", b"", MAX)
    assert sent.signature == "abc"
    assert sent.signature_is_last is False
    assert sent.signed_payload == b"signature=abc&timestamp=1"


def test_signature_not_last_in_the_body_is_reported() -> None:
    sent = parse(b"", b"a=1&signature=abc&timestamp=1", MAX)
    assert sent.signature_is_last is False


def test_no_signature_gives_none_and_the_whole_payload() -> None:
    sent = parse(b"a=1", b"b=2", MAX)
    assert sent.signature is None
    assert sent.signature_is_last is False
    assert sent.signed_payload == b"a=1b=2"


def test_plus_decodes_to_a_space() -> None:
    assert parse(b"a=1+2", b"b=x+y", MAX).values == {"a": "1 2", "b": "x y"}


def test_encoded_plus_decodes_to_a_plus() -> None:
    assert parse(b"a=%2B", b"", MAX).values == {"a": "+"}


def test_element_without_equals_sign_has_an_empty_value() -> None:
    assert parse(b"a&b=", b"", MAX).values == {"a": "", "b": ""}


def test_value_keeps_later_equals_signs() -> None:
    assert parse(b"a=1=2", b"", MAX).values == {"a": "1=2"}


# -- duplicates -------------------------------------------------------------------------


def test_signature_in_both_query_and_body_is_rejected_with_1101() -> None:
    error = rejected(b"a=1&signature=ab", b"b=2&signature=ab")
    assert (error.status, error.code, error.msg) == (400, -1101, DUPLICATE)


def test_duplicate_name_in_query_is_rejected_with_1101() -> None:
    error = rejected(b"leverage=20&symbol=X&leverage=20")
    assert (error.status, error.code, error.msg) == (400, -1101, DUPLICATE)
    assert "leverage" in error.reason


def test_duplicate_name_in_body_is_rejected_with_1101() -> None:
    error = rejected(b"", b"timestamp=1&timestamp=2")
    assert (error.status, error.code, error.msg) == (400, -1101, DUPLICATE)


def test_duplicate_after_decoding_is_rejected_with_1101() -> None:
    error = rejected(b"leverage=1&%6Ceverage=2")
    assert error.code == -1101


def test_names_differing_only_in_case_are_not_duplicates() -> None:
    assert parse(b"a=1&A=2", b"", MAX).values == {"a": "1", "A": "2"}


def test_illegal_characters_are_reported_before_duplicates() -> None:
    assert rejected(b"a=1&a=%zz").code == -1100


# -- illegal characters -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "why"),
    [
        (b"a=%zz", "bad percent-encoding"),
        (b"a=%4", "truncated percent-encoding"),
        (b"a=1%", "lone percent sign"),
        (b"%zz=1", "bad percent-encoding in a name"),
        (b"a=%ff", "invalid UTF-8"),
        (b"a=\xff", "raw invalid UTF-8"),
        (b"a=%C3", "truncated UTF-8 sequence"),
        (b"a=%00", "NUL"),
        (b"a=%0a", "line feed"),
        (b"a=%0D", "carriage return"),
        (b"a=%09", "tab"),
        (b"a=%7f", "DEL"),
        (b"a=%C2%85", "C1 control (NEL)"),
        (b"a%00=1", "control character in a name"),
        (b"=5", "empty name"),
        (b"b=1&=5", "empty name after another element"),
    ],
)
def test_undecodable_or_control_characters_are_rejected_with_1100(query: bytes, why: str) -> None:
    error = rejected(query)
    assert (error.status, error.code, error.msg) == (400, -1100, ILLEGAL), why


def test_illegal_characters_in_the_body_are_rejected_with_1100() -> None:
    error = rejected(b"a=1", b"b=%zz")
    assert (error.status, error.code, error.msg) == (400, -1100, ILLEGAL)


def test_non_ascii_utf8_values_are_accepted() -> None:
    assert parse(b"a=%C3%A9t%C3%A9", b"", MAX).values == {"a": "été"}


# -- the symbol pattern -----------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"btcusd_perp",
        b"BTCUSD_perp",
        b"BTCUSD_PERP_ABCDEFGHI",
        b"BTC+USD",
        b"BTC%20USD",
        b"BTC/USD",
    ],
)
def test_symbol_outside_the_pattern_is_rejected_with_1100_naming_symbol(raw: bytes) -> None:
    error = rejected(b"symbol=" + raw, check_symbol=True)
    assert (error.status, error.code, error.msg) == (400, -1100, ILLEGAL_SYMBOL)


def test_symbol_in_the_body_is_checked_too() -> None:
    assert rejected(b"", b"symbol=btcusd", check_symbol=True).msg == ILLEGAL_SYMBOL


@pytest.mark.parametrize("symbol", ["BTCUSD_PERP", "A", "ABCDEFGHIJ0123456789", "X-Y.Z_1"])
def test_symbol_matching_the_pattern_is_accepted(symbol: str) -> None:
    sent = parse(f"symbol={symbol}".encode(), b"", MAX, check_symbol=True)
    assert sent.values["symbol"] == symbol


def test_empty_symbol_is_left_for_the_mandatory_check() -> None:
    assert parse(b"symbol=", b"", MAX, check_symbol=True).values == {"symbol": ""}


def test_symbol_is_not_checked_without_check_symbol() -> None:
    assert parse(b"symbol=btcusd", b"", MAX).values == {"symbol": "btcusd"}


# -- too many parameters ----------------------------------------------------------------


def test_exactly_max_params_elements_are_accepted() -> None:
    assert len(parse(b"a=1&b=2", b"c=3", 3).values) == 3


def test_more_than_max_params_elements_are_rejected_with_1101() -> None:
    error = rejected(b"a=1&b=2", b"c=3&d=4", max_params=3)
    assert (error.status, error.code, error.msg) == (400, -1101, TOO_MANY)


def test_empty_elements_do_not_count_toward_max_params() -> None:
    assert parse(b"a=1&", b"", 1).values == {"a": "1"}


def test_too_many_params_is_reported_before_illegal_characters() -> None:
    error = rejected(b"a=%zz&b=2", b"c=3&d=4", max_params=3)
    assert (error.code, error.msg) == (-1101, TOO_MANY)


# -- the request-shape property ---------------------------------------------------------

_names = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,9}", fullmatch=True).filter(
    lambda name: name != "signature"
)
_values = st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=12)


@given(
    params=st.dictionaries(_names, _values, max_size=8),
    data=st.data(),
    signature=st.from_regex(r"[0-9a-f]{64}", fullmatch=True),
)
def test_any_order_and_split_give_same_values_and_raw_payload(
    params: dict[str, str], data: st.DataObject, signature: str
) -> None:
    elements = [urlencode({name: value}) for name, value in params.items()]
    elements = data.draw(st.permutations(elements))
    split = data.draw(st.integers(0, len(elements)))
    query_elements, body_elements = elements[:split], elements[split:]
    query, body = "&".join(query_elements), "&".join(body_elements)
    signature_element = f"signature={quote_plus(signature)}"
    sign_in_query = data.draw(st.booleans())
    if sign_in_query:
        sent_query, sent_body = "&".join([*query_elements, signature_element]), body
    else:
        sent_query, sent_body = query, "&".join([*body_elements, signature_element])

    sent = parse(sent_query.encode(), sent_body.encode(), MAX)

    assert sent.values == {**params, "signature": signature}
    assert sent.signature == signature
    assert sent.signature_is_last is True
    assert sent.signed_payload == (query + body).encode()


_plain_elements = st.from_regex(r"[A-Za-z0-9_.\-]{0,6}(=[A-Za-z0-9_.\-=]{0,6})?", fullmatch=True)
_plain_parts = st.lists(st.just("") | _plain_elements, max_size=6).map("&".join)


def _percent_encoded(part: str) -> str:
    """`part` with every character of every name and value written as %XX."""
    return "&".join(
        "=".join("".join(f"%{ord(c):02X}" for c in piece) for piece in element.split("=", 1))
        for element in part.split("&")
    )


@given(_plain_parts, st.booleans())
def test_a_plain_part_reads_as_its_percent_encoded_twin(part: str, check_symbol: bool) -> None:
    # Plain parts are decoded in one go, the others piece by piece: both must agree.
    def outcome(raw: str) -> dict[str, str] | tuple[int, str]:
        try:
            return parse(raw.encode(), b"", MAX, check_symbol).values
        except ExchangeError as error:
            return error.code, error.msg

    assert outcome(part) == outcome(_percent_encoded(part))


# -- parse_long -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("20", 20),
        ("007", 7),
        ("0", 0),
        ("-5", -5),
        (str(2**63 - 1), 2**63 - 1),
        (str(-(2**63)), -(2**63)),
    ],
)
def test_parse_long_accepts_ascii_integers_within_int64(text: str, value: int) -> None:
    assert parse_long(text) == value


@pytest.mark.parametrize(
    "text",
    [
        "+20",
        " 20",
        "20 ",
        "20\n",
        "20.0",
        "1e3",
        "２０",
        "٢٠",
        "",
        "-",
        "0x10",
        "1_000",
        str(2**63),
        str(-(2**63) - 1),
        None,
    ],
)
def test_parse_long_rejects_anything_else(text: str | None) -> None:
    assert parse_long(text) is None


@given(st.integers())
def test_parse_long_round_trips_exactly_the_int64_range(value: int) -> None:
    expected = value if -(2**63) <= value < 2**63 else None
    assert parse_long(str(value)) == expected
