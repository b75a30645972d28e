"""The repository's root conftest: it marks the rootdir of `pytest suites ...` and `pytest tests`.

It deliberately defines no `pytest_plugins` (pytester comes from `-p pytester` in pyproject's
addopts): this file sits above `suites/`, which an editable install also collects from other
directories (`--observatory-suite`), where pytest refuses `pytest_plugins` in a conftest that is
not at the top of the run.
"""
