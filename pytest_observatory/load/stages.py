"""``stages=[(duration, target), ...]``: k6's stages, closed loop (lanes) or open (rate).
Each stage is one phase of the recorder, so the report has a row per stage."""

from __future__ import annotations

from ..result import JSON
from ..stats import Phase
from .profile import Profile
from .protocol import Driver, LoadShape


class Stages:
    def __init__(self, profile: Profile, driver: LoadShape) -> None:
        self.profile = profile
        self.driver = driver

    def phases(self) -> list[Phase]:
        return [Phase(*segment) for segment in self.profile.segments()]

    def start(self, run: Driver) -> None:
        self.driver.start(run)

    def summary(self, elapsed_s: float) -> JSON:
        return {**self.driver.summary(elapsed_s), "shape": "stages"}

    def notes(self, elapsed_s: float) -> list[str]:
        return self.driver.notes(elapsed_s)
