"""Hooks other plugins implement to extend pytest-observatory (registered via pytest_addhooks)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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


@pytest.hookspec(firstresult=True)
def pytest_observatory_slack_payload(
    config: pytest.Config, results: list[CheckResult]
) -> dict[str, Any] | None:
    """The JSON body posted to the Slack webhook (``--slack-webhook-url``) at session end, on
    the controller. Return a dict to replace the built-in message (Block Kit ``blocks`` plus a
    ``text`` fallback), or None to keep it. ``results`` holds every check of the session. Known
    secrets (API key, webhook URL) are masked in whatever is posted.

    Example, in a ``conftest.py``::

        def pytest_observatory_slack_payload(config, results):
            failed = [r.nodeid for r in results if r.verdict == "failed"]
            return {"text": f"release checks: {len(failed)} failed: {', '.join(failed)}"}
    """
