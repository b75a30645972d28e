"""Option precedence (CLI > env > ini), skipping without a deployment, the header."""

from __future__ import annotations

import pytest

SHOW_SETTINGS = """
import pytest
from pytest_observatory.plugin import SETTINGS_KEY

def test_show(pytestconfig):
    settings = pytestconfig.stash[SETTINGS_KEY]
    print("MODELS=" + ",".join(settings.models))
    print("OVERRIDE=" + str(settings.duration_override_s))
"""


def test_checks_are_skipped_without_a_deployment_url(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.observatory(duration="3h")
        def test_release(deployment):
            raise AssertionError("must never run")
        """
    )
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED*no --deployment-url*"])


@pytest.mark.parametrize(
    ("cli", "env", "ini", "expected"),
    [
        (["--models=cli-a,cli-b"], "env-a", "ini-a", "cli-a,cli-b"),
        ([], "env-a, env-b", "ini-a", "env-a,env-b"),
        ([], None, "ini-a,ini-b", "ini-a,ini-b"),
    ],
)
def test_precedence_cli_env_ini(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    cli: list[str],
    env: str | None,
    ini: str,
    expected: str,
) -> None:
    if env is None:
        monkeypatch.delenv("OBSERVATORY_MODELS", raising=False)
    else:
        monkeypatch.setenv("OBSERVATORY_MODELS", env)
    pytester.makeini(f"[pytest]\nobservatory_models = {ini}\nobservatory_duration = 5m\n")
    pytester.makepyfile(SHOW_SETTINGS)
    result = pytester.runpytest("-s", *cli)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"*MODELS={expected}", "OVERRIDE=300.0"])


def test_mock_deployment_defaults_to_the_mock_models(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SHOW_SETTINGS)
    result = pytester.runpytest("-s", "--deployment-url=mock")
    result.stdout.fnmatch_lines(["*MODELS=mock-gpt-4o,mock-gpt-4o-mini"])


def test_header_shows_settings_without_secrets(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest(
        "--deployment-url=https://user:pw-SECRET@gw.example/v1?key=q-SECRET",
        "--models=a,b",
        "--observatory-duration=20s",
    )
    result.stdout.fnmatch_lines(
        [
            "observatory: deployment=https://***@gw.example/v1?key=***, models=a,b, "
            "duration override=20s, check timeout=duration+request_timeout+30s (or its marker)"
        ]
    )
    assert "SECRET" not in result.stdout.str()


def test_marker_is_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.observatory(*, duration, max_failure_rate=0.01*"])
