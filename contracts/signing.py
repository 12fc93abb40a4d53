"""Binance request signers (HMAC-SHA256, RSA, Ed25519) as ``requests`` auth hooks.

Each signer works on the *prepared* request, i.e. on the bytes that will
actually be sent: ``totalParams`` is the raw query string followed directly
by the raw form body (docs/behaviour.md#signatures). The signature is appended as the last
element of the body when there is one, otherwise of the query string.

This module is written independently of the server's verifier
(``mockserver/security.py``) on purpose: the two check each other.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from abc import abstractmethod
from typing import TypeAlias
from urllib.parse import quote

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from requests import PreparedRequest
from requests.auth import AuthBase

__all__ = [
    "ApiKeyAuth",
    "Ed25519Auth",
    "HmacAuth",
    "PrivateKeyInput",
    "RsaAuth",
    "SigningAuth",
    "auth_from_private_key",
    "load_private_key",
    "total_params",
]

API_KEY_HEADER = "X-MBX-APIKEY"

PrivateKeyInput: TypeAlias = str | bytes | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


def total_params(query: str | bytes, body: str | bytes | None) -> bytes:
    """The signed payload: raw query bytes then raw body bytes, no separator."""
    return _to_bytes(query) + _to_bytes(body or b"")


class ApiKeyAuth(AuthBase):
    """Sets ``X-MBX-APIKEY`` only (for key-only endpoints); base of the signers."""

    def __init__(self, api_key: str) -> None:
        if not api_key:
            raise ValueError("api_key must be a non-empty string")
        self.api_key = api_key

    def __call__(self, r: PreparedRequest) -> PreparedRequest:
        r.headers[API_KEY_HEADER] = self.api_key
        return r

    def __repr__(self) -> str:
        # Never show key material; the api key alone is not secret but keep it short.
        return f"{type(self).__name__}(api_key={self.api_key[:4]}...)"


class SigningAuth(ApiKeyAuth):
    """Signs ``query + body`` of the prepared request and appends ``signature``."""

    @abstractmethod
    def signature(self, payload: bytes) -> str:
        """The wire form of the signature over ``payload`` (already URL-safe)."""
        raise NotImplementedError

    def __call__(self, r: PreparedRequest) -> PreparedRequest:
        super().__call__(r)
        url = r.url or ""
        # A fragment is never sent; keep it out of the signed payload and after the query.
        before_fragment, hash_mark, fragment = url.partition("#")
        path, _, query = before_fragment.partition("?")
        body = _body_bytes(r.body)
        element = "signature=" + self.signature(total_params(query, body))
        if body:
            r.body = body + b"&" + element.encode("ascii")
            r.headers["Content-Length"] = str(len(r.body))
        else:
            # The already-encoded query is kept byte for byte; only our element is added.
            query = f"{query}&{element}" if query else element
            r.url = f"{path}?{query}{hash_mark}{fragment}"
        return r


class HmacAuth(SigningAuth):
    """HMAC-SHA256 with the account secret; lowercase hex."""

    def __init__(self, api_key: str, secret: str | bytes) -> None:
        super().__init__(api_key)
        if not secret:
            raise ValueError("secret must be non-empty")
        self._secret = _to_bytes(secret)

    def signature(self, payload: bytes) -> str:
        return hmac.new(self._secret, payload, hashlib.sha256).hexdigest()


class RsaAuth(SigningAuth):
    """RSASSA-PKCS1-v1_5 with SHA-256; base64, percent-encoded."""

    def __init__(
        self, api_key: str, private_key: PrivateKeyInput, password: bytes | None = None
    ) -> None:
        super().__init__(api_key)
        key = load_private_key(private_key, password)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise TypeError(f"RsaAuth needs an RSA private key, got {type(key).__name__}")
        self._key = key

    def signature(self, payload: bytes) -> str:
        raw = self._key.sign(payload, padding.PKCS1v15(), hashes.SHA256())
        return _b64_for_url(raw)


class Ed25519Auth(SigningAuth):
    """Ed25519 (RFC 8032) over the payload; base64, percent-encoded."""

    def __init__(
        self, api_key: str, private_key: PrivateKeyInput, password: bytes | None = None
    ) -> None:
        super().__init__(api_key)
        key = load_private_key(private_key, password)
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise TypeError(f"Ed25519Auth needs an Ed25519 private key, got {type(key).__name__}")
        self._key = key

    def signature(self, payload: bytes) -> str:
        return _b64_for_url(self._key.sign(payload))


def load_private_key(
    private_key: PrivateKeyInput, password: bytes | None = None
) -> rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey:
    """A key object from PEM text/bytes (PKCS#8 or traditional), or the key itself."""
    if isinstance(private_key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        return private_key
    key = serialization.load_pem_private_key(_to_bytes(private_key), password=password)
    if not isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        raise TypeError(f"unsupported key type {type(key).__name__}: Binance takes RSA or Ed25519")
    return key


def auth_from_private_key(
    api_key: str, private_key: PrivateKeyInput, password: bytes | None = None
) -> RsaAuth | Ed25519Auth:
    """An RSA or Ed25519 signer, chosen by the type read from the key itself."""
    key = load_private_key(private_key, password)
    if isinstance(key, rsa.RSAPrivateKey):
        return RsaAuth(api_key, key)
    return Ed25519Auth(api_key, key)


def new_pem_pair(key_type: str) -> tuple[str, str]:
    """A fresh key as (private PKCS#8 PEM, public SubjectPublicKeyInfo PEM): the private
    half for a client, the public half for the exchange's account. `key_type` is "rsa"
    (2048 bits) or "ed25519"."""
    key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
    if key_type == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif key_type == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
    else:
        raise ValueError(f"no key pair for {key_type!r}: rsa or ed25519")
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private.decode("ascii"), public.decode("ascii")


def _b64_for_url(raw: bytes) -> str:
    # base64 uses '+', '/' and '='; all three must be escaped to survive form decoding.
    return quote(base64.b64encode(raw).decode("ascii"), safe="")


def _to_bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def _body_bytes(body: object) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        # Send bytes from here on, so what goes out is exactly what was signed.
        return body.encode("utf-8")
    raise TypeError("cannot sign a streamed or file body; pass form data or bytes")
