"""Every bad input ends in one readable line naming the test or option and the value."""

from __future__ import annotations

import pytest

CHECK = """
import pytest

@pytest.mark.observatory({args})
def test_check(deployment):
    pass
"""


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ("durtion='1s'", "unknown argument durtion='1s'*"),
        ("'1s'", "takes keyword arguments only, got positional ('1s',)"),
        ("", "missing required argument duration*"),
        ("duration='ten minutes'", "duration='ten minutes': expected a duration such as*"),
        ("duration=0", "duration=0: must be > 0"),
        ("duration='1s', max_failure_rate=1.0", "max_failure_rate=1.0: must be in [[]0, 1)"),
        ("duration='1s', max_failure_rate=-0.1", "max_failure_rate=-0.1: must be in [[]0, 1)"),
        ("duration='1s', max_failure_rate='1%'", "max_failure_rate='1%': expected a number*"),
        ("duration='1s', concurrency=0", "concurrency=0: must be between 1 and 4096"),
        ("duration='1s', concurrency=2.5", "concurrency=2.5: expected an integer >= 1"),
        ("duration='1s', interval='soon'", "interval='soon': expected a duration*"),
        ("duration='1s', request_timeout=0", "request_timeout=0: must be > 0"),
        ("duration='1s', models=[]", "models=[[][]]: no model names"),
        ("duration='1s', models=[1, 2]", "models=[[]1, 2]: expected a list of model names*"),
        ("duration='1s', probes=0", "probes=0: must be between 1*"),
        ("duration='1s', rate=0", "rate=0: must be > 0 and <= 100000"),
        ("duration='1s', rate='fast'", "rate='fast': expected probes per second*"),
        ("duration='1s', rate=1, arrival='burst'", "arrival='burst': expected one of constant*"),
        ("duration='1s', arrival='poisson'", "arrival='poisson': needs rate=*"),
        ("duration='1s', ramp='2s'", "ramp='2s': longer than the duration"),
        ("duration='1s', window=0", "window=0: must be > 0"),
        (
            "duration='1s', max_window_failure_rate=1.5",
            "max_window_failure_rate=1.5: must be in [[]0, 1)",
        ),
        ("duration='1s', max_p95_latency='fast'", "max_p95_latency='fast': expected a dur*"),
        ("duration='1s', max_ttft_p95=-1", "max_ttft_p95=-1: expected a duration >= 0*"),
        ("duration='3x'", "duration='3x': expected a duration such as*"),
        ("duration='-1h'", "duration='-1h': expected a duration such as*"),
        ("duration=''", "duration='': expected a duration such as*"),
        ("duration='1e309'", "duration='1e309': expected a duration >= 0*"),
        ("duration='nan'", "duration='nan': expected a duration >= 0*"),
        ("duration='1s', max_failure_rate=float('nan')", "max_failure_rate=nan: must be in*"),
        ("duration='1s', concurrency=10**6", "concurrency=1000000: must be between 1 and 4096"),
        ("duration='1s', rate=float('nan')", "rate=nan: must be > 0 and <= 100000"),
        ("duration=1e300", "duration=1e+300: expected a duration of at most 30 days (30d)*"),
        ("duration='100000000h'", "duration='100000000h': expected a duration of at most 30*"),
        ("duration='1s', request_timeout='31d'", "request_timeout='31d': *at most 30 days*"),
        ("stages=[('1s', 2)], duration='2s'", "duration='2s': stages=[[]('1s', 2)[]] last 1s*"),
        ("stages=[]", "stages=[[][]]: expected a list of (duration, target) pairs"),
        ("stages=[('1s',)]", "stages=*: stage ('1s',) is not (duration, target)*"),
        ("stages=[('soon', 2)]", "stages=*: stage ('soon', 2): expected a duration*"),
        ("stages=[('1s', -1)]", "stages=*: stage ('1s', -1): target must be a number in*"),
        ("stages=[('1s', 0)]", "stages=*: no load (every duration or every target is 0)"),
        ("stages=[('1s', 2, {'p95': 1})]", "stages=*: limits must be a dict of max_failure_*"),
        ("stages=[('1s', 2)], concurrency=4", "concurrency=4: stages= set the load*"),
        ("stages=[('1s', 2)], ramp='1s'", "ramp='1s': stages= set the load*"),
        ("stages=[('1s', 2)], load='users'", "load='users': expected one of concurrency, rate"),
        ("stages=[('1s', 2)], sweep=[1, 2], step='1s'", "sweep=[[]1, 2[]]: stages= and sweep=*"),
        ("stages=[('1s', 2)], step='1s'", "step='1s': goes with sweep=, not stages="),
        (
            "stages=[('1s', 2)], max_recovery_p95_ratio=1",
            "max_recovery_p95_ratio=1: needs two stages or more",
        ),
        (
            "stages=[('1s', 2), ('1s', 2)], max_recovery_p95_ratio=0.5",
            "max_recovery_p95_ratio=0.5: expected a number >= 1",
        ),
        ("sweep=[1, 2]", "sweep=[[]1, 2[]]: needs step= (how long each level is held)"),
        ("sweep=[1], step='1s'", "sweep=[[]1[]]: expected two or more concurrency levels*"),
        ("sweep=[2, 1], step='1s'", "sweep=[[]2, 1[]]: levels must increase"),
        ("sweep=[1, 2.5], step='1s'", "sweep=[[]1, 2.5[]]: concurrency levels are whole numbers"),
        ("sweep=[1, 2], step=0", "step=0: must be > 0"),
        (
            "sweep=[1, 2], step='1s', stop_on_saturation='yes'",
            "stop_on_saturation='yes': expected True or False",
        ),
        ("sweep=[1, 2], step='1s', rate=5", "rate=5: sweep= set the load (load='rate' for rates)"),
        ("duration='1s', step='1s'", "step='1s': needs stages= or sweep="),
        ("duration='1s', load='rate'", "load='rate': needs stages= or sweep="),
    ],
)
def test_marker_errors_name_test_argument_and_value(
    pytester: pytest.Pytester, args: str, expected: str
) -> None:
    pytester.makepyfile(test_bad=CHECK.format(args=args))
    result = pytester.runpytest("--deployment-url=mock")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*test_bad.py::test_check: observatory marker: {expected}"])
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.no_fnmatch_line("*marker.py*")


def test_marker_errors_even_without_a_deployment(pytester: pytest.Pytester) -> None:
    """A typo is caught by the plain `pytest` run of the repo, not three hours into the release."""
    pytester.makepyfile(test_bad=CHECK.format(args="duration='3h', concurency=4"))
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*unknown argument concurency=4*"])


def test_model_without_models_is_a_setup_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.observatory(duration="1s")
        def test_needs_model(deployment, model):
            pass
        """
    )
    result = pytester.runpytest("--deployment-url=http://127.0.0.1:9")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*test_needs_model: the check takes `model` but no models are set: pass --models=a,b*"]
    )


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--observatory-duration=abc"], "ERROR: --observatory-duration='abc': expected a*"),
        (["--observatory-duration=0"], "ERROR: --observatory-duration='0': must be > 0"),
        (["--deployment-url=ftp://gw"], "ERROR: --deployment-url='ftp://gw': expected an http(s)*"),
        (["--deployment-url=gw.example"], "ERROR: --deployment-url='gw.example': expected*"),
        (["--models=,"], "ERROR: --models=',': no model names in the list"),
        (["--embedding-models=,"], "ERROR: --embedding-models=',': no model names in the list"),
        (
            ["--deployment-health-path=health"],
            "ERROR: --deployment-health-path='health': expected a path at the gateway's root*",
        ),
        (
            ["--deployment-health-path=http://gw/health"],
            "ERROR: --deployment-health-path='http://gw/health': expected a path*",
        ),
        (["--models= , ,"], "ERROR: --models=', ,': no model names in the list"),
        (["--deployment-url=localhost:0"], "ERROR: --deployment-url='localhost:0': expected*"),
        (["--deployment-url=gateway"], "ERROR: --deployment-url='gateway': expected an http(s)*"),
        (
            ["--observatory-max-connections=0"],
            "ERROR: --observatory-max-connections='0': expected an integer >= 1",
        ),
        (["--observatory-duration=31d"], "ERROR: --observatory-duration='31d': *at most 30 days*"),
        (
            ["--deployment-url=mock?failure_rate=abc"],
            "ERROR: --deployment-url='mock?failure_rate=abc': *failure_rate*",
        ),
    ],
)
def test_bad_options_are_usage_errors(
    pytester: pytest.Pytester, argv: list[str], expected: str
) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest(*argv)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([expected])
    assert "Traceback" not in result.stderr.str()


def test_bad_environment_value_names_the_variable(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OBSERVATORY_DURATION", "forever")
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: OBSERVATORY_DURATION='forever': expected a duration*"])


def test_url_credentials_never_shown_in_errors(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--deployment-url=ftp://user:hunter2secret@gw")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "hunter2secret" not in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (".", "ERROR: --observatory-report='.': is a directory; give a file path"),
        ("afile/report.json", "ERROR: --observatory-report='afile/report.json': cannot write*"),
        ("/proc/no/report.json", "ERROR: --observatory-report='/proc/no/report.json': cannot*"),
    ],
)
def test_an_unwritable_report_path_stops_the_run_before_any_check(
    pytester: pytest.Pytester, path: str, expected: str
) -> None:
    """Found at start, not after a 3-hour run that then looks green without its report."""
    (pytester.path / "afile").write_text("a file, not a directory")
    pytester.makepyfile(CHECK.format(args="duration='1s'"))
    result = pytester.runpytest("--deployment-url=mock", f"--observatory-report={path}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([expected])
    assert not list(pytester.path.glob("**/*.partial"))


def test_a_report_that_fails_at_the_end_fails_the_run(pytester: pytest.Pytester) -> None:
    """The directory vanishes mid-run and its place is taken by a file: the exit status says
    so, and no half-written file is left behind."""
    pytester.makepyfile(
        """
        import pathlib, shutil
        import pytest

        @pytest.mark.observatory(duration="200ms")
        def test_check(deployment):
            out = pathlib.Path("out")
            if out.is_dir():
                shutil.rmtree(out)
                out.write_text("now a file")
        """
    )
    result = pytester.runpytest("--deployment-url=mock", "--observatory-report=out/r.json")
    result.stdout.fnmatch_lines(["*observatory report NOT written to out/r.json*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1)
    assert not list(pytester.path.glob("**/*.partial"))
