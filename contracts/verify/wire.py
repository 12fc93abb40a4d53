"""The wire of `verify-server`: raw requests built, signed and sent, paced by the server's weight.

Every answer is checked against openapi.yaml as it arrives, so a property
that looks at the status and code also catches a body that breaks the schema.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import requests
import yaml

from contracts import strategies as S
from contracts.signing import API_KEY_HEADER, SigningAuth

WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
LIVE_WEIGHT_PER_MINUTE = 2400
#: Share of the server's weight limit this runner uses before it waits for the next minute.
WEIGHT_BUDGET = 0.5
LEVERAGE_PATH = "/dapi/v1/leverage"
MARGIN_TYPE_PATH = "/dapi/v1/marginType"
POSITION_MODE_PATH = "/dapi/v1/positionSide/dual"
#: docs/behaviour.md#rate-limits: the reads that weigh more than 1, paced for before sending.
HEAVY_WEIGHTS = {("GET", POSITION_MODE_PATH): 30, ("GET", "/dapi/v1/account"): 5}


@dataclass
class Roundtrip:
    """One request as sent (raw query and body) and the answer to it."""

    method: str
    path: str
    query: str
    body: str
    status: int | None
    text: str
    seconds: float
    response: requests.Response | None = field(default=None, repr=False)
    contract_problem: str | None = None

    @property
    def payload(self) -> Any:
        try:
            return json.loads(self.text)
        except ValueError:
            return None

    @property
    def code(self) -> int | None:
        payload = self.payload
        if isinstance(payload, dict) and isinstance(payload.get("code"), int):
            return int(payload["code"])
        return None

    def line(self) -> str:
        sent = self.path + (f"?{self.query}" if self.query else "")
        if self.body:
            sent += f"  body: {self.body}"
        answer = self.text if len(self.text) <= 300 else self.text[:297] + "..."
        return f"{self.method} {sent}\n      -> {self.status} {answer}"


class WireAbort(RuntimeError):
    """The server cannot be used any more in this run (banned, unreachable)."""


class Wire:
    """Builds, signs and sends raw requests; paces itself by the server's weight header."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        signer: SigningAuth,
        *,
        timeout: float = 10.0,
        max_retry_after: float = 130.0,
        pacing: bool = True,
        sleep: Callable[[float], None] = time.sleep,
        on_wait: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.signer = signer
        self.timeout = timeout
        self.max_retry_after = max_retry_after
        self.pacing = pacing
        self.sleep = sleep
        self.on_wait = on_wait  # told before every wait, so the user sees why nothing moves
        self.session = requests.Session()
        self.weight_limit = LIVE_WEIGHT_PER_MINUTE
        self.used_weight: int | None = None
        self.offset_ms = 0
        self.trips: list[Roundtrip] = []

    def close(self) -> None:
        self.session.close()

    # time

    def now_ms(self) -> int:
        """Server time as this runner estimates it."""
        return time.time_ns() // 1_000_000 + self.offset_ms

    def sync_time(self) -> Roundtrip:
        before = time.time_ns() // 1_000_000
        trip = self.send("GET", "/dapi/v1/time")
        after = time.time_ns() // 1_000_000
        payload = trip.payload
        if trip.status == 200 and isinstance(payload, dict) and "serverTime" in payload:
            self.offset_ms = int(payload["serverTime"]) - (before + after) // 2
        return trip

    # building

    def stamped(
        self,
        params: Sequence[tuple[str, str]],
        *,
        timestamp: int | None = None,
        recv_window: int | None = None,
    ) -> list[tuple[str, str]]:
        """`params` followed by recvWindow (if given) and timestamp (server time by default)."""
        pairs = list(params)
        if recv_window is not None:
            pairs.append(("recvWindow", str(recv_window)))
        pairs.append(("timestamp", str(self.now_ms() if timestamp is None else timestamp)))
        return pairs

    def signature_for(self, payload: bytes, signer: SigningAuth | None = None) -> str:
        return (signer or self.signer).signature(payload)

    @staticmethod
    def with_signature(query: str, body: str, signature: str) -> tuple[str, str]:
        """Append `signature` as the last element of the body if there is one, else of the query."""
        element = f"signature={signature}"
        if body:
            return query, f"{body}&{element}"
        return (f"{query}&{element}" if query else element), body

    def sign(self, query: str, body: str, signer: SigningAuth | None = None) -> tuple[str, str]:
        payload = (query + body).encode("utf-8")
        return self.with_signature(query, body, self.signature_for(payload, signer))

    def signed_parts(
        self,
        params: Sequence[tuple[str, str]],
        placement: S.Placement = "query",
        *,
        timestamp: int | None = None,
        recv_window: int | None = None,
    ) -> tuple[str, str]:
        pairs = self.stamped(params, timestamp=timestamp, recv_window=recv_window)
        in_query, in_body = S.split_params(pairs, placement)
        return self.sign(S.form(in_query), S.form(in_body))

    # sending

    def call(
        self,
        method: str,
        path: str,
        params: Sequence[tuple[str, str]] = (),
        placement: S.Placement = "query",
        *,
        timestamp: int | None = None,
        recv_window: int | None = None,
    ) -> Roundtrip:
        """A correctly signed request (signed again, freshly, if it has to be resent)."""

        def build() -> tuple[str, str]:
            return self.signed_parts(
                params, placement, timestamp=timestamp, recv_window=recv_window
            )

        return self.send(method, path, *build(), rebuild=build if timestamp is None else None)

    def send(
        self,
        method: str,
        path: str,
        query: str = "",
        body: str = "",
        *,
        api_key: str | None = "",
        rebuild: Callable[[], tuple[str, str]] | None = None,
    ) -> Roundtrip:
        """Send raw parts; `api_key` "" means this runner's key, None means no key header.

        A 429/418 is waited out (Retry-After, up to `max_retry_after`) and the
        request sent again, rebuilt by `rebuild` when its timestamp would be
        stale by then; raw parts without `rebuild` are only resent unsigned
        ones. Otherwise the run stops (WireAbort) rather than risk a ban.
        """
        for _ in range(3):
            heavier = HEAVY_WEIGHTS.get((method, path), 1) - 1
            if self.pace(reserve=heavier) and rebuild is not None:
                query, body = rebuild()
            trip = self._send_once(method, path, query, body, api_key)
            if trip.status not in (418, 429):
                return trip
            retry_after = _retry_after(trip)
            signed = "signature=" in query + body
            if (
                retry_after is None
                or retry_after > self.max_retry_after
                or (signed and rebuild is None)
            ):
                raise WireAbort(
                    f"{path}: rate limited ({trip.status}, Retry-After {retry_after}); "
                    "stopped so that the IP is not banned: run again later"
                )
            self.on_wait(
                f"{path} answered {trip.status}: waiting {retry_after:.0f} s (its Retry-After) "
                "before sending it again"
            )
            self.sleep(retry_after + 0.5)
            self.used_weight = None
            if path != "/dapi/v1/time":
                self.sync_time()
            if rebuild is not None:
                query, body = rebuild()
        raise WireAbort(f"{path}: still rate limited after waiting twice")

    def _send_once(
        self, method: str, path: str, query: str, body: str, api_key: str | None
    ) -> Roundtrip:
        headers = {}
        key = self.api_key if api_key == "" else api_key
        if key is not None:
            headers[API_KEY_HEADER] = key
        if body:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        url = self.base_url + path + (f"?{query}" if query else "")
        started = time.perf_counter()
        try:
            response = self.session.request(
                method,
                url,
                data=body.encode("utf-8") if body else None,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            trip = Roundtrip(method, path, query, body, None, f"<no answer: {exc}>", 0.0)
            trip.seconds = time.perf_counter() - started
            self.trips.append(trip)
            return trip
        trip = Roundtrip(
            method,
            path,
            query,
            body,
            response.status_code,
            response.text,
            time.perf_counter() - started,
            response,
        )
        trip.contract_problem = contract_problem(response)
        raw = response.headers.get(WEIGHT_HEADER)
        self.used_weight = int(raw) if raw is not None and raw.isdigit() else None
        self.trips.append(trip)
        return trip

    def pace(self, reserve: int = 0) -> bool:
        """Wait for the next weight window if `reserve` more requests would pass the budget."""
        budget = max(10, int(self.weight_limit * WEIGHT_BUDGET))
        if not self.pacing or self.used_weight is None or self.used_weight + reserve < budget:
            return False
        wait_ms = 60_000 - self.now_ms() % 60_000 + 250
        self.on_wait(
            f"pacing: {self.used_weight} of the server's {self.weight_limit} weight a minute "
            f"used (this run keeps to half); waiting {wait_ms / 1000:.0f} s for the next minute"
        )
        self.sleep(wait_ms / 1000)
        self.used_weight = None
        self.sync_time()  # a minute later, the clocks may have drifted
        return True

    def unreachable(self) -> str | None:
        """Why the server cannot be reached, or None when it answered (anything) just now."""
        trip = self.send("GET", "/dapi/v1/time")
        if trip.status is not None:
            return None
        found = re.search(r"\[Errno -?\d+\] ([^'\")]+)", trip.text)
        if found:
            return found.group(1).strip().lower()
        if "timed out" in trip.text.lower() or "timeout" in trip.text.lower():
            return f"no answer within {self.timeout:g} s"
        return trip.text.removeprefix("<no answer: ").removesuffix(">")[:200]


def _retry_after(trip: Roundtrip) -> float | None:
    if trip.response is None:
        return None
    raw = trip.response.headers.get("Retry-After")
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


@cache
def _openapi() -> Any:
    from openapi_core import OpenAPI

    text = resources.files("mockserver").joinpath("data/openapi.yaml").read_text("utf-8")
    return OpenAPI.from_dict(yaml.safe_load(text))


def contract_problem(response: requests.Response) -> str | None:
    """Why `response` does not conform to openapi.yaml, or None when it does."""
    from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
    from openapi_core.exceptions import OpenAPIError
    from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound

    try:
        _openapi().validate_response(
            RequestsOpenAPIRequest(response.request), RequestsOpenAPIResponse(response)
        )
    except (PathNotFound, OperationNotFound):
        return None
    except OpenAPIError as exc:
        details = "; ".join(str(e) for e in getattr(exc.__cause__, "schema_errors", ()) or ())
        return f"{exc}{' (' + details + ')' if details else ''}"
    return None
