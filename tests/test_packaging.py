"""The bundled suites run from a wheel installed in a fresh virtual environment, from an empty
directory outside the repository: what a team gets from `pip install pytest-observatory`.

The wheel's dependencies are installed from the package index (its own metadata, so a missing
dependency fails here too); pip's cache makes that ~15 s. A venv with --system-site-packages
would save nothing: the dependencies live in the project's venv, not in the system's Python.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from filelock import FileLock

REPO = Path(__file__).resolve().parent.parent
SUITE_FILES = sorted(path.name for path in (REPO / "suites").glob("test_*.py"))
# Left out of the copy the wheel is built from: environments, caches and earlier builds (a stale
# build/lib could smuggle a deleted suite into the wheel).
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv*", ".tox", "build", "dist", "*.egg-info", "__pycache__", ".*_cache"
)
INSTALL_TIMEOUT_S = 240


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """The Python of a fresh venv with the wheel installed; built once per session, also under
    xdist (the workers share one build through a lock, as xdist's documentation shows)."""
    if worker_id == "master":
        return _build_and_install(tmp_path_factory.mktemp("wheel-venv"))
    shared = tmp_path_factory.getbasetemp().parent / "wheel-venv"
    with FileLock(str(shared) + ".lock"):
        python = _venv_python(shared)
        if not python.exists():
            _build_and_install(shared)
        return python


def _build_and_install(root: Path) -> Path:
    source, wheels = root / "source", root / "wheels"
    shutil.copytree(REPO, source, ignore=NOT_SOURCE)
    _pip(sys.executable, "wheel", "--no-deps", "-w", str(wheels), str(source))
    # No pip inside the venv (that alone costs ~5 s): the running pip installs into it.
    venv.create(root / "venv", with_pip=False)
    python = _venv_python(root)
    _pip(sys.executable, "--python", str(python), "install", *map(str, wheels.glob("*.whl")))
    return python


def _venv_python(root: Path) -> Path:
    return root / "venv" / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _pip(python: str, *args: str) -> None:
    command = [python, "-m", "pip", "--quiet", "--disable-pip-version-check", *args]
    done = subprocess.run(command, timeout=INSTALL_TIMEOUT_S, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(command)}:\n{done.stderr}"


def _run(python: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run in an empty directory with none of this session's pytest or venv settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTEST_", "OBSERVATORY_", "PYTHON")) and key != "VIRTUAL_ENV"
    }
    env["OBSERVATORY_LOCK_DIR"] = str(cwd / "locks")
    return subprocess.run(
        [str(python), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def _passing_checks(python: Path, cwd: Path, *args: str) -> dict[str, str]:
    """A short pytest run against the embedded mock that must pass: its checks' verdicts."""
    mock = ("--deployment-url=mock", "--observatory-duration=1s", "--observatory-report=r.json")
    result = _run(python, cwd, "-m", "pytest", *args, *mock)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((cwd / "r.json").read_text())
    return {check["nodeid"]: check["verdict"] for check in report["checks"]}


def test_the_suites_are_imported_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    shown = _run(
        installed,
        tmp_path,
        "-c",
        "import sys, pytest_observatory.suites as s; from pytest_observatory import catalog; "
        "print(s.__file__); print(','.join(catalog.suite_names())); print(sys.path)",
    )
    assert shown.returncode == 0, shown.stderr
    location, names, path = shown.stdout.splitlines()
    venv_root = installed.parent.parent
    assert Path(location).is_relative_to(venv_root / "lib"), location
    assert str(REPO) not in path
    # Every file of suites/ is in the wheel, with no list to keep up to date.
    assert [f"test_{name}.py" for name in names.split(",")] == SUITE_FILES


def test_pyargs_runs_every_bundled_suite(installed: Path, tmp_path: Path) -> None:
    checks = _passing_checks(
        installed, tmp_path, "--pyargs", "pytest_observatory.suites", "-m", "observatory"
    )
    assert {nodeid.split("::")[0] for nodeid in checks} == set(SUITE_FILES)
    assert set(checks.values()) == {"passed"}


def test_observatory_suite_runs_suites_by_name(installed: Path, tmp_path: Path) -> None:
    checks = _passing_checks(
        installed,
        tmp_path,
        "--observatory-suite=TestOAIAzureRelease",
        "--observatory-suite=mock_single_request",
    )
    # The node ids of `--pyargs pytest_observatory.suites`, so history and dedup match.
    assert checks == {
        "test_mock_single_request.py::test_mock_single_request": "passed",
        "test_oai_azure_release.py::test_oai_azure_release": "passed",
    }
