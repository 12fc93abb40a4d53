"""Raw query string and body bytes -> Binance parameters
(docs/behaviour.md#parameters, #signatures).

Binance reads the query string and the body alike as form-urlencoded
parameters, whatever the Content-Type says. The signature is checked against
the raw bytes as received, so parsing keeps them: `signed_payload` is the raw
query followed by the raw body, minus the trailing `signature` element.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from mockserver import errors

# The common case (plain names and values) skips percent-decoding entirely.
_PLAIN = re.compile(rb"[A-Za-z0-9_.\-]*")
_PLAIN_PART = re.compile(rb"[A-Za-z0-9_.\-=&]*")  # a whole query or body of such
_BAD_PERCENT = re.compile(rb"%(?![0-9A-Fa-f]{2})")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SYMBOL = re.compile(r"[A-Z0-9\-_.]{1,20}")
_INTEGER = re.compile(r"-?[0-9]+", re.ASCII)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class Params:
    """The parameters of one request, merged (a query value wins over the body's)."""

    values: dict[str, str]
    signature: str | None
    signature_is_last: bool
    signed_payload: bytes
    # Where the query's share of `signed_payload` ends, and which part carried the
    # signature: the signature doctor rebuilds a client's wrong payloads from these.
    query_end: int = 0
    signature_in_query: bool = False

    @property
    def signed_query(self) -> bytes:
        return self.signed_payload[: self.query_end]

    @property
    def signed_body(self) -> bytes:
        return self.signed_payload[self.query_end :]

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self.values


def _decode(raw: bytes, what: str) -> str:
    if _PLAIN.fullmatch(raw):
        return raw.decode("ascii")
    if _BAD_PERCENT.search(raw):
        raise errors.illegal_characters(f"bad percent-encoding in {what} {raw[:64]!r}")
    try:
        text = unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        raise errors.illegal_characters(f"{what} {raw[:64]!r} is not valid UTF-8") from None
    if _CONTROL.search(text):
        raise errors.illegal_characters(f"control character in {what} {raw[:64]!r}")
    return text


def _elements(part: bytes, where: str) -> list[tuple[str, str]]:
    """The (name, value) pairs of one part, decoded, in order; an empty element carries no
    parameter ("a=1&&b=2")."""
    if _PLAIN_PART.fullmatch(part):
        # Nothing to percent-decode (the common case): the part is decoded once instead of
        # name by name and value by value, a tenth of a signed request's own work.
        pairs = [element.partition("=") for element in part.decode("ascii").split("&") if element]
        return [(name, value) for name, _, value in pairs]
    decoded = []
    for element in part.split(b"&"):
        if element:
            raw_name, _, raw_value = element.partition(b"=")
            name = _decode(raw_name, f"{where} parameter name")
            decoded.append((name, _decode(raw_value, f"{where} value of {name!r}")))
    return decoded


def _decode_part(part: bytes, where: str, check_symbol: bool) -> list[tuple[str, str]]:
    """One part's parameters, decoded and then checked (all -1100,
    docs/behaviour.md#error-table)."""
    decoded = _elements(part, where)
    for name, value in decoded:
        if not name:
            raise errors.illegal_characters(f"empty parameter name in the {where}")
        if check_symbol and name == "symbol" and value and not _SYMBOL.fullmatch(value):
            raise errors.illegal_symbol(value)
    return decoded


def _without_duplicates(decoded: list[tuple[str, str]]) -> dict[str, str]:
    found = dict(decoded)
    if len(found) != len(decoded):
        seen: set[str] = set()
        for name, _ in decoded:
            if name in seen:
                raise errors.duplicate_param(name)
            seen.add(name)
    return found


def _without_trailing_signature(part: bytes) -> tuple[bytes, bool]:
    """The part minus its last element when that element is `signature=...`."""
    head, _, last = part.rpartition(b"&")
    if last.partition(b"=")[0] == b"signature":
        return head, True
    return part, False


def parse(query: bytes, body: bytes, max_params: int, check_symbol: bool = False) -> Params:
    """Parse one request's raw query and body, in the order of docs/behaviour.md#order-of-checks.

    `check_symbol` applies the symbol pattern (-1100) for endpoints that take one.
    """
    count = sum(1 for part in (query, body) for element in part.split(b"&") if element)
    if count > max_params:
        raise errors.too_many_params(400, f"{count} parameters sent, max_params is {max_params}")
    query_params = _decode_part(query, "query", check_symbol)
    body_params = _decode_part(body, "body", check_symbol)
    from_query = _without_duplicates(query_params)
    from_body = _without_duplicates(body_params)
    if "signature" in from_query and "signature" in from_body:
        raise errors.duplicate_param("signature")

    values = {**from_body, **from_query}
    signature = values.get("signature")
    query_rest, query_signed = _without_trailing_signature(query)
    body_rest, body_signed = _without_trailing_signature(body)
    in_query = "signature" in from_query
    return Params(
        values=values,
        signature=signature,
        signature_is_last=query_signed if in_query else body_signed,
        signed_payload=query_rest + body_rest,
        query_end=len(query_rest),
        signature_in_query=in_query,
    )


def parse_long(text: str | None) -> int | None:
    """Binance INT/LONG: ASCII `-?[0-9]+` within int64, leading zeros allowed; else None."""
    if text is None or not _INTEGER.fullmatch(text):
        return None
    value = int(text)
    return value if _INT64_MIN <= value <= _INT64_MAX else None
