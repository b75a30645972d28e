"""Build the session's history objects from the settings; sqlite3 loads only from here on."""

from __future__ import annotations

import sqlite3

import pytest

from ..options import BASELINE, HISTORY, Settings
from .compare import Comparison
from .sqlite import HistoryDB, HistoryError
from .writer import HistoryWriter, deployment_host


def load_comparison(settings: Settings) -> Comparison:
    """Read the baselines once, before this session writes a row: a bad history file stops
    the session at start-up, not three hours in."""
    assert settings.baseline is not None and settings.history_path is not None
    try:
        baselines = HistoryDB(settings.history_path).baselines(settings.baseline)
    except (sqlite3.Error, HistoryError, OSError) as exc:
        raise pytest.UsageError(
            f"{BASELINE.flag}={settings.baseline!r}: cannot read {HISTORY.flag} "
            f"{settings.history_path}: {exc}"
        ) from None
    return Comparison(settings.baseline, baselines, settings.max_regression)


def history_writer(settings: Settings) -> HistoryWriter:
    assert settings.history_path is not None
    return HistoryWriter(
        HistoryDB(settings.history_path),
        settings.label,
        deployment_host(settings),
        settings.secrets,
    )
