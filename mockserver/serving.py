"""waitress, set up for the fake exchange: its options, its own errors as Binance JSON,
which thread runs a request, and a stop that drains (docs/behaviour.md#reliability).

Requests run on waitress's I/O thread, one after another, except those a `delay`
fault rule may hold: each of those gets a thread of its own, so however many
requests are held, the control plane and every other route answer at once. Why the
I/O thread: a request's own work is short and CPU-bound (well under 0.1 ms for a
signed leverage change); with waitress's usual pool each request crosses threads
twice and the I/O thread fights the workers for the GIL, which doubled the p99 at 8
concurrent clients (docs/performance.md).

This leans on waitress internals (`_dispatcher`, the channel class, a channel's
pending `requests`), so waitress is pinned to the tested range in pyproject.toml and
tests/mockserver/test_serving.py fails loudly when they move.

`serve`, the in-process harness (pytest plugin) and the benchmark's baseline app
all build their server here, so all three serve alike.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import waitress
from waitress import wasyncore
from waitress.channel import ClientDisconnected, HTTPChannel
from waitress.server import BaseWSGIServer, MultiSocketServer
from waitress.task import ErrorTask, ThreadedTaskDispatcher

from mockserver import errors
from mockserver.config import Config
from mockserver.exchange import Answer, Exchange
from mockserver.request_log import log_request

# waitress makes a request thread wait for the I/O thread when a response outgrows this.
# A request running on the I/O thread would wait for itself, so it is set out of reach;
# output past outbuf_overflow (1 MiB) spills to a temporary file, not to memory.
OUTBUF_HIGH_WATERMARK = 2**40
# Open connections served at once (waitress's default is 100, nginx's worker_connections
# 512 to 1024): leaked sessions and pools of other projects' test suites stay far below.
CONNECTION_LIMIT = 4096
# How long a stop waits for requests in flight (docs/behaviour.md#running-it).
DRAIN_S = 5.0

MayBlock = Callable[[str, str], bool]  # (method, path) -> may a request wait?


def waitress_options(settings: Config) -> dict[str, Any]:
    """The keyword arguments of `waitress.create_server` for these settings."""
    return {
        "host": settings.host,
        "port": settings.port,
        "threads": settings.threads,
        "ident": "dapi-mock",
        # The app's limits (max_body_bytes, MAX_HEADER_BYTES) answer with Binance's JSON;
        # waitress's sit far above them, as a backstop (answered as JSON too, see
        # BinanceErrorTask). 256 KiB of headers is waitress's own default.
        "max_request_body_size": max(settings.max_body_bytes * 16, 16 * 1024 * 1024),
        "max_request_header_size": 256 * 1024,
        # No proxy stands in front of a fake exchange: X-Forwarded-* headers are left in the
        # environ (and count towards the 16 KiB header limit, as every other header does),
        # which also spares each request waitress's proxy-header middleware.
        "clear_untrusted_proxy_headers": False,
        "outbuf_high_watermark": OUTBUF_HIGH_WATERMARK,
        "connection_limit": CONNECTION_LIMIT,
        # poll() has no limit on descriptor numbers; select() fails for good past 1023,
        # which a test process with many open files reaches.
        "asyncore_use_poll": True,
        # Keep reading a connection while its request runs, so a held request sees its
        # client close the connection (waitress.client_disconnected).
        "channel_request_lookahead": 1,
        # Idle keep-alive connections stay open waitress's default 120 s: clients do not
        # retry a POST on a pooled connection the server closed.
    }


def create_server(app: Any, settings: Config, may_block: MayBlock | None = None) -> Any:
    """A waitress server (not yet running) for `app`, as `dapi-mock serve` runs it.

    `may_block(method, path)` says whether a request may wait, so it gets a thread of its
    own (see the module docstring). By default: for the fake exchange's Flask app,
    whether a `delay` fault rule may hold it; for any other WSGI app, never.
    """
    if may_block is None:
        exchange = _exchange_in(app)
        may_block = exchange.faults.may_delay if exchange is not None else _never
    scheduler = RequestScheduler(may_block)
    scheduler.set_thread_count(settings.threads)
    # `_dispatcher` is how waitress takes a dispatcher other than its own thread pool.
    server = waitress.create_server(app, _dispatcher=scheduler, **waitress_options(settings))
    for listener in listeners_of(server):
        listener.channel_class = ExchangeChannel
        listener.pull_trigger = functools.partial(
            _pull_trigger_off_io_thread, listener.pull_trigger, scheduler
        )
    return server


def _exchange_in(app: Any) -> Exchange | None:
    """The fake exchange a WSGI app serves, if it is the mock's Flask app."""
    exchange = getattr(app, "extensions", {}).get("dapi_mock")
    return exchange if isinstance(exchange, Exchange) else None


def socket_map(server: Any) -> dict[int, Any]:
    """Every socket the server's loop watches: listeners, connections, its trigger."""
    return server.map if isinstance(server, MultiSocketServer) else server._map


def listeners_of(server: Any) -> list[BaseWSGIServer]:
    listeners = server.map.values() if isinstance(server, MultiSocketServer) else [server]
    return [listener for listener in listeners if isinstance(listener, BaseWSGIServer)]


def close_all_soon(server: Any) -> None:
    """End the serving loop from any thread: its loop closes every socket and so ends."""
    trigger = listeners_of(server)[0].trigger
    with contextlib.suppress(OSError):  # the trigger closed: the loop is ending anyway
        trigger.pull_trigger(lambda: wasyncore.close_all(socket_map(server)))


def raise_open_file_limit() -> None:
    """Let `serve` hold as many connections as the hard limit allows (soft is often 1024)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = CONNECTION_LIMIT + 256
    if hard != resource.RLIM_INFINITY:
        wanted = min(hard, wanted)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _pull_trigger_off_io_thread(
    pull_trigger: Callable[[], None], scheduler: RequestScheduler
) -> None:
    # The trigger wakes the I/O thread's poll() so it looks at the channels again. A
    # request that ran on the I/O thread needs no wake-up: the loop looks again anyway.
    # Skipping it saves a write, a read and a loop pass per request.
    if threading.get_ident() != scheduler.io_thread:
        pull_trigger()


def _never(method: str, path: str) -> bool:
    return False


class RequestScheduler(ThreadedTaskDispatcher):
    """Runs a request on the I/O thread, or on a thread of its own when it may wait."""

    def __init__(self, may_block: MayBlock) -> None:
        super().__init__()
        self.may_block = may_block
        self.io_thread: int | None = None
        self._ready: deque[HTTPChannel] = deque()

    def add_task(self, task: Any) -> None:
        request = task.requests[0] if getattr(task, "requests", None) else None
        if (
            request is not None
            and not request.error
            and self.may_block(request.command, request.path)
        ):
            threading.Thread(target=task.service, name="dapi-mock-held", daemon=True).start()
        elif threading.get_ident() == self.io_thread:
            # waitress calls this holding the channel's request lock, which the task takes
            # too: the channel runs it once the lock is free (ExchangeChannel.handle_read).
            self._ready.append(task)
        else:
            super().add_task(task)

    def run_ready(self) -> None:
        while self._ready:
            self._ready.popleft().service()


def is_busy(server: Any) -> bool:
    """Whether any connection has a request in flight or an answer not yet sent."""
    return any(
        channel.requests or channel.total_outbufs_len
        for channel in list(socket_map(server).values())
        if isinstance(channel, HTTPChannel)
    )


def stop_accepting(server: Any) -> None:
    """Close the listening sockets: no new connections (on the I/O thread)."""
    for listener in listeners_of(server):
        listener.accepting = False
        listener.del_channel()
        listener.socket.close()


def drain_and_stop(server: Any, exchange: Exchange | None, drain_s: float = DRAIN_S) -> None:
    """Stop as SIGTERM and SIGINT do: no new connections, requests in flight answered
    (held ones at once), then every connection closed and the serving loop ended."""
    with contextlib.suppress(OSError):  # the trigger closed: the loop is ending anyway
        listeners_of(server)[0].trigger.pull_trigger(lambda: stop_accepting(server))
    if exchange is not None:
        exchange.holds.release_all()
    deadline = time.monotonic() + drain_s
    while is_busy(server) and time.monotonic() < deadline:
        time.sleep(0.01)
    close_all_soon(server)


def run_until_stopped(server: Any, exchange: Exchange | None) -> None:
    """Serve in this (main) thread until SIGTERM or SIGINT, then drain (`serve`, the bench
    baseline). As PID 1 in a container SIGTERM is ignored unless handled: it is handled."""
    stopping = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        if not stopping.is_set():
            stopping.set()
            threading.Thread(
                target=drain_and_stop, args=(server, exchange), name="drain", daemon=True
            ).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # What exists now lives as long as the process: kept out of the collector's full passes,
    # which otherwise stall the one request thread for 10-20 ms now and then.
    gc.freeze()
    try:
        wasyncore.loop(server.adj.asyncore_loop_timeout, True, socket_map(server))
    finally:
        server.task_dispatcher.shutdown(timeout=1)


def error_for_unparsed_request(status: int, detail: str) -> errors.ExchangeError:
    """Binance's answer for a request the HTTP server rejects before the app sees it.

    waitress refuses unparsable HTTP (start line, header syntax, chunking,
    Content-Length, an unknown Transfer-Encoding) and requests over its own
    limits, which sit far above the app's and are only a backstop.
    """
    if status in (413, 431):
        return errors.too_many_params(status, detail)
    if status < 500 or status == 501:
        # 501 is waitress's answer to an unknown Transfer-Encoding: bad input, so no 5xx.
        return errors.illegal_characters(detail)
    return errors.unknown_error(detail)


class BinanceErrorTask(ErrorTask):
    """waitress's error answer, as Binance's JSON instead of its text/plain page."""

    def execute(self) -> None:
        started = time.perf_counter()
        error = self.request.error
        exc = error_for_unparsed_request(error.code, str(error.body))
        body = Answer.of_error(exc).body()
        self.status = f"{exc.status} {HTTPStatus(exc.status).phrase}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)
        addr = self.channel.addr
        log_request(
            addr[0] if isinstance(addr, tuple) else str(addr),
            # A request whose start line did not parse has neither.
            getattr(self.request, "command", None),
            getattr(self.request, "path", None),
            str(exc.status),
            exc.code,
            started,
            f"rejected by the HTTP server: {exc.reason}",
        )


class ExchangeChannel(HTTPChannel):
    """waitress's connection, running requests where RequestScheduler says and answering
    waitress's own errors as Binance JSON."""

    error_task_class = BinanceErrorTask
    _held: list[bytes] | None = None  # a request's output, while it runs on the I/O thread

    def handle_read(self) -> None:
        scheduler = self.server.task_dispatcher
        scheduler.io_thread = threading.get_ident()
        super().handle_read()
        scheduler.run_ready()

    def service(self) -> None:
        if threading.get_ident() != self.server.task_dispatcher.io_thread:
            super().service()
            return
        # waitress sends the status line and headers, then the body: two writes, two TCP
        # segments per answer. On the I/O thread nothing else can send meanwhile, so the
        # answer is held and sent in one write when the request is done.
        self._held = []
        try:
            super().service()
        finally:
            self._send_held()
            self._held = None

    def write_soon(self, data: Any) -> int:
        if self._held is not None and isinstance(data, bytes):
            self._held.append(data)
            return len(data)
        self._send_held()  # a wsgi.file_wrapper buffer goes after what came before it
        return int(super().write_soon(data))

    def _send_held(self) -> None:
        if self._held:
            data, self._held[:] = b"".join(self._held), []
            with contextlib.suppress(ClientDisconnected):  # the client has gone
                super().write_soon(data)

    def writable(self) -> bool:
        # waitress asks to write whenever output is buffered, even while a request thread
        # is still writing it and holds the buffer's lock; the I/O thread then spins on
        # select() and starves that thread of the GIL. A running request sends its own
        # output (send_bytes is 1) and wakes the I/O thread when it finishes, so here the
        # I/O thread waits for that.
        if self.will_close or self.close_when_flushed:
            return True
        if self.requests:
            return self.total_outbufs_len > self.adj.outbuf_high_watermark
        return bool(self.total_outbufs_len)
