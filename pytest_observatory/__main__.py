"""``python -m pytest_observatory COMMAND``: tools around the plugin's files.

Each command is a sub-parser registered by its own module (``journal``, ``history``); bad input
is one line on stderr and exit status 2, a failure while running is one line and exit status 1.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from . import journal
from .commands import CommandError
from .history import cli as history_cli
from .service import cli as service_cli


class OneLineParser(argparse.ArgumentParser):
    """argparse prints the usage before the error; a one-line error is easier to read in CI."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m pytest_observatory")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    journal.register(commands)
    history_cli.register(commands)
    service_cli.register(commands)
    args = parser.parse_args(history_cli.default_subcommand(sys.argv[1:] if argv is None else argv))
    try:
        args.run(args)
    except CommandError as exc:
        print(f"{parser.prog} {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
