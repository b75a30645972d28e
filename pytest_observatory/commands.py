"""What every ``python -m pytest_observatory`` command shares: one error for a command that
could not run (its message is the whole line shown, exit status 1)."""

from __future__ import annotations


class CommandError(Exception):
    """The command could not run; the message is the whole line shown."""
