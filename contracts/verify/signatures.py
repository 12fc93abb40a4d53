"""Properties of signatures: a wrong or misplaced one is -1022 whatever else is right."""

from __future__ import annotations

import secrets
from functools import cache
from urllib.parse import quote, unquote

from hypothesis import strategies as st

from contracts import strategies as S
from contracts.signing import HmacAuth, SigningAuth, auth_from_private_key
from contracts.verify.context import Context, Draw, draw_signed_target

HEX_DIGITS = "0123456789abcdef"
BASE64_DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _tampered_parts(ctx: Context, params: list[tuple[str, str]], placement: str, draw: Draw):
    """Request parts whose signature is wrong in a drawn way; (query, body, how)."""
    wire = ctx.wire
    stamped = wire.stamped(params)
    in_query, in_body = S.split_params(stamped, placement)
    query, body = S.form(in_query), S.form(in_body)
    payload = (query + body).encode()
    tamper = draw(S.signature_tampers(), "tamper")
    if tamper == "reordered" and len(stamped) < 2:
        tamper = "other_payload"
    if tamper == "flipped":
        good = unquote(wire.signature_for(payload))
        # Never the last 4 characters: base64 padding bits would leave the bytes unchanged.
        index = draw(st.integers(0, max(0, len(good) - 5)), "flip at")
        alphabet = HEX_DIGITS if isinstance(wire.signer, HmacAuth) else BASE64_DIGITS
        # A shift within the alphabet, not a choice among "the other characters": the draw
        # is then the same whatever character the fresh signature has there.
        shift = draw(st.integers(1, len(alphabet) - 1), "flip by")
        flipped = alphabet[(alphabet.index(good[index]) + shift) % len(alphabet)]
        bad = good[:index] + flipped + good[index + 1 :]
        signature = quote(bad, safe="")
    elif tamper == "other_key":
        signature = wire.signature_for(payload, _stranger_signer(wire.signer))
    elif tamper == "other_payload":
        signature = wire.signature_for(payload + b"0")
    elif tamper == "reordered":
        other_order = S.form(sorted(stamped, reverse=stamped == sorted(stamped)))
        signature = wire.signature_for(other_order.encode())
    else:  # truncated
        signature = quote(unquote(wire.signature_for(payload))[:-1], safe="")
    query, body = wire.with_signature(query, body, signature)
    return query, body, tamper


@cache
def _stranger_signer_of_type(kind: str) -> SigningAuth:
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    if kind == "HmacAuth":
        return HmacAuth("stranger", secrets.token_hex(32))
    if kind == "RsaAuth":
        return auth_from_private_key("stranger", rsa.generate_private_key(65537, 2048))
    return auth_from_private_key("stranger", ed25519.Ed25519PrivateKey.generate())


def _stranger_signer(signer: SigningAuth) -> SigningAuth:
    """A signer of the same kind with a key the server does not know."""
    return _stranger_signer_of_type(type(signer).__name__)


def check_wrong_signature_is_1022(ctx: Context, draw: Draw) -> None:
    method, path, params, placement = draw_signed_target(ctx, draw)
    query, body, tamper = _tampered_parts(ctx, params, placement, draw)
    trip = ctx.wire.send(method, path, query, body)
    ctx.note_answer(trip)
    ctx.expect_error(trip, 400, -1022, f"{method} {path} with a {tamper} signature")


def check_misplaced_signature_is_1022(ctx: Context, draw: Draw) -> None:
    method, path, params, placement = draw_signed_target(ctx, draw)
    in_query, in_body = S.split_params(ctx.wire.stamped(params), placement)
    query, body = S.form(in_query), S.form(in_body)
    signature = ctx.wire.signature_for((query + body).encode())
    where = "body" if body else "query"
    pairs = in_body if body else in_query
    # The right signature, but not as the last element of its part.
    moved = S.form([("signature", unquote(signature)), *pairs])
    if where == "body":
        body = moved
    else:
        query = moved
    trip = ctx.wire.send(method, path, query, body)
    ctx.note_answer(trip)
    ctx.expect_error(trip, 400, -1022, f"{method} {path} with the signature not last")
