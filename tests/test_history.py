"""Run history in SQLite: rows appended by whole sessions, concurrent writers, baselines and
regression limits, bad options, and no secret in the database."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_observatory.history.compare import parse_max_regression
from pytest_observatory.mock import MockGateway

CHAT = """
import pytest

@pytest.mark.observatory(duration="1s", max_failure_rate=0.5, concurrency=2)
async def test_chat(deployment, model):
    await deployment.chat(model, "Hello", max_tokens=5)
"""


def rows(path: Path) -> list[sqlite3.Row]:
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        return list(conn.execute("SELECT * FROM checks ORDER BY id"))


def run_session(pytester: pytest.Pytester, url: str, *argv: str) -> tuple[pytest.RunResult, dict]:
    report = pytester.path / "report.json"
    result = pytester.runpytest(
        f"--deployment-url={url}",
        f"--observatory-history={pytester.path / 'history.db'}",
        f"--observatory-report={report}",
        *argv,
    )
    return result, json.loads(report.read_text())


def test_every_check_is_appended_with_its_figures_and_windows(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        CHAT
        + """
@pytest.mark.observatory(duration="1s")
def test_not_deployed(deployment):
    pytest.skip("model not deployed here")
"""
    )
    db = pytester.path / "history.db"
    result, report = run_session(pytester, "mock?failure_rate=0.1", "--observatory-label=gw-1.2.3")
    result.assert_outcomes(passed=1, skipped=1)
    chat, skipped = rows(db)
    check = report["checks"][0]
    assert chat["nodeid"] == check["nodeid"] and chat["nodeid"].endswith(".py::test_chat")
    assert chat["label"] == "gw-1.2.3"
    assert chat["models"] == "mock-gpt-4o,mock-gpt-4o-mini"
    assert chat["deployment_host"] == "mock"
    assert chat["verdict"] == "passed"
    assert chat["probes"] == check["probes"] > 10
    assert chat["failures"] == check["failures"] > 0
    assert chat["failure_rate"] == check["failure_rate"]
    assert chat["p95_ms"] == check["latency_ms"]["p95"]
    assert chat["ttft_p95_ms"] is None
    assert chat["started_at"] == check["started_at"] < chat["ended_at"] == check["ended_at"]
    assert chat["started_at"].endswith("Z") and chat["recorded_at"] >= chat["ended_at"]
    stored = json.loads(chat["result"])
    assert stored["windows"] == check["windows"] and stored["windows"]
    assert stored["errors"] == check["errors"]
    assert skipped["verdict"] == "skipped" and skipped["run_id"] == chat["run_id"]
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        indexes = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert {"checks_by_check", "checks_by_time", "checks_by_label"} <= indexes
    result.stdout.fnmatch_lines(
        [f"*observatory history: 2 check(s) appended to {db} (run {chat['run_id']}, label*"]
    )
    # A second session appends: nothing is replaced.
    run_session(pytester, "mock")[0].assert_outcomes(passed=1, skipped=1)
    assert len(rows(db)) == 4 and len({row["run_id"] for row in rows(db)}) == 2


WRITER = """
import sys
from pathlib import Path
from pytest_observatory.history.sqlite import HistoryDB
from pytest_observatory.result import CheckResult

db = HistoryDB(Path(sys.argv[1]))
for i in range(int(sys.argv[3])):
    result = CheckResult(f"test_x.py::test_{i}", "passed", probes=i, latency_ms={"p95": 1.0})
    db.append(result, run_id=sys.argv[2], label=None, deployment_host="h", recorded_at="t")
"""


def test_concurrent_writers_lose_no_row(tmp_path: Path) -> None:
    """Processes appending at once to a database none of them has created yet."""
    db = tmp_path / "history.db"
    per_writer = 150
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(db), f"w{n}", str(per_writer)])
        for n in range(3)
    ]
    for writer in writers:
        assert writer.wait(timeout=120) == 0
    found = rows(db)
    assert len(found) == 3 * per_writer
    for n in range(3):
        mine = [row["probes"] for row in found if row["run_id"] == f"w{n}"]
        assert mine == list(range(per_writer))  # each writer's rows, all, in its order
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_xdist_session_records_every_check_once(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        "\n".join(
            CHAT.replace("test_chat", f"test_chat_{n}").replace('"1s"', '"300ms"') for n in range(4)
        )
    )
    db = pytester.path / "history.db"
    result = pytester.runpytest_subprocess(
        "-n", "2", "--deployment-url=mock", f"--observatory-history={db}"
    )
    result.assert_outcomes(passed=4)
    found = rows(db)
    assert sorted(row["nodeid"].split("::")[1] for row in found) == [
        f"test_chat_{n}" for n in range(4)
    ]
    assert len({row["run_id"] for row in found}) == 1
    # Workers compare with the baseline too: a slower deployment fails every check.
    result = pytester.runpytest_subprocess(
        "-n",
        "2",
        "--deployment-url=mock?latency=50ms",
        f"--observatory-history={db}",
        "--observatory-baseline=last",
        "--observatory-max-regression=p50=+20ms",
    )
    result.assert_outcomes(failed=4)
    result.stdout.fnmatch_lines(["*regression vs baseline: p50 * -> *ms (+*%) > max +20ms*"])
    assert [row["verdict"] for row in rows(db)[4:]] == ["failed"] * 4


def test_history_options_from_env_and_ini(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(CHAT.replace('"1s"', '"200ms"'))
    pytester.makeini("[pytest]\nobservatory_history = from-ini.db\nobservatory_label = ini-label\n")
    monkeypatch.setenv("OBSERVATORY_LABEL", "env-label")
    pytester.runpytest("--deployment-url=mock").assert_outcomes(passed=1)
    (row,) = rows(pytester.path / "from-ini.db")
    assert row["label"] == "env-label"  # the environment wins over the ini file
    monkeypatch.setenv("OBSERVATORY_BASELINE", "env-label")
    monkeypatch.setenv("OBSERVATORY_MAX_REGRESSION", "p95=+10s")
    result = pytester.runpytest("--deployment-url=mock", "--observatory-label=cli-label")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["* baseline: vs run * 'env-label' of *"])
    assert [row["label"] for row in rows(pytester.path / "from-ini.db")] == [
        "env-label",
        "cli-label",
    ]


def test_unwritable_history_is_one_line_and_the_run_goes_on(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(CHAT.replace('"1s"', '"200ms"'))
    pytester.mkdir("a-directory")
    result = pytester.runpytest("--deployment-url=mock", "--observatory-history=a-directory")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        ["*observatory history NOT written: *::test_chat: unable to open database file*"]
    )


def test_latency_regression_against_the_baseline_fails_the_run(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(CHAT)
    limits = "--observatory-max-regression=p95=20%,failure_rate=+0.5pp"
    result, _ = run_session(pytester, "mock", "--observatory-label=fast")
    result.assert_outcomes(passed=1)
    result, report = run_session(
        pytester, "mock?latency=50ms", "--observatory-baseline=last", limits
    )
    result.assert_outcomes(failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    check = report["checks"][0]
    assert check["verdict"] == "failed"
    baseline = check["baseline"]
    assert baseline["found"] and baseline["label"] == "fast" and baseline["ref"] == "last"
    p95 = baseline["deltas"]["p95_ms"]
    # No absolute bound on the baseline: a loaded machine can slow the fast run too.
    assert p95["current"] >= 50 and p95["change"] > 0.2
    assert p95["current"] > 1.2 * p95["baseline"]
    assert baseline["deltas"]["failure_rate"]["delta"] == 0
    assert [reason.split(" -> ")[0] for reason in check["reasons"]] == [
        "regression vs baseline: p95 " + f"{p95['baseline']:.1f}"
    ]
    assert baseline["regressions"] == check["reasons"]
    result.stdout.fnmatch_lines(
        [
            "*regression vs baseline: p95 * -> *ms (+*%) > max +20%",
            "FAILED *::test_chat",
            "* baseline: vs run * 'fast' of *: failure rate 0.00% -> 0.00% (+0.00pp), p50 *",
        ]
    )
    # The slow run failed, so `last` (the last passed run) is still the fast one; a labelled
    # baseline picks the labelled run whatever its verdict, and a generous limit passes.
    result, report = run_session(
        pytester,
        "mock?latency=50ms",
        "--observatory-baseline=fast",
        "--observatory-max-regression=p95=+1s",
    )
    result.assert_outcomes(passed=1)
    assert report["checks"][0]["baseline"]["deltas"]["p95_ms"]["current"] >= 50


def test_baseline_is_matched_on_node_id_and_models(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(CHAT)
    run_session(pytester, "mock", "--models=mock-gpt-4o")[0].assert_outcomes(passed=1)
    result, report = run_session(
        pytester,
        "mock?latency=50ms",
        "--observatory-baseline=last",
        "--observatory-max-regression=p95=20%",
    )
    result.assert_outcomes(passed=1)  # other models: not the same check, nothing to compare
    baseline = report["checks"][0]["baseline"]
    assert baseline == {
        "ref": "last",
        "found": False,
        "summary": "no baseline: no last passed run of this check with the same models",
    }
    result.stdout.fnmatch_lines(["* baseline: no baseline: no last passed run*"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--observatory-baseline=last"], "*--observatory-baseline='last': needs a history*"),
        (
            ["--observatory-history=h.db", "--observatory-max-regression=p95=20%"],
            "*--observatory-max-regression='p95=20%': needs a baseline*",
        ),
        (
            [
                "--observatory-history=h.db",
                "--observatory-baseline=v1",
                "--observatory-max-regression=p97=20%",
            ],
            "*--observatory-max-regression='p97=20%': 'p97=20%': expected METRIC=LIMIT with "
            "METRIC one of failure_rate, p50, p95, p99, ttft_p95",
        ),
        (
            [
                "--observatory-history=h.db",
                "--observatory-baseline=v1",
                "--observatory-max-regression=failure_rate=1%",
            ],
            "*'failure_rate=1%': failure_rate takes percentage points, e.g. failure_rate=+0.5pp",
        ),
        (
            [
                "--observatory-history=h.db",
                "--observatory-baseline=v1",
                "--observatory-max-regression=p95=fast",
            ],
            "*'p95=fast': expected a relative increase such as p95=20% or an absolute one*",
        ),
        (
            ["--observatory-history=notes.txt", "--observatory-baseline=last"],
            "*--observatory-baseline='last': cannot read --observatory-history notes.txt: "
            "notes.txt: not an observatory history database*",
        ),
    ],
)
def test_bad_history_options_are_one_line_errors(
    pytester: pytest.Pytester, argv: list[str], message: str
) -> None:
    pytester.makepyfile(CHAT)
    pytester.path.joinpath("notes.txt").write_text("not a database, just some notes\n" * 50)
    result = pytester.runpytest("--deployment-url=mock", *argv)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])
    assert "Traceback" not in result.stderr.str()


@pytest.mark.parametrize("auth", ["bearer", "basic"])
def test_no_secret_reaches_the_database_or_the_html(
    pytester: pytest.Pytester, gateway: Callable[..., MockGateway], secret_key: str, auth: str
) -> None:
    """An API key, or the URL's password; and a query token: echoed raw by the probe and inside
    the URL, they must not reach the database, the HTML report or the terminal."""
    token, password = "query-token-8c2b4a", "url-pass-5e1f9d"
    if auth == "bearer":
        mock = gateway(api_key=secret_key)
        url, key_option = mock.url, [f"--deployment-api-key={secret_key}"]
        secrets = [secret_key, token]
    else:
        mock = gateway()
        url, key_option = mock.url.replace("http://", f"http://alice:{password}@"), []
        secrets = [password, token]
    url += f"?token={token}"
    pytester.makepyfile(
        textwrap.dedent(
            f"""
            import pytest

            @pytest.mark.observatory(duration="300ms", max_failure_rate=0.5)
            async def test_echo(pytestconfig, model):
                url = pytestconfig.getoption("observatory_deployment_url")
                raise RuntimeError("gateway said: bad {" ".join(secrets)} for " + url)
            """
        )
    )
    db, html = pytester.path / "history.db", pytester.path / "report.html"
    result = pytester.runpytest(
        f"--deployment-url={url}",
        *key_option,
        "--models=mock-gpt-4o",
        f"--observatory-history={db}",
        f"--observatory-html={html}",
    )
    result.assert_outcomes(failed=1)
    (row,) = rows(db)
    assert row["deployment_host"] == mock.url.split("/")[2]  # host:port, nothing else
    stored = b"".join(path.read_bytes() for path in pytester.path.glob("history.db*"))
    assert b"gateway said: bad *** *** for " in stored
    assert "gateway said: bad *** *** for " in html.read_text()
    for secret in secrets:
        assert secret.encode() not in stored
        assert secret not in html.read_text()
        assert secret not in result.stdout.str()


@pytest.mark.parametrize(
    ("limits", "baseline", "current", "exceeded"),
    [
        ("p95=20%", 100.0, 120.0, False),  # at the limit is still fine
        ("p95=20%", 100.0, 120.5, True),
        ("p95=+50ms", 100.0, 150.0, False),
        ("p95=+50ms", 100.0, 150.5, True),
        ("p99=1s", 100.0, 1100.5, True),
        ("ttft_p95=10%", 0.0, 0.1, True),  # any growth from zero is beyond a relative limit
        ("failure_rate=+0.5pp", 0.001, 0.006, False),
        ("failure_rate=+0.5pp", 0.001, 0.0061, True),
    ],
)
def test_regression_limits(limits: str, baseline: float, current: float, exceeded: bool) -> None:
    (limit,) = parse_max_regression(limits)
    assert limit.exceeded(baseline, current) is exceeded


def test_regression_limit_list_is_parsed_strictly() -> None:
    limits = parse_max_regression(" p95=20% , failure_rate=+0.5pp,,p50=+30ms ")
    assert [(limit.name, limit.text) for limit in limits] == [
        ("p95", "+20%"),
        ("failure_rate", "+0.5pp"),
        ("p50", "+30ms"),
    ]
    with pytest.raises(ValueError, match="'p95=30%': p95 is limited twice"):
        parse_max_regression("p95=20%,p95=30%")
    with pytest.raises(ValueError, match="no limits in the list"):
        parse_max_regression(" , ")


def test_an_interrupted_check_is_recorded_with_what_it_measured(
    pytester: pytest.Pytester,
) -> None:
    """SIGTERM in the middle of a 1-hour check: the row and the HTML report are still written."""
    from test_interrupts import ctrl_c  # the suite's one way to signal a running session

    pytester.makepyfile(
        """
        import pathlib
        import pytest

        @pytest.mark.observatory(duration="1h", interval="20ms")
        async def test_long(deployment, model):
            pathlib.Path("started").touch()
            await deployment.chat(model, "hi")
        """
    )
    db, html = pytester.path / "history.db", pytester.path / "report.html"
    returncode, output = ctrl_c(
        pytester,
        1.0,
        f"--observatory-history={db}",
        f"--observatory-html={html}",
        "--observatory-baseline=last",
        signum=signal.SIGTERM,
    )
    assert returncode != pytest.ExitCode.OK, output
    (row,) = rows(db)
    assert row["verdict"] == "interrupted" and row["probes"] > 10, output
    assert json.loads(row["result"])["baseline"] is None  # an interrupted run is not compared
    assert "interrupted</span> test_" in html.read_text()
