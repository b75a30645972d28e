"""Suite names to files. A stand-in until ``pytest_observatory.catalog`` lands: the whole lookup
stays behind these two functions so the switch touches nothing else."""

from __future__ import annotations

from pathlib import Path

BUNDLED_DIR = Path(__file__).resolve().parents[2] / "suites"
# The original Observatory's names for the two suites it shipped.
ALIASES = {
    "TestOAIAzureRelease": "oai_azure_release",
    "TestMockSingleRequest": "mock_single_request",
}


class SuiteNotFound(LookupError):
    """No bundled or registered suite has this name."""


def _files(extra_dir: Path | None) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder in (BUNDLED_DIR, extra_dir):  # a user's suite of the same name wins
        if folder is not None and folder.is_dir():
            for path in sorted(folder.glob("test_*.py")):
                found[path.stem.removeprefix("test_")] = path
    return found


def suite_names(extra_dir: Path | None = None) -> list[str]:
    files = _files(extra_dir)
    aliases = [alias for alias, name in ALIASES.items() if name in files]
    return aliases + sorted(files)


def suite_path(name: str, extra_dir: Path | None = None) -> Path:
    files = _files(extra_dir)
    path = files.get(ALIASES.get(name, name))
    if path is None:
        raise SuiteNotFound(name)
    return path
