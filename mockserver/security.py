"""Who is calling and whether they may: API keys, the timing window, signatures
(docs/behaviour.md#signatures, #timing).

This is the server's own reading of Binance's signing rules; the reference
client in `contracts/signing.py` implements them separately, so each checks
the other.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass, field
from typing import Any

from mockserver import doctor, errors
from mockserver.params import Params, parse_long

API_KEY_FORM = re.compile(r"[A-Za-z0-9]{1,64}")
DEFAULT_RECV_WINDOW_MS = 5000
AHEAD_TOLERANCE_MS = 1000
# Binance secrets are 64 characters; the cap keeps 10,000 accounts' memory small (our choice).
MAX_SECRET_CHARS = 1024
MAX_RSA_BITS = 16384  # OpenSSL's OPENSSL_RSA_MAX_MODULUS_BITS; Binance takes 2048 and 4096


class AccountError(ValueError):
    """An account definition that cannot be used (bad key form, unreadable public key)."""


@dataclass(frozen=True)
class Account:
    """An API key with either an HMAC secret or an RSA/Ed25519 public key. Never rendered."""

    api_key: str
    type: str  # "hmac", "rsa" or "ed25519"
    secret: bytes = field(default=b"", repr=False)
    public_key: Any = field(default=None, repr=False)

    def verify(self, payload: bytes, signature: str) -> bool:
        if self.type == "hmac":
            expected = hmac.new(self.secret, payload, hashlib.sha256).hexdigest().encode()
            # Binance treats the hex signature as case-insensitive.
            return hmac.compare_digest(expected, signature.lower().encode("utf-8"))
        try:
            raw = base64.b64decode(signature.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            return False
        return _verify_asymmetric(self.public_key, self.type, raw, payload)


def _verify_asymmetric(public_key: Any, kind: str, raw: bytes, payload: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    try:
        if kind == "rsa":
            public_key.verify(raw, payload, padding.PKCS1v15(), hashes.SHA256())
        else:
            public_key.verify(raw, payload)
    except InvalidSignature:
        return False
    return True


def check_api_key_form(api_key: str) -> None:
    if not API_KEY_FORM.fullmatch(api_key):
        raise AccountError("api_key must be 1 to 64 characters of [A-Za-z0-9]")


def hmac_account(api_key: str, secret: str) -> Account:
    check_api_key_form(api_key)
    if not 0 < len(secret) <= MAX_SECRET_CHARS:
        raise AccountError(f"secret must be 1 to {MAX_SECRET_CHARS} characters")
    return Account(api_key, "hmac", secret=secret.encode("utf-8"))


def public_key_account(api_key: str, pem: str) -> Account:
    """An account verified by an RSA or Ed25519 public key; the type is read from the PEM."""
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    check_api_key_form(api_key)
    try:
        key = load_pem_public_key(pem.encode("utf-8"))
    except (ValueError, TypeError) as exc:
        raise AccountError(f"public_key is not a PEM public key: {exc}") from None
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size > MAX_RSA_BITS:
            raise AccountError(f"an RSA public_key has at most {MAX_RSA_BITS} bits")
        return Account(api_key, "rsa", public_key=key)
    if isinstance(key, ed25519.Ed25519PublicKey):
        return Account(api_key, "ed25519", public_key=key)
    raise AccountError("public_key must be an RSA or Ed25519 key")


def authenticate(
    headers_api_key: str | None,
    params: Params,
    accounts: dict[str, Account],
    server_time_ms: int,
    recv_window_max: int,
) -> Account:
    """Run the SIGNED checks in the order of
    docs/behaviour.md#order-of-checks; return the caller's account."""
    if not headers_api_key or not API_KEY_FORM.fullmatch(headers_api_key):
        why = (
            "X-MBX-APIKEY header missing or empty"
            if not headers_api_key
            else ("X-MBX-APIKEY is not 1-64 characters of [A-Za-z0-9]")
        )
        raise errors.api_key_format_invalid(why)
    account = accounts.get(headers_api_key)
    if account is None:
        raise errors.api_key_invalid()

    timestamp = parse_long(params.get("timestamp"))
    if timestamp is None:
        raw = params.get("timestamp")
        why = "timestamp not sent" if raw is None else f"timestamp {raw!r} is not a LONG"
        raise errors.mandatory_param("timestamp", why)
    if not params.signature:
        raise errors.mandatory_param("signature", "signature not sent or empty")

    recv_window = DEFAULT_RECV_WINDOW_MS
    if "recvWindow" in params:
        parsed = parse_long(params.get("recvWindow"))
        if parsed is None or parsed < 0:
            raise errors.invalid_param(
                "recvWindow", f"recvWindow {params.get('recvWindow')!r} is not a LONG >= 0"
            )
        if recv_window_max and parsed > recv_window_max:
            raise errors.invalid_param(
                "recvWindow", f"recvWindow {parsed} is above recv_window_max {recv_window_max}"
            )
        recv_window = parsed

    check_timing(timestamp, recv_window, server_time_ms)

    if not params.signature_is_last:
        raise errors.signature_invalid(
            "signature is not the last parameter of the query string or body"
        )
    if not account.verify(params.signed_payload, params.signature):
        # docs/behaviour.md#signature-doctor: say which known mistake it was, when one fits.
        verdict = doctor.diagnose(account, params, accounts)
        raise errors.signature_invalid(
            f"{account.type} signature does not match: "
            + (f"{verdict}; " if verdict else "")
            + f"payload was {params.signed_payload[:512].decode('utf-8', 'replace')!r}"
        )
    return account


def check_timing(timestamp: int, recv_window: int, server_time_ms: int) -> None:
    """Binance's rule: timestamp < serverTime + 1000 and serverTime - timestamp <= recvWindow."""
    if timestamp >= server_time_ms + AHEAD_TOLERANCE_MS:
        raise errors.timestamp_ahead(
            f"timestamp {timestamp} is {timestamp - server_time_ms} ms ahead of "
            f"server time {server_time_ms}"
        )
    if server_time_ms - timestamp > recv_window:
        raise errors.timestamp_outside_window(
            f"timestamp {timestamp} is {server_time_ms - timestamp} ms behind server time "
            f"{server_time_ms}, recvWindow is {recv_window}"
        )
