"""Where requests run (mockserver.serving): on the I/O thread, or on a thread of their own
when they may wait.

Plain WSGI apps on `serving.create_server` show the scheduling; the live mock shows that a
`delay` fault holds up only the requests it matches.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from multiprocessing.pool import ThreadPool
from typing import Any

import pytest
import requests
from waitress import wasyncore
from waitress.trigger import trigger

from mockserver.config import Config
from mockserver.serving import ExchangeChannel, MayBlock, create_server
from tests.helpers import run_at_once

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
BIG = 24 * 1024 * 1024  # past waitress's default outbuf_high_watermark (16 MiB)


@contextmanager
def running(app: WSGIApp, may_block: MayBlock) -> Iterator[tuple[str, threading.Thread]]:
    """`app` served as `dapi-mock serve` serves, in a thread; yields its URL and that thread."""
    server = create_server(app, Config(port=0, threads=4), may_block)
    thread = threading.Thread(target=server.run, name="io", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}", thread
    finally:
        server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
        thread.join(timeout=5)
        server.task_dispatcher.shutdown()


def answer(start_response: Callable[..., Any], body: bytes) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def thread_recorder() -> tuple[WSGIApp, list[int]]:
    seen: list[int] = []

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        seen.append(threading.get_ident())
        return answer(start_response, environ["PATH_INFO"].encode())

    return app, seen


def hit_concurrently(url: str, clients: int = 4, each: int = 5) -> None:
    """`clients` connections at once, `each` requests on each; re-raises their failures."""

    def client(_: int) -> None:
        with requests.Session() as session:
            for n in range(each):
                assert session.get(f"{url}/{n}", timeout=5).text == f"/{n}"

    run_at_once(client, clients)


def never(method: str, path: str) -> bool:
    return False


def always(method: str, path: str) -> bool:
    return True


def test_requests_run_on_the_io_thread_while_none_may_wait():
    app, seen = thread_recorder()
    with running(app, never) as (url, io_thread):
        hit_concurrently(url)
    assert len(seen) == 20
    assert set(seen) == {io_thread.ident}


def test_only_requests_that_may_wait_leave_the_io_thread():
    ran_on: dict[str, set[int]] = {}

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        ran_on.setdefault(environ["PATH_INFO"], set()).add(threading.get_ident())
        return answer(start_response, environ["PATH_INFO"].encode())

    with running(app, lambda method, path: path == "/1") as (url, io_thread):
        # A connection each: a request that follows a held one on its connection may be
        # handed on by the held request's thread, which is fine but not what this shows.
        run_at_once(lambda n: requests.get(f"{url}/{n % 4}", timeout=5).raise_for_status(), 12)
    assert io_thread.ident not in ran_on.pop("/1")
    assert set().union(*ran_on.values()) == {io_thread.ident}


def test_requests_that_may_wait_each_get_a_thread_of_their_own():
    # More held requests than `threads`: none waits for another to finish.
    release = threading.Event()
    held: list[int] = []

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ["PATH_INFO"] == "/held":
            held.append(threading.get_ident())
            release.wait(timeout=20)
        return answer(start_response, environ["PATH_INFO"].encode())

    with running(app, lambda method, path: path == "/held") as (url, _), ThreadPool(12) as pool:
        results = pool.map_async(lambda _: requests.get(f"{url}/held", timeout=30).text, range(12))
        deadline = time.monotonic() + 20
        while len(held) < 12 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(held) == 12, "held requests waited for a thread"  # threads=4
        assert requests.get(f"{url}/free", timeout=5).text == "/free"
        release.set()
        assert results.get(timeout=30) == ["/held"] * 12


def read_answers(sock: socket.socket, count: int) -> list[bytes]:
    """`count` HTTP answers with Content-Length from `sock`, as their bodies."""
    data, bodies = b"", []
    while len(bodies) < count:
        head_end = data.find(b"\r\n\r\n")
        if head_end >= 0:
            match = re.search(rb"(?i)content-length: *(\d+)", data[:head_end])
            assert match, data[:head_end]
            end = head_end + 4 + int(match.group(1))
            if len(data) >= end:
                bodies.append(data[head_end + 4 : end])
                data = data[end:]
                continue
        chunk = sock.recv(1 << 20)
        assert chunk, "connection closed early"
        data += chunk
    return bodies


def test_pipelined_requests_are_answered_in_order_on_the_io_thread():
    app, seen = thread_recorder()
    with running(app, never) as (url, io_thread):
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"".join(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % n for n in range(5)))
            assert read_answers(sock, 5) == [b"/0", b"/1", b"/2", b"/3", b"/4"]
    assert set(seen) == {io_thread.ident}


def test_a_big_answer_to_a_slow_reader_holds_up_no_one():
    # The I/O thread must not wait for a client to read: it sends what the socket takes
    # and the rest as the client reads, serving others meanwhile.
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        return answer(start_response, b"x" * BIG if environ["PATH_INFO"] == "/big" else b"ok")

    with running(app, never) as (url, _):
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as slow:
            # Pipelined: before the second request waitress would wait for the first
            # answer to drain, on the thread that drains it.
            slow.sendall(
                b"GET /big HTTP/1.1\r\nHost: x\r\n\r\nGET /small HTTP/1.1\r\nHost: x\r\n\r\n"
            )
            time.sleep(0.2)  # the server has filled the socket and kept the rest
            assert requests.get(f"{url}/small", timeout=5).text == "ok"
            assert read_answers(slow, 2) == [b"x" * BIG, b"ok"]


def test_the_io_thread_does_not_spin_while_pool_threads_serve(monkeypatch):
    # waitress's own channel asks to write whenever output is buffered, even while the
    # request thread that buffered it still holds the buffer: the I/O thread then loops
    # on select(), holding the GIL the request thread needs (hundreds of loops a request).
    polls = 0
    writable = ExchangeChannel.writable

    def counted(self: ExchangeChannel) -> bool:
        nonlocal polls
        polls += 1
        return writable(self)

    monkeypatch.setattr(ExchangeChannel, "writable", counted)
    app, seen = thread_recorder()
    with running(app, always) as (url, _):
        hit_concurrently(url, clients=8, each=50)
    assert len(seen) == 400
    # Each loop asks every open connection once; a few loops a request is normal.
    assert polls / len(seen) < 40


@pytest.mark.parametrize("may_wait", [False, True])
def test_the_trigger_wakes_the_io_thread_only_for_pool_requests(monkeypatch, may_wait):
    # A request on the I/O thread needs no wake-up call (a write and a read per request);
    # one that ran on a pool thread does, or its answer waits for the next select timeout.
    pulls: list[int] = []
    pull_trigger = trigger.pull_trigger

    def counted(self: trigger, thunk: Any = None) -> None:
        pulls.append(threading.get_ident())
        pull_trigger(self, thunk)

    monkeypatch.setattr(trigger, "pull_trigger", counted)
    app, seen = thread_recorder()
    with running(app, always if may_wait else never) as (url, io_thread):
        hit_concurrently(url)
        served_pulls = list(pulls)
    assert len(seen) == 20
    if may_wait:
        # one a request, less the few whose client had closed by then (no wake-up needed)
        assert len(served_pulls) >= 16
        assert io_thread.ident not in served_pulls
    else:
        assert served_pulls == []


@pytest.mark.parametrize("path", ["/dapi/v1/ping", "/dapi/v1/time"])
def test_a_delayed_request_holds_up_only_itself(dapi_mock, path):
    delay = {"type": "delay", "ms": 3000}
    dapi_mock.faults.add(
        {"match": {"method": "GET", "path": "/dapi/v1/ping"}, "action": delay, "times": 1}
    )
    delayed_status: list[int] = []

    def delayed_ping() -> None:
        response = requests.get(f"{dapi_mock.url}/dapi/v1/ping", timeout=10)
        delayed_status.append(response.status_code)

    delayed = threading.Thread(target=delayed_ping)
    delayed.start()
    time.sleep(0.2)  # the delayed request is in
    response = requests.get(f"{dapi_mock.url}{path}", timeout=10)
    assert delayed.is_alive(), "answered only after the delayed request"
    assert response.status_code == 200
    delayed.join(timeout=10)
    assert delayed_status == [200]


def test_the_waitress_internals_serving_leans_on_are_still_there():
    """serving.py hooks into waitress (pinned to a tested range in pyproject.toml); when
    an upgrade moves one of these, this test names it before anything else breaks."""
    import inspect

    import waitress
    from waitress.channel import HTTPChannel
    from waitress.task import ThreadedTaskDispatcher

    from mockserver.serving import socket_map

    assert "_dispatcher" in inspect.signature(waitress.create_server).parameters
    for name in ("service", "handle_read", "write_soon", "writable", "error_task_class"):
        assert hasattr(HTTPChannel, name), f"waitress HTTPChannel.{name} moved"
    assert hasattr(ThreadedTaskDispatcher, "add_task")
    seen: list[Any] = []

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        seen.append(environ.get("waitress.client_disconnected"))
        return answer(start_response, b"ok")

    server = create_server(app, Config(port=0), never)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        with requests.Session() as session:
            session.get(f"http://127.0.0.1:{server.effective_port}/", timeout=5)
            channels = [c for c in socket_map(server).values() if isinstance(c, HTTPChannel)]
            assert channels and all(
                isinstance(c.requests, list) and isinstance(c.total_outbufs_len, int)
                for c in channels
            ), "waitress channels no longer keep `requests` / `total_outbufs_len`"
        assert callable(seen[0]), "waitress.client_disconnected is gone from the environ"
    finally:
        server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
        thread.join(timeout=5)
