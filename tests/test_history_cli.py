"""``python -m pytest_observatory history``: listing with filters, CSV and JSON export, one-line
errors; run as a real process over a database written by real sessions."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import sys
from pathlib import Path

import pytest

CHECKS = """
import pytest

@pytest.mark.observatory(duration="300ms", max_failure_rate=0.05)
async def test_chat(deployment, model):
    await deployment.chat(model, "Hello", max_tokens=5)

@pytest.mark.observatory(duration="300ms", models=["mock-gpt-4o"])
async def test_models(deployment):
    await deployment.models()
"""


@pytest.fixture
def history(pytester: pytest.Pytester) -> Path:
    """Two sessions: 'v1' passes both checks, 'v2' fails test_chat (10% failures)."""
    pytester.makepyfile(test_release=CHECKS)
    db = pytester.path / "history.db"
    for label, url in (("v1", "mock"), ("v2", "mock?failure_rate=0.1")):
        pytester.runpytest(
            f"--deployment-url={url}", f"--observatory-history={db}", f"--observatory-label={label}"
        )
    return db


def cli(pytester: pytest.Pytester, *argv: str | Path) -> pytest.RunResult:
    return pytester.run(sys.executable, "-m", "pytest_observatory", *map(str, argv))


def db_rows(db: Path) -> list[dict[str, object]]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(row) for row in conn.execute("SELECT * FROM checks ORDER BY id")]


def test_list_runs_with_filters(pytester: pytest.Pytester, history: Path) -> None:
    result = cli(pytester, "history", history)
    assert result.ret == 0
    lines = result.stdout.lines
    assert lines[0].split()[:4] == ["id", "run", "label", "started"]
    assert len(lines) == 5
    result.stdout.fnmatch_lines(
        [
            "    1  *  v1  * passed * 0.00%  *  test_release.py::test_chat ?mock-gpt-4o,*?",
            "    2  *  v1  * passed * test_release.py::test_models ?mock-gpt-4o?",
            "    3  *  v2  * failed *  *  test_release.py::test_chat ?mock-gpt-4o,*?",
            "    4  *  v2  * passed * test_release.py::test_models ?mock-gpt-4o?",
        ]
    )
    failed = cli(pytester, "history", "list", history, "--verdict", "failed")
    assert [line.split()[0] for line in failed.stdout.lines[1:]] == ["3"]
    chat_v1 = cli(pytester, "history", history, "--nodeid", "test_chat", "--label", "v1")
    assert [line.split()[0] for line in chat_v1.stdout.lines[1:]] == ["1"]
    newest = cli(pytester, "history", history, "--limit", "1")
    assert [line.split()[0] for line in newest.stdout.lines[1:]] == ["4"]
    none = cli(pytester, "history", history, "--label", "v9")
    assert none.stdout.lines[1:] == ["(no runs match)"]


def test_csv_export(pytester: pytest.Pytester, history: Path) -> None:
    result = cli(pytester, "history", "export", history, "--format", "csv")
    assert result.ret == 0
    exported = list(csv.DictReader(io.StringIO(result.stdout.str() + "\n")))
    stored = db_rows(history)
    assert len(exported) == len(stored) == 4
    for row, db_row in zip(exported, stored, strict=True):
        assert list(row) == [
            "id", "run_id", "label", "nodeid", "models", "deployment_host", "verdict",
            "started_at", "ended_at", "recorded_at", "duration_s", "probes", "failures",
            "failure_rate", "p50_ms", "p95_ms", "p99_ms", "ttft_p95_ms",
        ]  # fmt: skip
        for key, value in row.items():
            expected = db_row[key]
            assert value == ("" if expected is None else str(expected)), key
    output = pytester.path / "failed.csv"
    result = cli(
        pytester, "history", "export", history, "--format=csv", "--verdict=failed",
        "--output", output,
    )  # fmt: skip
    result.stderr.fnmatch_lines([f"1 row(s) written to {output}"])
    with output.open(newline="") as exported_file:
        (only,) = csv.DictReader(exported_file)
    assert only["label"] == "v2" and float(only["failure_rate"]) == pytest.approx(0.1, abs=0.01)


def test_json_export_carries_the_whole_result(pytester: pytest.Pytester, history: Path) -> None:
    result = cli(pytester, "history", "export", history, "--format", "json", "--label", "v2")
    assert result.ret == 0
    document = json.loads(result.stdout.str())
    assert document["version"] == 1
    chat, models = document["checks"]
    assert (chat["label"], chat["verdict"], models["verdict"]) == ("v2", "failed", "passed")
    stored = db_rows(history)[2]
    assert chat["id"] == stored["id"] and chat["p95_ms"] == stored["p95_ms"]
    assert chat["result"] == json.loads(str(stored["result"]))
    assert chat["result"]["windows"] and chat["result"]["errors"]
    assert chat["result"]["reasons"][0].startswith("failure rate ")


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        ([], 2, "python -m pytest_observatory: error: the following arguments are required: *"),
        (["history"], 2, "* history: error: the following arguments are required: *"),
        (
            ["history", "export", "{db}", "--format", "xml"],
            2,
            "* history export: error: argument --format: invalid choice: 'xml' (choose from *",
        ),
        (
            ["history", "{db}", "--verdict", "green"],
            2,
            "* history list: error: argument --verdict: invalid choice: 'green' *",
        ),
        (
            ["history", "{db}", "--limit", "0"],
            2,
            "* history list: error: argument --limit: expected an integer >= 1, got '0'",
        ),
        (["history", "missing.db"], 1, "* history: error: missing.db: no such file"),
        (
            ["history", "notes.txt"],
            1,
            "* history: error: notes.txt: not an observatory history database*",
        ),
    ],
)
def test_bad_cli_input_is_one_line(
    pytester: pytest.Pytester, argv: list[str], status: int, message: str
) -> None:
    db = pytester.path / "history.db"
    sqlite3.connect(db).close()  # an empty file: no schema yet is not an error to list
    pytester.path.joinpath("notes.txt").write_text("plain notes\n" * 100)
    result = cli(pytester, *(arg.format(db=db) for arg in argv))
    assert result.ret == status
    assert len(result.stderr.lines) == 1, result.stderr.lines
    result.stderr.fnmatch_lines([message])
    assert not Path(pytester.path / "missing.db").exists()
