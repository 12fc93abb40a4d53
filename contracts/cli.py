"""`dapi-contract`: verify a server against the contract, or fuzz a client against the mock.

    dapi-contract verify-server BASE_URL --api-key K (--secret S | --private-key-file F)
                                [--examples N] [--seed S] [--mock-rules]
                                [--change-account-settings] [--only A,B] ...
    dapi-contract fuzz-client [--scenarios N] [--seed S] [--key-types hmac,rsa,ed25519]
                              [--only A,B] [--slow-ms MS] [--time-limit S] ... -- CMD [ARGS...]

Exit status: 0 when every property or scenario holds, 1 when one fails, 2 on bad usage
or when the server cannot be reached.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from contracts.fuzz import KEY_TYPES, SCENARIO_RULES, catalogue, fuzz_client
from contracts.reporting import finish
from contracts.verify import DISCOVERY, PROPERTIES, verify_server
from contracts.verify.properties import DISCOVERY_RULE, DISCOVERY_STATEMENT

EXIT_STATUS = "exit status: 0 when every {item} holds, 1 when one fails, 2 on bad usage{more}."

VERIFY_DESCRIPTION = """\
Check that the server at BASE_URL holds the properties every server of the dapi
contract (openapi.yaml) holds: the mock, or Binance's testnet with real keys.

Each property is checked on --examples drawn requests, repeatable with --seed.
Portable properties use only Binance's routes and few requests, keep to half of
the weight limit the server publishes (waiting for the next minute when needed,
and saying so) and honour Retry-After. With --mock-rules the mock's own choices
where Binance is silent are checked too; they may use the mock's /__admin. With
--change-account-settings the properties that change the account's position mode
or a margin type run too; a real account with open orders skips them. Every
leverage, margin type and position mode the run changed is put back at the end."""

FUZZ_DESCRIPTION = """\
Run a client against an in-process mock once per scenario while the kit varies
the answers (errors, rate limits, held or dropped answers, skewed clocks, unknown
fields), and judge what the client sent and how it ended.

The command gets DAPI_BASE_URL (scheme, host and port, no path), DAPI_API_KEY,
DAPI_API_SECRET (or DAPI_PRIVATE_KEY_FILE for RSA/Ed25519), DAPI_SYMBOL and
DAPI_LEVERAGE, and must exit 0 exactly when the leverage change succeeded."""


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the descriptions' lines and shows every default a user could type."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        shown = action.default not in (None, argparse.SUPPRESS, "")
        if shown and not isinstance(action.default, bool) and "default" not in text:
            default = action.default
            if isinstance(default, list):
                default = ",".join(default)
            text += f" (default: {default})"
        return text


def _csv(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _properties_epilog() -> str:
    width = max(len(p.name) for p in PROPERTIES)
    rows = [f"  {DISCOVERY:<{width}}  always first; rule {DISCOVERY_RULE}: {DISCOVERY_STATEMENT}"]
    for p in PROPERTIES:
        flag = "  [--mock-rules]" if p.mock_rules else ""
        flag += "  [--change-account-settings]" if p.changes_settings else ""
        rows.append(f"  {p.name:<{width}}  rule {p.rule}: {p.statement}{flag}")
    return (
        f"properties ({len(PROPERTIES) + 1}; rules as named in dapi-mock's "
        "docs/behaviour.md):\n"
        + "\n".join(rows)
        + "\n\n"
        + EXIT_STATUS.format(item="property", more=", or when the server cannot be reached")
    )


def _scenarios_epilog() -> str:
    kinds = catalogue(key_types=KEY_TYPES)
    width = max(len(k.name) for k in kinds)
    rows = [f"  {k.name:<{width}}  {k.title}" for k in kinds]
    return (
        "scenarios (--only takes these names; the rsa-/ed25519- ones come with --key-types; "
        "defaults for the delays):\n"
        + "\n".join(rows)
        + "\n\n"
        + SCENARIO_RULES
        + "\n"
        + EXIT_STATUS.format(item="scenario", more="")
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dapi-contract",
        description="Check a server or a client against the dapi-mock contract (openapi.yaml).",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    verify = commands.add_parser(
        "verify-server",
        help="check the properties any server of this contract must hold",
        description=VERIFY_DESCRIPTION,
        formatter_class=_HelpFormatter,
        epilog=_properties_epilog(),
    )
    verify.add_argument("base_url", metavar="BASE_URL", help="scheme://host[:port], no path")
    verify.add_argument(
        "--api-key", required=True, help="the API key the requests are sent with (X-MBX-APIKEY)"
    )
    secret = verify.add_mutually_exclusive_group(required=True)
    secret.add_argument("--secret", help="the key's HMAC secret")
    secret.add_argument(
        "--private-key-file", type=Path, help="the key's PEM private key (RSA or Ed25519)"
    )
    verify.add_argument("--examples", type=int, default=5, help="drawn requests per property")
    verify.add_argument(
        "--seed", type=int, help="repeat a run: the seed it printed (default: a new one)"
    )
    verify.add_argument(
        "--mock-rules",
        action="store_true",
        help="also check the mock's own choices where Binance is silent (uses /__admin)",
    )
    verify.add_argument(
        "--change-account-settings",
        action="store_true",
        help="also check the properties that change the account's position mode or a margin "
        "type; each puts back what it changed",
    )
    verify.add_argument(
        "--admin-token",
        default="",
        help="X-Admin-Token for /__admin with --mock-rules (default: $DAPI_MOCK_ADMIN_TOKEN)",
    )
    verify.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    verify.add_argument(
        "--only",
        type=_csv,
        metavar="NAMES",
        help="comma-separated property names (listed below); default: all",
    )
    verify.add_argument(
        "--no-pacing",
        dest="pacing",
        action="store_false",
        help="never wait for the next weight window: only for a server without a weight "
        "limit (a mock run with weight_per_minute = 0), as it still publishes Binance's",
    )
    _report_options(verify)

    fuzz = commands.add_parser(
        "fuzz-client",
        help="run a client command against the mock under varied answers",
        description=FUZZ_DESCRIPTION,
        formatter_class=_HelpFormatter,
        epilog=_scenarios_epilog(),
    )
    fuzz.add_argument(
        "--scenarios",
        type=int,
        metavar="N",
        help="how many runs: fewer than the kinds samples them, more adds seeded combinations "
        "(default: every kind once)",
    )
    fuzz.add_argument(
        "--seed", type=int, help="repeat a run: the seed it printed (default: a new one)"
    )
    fuzz.add_argument(
        "--key-types",
        type=_csv,
        default=["hmac"],
        metavar="TYPES",
        help=f"comma-separated, among {','.join(KEY_TYPES)}",
    )
    fuzz.add_argument(
        "--symbols", type=_csv, metavar="A,B", help="only these symbols (default: every listed one)"
    )
    fuzz.add_argument(
        "--only",
        type=_csv,
        metavar="NAMES",
        help="comma-separated scenario names (listed below); default: all",
    )
    fuzz.add_argument(
        "--slow-ms",
        type=int,
        default=12_000,
        help="how long slow-answer holds its answer, past common 10 s timeouts",
    )
    fuzz.add_argument(
        "--time-limit",
        type=float,
        default=30.0,
        help="seconds a client run may take (hung-answer holds past it)",
    )
    _report_options(fuzz)
    fuzz.add_argument("client", nargs=argparse.REMAINDER, help="-- CMD [ARGS...]")
    return parser


def _report_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--junit-xml", type=Path, metavar="PATH", help="write a JUnit XML report")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write a JSON report")
    parser.add_argument("--quiet", action="store_true", help="no progress, only the summary")


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
                change_account_settings=args.change_account_settings,
                admin_token=args.admin_token or os.environ.get("DAPI_MOCK_ADMIN_TOKEN", ""),
                timeout=args.timeout,
                properties=args.only,
                pacing=args.pacing,
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
