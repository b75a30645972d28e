"""``python -m pytest_observatory.mock --port 4000``: the mock gateway alone, in the foreground.

Every knob of the URL form is a flag here (``failure_rate`` is ``--failure-rate``), built from
the one table in ``settings.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from .server import serve
from .settings import KNOBS, MockSettings


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a port from 1 to 65535")
    return int(text)


def parse_command_line(
    argv: list[str] | None = None,
) -> tuple[argparse.ArgumentParser, MockSettings, str, int]:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_observatory.mock",
        description="An OpenAI-compatible mock gateway with fault knobs.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=_port, default=4000)
    knobs = parser.add_argument_group("knobs", "the same as the query of --deployment-url=mock?...")
    for knob in KNOBS:
        knobs.add_argument(knob.flag, dest=knob.name, metavar="VALUE", help=knob.help)
    args = parser.parse_args(argv)
    given = [(knob.name, getattr(args, knob.name)) for knob in KNOBS]
    try:
        settings = MockSettings.from_knobs((name, raw) for name, raw in given if raw is not None)
    except ValueError as exc:  # one line, not the whole usage block
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    return parser, settings, args.host, args.port


def main(argv: list[str] | None = None) -> None:
    parser, settings, host, port = parse_command_line(argv)
    with contextlib.suppress(KeyboardInterrupt):
        try:
            asyncio.run(serve(settings, host, port))
        except OSError as exc:  # port in use, address not available
            parser.error(f"cannot listen on {host}:{port}: {exc.strerror or exc}")


if __name__ == "__main__":
    main()
