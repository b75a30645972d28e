"""The service's settings: command-line flags over environment variables over defaults.

Variables the plugin already reads keep their names (``OBSERVATORY_MAX_CONCURRENT``,
``OBSERVATORY_LOCK_DIR``, ``OBSERVATORY_HISTORY``, ``SLACK_WEBHOOK_URL``) and the original
Observatory's ``MAX_CONCURRENT_TESTS`` is accepted too, so its deployments' environments work
unchanged.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..options import (
    DEFAULT_LOCK_DIR,
    DEFAULT_MAX_CONCURRENT,
    HISTORY,
    LOCK_DIR,
    LOCK_URL,
    MAX_CONCURRENT,
)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_MAX_QUEUE = 20
DEFAULT_RUNS_DIR = Path(tempfile.gettempdir(), "pytest-observatory-service")
MAX_BODY_BYTES = 64 * 1024
AUTH_ENV = "OBSERVATORY_API_KEY"
AUTH_HEADER = "X-LiteLLM-Observatory-API-Key"
ORIGINAL_MAX_CONCURRENT_ENV = "MAX_CONCURRENT_TESTS"


class SettingError(ValueError):
    """A bad flag or variable; the message names it and the value."""


@dataclass(frozen=True)
class ServiceSettings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    runs_dir: Path = DEFAULT_RUNS_DIR
    suites_dir: Path | None = None  # the user's own suites, beside the bundled ones
    lock_dir: Path | None = None  # None: the plugin's default
    # Redis locks: from the environment only (the URL may hold a password); the runs inherit it.
    lock_url: str | None = field(default=None, repr=False)
    history_path: Path | None = None
    max_concurrent: int = DEFAULT_MAX_CONCURRENT
    max_queue: int = DEFAULT_MAX_QUEUE
    api_key: str | None = field(default=None, repr=False)  # callers' key, not a deployment's
    events_interval_s: float = 1.0

    @property
    def effective_lock_dir(self) -> Path:
        return self.lock_dir or DEFAULT_LOCK_DIR

    def child_env(self) -> dict[str, str]:
        """What every run's pytest process gets on top of the service's own environment."""
        env = {MAX_CONCURRENT.env: str(self.max_concurrent)}
        if self.lock_dir is not None:
            env[LOCK_DIR.env] = str(self.lock_dir)
        if self.history_path is not None:
            env[HISTORY.env] = str(self.history_path)
        return env


def from_sources(flags: Mapping[str, str | None], environ: Mapping[str, str]) -> ServiceSettings:
    """``flags`` maps a flag (``--max-concurrent``) to its value or None when not given."""

    def pick(flag: str, *names: str) -> tuple[str | None, str]:
        if flags.get(flag) is not None:
            return flags[flag], flag
        for name in names:
            if environ.get(name, "").strip():
                return environ[name].strip(), name
        return None, flag

    def count(flag: str, default: int, *names: str) -> int:
        text, source = pick(flag, *names)
        if text is None:
            return default
        if not text.isdigit() or int(text) < 1:
            raise SettingError(f"{source}={text!r}: expected an integer >= 1")
        return int(text)

    def path(flag: str, *names: str) -> Path | None:
        text = pick(flag, *names)[0]
        return None if text is None else Path(text)

    port_text, port_source = pick("--port")
    port = DEFAULT_PORT
    if port_text is not None:
        if not port_text.isdigit() or not 0 <= int(port_text) < 65536:
            raise SettingError(f"{port_source}={port_text!r}: expected a port number")
        port = int(port_text)
    suites_dir = path("--suites-dir", "OBSERVATORY_SUITES_DIR")
    if suites_dir is not None and not suites_dir.is_dir():
        raise SettingError(f"--suites-dir={str(suites_dir)!r}: not a directory")
    return ServiceSettings(
        host=pick("--host")[0] or DEFAULT_HOST,
        port=port,
        runs_dir=path("--runs-dir", "OBSERVATORY_RUNS_DIR") or DEFAULT_RUNS_DIR,
        suites_dir=suites_dir,
        lock_dir=path("--lock-dir", LOCK_DIR.env),
        history_path=path("--history", HISTORY.env),
        max_concurrent=count(
            "--max-concurrent",
            DEFAULT_MAX_CONCURRENT,
            MAX_CONCURRENT.env,
            ORIGINAL_MAX_CONCURRENT_ENV,
        ),
        max_queue=count("--max-queue", DEFAULT_MAX_QUEUE, "OBSERVATORY_MAX_QUEUE"),
        api_key=environ.get(AUTH_ENV) or None,
        lock_url=environ.get(LOCK_URL.env, "").strip() or None,
    )
