"""`dapi-contract`'s entry point: the property kit, or how to install it when it is missing.

The base install carries the reference client only; verify-server and fuzz-client need
the `kit` extra's libraries (docs/behaviour.md#packaging), imported by contracts.cli.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

# Top-level import names of the `kit` extra's libraries (pyproject.toml).
KIT_MODULES = frozenset({"hypothesis", "schemathesis", "openapi_core", "yaml", "rich"})

INSTALL_HINT = """\
dapi-contract: verify-server and fuzz-client need the 'kit' extra ({missing} is not installed).
Install dapi-mock with [kit] where dapi-contract runs, from a checkout or a git URL:
  pip install '.[kit]'
  pip install 'dapi-mock[kit] @ git+https://github.com/<owner>/dapi-mock'
(pipx: pipx install --force with the same spec.)"""


def main(argv: Sequence[str] | None = None) -> int:
    try:
        from contracts.cli import main as kit_main
    except ModuleNotFoundError as exc:
        top_level = (exc.name or "").partition(".")[0]
        if top_level not in KIT_MODULES:
            raise
        print(INSTALL_HINT.format(missing=top_level), file=sys.stderr)
        return 2
    return kit_main(argv)


if __name__ == "__main__":
    sys.exit(main())
