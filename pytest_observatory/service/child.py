"""What the service loads into the pytest processes it starts (``-p
pytest_observatory.service.child``). Both hooks act only when the service set their variable:

- the request's ``max_failure_rate`` and ``request_interval_seconds`` replace the suite's marker
  values, as the original Observatory's body did (JSON in ``OVERRIDES_ENV``);
- a collection run (``--collect-only``) writes each check's node id and marker arguments to the
  file named by ``COLLECT_ENV``, so the service knows a suite's checks as pytest sees them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ..marker import MARKER_NAME

OVERRIDES_ENV = "OBSERVATORY_SERVICE_MARKER_OVERRIDES"
COLLECT_ENV = "OBSERVATORY_SERVICE_COLLECT_TO"


@pytest.hookimpl(tryfirst=True)  # before the plugin's runner parses the marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    overrides = json.loads(os.environ.get(OVERRIDES_ENV) or "{}")
    if not overrides:
        return
    for item in items:
        mark = item.get_closest_marker(MARKER_NAME)
        if mark is not None:
            merged = getattr(pytest.mark, MARKER_NAME)(**{**mark.kwargs, **overrides})
            item.add_marker(merged, append=False)  # the closest marker is the one parsed


def pytest_collection_finish(session: pytest.Session) -> None:
    target = os.environ.get(COLLECT_ENV)
    if not target:
        return
    checks = [
        {"nodeid": item.nodeid, "marker": dict(mark.kwargs)}
        for item in session.items
        if (mark := item.get_closest_marker(MARKER_NAME)) is not None
    ]
    Path(target).write_text(json.dumps(checks, default=repr), encoding="utf-8")
