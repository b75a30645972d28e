"""A suite's checks as pytest sees them: node ids and observatory marker arguments, collected by
``pytest --collect-only`` in a subprocess once per version of the suite file.

With them the service computes each check's coordination identity exactly as the run's own
process will (``coordination.check_identity`` over the same node id, settings and spec), so a
request for a check that already runs, from this service or from any pytest process sharing the
locks, is answered 409 at once; and it knows the suite's duration before it answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .. import catalog
from ..result import JSON
from .child import COLLECT_ENV
from .config import AUTH_ENV

COLLECT_TIMEOUT_S = 60.0


class SuiteError(Exception):
    """The suite cannot be collected; the message is one line for the answer."""


@dataclass(frozen=True)
class SuiteCheck:
    nodeid: str
    marker: JSON  # the observatory marker's keyword arguments


def suite_file(name: str, own_dir: Path | None) -> Path:
    """The file a suite name means: ``own_dir/test_NAME.py`` first (a team's own suites), else
    the catalog's bundled suite by name or alias. Raises catalog.SuiteNotFound."""
    if own_dir is not None:
        path = own_dir / f"test_{name}.py"
        if path.is_file():
            return path
    return catalog.suite_path(name)


def suite_names(own_dir: Path | None) -> list[str]:
    """Every name a request may use: the bundled suites' class-style aliases (the original
    Observatory's), their names, then the team's own."""
    bundled = catalog.bundled_suites()
    own = sorted(p.stem.removeprefix("test_") for p in own_dir.glob("test_*.py")) if own_dir else []
    names = [suite.alias for suite in bundled] + [suite.name for suite in bundled] + own
    return list(dict.fromkeys(names))


def pytest_args(path: Path, ini: Path) -> list[str]:
    """How every pytest process of the service sees a suite. Its folder is the root: node ids
    are those of ``pytest --observatory-suite NAME`` (or ``--pyargs pytest_observatory.suites``)
    run anywhere outside a checkout, so coordination's identities match such runs; the folder's
    conftest.py applies, nothing of the service's working directory (ini file, conftest.py)
    does."""
    return [
        str(path), "-m", "observatory", "-p", "pytest_observatory.service.child",
        "-p", "no:cacheprovider", "-c", str(ini),
        "--rootdir", str(path.parent), "--confcutdir", str(path.parent),
    ]  # fmt: skip


def child_environ() -> dict[str, str]:
    """The service's environment without what only the service may read."""
    return {key: value for key, value in os.environ.items() if key != AUTH_ENV}


class SuiteChecks:
    """Collections of suites, one per file version; requests arriving meanwhile share it."""

    def __init__(self, ini: Path) -> None:
        self._ini = ini
        self._known: dict[tuple[Path, int], asyncio.Task[tuple[SuiteCheck, ...]]] = {}

    async def of(self, path: Path) -> tuple[SuiteCheck, ...]:
        key = (path, path.stat().st_mtime_ns)
        if key not in self._known:
            self._known[key] = asyncio.create_task(self._collect(path))
        try:
            return await asyncio.shield(self._known[key])
        except SuiteError:
            self._known.pop(key, None)  # a fixed environment may collect it next time
            raise

    def warm(self, paths: list[Path]) -> None:
        """Collect these in the background: the first request for a suite need not wait."""
        for path in set(paths):
            task = asyncio.create_task(self._collect(path))
            # A failure is answered when the suite is asked for; nobody may ask.
            task.add_done_callback(lambda done: done.cancelled() or done.exception())
            self._known[(path, path.stat().st_mtime_ns)] = task

    async def _collect(self, path: Path) -> tuple[SuiteCheck, ...]:
        with tempfile.TemporaryDirectory(prefix="observatory-collect-") as folder:
            target = Path(folder, "checks.json")
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "pytest", *pytest_args(path, self._ini),
                "--collect-only", "-q",
                cwd=folder,
                env={**child_environ(), COLLECT_ENV: str(target)},
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
            try:
                output, _ = await asyncio.wait_for(process.communicate(), COLLECT_TIMEOUT_S)
            except asyncio.TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
                raise SuiteError(f"{path.name}: not collected in {COLLECT_TIMEOUT_S:g}s") from None
            if process.returncode == 5:  # every test deselected by -m observatory
                raise SuiteError(f"{path.name}: holds no observatory checks")
            try:
                found = json.loads(target.read_text("utf-8")) if process.returncode == 0 else None
            except (OSError, ValueError):
                found = None
        if found is None:
            raise SuiteError(f"{path.name}: cannot be collected: {_reason(output)}")
        return tuple(SuiteCheck(check["nodeid"], check["marker"]) for check in found)


def _reason(output: bytes) -> str:
    """pytest's first error line ('E   ImportError: ...'), else its last line."""
    lines = [line.strip() for line in output.decode(errors="replace").splitlines() if line.strip()]
    errors = [line.removeprefix("E").strip() for line in lines if line.startswith("E ")]
    return (errors or lines or ["no output"])[0 if errors else -1]
