"""``pytest-observatory serve`` (also ``python -m pytest_observatory serve``): the HTTP service.

FastAPI and uvicorn are imported only when the command runs: they come with the ``[server]``
extra, and the other commands must work without them.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from typing import Any

from ..commands import CommandError
from .config import AUTH_ENV, SettingError, from_sources

FLAGS = {
    "--host": "address to bind (default 127.0.0.1: this host only)",
    "--port": "port to listen on (default 8000)",
    "--suites-dir": "a directory of your own suites (test_NAME.py runs as NAME) "
    "[env OBSERVATORY_SUITES_DIR]",
    "--runs-dir": "where each run keeps its reports, journal and output "
    "[env OBSERVATORY_RUNS_DIR; default pytest-observatory-service in the temp directory]",
    "--lock-dir": "the coordination lock directory runs share with CI [env OBSERVATORY_LOCK_DIR]",
    "--history": "SQLite history database every run appends to [env OBSERVATORY_HISTORY]",
    "--max-concurrent": "runs at once; others are queued "
    "[env OBSERVATORY_MAX_CONCURRENT or MAX_CONCURRENT_TESTS; default 5]",
    "--max-queue": "queued runs beyond which POST /run-test answers 429 "
    "[env OBSERVATORY_MAX_QUEUE; default 20]",
}


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "serve",
        help="run the HTTP service (the LiteLLM Observatory API over pytest runs)",
        description="Serve the LiteLLM Observatory API: every accepted run is a pytest run of "
        f"a suite. Set {AUTH_ENV} to require the X-LiteLLM-Observatory-API-Key header, and "
        "SLACK_WEBHOOK_URL to post every run's verdict. Needs pytest-observatory[server].",
    )
    for flag, text in FLAGS.items():
        parser.add_argument(flag, default=None, help=text)
    parser.set_defaults(run=_serve)


def _serve(args: argparse.Namespace) -> None:
    import os

    flags = {flag: getattr(args, flag.lstrip("-").replace("-", "_")) for flag in FLAGS}
    try:
        settings = from_sources(flags, os.environ)
    except SettingError as exc:
        raise CommandError(str(exc)) from None
    try:
        import uvicorn

        from .app import create_app
    except ImportError as exc:
        raise CommandError(
            f"needs FastAPI and uvicorn ({exc.name} is missing): "
            "pip install 'pytest-observatory[server]'"
        ) from None
    if settings.api_key is None and not _loopback(settings.host):
        print(
            f"warning: bound to {settings.host} without {AUTH_ENV}: anyone who reaches this "
            "port can start runs",
            file=sys.stderr,
        )
    try:
        app = create_app(settings)
    except OSError as exc:
        raise CommandError(f"--runs-dir={str(settings.runs_dir)!r}: {exc.strerror}") from None
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
