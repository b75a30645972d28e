"""Fail fast: stop a check and fail it as soon as its verdict is settled or the evidence is
conclusive, never pass it early.

Two rules, both asked as each probe completes, in O(1):

- **settled**: a window that has closed already breaks ``max_window_failure_rate`` even if every
  probe of it still in flight succeeds (failures over probes *started* in it), or
  ``max_failure_rate=0`` has seen a failure. The full run could not pass any more.
- **conclusive**: Wald's one-sided sequential probability ratio test of the pooled failure rate,
  p0 = ``max_failure_rate`` against p1 = twice it (halfway to 1 when that is closer). It fails
  the check when the likelihood ratio reaches 1/α (α = 1%) and has *no* lower boundary: for a
  true rate at or below p0 the ratio is a supermartingale of mean at most 1, so by Ville's
  inequality it ever reaches 1/α with probability at most α, over any horizon. So a deployment
  that would pass on average (any rate up to the threshold) is failed early in at most 1% of
  runs, however long the check, and one at half the threshold practically never; one that fails
  every probe is failed after 7 probes (2^7 > 1/α; 12 at a threshold of 0.5). Testing against
  p0 = the threshold rather than a lower rate is deliberate: then "conclusive" means "the true
  rate is at or above max_failure_rate", the claim the verdict makes. Without a lower boundary
  the test never accepts: passing needs the full run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

from .durations import format_duration
from .marker import CheckSpec
from .result import JSON
from .thresholds import RateLimit, pooled_limit, window_label, window_limit

ALPHA = 0.01  # at most this share of runs at or below the threshold is failed early
ALTERNATIVE_FACTOR = 2.0  # p1 = twice the threshold (or halfway to 1 when that is closer)


class SequentialRateTest:
    """The one-sided SPRT on running totals: the log likelihood ratio of ``failures`` in
    ``probes`` is a function of the two counts alone, so each check is two multiplications."""

    __slots__ = ("threshold", "alpha", "_per_failure", "_per_success", "_bound")

    def __init__(self, threshold: float, alpha: float = ALPHA) -> None:
        if not (0 < threshold < 1 and 0 < alpha < 1):
            raise ValueError(f"threshold={threshold!r}, alpha={alpha!r}: expected (0, 1)")
        self.threshold = threshold
        self.alpha = alpha
        p0 = threshold
        p1 = min(ALTERNATIVE_FACTOR * threshold, (1 + threshold) / 2)
        self._per_failure = math.log(p1 / p0)
        self._per_success = math.log((1 - p1) / (1 - p0))
        self._bound = math.log(1 / alpha)

    def log_ratio(self, failures: int, probes: int) -> float:
        return failures * self._per_failure + (probes - failures) * self._per_success

    def conclusive(self, failures: int, probes: int) -> bool:
        """True when the evidence says the true rate is at or above the threshold."""
        return self.log_ratio(failures, probes) >= self._bound


@dataclass(frozen=True)
class StopDecision:
    """Why and when a check was stopped early: ``t_s`` after its start, with ``probes``
    completed and ``failures`` among them."""

    reason: str
    t_s: float
    probes: int
    failures: int

    def headline(self) -> str:
        return (
            f"stopped early (fail_fast) at {format_duration(self.t_s)} after {self.probes} "
            f"probes: {self.reason}"
        )

    def to_json(self) -> JSON:
        return {**asdict(self), "t_s": round(self.t_s, 3)}


class _Window:
    __slots__ = ("started", "done", "failures")

    def __init__(self) -> None:
        self.started = 0
        self.done = 0
        self.failures = 0


class FailFast:
    """The fail-fast rule of one check, fed by its recorder. ``clock`` gives the seconds since
    the check's start; ``stop`` asks the engine to stop with a reason. Decides at most once."""

    def __init__(
        self, spec: CheckSpec, clock: Callable[[], float], stop: Callable[[str], None]
    ) -> None:
        self._clock = clock
        self._stop = stop
        self._pooled: RateLimit = pooled_limit(spec)
        self._test = (
            SequentialRateTest(spec.max_failure_rate) if spec.max_failure_rate > 0 else None
        )
        self._window_limit = window_limit(spec)
        self._window_s = spec.window_s
        # Windows with probes still in flight or not closed yet: a handful at any time.
        self._windows: dict[int, _Window] = {}
        self._closed_before = 0  # every window below this index has closed
        self.probes = 0
        self.failures = 0
        self.decision: StopDecision | None = None

    def probe_started(self, t_s: float) -> None:
        if self._window_limit is not None:
            self._window(t_s).started += 1
            self._close_windows()

    def probe_done(self, t_s: float, failed: bool) -> None:
        if self.decision is not None:
            return
        self.probes += 1
        self.failures += failed
        if failed:
            if self._test is None:
                self._decide(self._pooled.describe(self.failures, self.probes))
            elif self._test.conclusive(self.failures, self.probes):
                self._decide(
                    f"sequential test: failure rate at or above {self._pooled.name} "
                    f"{self._pooled.limit:.2%} at {1 - self._test.alpha:.0%} confidence "
                    f"({self.failures} of {self.probes} probes failed)"
                )
        if self._window_limit is None or self.decision is not None:
            return
        index = self._index(t_s)
        window = self._windows.get(index)
        if window is not None:  # a probe that started before the rule was listening is skipped
            window.done += 1
            window.failures += failed
            if index < self._closed_before:
                self._settle(index, window)
        self._close_windows()

    def _window(self, t_s: float) -> _Window:
        index = self._index(t_s)
        window = self._windows.get(index)
        if window is None:
            window = self._windows[index] = _Window()
        return window

    def _index(self, t_s: float) -> int:
        return int(t_s // self._window_s)

    def _close_windows(self) -> None:
        """Judge each window once its time is over (amortised O(1): each closes once)."""
        now = self._index(self._clock())
        if now <= self._closed_before:
            return
        self._closed_before = now
        for index in [i for i in self._windows if i < now]:
            self._settle(index, self._windows[index])

    def _settle(self, index: int, window: _Window) -> None:
        """A closed window breaks its limit for good when its failures are enough even if every
        probe of it still in flight succeeds; one whose probes are all done is final."""
        assert self._window_limit is not None
        if self.decision is None and self._window_limit.exceeded(window.failures, window.started):
            self._decide(
                f"{window_label(index, self._window_s)}: "
                + self._window_limit.describe(window.failures, window.started, "probes started")
            )
        elif window.done >= window.started:
            del self._windows[index]

    def _decide(self, reason: str) -> None:
        self.decision = StopDecision(reason, self._clock(), self.probes, self.failures)
        self._stop(reason)
