"""Bundled suites by name: the catalog's names and aliases, and `--observatory-suite` collecting
them from a directory that holds no suite (pytester's), beside or instead of the given paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_observatory.catalog import SuiteNotFound, bundled_suites, find_suites, suite_path

SUITES = Path(__file__).resolve().parent.parent / "suites"
SUITE_FILES = sorted(path.name for path in SUITES.glob("test_*.py"))
RUN = ("--deployment-url=mock", "--observatory-duration=1s", "--observatory-report=report.json")


def _checks(pytester: pytest.Pytester) -> dict[str, str]:
    report = json.loads((pytester.path / "report.json").read_text())
    return {check["nodeid"]: check["verdict"] for check in report["checks"]}


def _files_passed(pytester: pytest.Pytester, result: pytest.RunResult) -> set[str]:
    """The files whose checks ran, after a run where all passed (a suite may hold several)."""
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert set(_checks(pytester).values()) == {"passed"}
    return {nodeid.split("::")[0] for nodeid in _checks(pytester)}


def test_every_suite_file_is_in_the_catalog() -> None:
    assert [suite.path.name for suite in bundled_suites()] == SUITE_FILES
    assert all(suite.path.parent.samefile(SUITES) for suite in bundled_suites())
    assert all(suite.summary for suite in bundled_suites()), "a suite without a docstring"


@pytest.mark.parametrize(
    "name",
    [
        "oai_azure_release",
        "TestOAIAzureRelease",
        "testoaiazurerelease",
        "oai-azure-release",
        "test_oai_azure_release.py",
    ],
)
def test_a_suite_is_found_by_name_alias_or_file(name: str) -> None:
    assert suite_path(name) == SUITES.resolve() / "test_oai_azure_release.py"


def test_aliases_keep_the_original_observatorys_spelling() -> None:
    aliases = {suite.name: suite.alias for suite in bundled_suites()}
    assert aliases["oai_azure_release"] == "TestOAIAzureRelease"
    assert aliases["mock_single_request"] == "TestMockSingleRequest"


def test_all_and_repeats_give_each_suite_once_in_order() -> None:
    chosen = find_suites(["TestOAIAzureRelease", "oai_azure_release", "all"])
    assert chosen[0].name == "oai_azure_release"
    assert sorted(suite.path.name for suite in chosen) == SUITE_FILES


def test_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(SuiteNotFound, match=r"unknown suite 'chat'; known: .*"):
        suite_path("chat")
    with pytest.raises(SuiteNotFound, match=r"mock_single_request \(TestMockSingleRequest\)"):
        suite_path("all")  # one file only: `all` is for the option


def test_the_option_runs_only_the_named_suite(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--observatory-suite=TestMockSingleRequest", *RUN)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["observatory: *suites=mock_single_request*"])
    # The node id `--pyargs pytest_observatory.suites` gives: the same check either way.
    assert _checks(pytester) == {"test_mock_single_request.py::test_mock_single_request": "passed"}


def test_named_suites_run_beside_the_given_paths(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_own="def test_own():\n    pass\n")
    result = pytester.runpytest(
        "test_own.py",
        "--observatory-suite",
        "mock_single_request",
        "--observatory-suite",
        "oai_azure_release",
        *RUN,
    )
    result.assert_outcomes(passed=3)


def test_ini_and_env_twins_take_a_comma_list_and_all(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini("[pytest]\nobservatory_suite = all\n")
    pytester.makepyfile(test_not_collected="def test_here():\n    pass\n")
    result = pytester.runpytest(*RUN)
    # The suites in place of the current directory: test_here is not collected.
    assert _files_passed(pytester, result) == set(SUITE_FILES)
    assert "test_not_collected.py" not in result.stdout.str()
    monkeypatch.setenv("OBSERVATORY_SUITE", "mock_single_request, TestOAIAzureRelease")
    result = pytester.runpytest(*RUN)
    assert _files_passed(pytester, result) == {
        "test_mock_single_request.py",
        "test_oai_azure_release.py",
    }


@pytest.mark.parametrize(
    ("args", "env", "line"),
    [
        (
            ["--observatory-suite=chat"],
            {},
            "ERROR: --observatory-suite='chat': unknown suite 'chat'; known: "
            "chat_streaming (TestChatStreaming), *, 'all' or 'list'",
        ),
        (
            [],
            {"OBSERVATORY_SUITE": "chat_release"},
            "ERROR: OBSERVATORY_SUITE='chat_release': unknown suite 'chat_release'; known: *",
        ),
        (
            ["--observatory-suite=,"],
            {},
            "ERROR: --observatory-suite=',': no suite names in the list",
        ),
    ],
)
def test_a_bad_name_is_a_one_line_usage_error(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    env: dict[str, str],
    line: str,
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = pytester.runpytest(*args, "--deployment-url=mock")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([line])
    assert "Traceback" not in result.stderr.str()


def test_list_prints_the_catalog_and_runs_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_here="def test_here():\n    assert False\n")
    result = pytester.runpytest("--observatory-suite=list")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "mock_single_request  TestMockSingleRequest  One chat completion must succeed*",
            "oai_azure_release  * TestOAIAzureRelease  * The release check *",
            f"(files in {SUITES.resolve()})",
        ]
    )


def test_xdist_workers_collect_the_same_suites(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("-n", "2", "--observatory-suite=all", *RUN)
    assert _files_passed(pytester, result) == set(SUITE_FILES)
