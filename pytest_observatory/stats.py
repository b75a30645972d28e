"""What a check measured, in memory that does not grow with its duration.

Latencies go into log-bucketed histograms (DDSketch-style: every quantile within 1% relative
error, mergeable), never lists, so a 3-hour run costs what a minute costs. Error messages are
counted with a bound on how many distinct ones are kept; failures over time in fixed slices.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Callable
from typing import Protocol, TypeVar

from .observe import Exchange, RequestTiming, StreamResult
from .tracing import FailureSamples
from .usage import TokenTally

RELATIVE_ACCURACY = 0.01
MAX_DISTINCT_ERRORS = 50
MAX_SLICES = 600
EXACT_FAILURE_TIMES = 256
MIN_SLICE_S = 0.1
OTHER_ERRORS = "(other error messages)"
NS_PER_MS = 1_000_000
TRANSPORT_TIMED = "transport"  # streams timed at the transport: TTFT only, tokens unknown
Key = TypeVar("Key")


class LatencyHistogram:
    """Counts per logarithmic bucket; a bucket's representative is within 1% of its members."""

    __slots__ = ("_counts", "_gamma", "_log_gamma", "count", "max", "total")

    MIN_VALUE = 1e-3  # 1 µs in ms; anything faster shares the lowest bucket

    def __init__(self, relative_accuracy: float = RELATIVE_ACCURACY) -> None:
        self._gamma = (1 + relative_accuracy) / (1 - relative_accuracy)
        self._log_gamma = math.log(self._gamma)
        self._counts: Counter[int] = Counter()
        self.count = 0
        self.max = 0.0
        self.total = 0.0  # for a mean (Little's law in load/rows.py)

    def record(self, value: float) -> None:
        self._counts[math.ceil(math.log(max(value, self.MIN_VALUE)) / self._log_gamma)] += 1
        self.count += 1
        self.total += value
        if value > self.max:
            self.max = value

    def merge(self, other: LatencyHistogram) -> None:
        self._counts.update(other._counts)
        self.count += other.count
        self.total += other.total
        self.max = max(self.max, other.max)

    def quantile(self, q: float) -> float | None:
        if self.count == 0:
            return None
        rank = q * (self.count - 1)
        seen = 0
        for index in sorted(self._counts):
            seen += self._counts[index]
            if seen > rank:
                return min(2 * self._gamma**index / (self._gamma + 1), self.max)
        return self.max


class ErrorCounter:
    """Counts messages; past MAX_DISTINCT_ERRORS new ones are pooled so memory stays bounded."""

    def __init__(self, limit: int = MAX_DISTINCT_ERRORS) -> None:
        self._limit = limit
        self._counts: Counter[str] = Counter()

    def add(self, message: str) -> tuple[str, bool]:
        """Count it; return the key it was counted under, and True when it is a distinct
        message seen for the first time."""
        if message in self._counts:
            self._counts[message] += 1
            return message, False
        if len(self._counts) < self._limit:
            self._counts[message] = 1
            return message, True
        self._counts[OTHER_ERRORS] += 1
        return OTHER_ERRORS, False

    def most_common(self) -> list[tuple[str, int]]:
        return self._counts.most_common()


class Failure:
    __slots__ = ("t_s", "model", "error")

    def __init__(self, t_s: float, model: str | None, error: str) -> None:
        self.t_s = t_s
        self.model = model
        self.error = error


class FailureTimeline:
    """Probes and failures in fixed time slices (at most MAX_SLICES per run), so failure bursts
    can be told from a steady background rate after the run, in constant memory."""

    def __init__(self, duration_s: float) -> None:
        self.slice_s = max(duration_s / MAX_SLICES, MIN_SLICE_S)
        count = math.ceil(duration_s / self.slice_s) + 1
        self.probes = [0] * count
        self.failures = [0] * count
        self.first_failure_s: list[float | None] = [None] * count

    def add(self, t_s: float, failed: bool) -> None:
        index = min(max(int(t_s / self.slice_s), 0), len(self.probes) - 1)
        self.probes[index] += 1
        if failed:
            self.failures[index] += 1
            first = self.first_failure_s[index]
            if first is None or t_s < first:
                self.first_failure_s[index] = t_s


class FailureTimes:
    """When one model's (or one error message's) failures happened, in bounded memory: the
    first EXACT_FAILURE_TIMES exactly, later ones as counts per slice of the run (the failure
    timeline's slices). Sparse failures, one or two per recurrence, are what this is for: a
    pooled timeline hides them among slices with many probes."""

    __slots__ = ("exact", "coarse", "slice_s", "count")

    def __init__(self, slice_s: float) -> None:
        self.exact: list[float] = []
        self.coarse: Counter[int] = Counter()
        self.slice_s = slice_s
        self.count = 0

    def add(self, t_s: float) -> None:
        self.count += 1
        if len(self.exact) < EXACT_FAILURE_TIMES:
            self.exact.append(t_s)
        else:
            self.coarse[int(t_s / self.slice_s)] += 1

    def events(self) -> list[tuple[float, int]]:
        """(time, failures) in time order: one per exact failure, one per coarse slice."""
        exact = [(t, 1) for t in self.exact]
        coarse = [(index * self.slice_s, n) for index, n in self.coarse.items()]
        return sorted(exact + coarse)


class ProbeStats:
    """Probe counts and probe latency: for the whole check, one model, or one time window."""

    __slots__ = ("probes", "failures", "latency")

    def __init__(self) -> None:
        self.probes = 0
        self.failures = 0
        self.latency = LatencyHistogram()


class HttpStats:
    """Every request the transport saw, whichever probe or helper sent it."""

    def __init__(self) -> None:
        self.requests = 0
        self.statuses: Counter[int] = Counter()
        self.headers_ms = LatencyHistogram()
        self.total_ms = LatencyHistogram()
        self.queue_ms = LatencyHistogram()  # every request of a capped pool, zero waits too
        self.queue_waits = 0
        self.bytes_in = 0

    def add(self, timing: RequestTiming) -> None:
        self.requests += 1
        self.statuses[timing.status] += 1
        self.headers_ms.record(timing.headers_ns / NS_PER_MS)
        self.total_ms.record(timing.total_ns / NS_PER_MS)
        if timing.queue_ns is not None:
            self.queue_ms.record(timing.queue_ns / NS_PER_MS)
            self.queue_waits += timing.queue_ns > 0
        self.bytes_in += timing.bytes_in


class StreamStats:
    def __init__(self) -> None:
        self.streams = 0
        self.ttft_ms = LatencyHistogram()
        self.itl_ms = LatencyHistogram()
        self.tpot_ms = LatencyHistogram()
        self.tokens_per_s = LatencyHistogram()
        self.output_tokens = 0
        self.token_sources: Counter[str] = Counter()

    def add(self, result: StreamResult) -> None:
        self.add_ttft(result.ttft_ms)
        for gap in result.itl_ms:
            self.itl_ms.record(gap)
        if result.tpot_ms is not None:
            self.tpot_ms.record(result.tpot_ms)
        self.tokens_per_s.record(result.tokens_per_s)
        self.output_tokens += result.output_tokens
        self.token_sources[result.tokens_source] += 1

    def add_ttft(self, ttft_ms: float) -> None:
        """A stream timed at the transport has a TTFT (its first bytes) and nothing finer."""
        self.streams += 1
        self.ttft_ms.record(ttft_ms)


class Phase:
    """One stage of a staged check, or one level of a sweep: its probes (placed by start
    time, like windows), latency, TTFT and the load it asked for (``target_from`` to
    ``target_to``), so the report can set achieved load beside the asked-for one."""

    __slots__ = ("start_s", "end_s", "target_from", "target_to", "stats", "ttft_ms", "completed")

    def __init__(self, start_s: float, end_s: float, target_from: float, target_to: float) -> None:
        self.start_s = start_s
        self.end_s = end_s
        self.target_from = target_from
        self.target_to = target_to
        self.stats = ProbeStats()
        self.ttft_ms = LatencyHistogram()
        # Successes by the time they ended: an open loop starts probes at the rate asked for
        # whatever the deployment does; what it completes per second is its throughput.
        self.completed = 0


class ProbeListener(Protocol):
    """Told of every probe as it starts and as it completes, e.g. the fail-fast rule."""

    def probe_started(self, t_s: float) -> None: ...

    def probe_done(self, t_s: float, failed: bool) -> None: ...


class CheckRecorder:
    """Every outcome of one check. Probe latency is taken from successful probes only: a
    timeout's 60 s says nothing about how fast the deployment answers. Probes are placed in
    time by their start (when the request left), relative to the check's start."""

    def __init__(
        self, window_s: float, duration_s: float, redact: Callable[[str], str] = str
    ) -> None:
        self.window_s = window_s
        self._redact = redact
        self.total = ProbeStats()
        self.models: dict[str | None, ProbeStats] = {}
        self.windows: dict[int, ProbeStats] = {}
        self.window_ttft_ms: dict[int, LatencyHistogram] = {}  # streamed probes only
        self.errors = ErrorCounter()
        self.categories: Counter[str] = Counter()
        self.first_failure: Failure | None = None
        self.last_category: str | None = None  # for the live progress line
        self.timeline = FailureTimeline(duration_s)
        # Failure times for the onset analysis: all failures, per model, per counted message.
        self.failure_times = FailureTimes(self.timeline.slice_s)
        self.model_failure_times: dict[str | None, FailureTimes] = {}
        self.error_failure_times: dict[str, FailureTimes] = {}
        self.http = HttpStats()
        self.streams = StreamStats()
        self.samples = FailureSamples(redact)  # tracing.py: a few failures, with request ids
        self.tokens = TokenTally()  # usage.py: what the answers cost
        # Listeners (the journal): a time window closed, a distinct error was first seen.
        self.on_window_closed: Callable[[], None] | None = None
        self.on_new_error: Callable[[float, str | None, str], None] | None = None
        self._open_window = -1
        self._listeners: list[ProbeListener] = []
        self.phases: list[Phase] = []  # stages or sweep levels, in time order
        self._phase_starts: list[float] = []

    def add_phase(self, phase: Phase) -> None:
        self.phases.append(phase)
        self._phase_starts.append(phase.start_s)

    def cut_phases(self, t_s: float) -> None:
        """The schedule ended at ``t_s`` (a sweep past saturation): later phases never ran."""
        while self.phases and self.phases[-1].start_s >= t_s:
            self.phases.pop()
            self._phase_starts.pop()
        if self.phases:
            self.phases[-1].end_s = min(self.phases[-1].end_s, t_s)

    def _phase(self, t_s: float, strict: bool = False) -> Phase | None:
        """The phase ``t_s`` falls in; a probe started at the very end counts in the last
        one, unless ``strict`` (a completion after the end belongs to no phase)."""
        index = bisect.bisect_right(self._phase_starts, t_s) - 1
        if index < 0:
            return None
        phase = self.phases[index]
        last = index == len(self.phases) - 1 and not strict
        return phase if t_s < phase.end_s or last else None

    def listen(self, listener: ProbeListener) -> None:
        self._listeners.append(listener)

    def probe_started(self, t_s: float) -> None:
        for listener in self._listeners:
            listener.probe_started(t_s)

    def success(self, model: str | None, t_s: float, latency_ms: float) -> None:
        for stats in self._stats(model, t_s):
            stats.probes += 1
            stats.latency.record(latency_ms)
        ended = self._phase(t_s + latency_ms / 1000, strict=True) if self.phases else None
        if ended is not None:
            ended.completed += 1
        self.timeline.add(t_s, failed=False)
        for listener in self._listeners:
            listener.probe_done(t_s, False)

    def failure(
        self,
        model: str | None,
        t_s: float,
        category: str,
        message: str,
        lane: int | None = None,
        status: int | None = None,
        exchange: Exchange | None = None,
    ) -> None:
        """``lane``, ``status`` and ``exchange`` (the probe's latest request) go into the
        failure samples only."""
        message = self._redact(message)
        self.samples.offer(t_s, model, lane, category, message, status, exchange)
        for stats in self._stats(model, t_s):
            stats.probes += 1
            stats.failures += 1
        key, new = self.errors.add(message)
        if new and self.on_new_error is not None:
            self.on_new_error(t_s, model, message)
        self.categories[category] += 1
        self.failure_times.add(t_s)
        self._failure_times(self.model_failure_times, model).add(t_s)
        self._failure_times(self.error_failure_times, key).add(t_s)
        self.last_category = category
        if self.first_failure is None or t_s < self.first_failure.t_s:
            self.first_failure = Failure(t_s, model, message)
        self.timeline.add(t_s, failed=True)
        for listener in self._listeners:
            listener.probe_done(t_s, True)

    def request_done(self, timing: RequestTiming) -> None:
        self.http.add(timing)
        if timing.stream_ttft_ns is not None:
            self.streams.add_ttft(timing.stream_ttft_ns / NS_PER_MS)
            self.streams.token_sources[TRANSPORT_TIMED] += 1

    def stream_done(self, result: StreamResult, t_s: float) -> None:
        self.streams.add(result)
        index = int(t_s // self.window_s)
        ttft = self.window_ttft_ms.get(index)
        if ttft is None:
            ttft = self.window_ttft_ms[index] = LatencyHistogram()
        ttft.record(result.ttft_ms)
        phase = self._phase(t_s)
        if phase is not None:
            phase.ttft_ms.record(result.ttft_ms)

    def _failure_times(self, table: dict[Key, FailureTimes], key: Key) -> FailureTimes:
        times = table.get(key)
        if times is None:
            times = table[key] = FailureTimes(self.timeline.slice_s)
        return times

    def _stats(self, model: str | None, t_s: float) -> tuple[ProbeStats, ...]:
        per_model = self.models.get(model)
        if per_model is None:
            per_model = self.models[model] = ProbeStats()
        index = int(t_s // self.window_s)
        window = self.windows.get(index)
        if window is None:
            if index > self._open_window:
                if self._open_window >= 0 and self.on_window_closed is not None:
                    self.on_window_closed()
                self._open_window = index
            window = self.windows[index] = ProbeStats()
        phase = self._phase(t_s)
        if phase is None:
            return (self.total, per_model, window)
        return (self.total, per_model, window, phase.stats)
