"""The benchmark's baseline: a trivial Flask route on the same waitress settings as `serve`.

Run as its own process, like `dapi-mock serve`, and with the same flags, config
file and environment, so the only difference measured is the mock's request
path. Prints `listening on http://HOST:PORT` once it accepts connections.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from flask import Flask, Response, jsonify

from mockserver import config as config_module
from mockserver.serving import create_server, run_until_stopped


def create_app() -> Flask:
    app = Flask(__name__)
    app.json.compact = True  # type: ignore[attr-defined]  # as the mock answers

    @app.get("/")
    def index() -> Response:
        return jsonify(ok=True)

    return app


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--config", metavar="FILE")
    parser.add_argument("--threads", type=int)
    args = parser.parse_args(argv)
    # Resolved exactly as `serve` resolves them: defaults < file < env < flags.
    settings = config_module.load(args.config, host=args.host, port=args.port, threads=args.threads)

    server = create_server(create_app(), settings)
    print(f"listening on http://{settings.host}:{server.effective_port}", flush=True)
    run_until_stopped(server, None)  # as `serve` runs
    return 0


if __name__ == "__main__":
    sys.exit(main())
