"""The bundled suites by name: one mapping for `--observatory-suite` and for anything that starts
runs by name (an HTTP service), so a suite is known the same way everywhere.

A suite is a file `test_<name>.py` of the installed package pytest_observatory.suites (the
repository's top-level `suites/`): a new file is a new suite, with no table to edit. Each is
also known by its class-style alias (`TestOAIAzureRelease`), the name the original Observatory's
HTTP API accepted. Lookups ignore case, `_`/`-`, a `test` prefix and a `.py` suffix.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import pytest

ALL = "all"
LIST = "list"  # `--observatory-suite=list` prints the catalog instead of running tests
_PREFIX = "test_"
# Parts written in capitals in class-style aliases, as the original Observatory spelled them.
_ACRONYMS = frozenset({"oai", "api", "llm", "ttft", "itl"})


class SuiteNotFound(LookupError):
    """An unknown suite name; the message lists the known ones."""

    def __init__(self, name: str) -> None:
        known = ", ".join(f"{suite.name} ({suite.alias})" for suite in bundled_suites())
        super().__init__(f"unknown suite {name!r}; known: {known}")


@dataclass(frozen=True)
class Suite:
    name: str  # the file stem without "test_": oai_azure_release
    alias: str  # class-style: TestOAIAzureRelease
    path: Path

    @property
    def summary(self) -> str:
        """The first line of the module docstring, read without importing the suite."""
        doc = ast.get_docstring(ast.parse(self.path.read_text(encoding="utf-8"))) or ""
        return doc.split("\n", 1)[0]


def suites_dir() -> Path:
    return Path(str(files("pytest_observatory.suites")))


def bundled_suites() -> tuple[Suite, ...]:
    """Every bundled suite, sorted by name."""
    return tuple(
        Suite(path.stem.removeprefix(_PREFIX), _alias(path.stem), path)
        for path in sorted(suites_dir().glob(f"{_PREFIX}*.py"))
    )


def suite_names() -> tuple[str, ...]:
    return tuple(suite.name for suite in bundled_suites())


def find_suites(names: list[str] | tuple[str, ...]) -> tuple[Suite, ...]:
    """The suites named (`all` for every one), in the order given, each once."""
    suites = bundled_suites()
    found: dict[str, Suite] = {}
    for name in names:
        chosen = suites if name.strip().lower() == ALL else (_lookup(name, suites),)
        found.update((suite.name, suite) for suite in chosen if suite.name not in found)
    return tuple(found.values())


def suite_path(name: str) -> Path:
    """The file of one suite, by name or alias; SuiteNotFound if there is none."""
    return _lookup(name, bundled_suites()).path


def catalog_lines() -> list[str]:
    """`--observatory-suite=list`: name, alias and summary of every suite, and where they are."""
    suites = bundled_suites()
    name_width = max(len(suite.name) for suite in suites)
    alias_width = max(len(suite.alias) for suite in suites)
    return [
        f"{suite.name:<{name_width}}  {suite.alias:<{alias_width}}  {suite.summary}"
        for suite in suites
    ] + [f"(files in {suites_dir()})"]


def collect_suites(config: pytest.Config, suites: tuple[Suite, ...]) -> None:
    """Collect the suites through their folder, in place of the default paths (testpaths or the
    current directory) when the command line names none, beside the named ones otherwise. xdist
    workers parse the same command line and do the same."""
    folder = str(suites_dir())
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        config.args[:] = [folder]
    elif folder not in config.args:
        config.args.append(folder)
    config.pluginmanager.register(_SuiteSelection(suites), "observatory-suites")


class _SuiteSelection:
    """Skips the suites not named. Collecting the folder, not the files one by one, gives the
    node ids of `pytest --pyargs pytest_observatory.suites` (a file outside the rootdir given by
    itself gets none), so dedup, history and baselines match whichever way a suite runs."""

    def __init__(self, suites: tuple[Suite, ...]) -> None:
        self._folder = suites_dir()
        self._chosen = frozenset(suite.path.name for suite in suites)

    def pytest_ignore_collect(self, collection_path: Path) -> bool | None:
        name = collection_path.name
        if collection_path.parent != self._folder or not name.startswith(_PREFIX):
            return None
        return name not in self._chosen or None


def _lookup(name: str, suites: tuple[Suite, ...]) -> Suite:
    for suite in suites:
        if _key(suite.name) == _key(name):
            return suite
    raise SuiteNotFound(name)


def _alias(stem: str) -> str:
    parts = stem.removeprefix(_PREFIX).split("_")
    return "Test" + "".join(p.upper() if p in _ACRONYMS else p.capitalize() for p in parts)


def _key(name: str) -> str:
    key = name.strip().lower().removesuffix(".py").replace("-", "").replace("_", "")
    return key.removeprefix("test")
