"""What the signature doctor costs a refused request (docs/behaviour.md#signature-doctor).

The doctor runs only on a -1022 refusal; its budget is about 1 ms. Each case is its worst:
no known mistake matches, so every candidate is tried (HMAC), or other accounts' keys of the
right kind are verified until 32 are tried or the doctor's time is spent (RSA, Ed25519).
Prints the median, 90th percentile and slowest of the repeats, per refusal, in
microseconds; on a shared machine the slowest is the host, not the doctor.

    .venv/bin/python benchmarks/doctor_cost.py [--repeats 200]
"""

from __future__ import annotations

import argparse
import base64
import statistics
import time
from collections.abc import Callable
from functools import partial

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from mockserver.doctor import MAX_OTHER_KEYS, diagnose
from mockserver.params import parse
from mockserver.security import Account, hmac_account, public_key_account

QUERY = b"symbol=BTCUSD_PERP&leverage=20&clientTag=grid+bot%2F1"
BODY = b"recvWindow=5000&timestamp=1591702613943&note=a%20b"
WRONG_HEX = "0" * 64


def public_pem(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def new_private(kind: str) -> rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ed25519.Ed25519PrivateKey.generate()


def key_accounts(kind: str) -> tuple[Account, dict[str, Account], str]:
    """The caller's account, it and 32 others of the same kind, and a signature by a key
    none of them holds (so keys are tried until the count or the time is spent)."""
    mine = public_key_account("mine", public_pem(new_private(kind)))
    others = [
        public_key_account(f"other{n}", public_pem(new_private(kind)))
        for n in range(MAX_OTHER_KEYS)
    ]
    stranger = new_private(kind)
    payload = QUERY + BODY
    raw = (
        stranger.sign(payload, padding.PKCS1v15(), hashes.SHA256())
        if isinstance(stranger, rsa.RSAPrivateKey)
        else stranger.sign(payload)
    )
    signature = base64.b64encode(raw).decode().replace("+", "%2B").replace("/", "%2F")
    signature = signature.replace("=", "%3D")
    return mine, {a.api_key: a for a in [mine, *others]}, signature


def timed(run: Callable[[], object], repeats: int) -> tuple[float, float, float]:
    """Median, 90th percentile and slowest, in microseconds."""
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1e6)
    return statistics.median(samples), statistics.quantiles(samples, n=10)[-1], max(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args(argv)

    cases: list[tuple[str, Callable[[], object]]] = []
    account = hmac_account("demo", "dapimockdemosecret")
    short = parse(QUERY, BODY + f"&signature={WRONG_HEX}".encode(), 64)
    cases.append(("hmac, ~100-byte payload", lambda: diagnose(account, short, {})))
    big_body = b"&".join(b"p%d=%s" % (n, b"x" * 900) for n in range(55)) + b"&" + BODY
    big = parse(QUERY, big_body + f"&signature={WRONG_HEX}".encode(), 64)
    cases.append(("hmac, ~55 KiB payload", lambda: diagnose(account, big, {})))
    for kind in ("ed25519", "rsa"):
        mine, accounts, signature = key_accounts(kind)
        sent = parse(QUERY + f"&signature={signature}".encode(), BODY, 64)
        verdict = diagnose(mine, sent, accounts)
        assert verdict is None, verdict
        label = f"{kind}, {MAX_OTHER_KEYS} other {kind} keys"
        cases.append((label, partial(diagnose, mine, sent, accounts)))

    print(f"signature doctor, per refusal, {args.repeats} repeats (microseconds)")
    for label, run in cases:
        run()  # warm up
        median, p90, slowest = timed(run, args.repeats)
        print(f"  {label:<32} median {median:7.0f}  p90 {p90:7.0f}  slowest {slowest:7.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
