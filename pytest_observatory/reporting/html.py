"""``--observatory-html PATH``: one self-contained HTML file, per check its figures and plots over
time from the windows (failure rate, p50/p95 latency, TTFT when streamed; failure bursts marked).

Inline CSS and inline SVG (``svg.py``), no script and no external reference: it opens offline,
from a CI artifact or an e-mail. Every text that came from a test or a gateway (node ids, error
messages, labels) is HTML-escaped; secrets are scrubbed before anything is kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from pathlib import Path
from typing import Any

from ..durations import format_duration
from ..options import Settings
from ..redact import scrub_data
from ..result import JSON, CheckResult, utc_iso
from ..usage import tokens_line
from .json_report import JsonReport
from .svg import Series, line_chart

COLOURS = {
    "failure rate": "#d62728",
    "p50": "#1f77b4",
    "p95": "#ff7f0e",
    "TTFT p50": "#2ca02c",
    "TTFT p95": "#9467bd",
}
TOP_ERRORS = 10

CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 32px; word-break: break-all; }
table { border-collapse: collapse; margin: 8px 0; }
td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
td.text, th.text { text-align: left; word-break: break-all; }
.passed { color: #1a7f37; } .failed, .crashed { color: #cf222e; }
.interrupted, .skipped { color: #9a6700; }
.verdict { font-weight: bold; text-transform: uppercase; }
.chart .title { font-size: 13px; font-weight: bold; }
.chart .tick, .chart .legend { font-size: 11px; }
.chart .grid { stroke: #eee; shape-rendering: crispEdges; }
.chart .frame { fill: none; stroke: #999; shape-rendering: crispEdges; }
.muted { color: #666; }
"""


class HtmlReport(JsonReport):
    kind = "observatory HTML report"

    def __init__(
        self, path: Path, deployment_url: str | None, secrets: Sequence[str | None]
    ) -> None:
        super().__init__(path, deployment_url)
        self._secrets = secrets

    def pytest_observatory_check_finished(self, result: CheckResult) -> None:
        self._checks.append(scrub_data(result.to_dict(), self._secrets))

    def render(self) -> str:
        return render_html(self._checks, self._deployment_url)


def html_report(settings: Settings) -> HtmlReport:
    assert settings.html_path is not None
    return HtmlReport(settings.html_path, settings.display_url, settings.secrets)


def render_html(checks: Sequence[JSON], deployment_url: str | None) -> str:
    body = [
        "<h1>pytest-observatory report</h1>",
        f'<p class="muted">deployment: {_e(deployment_url or "(none)")} &middot; '
        f"written {_e(utc_iso())}</p>",
        _overview(checks),
    ]
    body.extend(_check_section(index, check) for index, check in enumerate(checks))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>pytest-observatory report</title>"
        f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _overview(checks: Sequence[JSON]) -> str:
    rows = [
        [
            _verdict(check["verdict"]),
            _e(format_duration(check["duration_s"])),
            str(check["probes"]),
            f"{check['failure_rate']:.2%}",
            _ms((check["latency_ms"] or {}).get("p50")),
            _ms((check["latency_ms"] or {}).get("p95")),
            f'<a href="#check-{index}">{_e(check["nodeid"])}</a>',
        ]
        for index, check in enumerate(checks)
    ]
    return _table(["verdict", "duration", "probes", "fail rate", "p50 ms", "p95 ms", "check"], rows)


def _check_section(index: int, check: JSON) -> str:
    latency = check["latency_ms"] or {}
    ttft = check.get("ttft_ms") or {}
    limit = check.get("max_failure_rate")
    parts = [
        f'<section id="check-{index}"><h2>{_verdict(check["verdict"])} {_e(check["nodeid"])}</h2>',
        f'<p class="muted">{_e(check.get("started_at") or "")} &rarr; '
        f"{_e(check.get('ended_at') or '')} &middot; {_e(format_duration(check['duration_s']))}"
        f" &middot; {check['probes']} probes, {check['failures']} failed "
        f"({check['failure_rate']:.2%}"
        + (f", threshold {limit:.2%}" if limit is not None else "")
        + ")</p>",
        _table(
            ["", "p50", "p90", "p95", "p99", "max"],
            [
                [name, *(_ms(dist.get(q)) for q in ("p50", "p90", "p95", "p99", "max"))]
                for name, dist in (("latency ms", latency), ("TTFT ms", ttft))
                if dist
            ],
            text_last=False,
        ),
    ]
    parts.extend(f'<p class="failed">{_e(reason)}</p>' for reason in check.get("reasons", []))
    if check.get("onset"):
        parts.append(f"<p>onset: {_e(check['onset']['summary'])}</p>")
    if check.get("baseline"):
        parts.append(_baseline(check["baseline"]))
    parts.extend(f"<p>note: {_e(note)}</p>" for note in check.get("notes", []))
    parts.extend(_charts(check))
    if check["models"]:
        parts.append(
            _table(
                ["model", "probes", "failures", "fail rate", "p50 ms", "p95 ms"],
                [
                    [
                        _e(name),
                        str(model["probes"]),
                        str(model["failures"]),
                        f"{model['failure_rate']:.2%}",
                        _ms(model["latency_ms"].get("p50")),
                        _ms(model["latency_ms"].get("p95")),
                    ]
                    for name, model in check["models"].items()
                ],
            )
        )
    errors = list(check.get("errors", {}).items())[:TOP_ERRORS]
    if errors:
        parts.append(_table(["count", "error"], [[str(n), _e(text)] for text, n in errors]))
    first = check.get("first_failure")
    if first:
        parts.append(
            f"<p>first failure: {_e(format_duration(first['t_s']))} after start"
            f"{' on ' + _e(first['model']) if first.get('model') else ''}: {_e(first['error'])}</p>"
        )
    if check.get("failure_samples"):
        parts.append(_samples_table(check["failure_samples"]))
    if check.get("tokens"):
        parts.append(f"<p>{_e(tokens_line(check['tokens']))}</p>")
    parts.append("</section>")
    return "\n".join(parts)


def _samples_table(samples: Sequence[JSON]) -> str:
    """Every kept failure with the ids to look it up in the gateway's logs (tracing.py)."""
    columns = ("model", "lane", "category", "status", "request_id", "gateway_request_id")
    return _table(
        ["after", "model", "lane", "category", "status", "X-Request-ID", "gateway id", "message"],
        [
            [
                _e(format_duration(sample["t_s"])),
                *(_e("" if sample[key] is None else str(sample[key])) for key in columns),
                _e(sample["message"]),
            ]
            for sample in samples
        ],
    )


def _charts(check: JSON) -> list[str]:
    windows: list[JSON] = check.get("windows") or []
    if not windows:
        return ['<p class="muted">no time windows: nothing to plot</p>']
    end = max(check["duration_s"], windows[-1]["end_s"])
    onset = check.get("onset") or {}
    bursts = onset.get("burst_starts_s") or []

    def series(name: str, key: str, scale: float = 1.0) -> Series:
        points = [
            ((w["start_s"] + w["end_s"]) / 2, None if w.get(key) is None else w[key] * scale)
            for w in windows
        ]
        return Series(name, COLOURS[name], points)

    charts = [
        line_chart(
            "failure rate per window",
            "%",
            [series("failure rate", "failure_rate", 100)],
            end,
            bursts,
        ),
        line_chart(
            "probe latency per window",
            "ms",
            [series("p50", "p50_ms"), series("p95", "p95_ms")],
            end,
            bursts,
        ),
    ]
    if any(w.get("ttft_p95_ms") is not None for w in windows):
        charts.append(
            line_chart(
                "time to first token per window",
                "ms",
                [series("TTFT p50", "ttft_p50_ms"), series("TTFT p95", "ttft_p95_ms")],
                end,
                bursts,
            )
        )
    return [f'<div class="plot">{chart}</div>' for chart in charts]


def _baseline(baseline: JSON) -> str:
    text = f"<p>baseline ({_e(baseline['ref'])}): {_e(baseline['summary'])}</p>"
    deltas: dict[str, Any] = baseline.get("deltas") or {}
    if not deltas:
        return text
    rows = [
        [
            _e(name),
            _num(delta["baseline"]),
            _num(delta["current"]),
            _num(delta["delta"]),
            "-" if delta["change"] is None else f"{delta['change']:+.1%}",
        ]
        for name, delta in deltas.items()
    ]
    return text + _table(["figure", "baseline", "now", "delta", "change"], rows, text_last=False)


def _table(headers: Iterable[str], rows: Iterable[Sequence[str]], text_last: bool = True) -> str:
    """Cells are already-safe HTML; the last column is text (left-aligned) unless told not."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="text">{cell}</td>'
            if text_last and i == len(row) - 1
            else f"<td>{cell}</td>"
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _verdict(verdict: str) -> str:
    return f'<span class="verdict {_e(verdict)}">{_e(verdict)}</span>'


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _e(text: str) -> str:
    return escape(str(text), quote=True)
