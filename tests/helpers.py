"""Helpers every test suite here shares: the frozen instant, HMAC signing as the docs
show it, and a barrier to start client threads together."""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from mockserver.config import DEMO_SECRET

# 2020-06-09, the timestamp of Binance's own signing examples.
FROZEN_MS = 1591702613943


def run_at_once(work: Callable[[int], None], count: int) -> None:
    """`work(0)` to `work(count - 1)`, each on its own thread, released together by a
    barrier; fails with the first few of their failures."""
    start = threading.Barrier(count)
    failures: list[BaseException] = []

    def run(number: int) -> None:
        try:
            start.wait(timeout=10)
            work(number)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures, failures[:3]


def hmac_hex(payload: str | bytes, secret: str = DEMO_SECRET) -> str:
    data = payload.encode() if isinstance(payload, str) else payload
    return hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


def signed(params: dict[str, Any] | list[tuple[str, Any]], secret: str = DEMO_SECRET) -> str:
    """`params` urlencoded in the given order, with the HMAC signature appended last."""
    text = urlencode(params)
    return f"{text}&signature={hmac_hex(text, secret)}"
