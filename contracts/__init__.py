"""The contract kit: reference client, signers, server properties and client fuzzing."""

from contracts.client import (
    ApiError,
    DapiClient,
    DapiError,
    MalformedResponse,
    RateLimited,
    ServerError,
    TransportError,
)
from contracts.signing import Ed25519Auth, HmacAuth, RsaAuth, auth_from_private_key

__all__ = [
    "ApiError",
    "DapiClient",
    "DapiError",
    "Ed25519Auth",
    "HmacAuth",
    "MalformedResponse",
    "RateLimited",
    "RsaAuth",
    "ServerError",
    "TransportError",
    "auth_from_private_key",
]
