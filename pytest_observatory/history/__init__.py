"""Run history in SQLite: every check result appended, compared with a baseline run, listed and
exported by ``python -m pytest_observatory history``.

``compare`` is pure Python (options and the runner import it at start-up); ``sqlite`` and
``writer`` load only when a history is configured.
"""
