"""Where a run's minutes go: the wall time of each phase, in the order the phases ran.

The driver wraps each step of a run (prepare, trials, export, evaluator, report) in `phase`, and
the summary, the report and the run's last lines show the result. Work a phase hands to
something slower than it expects (a judge inside prepare) is recorded as its own entry by
whoever knows it (`add`).
"""

from __future__ import annotations

import time
from contextlib import contextmanager


class PhaseClock:
    """Seconds per named phase; a phase entered twice (a resumed step) adds up."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - started)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = round(self.seconds.get(name, 0.0) + seconds, 1)

    def carve(self, whole: str, part: str, seconds: float) -> None:
        """Move `seconds` of phase `whole` into its own entry `part`, placed right after it (the
        judge is trained inside prepare)."""
        if seconds <= 0 or whole not in self.seconds:
            return
        seconds = min(seconds, self.seconds[whole])
        ordered = {}
        for name, value in self.seconds.items():
            ordered[name] = round(value - seconds, 1) if name == whole else value
            if name == whole:
                ordered[part] = round(ordered.get(part, 0.0) + seconds, 1)
        self.seconds = ordered

    def as_dict(self) -> dict[str, float]:
        return dict(self.seconds)


def format_phases(seconds: dict[str, float] | None) -> str:
    """One line: each phase's seconds and share of the whole, e.g.
    `prepare 12 s (4%) · trials 250 s (80%) · ...`."""
    if not seconds:
        return ""
    total = sum(seconds.values()) or 1.0
    return " · ".join(f"{name} {value:.0f} s ({value / total:.0%})"
                      for name, value in seconds.items())
