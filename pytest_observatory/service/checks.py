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
from collections.abc import Sequence
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


def pytest_args(paths: Sequence[Path], ini: Path) -> list[str]:
    """How every pytest process of the service sees suites (files of one folder). The folder is
    the root: node ids are those of ``pytest --observatory-suite NAME`` (or ``--pyargs
    pytest_observatory.suites``) run anywhere outside a checkout, so coordination's identities
    match such runs; the folder's conftest.py applies, nothing of the service's working
    directory (ini file, conftest.py) does."""
    folder = str(paths[0].parent)
    return [
        *map(str, paths), "-m", "observatory", "-p", "pytest_observatory.service.child",
        "-p", "no:cacheprovider", "-c", str(ini), "--rootdir", folder, "--confcutdir", folder,
    ]  # fmt: skip


def child_environ() -> dict[str, str]:
    """The service's environment without what only the service may read."""
    return {key: value for key, value in os.environ.items() if key != AUTH_ENV}


Checks = tuple[SuiteCheck, ...]


class SuiteChecks:
    """Collections of suites, one per file version; requests arriving meanwhile share it."""

    def __init__(self, ini: Path) -> None:
        self._ini = ini
        self._known: dict[tuple[Path, int], asyncio.Future[Checks]] = {}
        self._warming: list[asyncio.Task[None]] = []

    async def of(self, path: Path) -> Checks:
        if self._warming:  # a request at start-up waits for the collection under way
            await asyncio.wait(self._warming)
        key = (path, path.stat().st_mtime_ns)
        if key not in self._known:
            self._known[key] = asyncio.create_task(self._collect_one(path))
        try:
            return await asyncio.shield(self._known[key])
        except SuiteError:
            self._known.pop(key, None)  # a fixed environment may collect it next time
            raise

    def warm(self, paths: Sequence[Path]) -> None:
        """Collect these in the background, one pytest process per folder: the first request
        for a suite need not wait. A folder that fails (a broken file) is left to requests,
        which collect their suite alone and answer its error."""
        folders: dict[Path, list[Path]] = {}
        for path in dict.fromkeys(paths):
            folders.setdefault(path.parent, []).append(path)
        self._warming = [asyncio.create_task(self._warm(files)) for files in folders.values()]

    async def _warm(self, paths: list[Path]) -> None:
        with contextlib.suppress(SuiteError):
            found = await self._collect(paths)
            for path in paths:
                if found.get(path):
                    done: asyncio.Future[Checks] = asyncio.get_running_loop().create_future()
                    done.set_result(found[path])
                    self._known[(path, path.stat().st_mtime_ns)] = done

    async def _collect_one(self, path: Path) -> Checks:
        checks = (await self._collect([path])).get(path)
        if not checks:
            raise SuiteError(f"{path.name}: holds no observatory checks")
        return checks

    async def _collect(self, paths: list[Path]) -> dict[Path, Checks]:
        name = paths[0].name if len(paths) == 1 else str(paths[0].parent)
        with tempfile.TemporaryDirectory(prefix="observatory-collect-") as folder:
            target = Path(folder, "checks.json")
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "pytest", *pytest_args(paths, self._ini),
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
                raise SuiteError(f"{name}: not collected in {COLLECT_TIMEOUT_S:g}s") from None
            if process.returncode == 5:  # every test deselected by -m observatory
                return {}
            try:
                found = json.loads(target.read_text("utf-8")) if process.returncode == 0 else None
            except (OSError, ValueError):
                found = None
        if found is None:
            raise SuiteError(f"{name}: cannot be collected: {_reason(output)}")
        by_file: dict[Path, list[SuiteCheck]] = {}
        for check in found:
            path = paths[0].parent / check["nodeid"].split("::", 1)[0]
            by_file.setdefault(path, []).append(SuiteCheck(check["nodeid"], check["marker"]))
        return {path: tuple(checks) for path, checks in by_file.items()}


def _reason(output: bytes) -> str:
    """pytest's first error line ('E   ImportError: ...'), else its last line."""
    lines = [line.strip() for line in output.decode(errors="replace").splitlines() if line.strip()]
    errors = [line.removeprefix("E").strip() for line in lines if line.startswith("E ")]
    return (errors or lines or ["no output"])[0 if errors else -1]
