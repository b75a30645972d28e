"""``python -m pytest_observatory.mock --port 4000``: the mock gateway alone, in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from ..durations import parse_duration
from .server import serve
from .settings import DEFAULT_MODELS, MockSettings, parse_models


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a port from 1 to 65535")
    return int(text)


def _arguments(
    argv: list[str] | None = None,
) -> tuple[argparse.ArgumentParser, MockSettings, str, int]:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_observatory.mock",
        description="An OpenAI-compatible mock gateway with fault knobs.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=_port, default=4000)
    parser.add_argument(
        "--latency", type=_duration, default=0.0, help="added to every answer, e.g. 20ms"
    )
    parser.add_argument(
        "--failure-rate", type=float, default=0.0, help="fraction [0, 1] of failed requests"
    )
    parser.add_argument("--failure-status", type=int, default=500)
    parser.add_argument("--models", default=None, help="comma-separated model names")
    parser.add_argument("--api-key", default=None, help="require 'Authorization: Bearer KEY'")
    args = parser.parse_args(argv)
    try:
        settings = MockSettings(
            latency_s=args.latency,
            failure_rate=args.failure_rate,
            failure_status=args.failure_status,
            api_key=args.api_key,
            models=parse_models(args.models) if args.models else DEFAULT_MODELS,
        )
    except ValueError as exc:
        parser.error(str(exc))
    return parser, settings, args.host, args.port


def main(argv: list[str] | None = None) -> None:
    parser, settings, host, port = _arguments(argv)
    with contextlib.suppress(KeyboardInterrupt):
        try:
            asyncio.run(serve(settings, host, port))
        except OSError as exc:  # port in use, address not available
            parser.error(f"cannot listen on {host}:{port}: {exc.strerror or exc}")


if __name__ == "__main__":
    main()
