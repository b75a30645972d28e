"""``python -m pytest_observatory COMMAND``: tools around the plugin's files."""

from __future__ import annotations

import argparse
import sys

from . import journal


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_observatory")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    journal.register(commands)
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except journal.CommandFailed as exc:
        print(f"{parser.prog} {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
