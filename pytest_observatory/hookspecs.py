"""Hooks other plugins implement to extend pytest-observatory (registered via pytest_addhooks)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .result import CheckResult


@pytest.hookspec
def pytest_observatory_check_finished(config: pytest.Config, result: CheckResult) -> None:
    """A check ended (passed, failed, interrupted, skipped or crashed). Called once per check, on
    the process that reports (the xdist controller, never a worker), so an implementation may
    write files or post messages. ``result`` is plain data; don't reach into the engine.

    Example, in a ``conftest.py`` or a plugin::

        def pytest_observatory_check_finished(config, result):
            if result.verdict == "failed":
                page_oncall(f"{result.nodeid}: {result.failure_rate:.1%} failed")
    """
