"""The client under test: what it is given, how it is run (callable or command), how it ended."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from contracts.client import DapiClient, DapiError


@dataclass(frozen=True)
class ClientEnv:
    """What a client is given (docs/behaviour.md#contract-kit: the DAPI_* environment)."""

    base_url: str
    api_key: str
    api_secret: str | None
    private_key_file: str | None
    symbol: str
    leverage: int

    def as_environ(self) -> dict[str, str]:
        env = {
            "DAPI_BASE_URL": self.base_url,
            "DAPI_API_KEY": self.api_key,
            "DAPI_SYMBOL": self.symbol,
            "DAPI_LEVERAGE": str(self.leverage),
        }
        if self.api_secret is not None:
            env["DAPI_API_SECRET"] = self.api_secret
        if self.private_key_file is not None:
            env["DAPI_PRIVATE_KEY_FILE"] = self.private_key_file
        return env

    def as_kwargs(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "api_key": self.api_key,
            "api_secret": self.api_secret,
            "private_key_file": self.private_key_file,
            "symbol": self.symbol,
            "leverage": self.leverage,
        }


@dataclass
class ClientRun:
    """How one client run ended: exit status None means it was still running at the limit."""

    exit_status: int | None
    seconds: float
    output: str = ""

    @property
    def ended(self) -> bool:
        return self.exit_status is not None


ClientCallable = Callable[..., object]
ClientSpec = ClientCallable | Sequence[str]


def run_callable(client: ClientCallable, env: ClientEnv, limit_s: float) -> ClientRun:
    """Call `client(**env)` in a daemon thread; returning is exit 0, raising is exit 1."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            client(**env.as_kwargs())
            outcome["status"] = 0
        except BaseException as exc:
            outcome["status"] = 1
            outcome["output"] = f"{type(exc).__module__}.{type(exc).__name__}: {exc}"

    started = time.perf_counter()
    thread = threading.Thread(target=target, name="fuzzed-client", daemon=True)
    thread.start()
    thread.join(limit_s)
    seconds = time.perf_counter() - started
    if thread.is_alive():
        return ClientRun(None, seconds, "still running at the time limit (thread abandoned)")
    return ClientRun(outcome.get("status", 1), seconds, outcome.get("output", ""))


def run_command(command: Sequence[str], env: ClientEnv, limit_s: float) -> ClientRun:
    """Run `command` with the DAPI_* environment; killed (whole process group) at the limit."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(
            list(command),
            env={**os.environ, **env.as_environ()},
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            status: int | None = process.wait(timeout=limit_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            status = None
        output.seek(0)
        text = output.read()[-4000:].decode("utf-8", "replace")
    return ClientRun(status, time.perf_counter() - started, text)


def describe(client: ClientSpec) -> str:
    if callable(client):
        return getattr(client, "__qualname__", None) or repr(client)
    return " ".join(client)


def reference_client(timeout: float = 10.0) -> ClientCallable:
    """The kit's own client (contracts.client) as a fuzz-client callable."""

    def change_leverage(
        base_url: str,
        api_key: str,
        api_secret: str | None,
        private_key_file: str | None,
        symbol: str,
        leverage: int,
    ) -> None:
        key = Path(private_key_file).read_text() if private_key_file else None
        with DapiClient(
            base_url,
            api_key,
            secret=api_secret,
            private_key=key,
            timeout=timeout,
            time_sync=True,
        ) as client:
            answer = client.change_leverage(symbol, leverage)
        if answer.leverage != leverage or answer.max_qty <= Decimal(0):
            raise DapiError(f"unexpected answer {answer}")

    change_leverage.__qualname__ = "contracts.client.DapiClient.change_leverage"
    return change_leverage
