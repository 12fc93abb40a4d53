"""`dapi-mock`: run the fake exchange on a production WSGI server (waitress)."""

from __future__ import annotations

import argparse
import logging
import sys
import textwrap
from collections.abc import Sequence

from mockserver import config as config_module
from mockserver.market import MarketDataError
from mockserver.request_log import NonBlockingHandler, RequestLogFormatter
from mockserver.routes.admin import is_loopback
from mockserver.security import AccountError

log = logging.getLogger("mockserver")


SERVE_EPILOG = """\
settings, each layer over the one before:
  defaults < --config FILE (TOML: [server], [exchange], [[accounts]]; every key optional)
  < environment DAPI_MOCK_<SECTION>_<KEY> < the flags above
  [server]   {server}
  [exchange] {exchange}
  e.g. DAPI_MOCK_SERVER_PORT=9000, DAPI_MOCK_EXCHANGE_STRICT_PARAMS=true; an unknown
  DAPI_MOCK_SERVER_* or DAPI_MOCK_EXCHANGE_* name stops start-up, like an unknown key.

demo account (unless [server] demo_account = false):
  api key {demo_key}, secret {demo_secret}

once it listens on http://HOST:PORT:
  http://HOST:PORT/__admin/        the journal page; the control plane's JSON routes
                                   (reset, clock, accounts, positions, faults, requests,
                                   state) are under /__admin/; X-Admin-Token when
                                   admin_token is set
  http://HOST:PORT/openapi.yaml    the contract (OpenAPI 3.1)
"""


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dapi-mock")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def _wrapped(keys: Sequence[str]) -> str:
    indent = " " * len("  [exchange] ")
    return textwrap.fill(
        " ".join(keys), width=88, initial_indent=indent, subsequent_indent=indent
    ).lstrip()


def build_parser() -> argparse.ArgumentParser:
    defaults = config_module.Config()
    parser = argparse.ArgumentParser(
        prog="dapi-mock", description="A faithful local fake of Binance COIN-M futures (dapi)."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="run the fake exchange",
        description="Run the fake exchange on waitress. It prints one line\n"
        "'listening on http://HOST:PORT' to stdout when it accepts connections.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=SERVE_EPILOG.format(
            server=_wrapped(config_module.SECTIONS["server"]),
            exchange=_wrapped(config_module.SECTIONS["exchange"]),
            demo_key=config_module.DEMO_API_KEY,
            demo_secret=config_module.DEMO_SECRET,
        ),
    )
    # No argparse defaults: an absent flag leaves the file's or the environment's value.
    serve.add_argument("--host", help=f"address to bind (default {defaults.host})")
    serve.add_argument(
        "--port", type=int, help=f"port to bind; 0 = any free port (default {defaults.port})"
    )
    serve.add_argument("--config", metavar="FILE", help="TOML settings file (default none)")
    serve.add_argument(
        "--workers",
        type=int,
        help=f"server processes; only 1 is supported (default {defaults.workers})",
    )
    serve.add_argument(
        "--threads",
        type=int,
        help=f"request threads, used while a delay fault is set (default {defaults.threads})",
    )
    serve.add_argument(
        "--quiet", action="store_true", help="no request log on stderr (default: log)"
    )
    serve.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="request log: one text line or one JSON object per request (default text)",
    )
    return parser


def configure_logging(quiet: bool, log_format: str) -> NonBlockingHandler:

    handler = NonBlockingHandler(sys.stderr)
    handler.setFormatter(RequestLogFormatter(as_json=log_format == "json"))
    requests_logger = logging.getLogger("mockserver.requests")
    requests_logger.addHandler(handler)
    requests_logger.setLevel(logging.WARNING if quiet else logging.INFO)
    requests_logger.propagate = False
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return handler


def serve(args: argparse.Namespace) -> int:
    try:
        settings = config_module.load(
            args.config,
            host=args.host,
            port=args.port,
            workers=args.workers,
            threads=args.threads,
        )
    except config_module.ConfigError as exc:
        print(f"dapi-mock: {exc}", file=sys.stderr)
        return 2
    if settings.workers != 1:
        print(
            "dapi-mock: --workers must be 1: the exchange's state (leverage, positions, "
            "journal, clock, rate counters) lives in one process and is not shared; "
            "one process serves thousands of requests a second (see docs/performance.md)",
            file=sys.stderr,
        )
        return 2
    request_log = configure_logging(args.quiet, args.log_format)

    from mockserver.app import create_app
    from mockserver.serving import create_server, raise_open_file_limit, run_until_stopped

    try:
        app = create_app(settings)
    except (MarketDataError, AccountError, ValueError) as exc:
        print(f"dapi-mock: {exc}", file=sys.stderr)
        return 2
    if not settings.admin_token and not is_loopback(settings.host):
        print(
            f"dapi-mock: warning: bound to non-loopback {settings.host} without admin_token; "
            "/__admin answers 403 until you set [server] admin_token",
            file=sys.stderr,
        )
    raise_open_file_limit()
    try:
        server = create_server(app, settings)
    except (OSError, ValueError) as exc:  # waitress: ValueError for a name that does not resolve
        why = exc.strerror if isinstance(exc, OSError) else "the host name does not resolve"
        print(
            f"dapi-mock: cannot listen on {settings.host}:{settings.port}: {why}", file=sys.stderr
        )
        return 2
    host = settings.host if ":" not in settings.host else f"[{settings.host}]"
    print(f"listening on http://{host}:{server.effective_port}", flush=True)
    run_until_stopped(server, app.extensions["dapi_mock"])
    request_log.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    raise SystemExit(main())
