"""What the run cost: prompt and completion tokens per model, from the ``usage`` the
deployment reports in its answers.

Chat Completions and embeddings say ``prompt_tokens``/``completion_tokens``; the Responses and
Anthropic Messages APIs say ``input_tokens``/``output_tokens``: one function reads either.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .result import JSON

UNKNOWN_MODEL = "(no model)"


def token_counts(usage: object) -> tuple[int, int] | None:
    """(prompt, completion) tokens of a usage object, or None if it reports neither."""
    if not isinstance(usage, Mapping):
        return None
    prompt = _count(usage, "prompt_tokens", "input_tokens")
    completion = _count(usage, "completion_tokens", "output_tokens")
    if prompt is None and completion is None:
        return None
    return prompt or 0, completion or 0


def _count(usage: Mapping[str, object], name: str, other_name: str) -> int | None:
    """Runs for every answer: exact type checks (``type(v) is int`` leaves bools out)."""
    value = usage.get(name)
    if type(value) is not int:
        value = usage.get(other_name)
        if type(value) is not int:
            return None
    return value if value >= 0 else None


class TokenTally:
    """Tokens per requested model (the name the check asked for, not the one the gateway
    answered with: that is what a reader looks up in the bill's price list)."""

    def __init__(self) -> None:
        self._models: dict[str, list[int]] = {}

    def add(self, model: str | None, usage: object) -> None:
        counts = token_counts(usage)
        if counts is None:
            return
        tally = self._models.setdefault(model or UNKNOWN_MODEL, [0, 0])
        tally[0] += counts[0]
        tally[1] += counts[1]

    def to_json(self) -> JSON | None:
        if not self._models:
            return None
        models = {
            name: {"prompt": prompt, "completion": completion}
            for name, (prompt, completion) in sorted(self._models.items())
        }
        return _totals(models)


def sum_tokens(parts: Iterable[JSON | None]) -> JSON | None:
    """The checks' ``tokens`` summed, model by model: the session's cost, however many xdist
    workers ran its checks (the controller sums the results they sent)."""
    models: dict[str, JSON] = {}
    for part in parts:
        for name, counts in (part or {}).get("models", {}).items():
            total = models.setdefault(name, {"prompt": 0, "completion": 0})
            total["prompt"] += counts["prompt"]
            total["completion"] += counts["completion"]
    return _totals(dict(sorted(models.items()))) if models else None


def _totals(models: JSON) -> JSON:
    return {
        "prompt": sum(counts["prompt"] for counts in models.values()),
        "completion": sum(counts["completion"] for counts in models.values()),
        "models": models,
    }


def tokens_line(tokens: JSON) -> str:
    """'tokens: 1,200 prompt + 3,400 completion (gpt-a 600+1,700, gpt-b 600+1,700)'."""
    models = tokens["models"]
    line = f"tokens: {tokens['prompt']:,} prompt + {tokens['completion']:,} completion"
    if len(models) > 1 or UNKNOWN_MODEL not in models:
        parts = (f"{name} {c['prompt']:,}+{c['completion']:,}" for name, c in models.items())
        line += " (" + ", ".join(parts) + ")"
    return line
