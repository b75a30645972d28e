"""Loaded into a run's pytest process (``-p pytest_observatory.service.overrides``): the
request's ``max_failure_rate`` and ``request_interval_seconds`` replace the suite's marker values,
as the original Observatory's body did. The values arrive as JSON in an environment variable."""

from __future__ import annotations

import json
import os

import pytest

from ..marker import MARKER_NAME

ENV = "OBSERVATORY_SERVICE_MARKER_OVERRIDES"


@pytest.hookimpl(tryfirst=True)  # before the plugin's runner parses the marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    overrides = json.loads(os.environ.get(ENV) or "{}")
    if not overrides:
        return
    for item in items:
        mark = item.get_closest_marker(MARKER_NAME)
        if mark is not None:
            merged = getattr(pytest.mark, MARKER_NAME)(**{**mark.kwargs, **overrides})
            item.add_marker(merged, append=False)  # the closest marker is the one parsed
