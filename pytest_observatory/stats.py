"""What a check measured, in memory that does not grow with its duration.

Latencies go into a log-bucketed histogram (DDSketch-style: every quantile within 1% relative
error, mergeable across workers), never a list, so a 3-hour run costs what a minute costs. Error
messages are counted with a bound on how many distinct ones are kept.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

RELATIVE_ACCURACY = 0.01
MAX_DISTINCT_ERRORS = 50
OTHER_ERRORS = "(other error messages)"


class LatencyHistogram:
    """Counts per logarithmic bucket; a bucket's representative is within 1% of its members."""

    __slots__ = ("_counts", "_gamma", "_log_gamma", "count", "max")

    MIN_VALUE = 1e-3  # 1 µs in ms; anything faster shares the lowest bucket

    def __init__(self, relative_accuracy: float = RELATIVE_ACCURACY) -> None:
        self._gamma = (1 + relative_accuracy) / (1 - relative_accuracy)
        self._log_gamma = math.log(self._gamma)
        self._counts: Counter[int] = Counter()
        self.count = 0
        self.max = 0.0

    def record(self, value_ms: float) -> None:
        self._counts[math.ceil(math.log(max(value_ms, self.MIN_VALUE)) / self._log_gamma)] += 1
        self.count += 1
        if value_ms > self.max:
            self.max = value_ms

    def merge(self, other: LatencyHistogram) -> None:
        self._counts.update(other._counts)
        self.count += other.count
        self.max = max(self.max, other.max)

    def quantile(self, q: float) -> float | None:
        if self.count == 0:
            return None
        rank = q * (self.count - 1)
        seen = 0
        for index in sorted(self._counts):
            seen += self._counts[index]
            if seen > rank:
                value = 2 * self._gamma**index / (self._gamma + 1)
                return min(value, self.max)
        return self.max


class ErrorCounter:
    """Counts messages; past MAX_DISTINCT_ERRORS new ones are pooled so memory stays bounded."""

    def __init__(self, limit: int = MAX_DISTINCT_ERRORS) -> None:
        self._limit = limit
        self._counts: Counter[str] = Counter()

    def add(self, message: str) -> None:
        if message in self._counts or len(self._counts) < self._limit:
            self._counts[message] += 1
        else:
            self._counts[OTHER_ERRORS] += 1

    def most_common(self) -> list[tuple[str, int]]:
        return self._counts.most_common()


@dataclass(frozen=True)
class Failure:
    t_s: float
    model: str | None
    error: str


class ModelRecorder:
    __slots__ = ("probes", "failures", "latency")

    def __init__(self) -> None:
        self.probes = 0
        self.failures = 0
        self.latency = LatencyHistogram()


class CheckRecorder:
    """Every probe outcome of one check. Latency is taken from successful probes only: a
    timeout's 60 s says nothing about how fast the deployment answers."""

    def __init__(self, redact: Callable[[str], str] = str) -> None:
        self._redact = redact
        self.total = ModelRecorder()
        self.models: dict[str | None, ModelRecorder] = {}
        self.errors = ErrorCounter()
        self.categories: Counter[str] = Counter()
        self.first_failure: Failure | None = None

    def success(self, model: str | None, latency_ms: float) -> None:
        for recorder in self._recorders(model):
            recorder.probes += 1
            recorder.latency.record(latency_ms)

    def failure(self, model: str | None, t_s: float, category: str, message: str) -> None:
        message = self._redact(message)
        for recorder in self._recorders(model):
            recorder.probes += 1
            recorder.failures += 1
        self.errors.add(message)
        self.categories[category] += 1
        if self.first_failure is None:
            self.first_failure = Failure(t_s, model, message)

    def _recorders(self, model: str | None) -> Iterable[ModelRecorder]:
        per_model = self.models.get(model)
        if per_model is None:
            per_model = self.models[model] = ModelRecorder()
        return (self.total, per_model)
