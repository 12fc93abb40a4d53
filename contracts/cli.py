"""`dapi-contract`: verify a server against the contract, or fuzz a client against the mock.

    dapi-contract verify-server BASE_URL --api-key K (--secret S | --private-key-file F)
                                [--examples N] [--seed S] [--mock-rules] [--admin-token T]
                                [--junit-xml PATH] [--json PATH]
    dapi-contract fuzz-client [--scenarios N] [--seed S] [--key-types hmac,rsa,ed25519]
                              [--symbols A,B] [--slow-ms MS] [--time-limit S]
                              [--junit-xml PATH] [--json PATH] -- CMD [ARGS...]

Exit status: 0 when every property or scenario holds, 1 when one fails, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from contracts.fuzz import SCENARIO_RULES, fuzz_client
from contracts.reporting import finish
from contracts.verify import PROPERTIES, verify_server


def _csv(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dapi-contract",
        description="Check a server or a client against the dapi-mock contract (openapi.yaml).",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    verify = commands.add_parser(
        "verify-server",
        help="check the properties any server of this contract must hold",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="properties:\n"
        + "\n".join(
            f"  {p.name:<38} {p.statement}{'  [--mock-rules]' if p.mock_rules else ''}"
            for p in PROPERTIES
        ),
    )
    verify.add_argument("base_url", metavar="BASE_URL", help="scheme://host[:port], no path")
    verify.add_argument("--api-key", required=True)
    secret = verify.add_mutually_exclusive_group(required=True)
    secret.add_argument("--secret", help="HMAC secret")
    secret.add_argument("--private-key-file", type=Path, help="PEM RSA or Ed25519 private key")
    verify.add_argument("--examples", type=int, default=5, help="cases per property (default 5)")
    verify.add_argument("--seed", type=int, help="repeat a run: the seed it printed")
    verify.add_argument(
        "--mock-rules",
        action="store_true",
        help="also check SPEC's (our choice) rules; may use /__admin (the mock only)",
    )
    verify.add_argument("--admin-token", default="", help="X-Admin-Token for --mock-rules")
    verify.add_argument("--timeout", type=float, default=10.0, help="per request, seconds")
    verify.add_argument("--only", type=_csv, help="comma-separated property names")
    _report_options(verify)

    fuzz = commands.add_parser(
        "fuzz-client",
        help="run a client command against the mock under varied answers",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="The command gets DAPI_BASE_URL, DAPI_API_KEY, DAPI_API_SECRET (or "
        "DAPI_PRIVATE_KEY_FILE), DAPI_SYMBOL and DAPI_LEVERAGE, and must exit 0 exactly when "
        "the leverage change succeeded.",
        epilog=SCENARIO_RULES,
    )
    fuzz.add_argument("--scenarios", type=int, help="how many (default: every kind once)")
    fuzz.add_argument("--seed", type=int, help="repeat a run: the seed it printed")
    fuzz.add_argument("--key-types", type=_csv, default=["hmac"], help="hmac,rsa,ed25519")
    fuzz.add_argument("--symbols", type=_csv, help="only these symbols (default: all listed)")
    fuzz.add_argument("--only", type=_csv, help="only these scenario kinds (comma-separated)")
    fuzz.add_argument(
        "--slow-ms",
        type=int,
        default=12_000,
        help="answer delay of the slow scenario (default 12000, past common 10 s timeouts)",
    )
    fuzz.add_argument(
        "--time-limit", type=float, default=30.0, help="seconds a client run may take"
    )
    _report_options(fuzz)
    fuzz.add_argument("client", nargs=argparse.REMAINDER, help="-- CMD [ARGS...]")
    return parser


def _report_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--junit-xml", type=Path, help="write a JUnit XML report here")
    parser.add_argument("--json", type=Path, help="write a JSON report here")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    progress = None if args.quiet else sys.stdout
    try:
        if args.command == "verify-server":
            report = verify_server(
                args.base_url,
                args.api_key,
                secret=args.secret,
                private_key=args.private_key_file.read_bytes() if args.private_key_file else None,
                examples=args.examples,
                seed=args.seed,
                mock_rules=args.mock_rules,
                admin_token=args.admin_token or os.environ.get("DAPI_MOCK_ADMIN_TOKEN", ""),
                timeout=args.timeout,
                properties=args.only,
                progress=progress,
            )
        else:
            command = list(args.client)
            if command[:1] == ["--"]:
                command = command[1:]
            if not command:
                parser.error("fuzz-client needs a client command after --")
            report = fuzz_client(
                command,
                scenarios=args.scenarios,
                seed=args.seed,
                symbols=args.symbols,
                key_types=args.key_types,
                slow_ms=args.slow_ms,
                time_limit_s=args.time_limit,
                only=args.only,
                progress=progress,
            )
    except (ValueError, OSError) as exc:
        print(f"dapi-contract: {exc}", file=sys.stderr)
        return 2
    return finish(report, sys.stdout, args.junit_xml, args.json)


if __name__ == "__main__":
    sys.exit(main())
