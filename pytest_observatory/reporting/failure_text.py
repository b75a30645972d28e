"""The failure text pytest shows for a failed check: why, the top errors, onset, first failure,
per model. A reporter like the others: it reads a CheckResult and nothing else."""

from __future__ import annotations

from typing import Any

from ..durations import format_duration
from ..result import JSON, CheckResult

TOP_ERRORS = 5
SHOWN_MESSAGE = 80  # characters of an error message in its onset line
SHOWN_SAMPLES = 3  # failure samples in the failure text


def explain(result: CheckResult) -> str:
    """The failure text pytest shows: why, the top errors, onset, first failure, per model."""
    # An interrupted check may have broken no threshold: its last note says what stopped it.
    why = result.reasons or result.notes[-1:]
    lines = [f"observatory check {result.verdict}: " + "; ".join(why)]
    lines.append(
        f"  {result.probes} probes in {format_duration(result.duration_s)}, "
        f"{result.failures} failed ({result.failure_rate:.2%})"
    )
    if result.errors:
        lines.append("  top errors:")
        for message, count in list(result.errors.items())[:TOP_ERRORS]:
            lines.append(f"    {count:>6} x {message}")
    if result.onset:
        lines.extend("  " + line for line in onset_lines(result.onset))
    first: dict[str, Any] | None = result.first_failure
    if first:
        on_model = f" on {first['model']}" if first["model"] else ""
        lines.append(
            f"  first failure: {format_duration(first['t_s'])} after start{on_model}: "
            f"{first['error']}"
        )
    for name, model in result.models.items():
        lines.append(
            f"  {name}: {model['probes']} probes, {model['failures']} failed "
            f"({model['failure_rate']:.2%})"
        )
    if result.failure_samples:
        lines.append("  failure samples (all in the report's failure_samples):")
        lines.extend("    " + sample_line(s) for s in result.failure_samples[:SHOWN_SAMPLES])
    lines.extend(f"  note: {note}" for note in result.notes)
    return "\n".join(lines)


def sample_line(sample: JSON) -> str:
    """'1.2s gpt-a lane 3 http_5xx 500 X-Request-ID 6f1c… gateway id 9a7e…: message'."""
    parts = [format_duration(sample["t_s"])]
    if sample["model"]:
        parts.append(sample["model"])
    if sample["lane"] is not None:
        parts.append(f"lane {sample['lane']}")
    parts.append(sample["category"])
    if sample["status"] is not None:
        parts.append(str(sample["status"]))
    if sample["request_id"]:
        parts.append(f"X-Request-ID {sample['request_id']}")
    if sample["gateway_request_id"]:
        parts.append(f"gateway id {sample['gateway_request_id']}")
    message = sample["message"]
    if len(message) > SHOWN_MESSAGE:
        message = message[: SHOWN_MESSAGE - 1] + "…"
    return " ".join(parts) + f": {message}"


def onset_lines(onset: JSON) -> list[str]:
    """The pooled onset, then one line per model and per top error message when there are
    several: a TTL bug often hits one model only, one or two failures at a time."""
    lines = [f"onset: {onset['summary']}"]
    for key in ("models", "errors"):
        patterns: JSON = onset.get(key) or {}
        if len(patterns) > 1:
            for name, pattern in patterns.items():
                label = name if len(name) <= SHOWN_MESSAGE else name[: SHOWN_MESSAGE - 1] + "…"
                lines.append(f"  {label}: {pattern['summary']}")
    return lines
