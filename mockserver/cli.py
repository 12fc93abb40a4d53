"""`dapi-mock`: run the fake exchange on a production WSGI server (waitress)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from mockserver import config as config_module
from mockserver.market import MarketDataError
from mockserver.routes.admin import is_loopback
from mockserver.security import AccountError

log = logging.getLogger("mockserver")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dapi-mock", description="A faithful local fake of Binance COIN-M futures (dapi)."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the fake exchange")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind; 0 = any free port (default 8080)")
    serve.add_argument("--config", metavar="FILE", help="TOML settings file")
    serve.add_argument("--workers", type=int, help="server processes; only 1 is supported")
    serve.add_argument(
        "--threads",
        type=int,
        help="request threads, used while a delay fault is set (default 16)",
    )
    serve.add_argument("--quiet", action="store_true", help="no request log on stderr")
    serve.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="request log: one text line or one JSON object per request",
    )
    return parser


def configure_logging(quiet: bool, log_format: str) -> None:
    from mockserver.app import RequestLogFormatter

    handler = logging.StreamHandler(sys.stderr)
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
            "one process serves thousands of requests a second (see README, Performance)",
            file=sys.stderr,
        )
        return 2
    configure_logging(args.quiet, args.log_format)

    from mockserver.app import create_app
    from mockserver.serving import create_server, run_until_interrupted

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
    run_until_interrupted(server)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    raise SystemExit(main())
