"""The signature doctor: which known mistake a refused signature matches.

docs/behaviour.md#signature-doctor. Runs only when a signature is refused (-1022). Its
verdict goes into the rejection reason, so the journal and the request log say why; the
answer stays Binance's own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING
from urllib.parse import unquote_to_bytes

if TYPE_CHECKING:
    from mockserver.params import Params
    from mockserver.security import Account

# docs/behaviour.md#signature-doctor: a wrong key is looked for among at most 32 other accounts,
# and for at most about 1 ms: one Ed25519 verification alone can take 0.2 ms.
MAX_OTHER_KEYS = 32
KEY_SEARCH_BUDGET_S = 0.001
ED25519_SIGNATURE_BYTES = 64
_HEX_HMAC = re.compile(r"[0-9a-fA-F]{64}")

AS_SENT = "Binance signs the bytes exactly as sent"
# (extra before the secret, extra after it, what that is) for a client's badly read secret.
SECRET_WHITESPACE = (
    (b"", b"\n", "a trailing newline"),
    (b"", b"\r\n", "a trailing CR LF"),
    (b"", b" ", "a trailing space"),
    (b" ", b"", "a leading space"),
    (b"", b"\t", "a trailing tab"),
)


def diagnose(account: Account, sent: Params, accounts: Mapping[str, Account]) -> str | None:
    """The mistake the refused signature of `sent` matches, in words; None when none does."""
    signature = sent.signature or ""
    if account.type == "hmac":
        return _hmac_mistake(account.secret, sent, signature)
    return _asymmetric_mistake(account, sent.signed_payload, signature, accounts.values())


def _elements(part: bytes) -> list[bytes]:
    return [element for element in part.split(b"&") if element]


def _name(element: bytes) -> bytes:
    return element.partition(b"=")[0]


def _plus_decoded(part: bytes) -> bytes:
    return unquote_to_bytes(part.replace(b"+", b" "))


def _wrong_payloads(sent: Params) -> Iterator[tuple[bytes, str]]:
    """What clients sign by mistake instead of the payload, in the documented order."""
    query, body, payload = sent.signed_query, sent.signed_body, sent.signed_payload
    elements = _elements(query) + _elements(body)
    by_name = sorted(elements, key=_name)
    if by_name != elements:
        yield b"&".join(by_name), f"the parameters sorted by name; {AS_SENT}, in the order sent"
    if b"%" in payload or b"+" in payload:
        decoded = _plus_decoded(query) + _plus_decoded(body)
        yield decoded, f"the values percent-decoded; {AS_SENT}, still percent-encoded"
    if b"%20" in payload:
        yield payload.replace(b"%20", b"+"), f"spaces as '+' where '%20' was sent; {AS_SENT}"
    if b"+" in payload:
        yield payload.replace(b"+", b"%20"), f"spaces as '%20' where '+' was sent; {AS_SENT}"
    if query and body:
        joined = "Binance signs the query string followed directly by the body"
        yield query, f"the query string alone; {joined}"
        yield body, f"the body alone; {joined}"
        yield query + b"&" + body, f"the query string and body joined with '&'; {joined}"
    left_in = (b"&" if (query if sent.signature_in_query else body) else b"") + b"signature="
    yield (
        query + left_in + body if sent.signature_in_query else payload + left_in,
        "the payload with an empty 'signature=' element left in; "
        "Binance signs the parameters without the signature element",
    )
    yield b"?" + payload, "the payload with a leading '?'; Binance signs it without the '?'"


def _hmac_mistake(secret: bytes, sent: Params, signature: str) -> str | None:
    sent_hex = signature.lower().encode("utf-8", "replace")
    payload = sent.signed_payload

    def matches(key: bytes, message: bytes) -> bool:
        expected = hmac.new(key, message, hashlib.sha256).hexdigest().encode()
        return hmac.compare_digest(expected, sent_hex)

    found = next((what for wrong, what in _wrong_payloads(sent) if matches(secret, wrong)), None)
    if found is None:
        found = next(
            (
                f"the secret with {what}; strip the secret where the client reads it"
                for before, after, what in SECRET_WHITESPACE
                if matches(before + secret + after, payload)
            ),
            None,
        )
    if found is None and _base64_of(hmac.new(secret, payload, hashlib.sha256).digest(), signature):
        found = "the right HMAC in base64; Binance wants it as hex (case does not matter)"
    return f"it matches {found}" if found else None


def _base64_of(digest: bytes, signature: str) -> bool:
    """Whether `signature` is `digest` in base64, standard or URL-safe; an unencoded '+' has
    reached the server as a space, so spaces are read back as '+'."""
    text = signature.replace(" ", "+").replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return False
    return hmac.compare_digest(raw, digest)


def _asymmetric_mistake(
    account: Account, payload: bytes, signature: str, accounts: Iterable[Account]
) -> str | None:
    if _HEX_HMAC.fullmatch(signature):
        # Valid base64 too, but 48 bytes: no RSA or Ed25519 signature has that length.
        return (
            f"the value looks like a hex HMAC-SHA256 signature; the account "
            f"{account.api_key!r} has an {account.type.upper()} key: sign with it, in base64"
        )
    try:
        raw = base64.b64decode(signature.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        hint = " (it holds a space: a '+' sent without percent-encoding reads as a space)"
        return "the value is not valid base64" + (hint if " " in signature else "")
    tried = 0
    deadline = time.perf_counter() + KEY_SEARCH_BUDGET_S
    for other in accounts:
        if other is account or not _could_have_made(other, raw):
            continue
        if other.verify(payload, signature):
            return (
                f"it verifies with the public key of account {other.api_key!r}, not of the "
                f"account {account.api_key!r} named by X-MBX-APIKEY"
            )
        tried += 1
        if tried == MAX_OTHER_KEYS or time.perf_counter() > deadline:
            break
    return None


def _could_have_made(other: Account, raw: bytes) -> bool:
    """Only keys whose signatures have this length are worth a verification."""
    if other.type == "ed25519":
        return len(raw) == ED25519_SIGNATURE_BYTES
    return other.type == "rsa" and len(raw) * 8 == other.public_key.key_size
