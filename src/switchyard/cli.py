"""The ``switchyard`` command.

Exit codes: 0 success; 1 an operation failed; 2 bad usage or invalid configuration;
3 ``dev status`` found a server not running.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from switchyard.errors import ConfigError, SwitchyardError


def build_parser() -> argparse.ArgumentParser:
    from switchyard.devenv import cli as dev_cli

    parser = argparse.ArgumentParser(prog="switchyard", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    dev_cli.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except ConfigError as exc:
        print(f"switchyard: configuration error: {exc}", file=sys.stderr)
        return 2
    except SwitchyardError as exc:
        print(f"switchyard: {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
