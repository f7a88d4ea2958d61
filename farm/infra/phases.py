"""Where a run's minutes go: the wall time of each phase, in the order the phases ran.

The driver wraps each step of a run (prepare, trials, export, evaluator, report) in `phase`, and
the summary, the report and the run's last lines show the result, with how busy the trials'
cores and the evaluator's classifiers kept their phases (`phase_use`). Work a phase hands to
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


def phase_use(seconds: dict[str, float], trial_work: list[tuple[float, float]],
              cores: float, classifier_seconds: float) -> dict[str, dict]:
    """How much of a phase was the work itself, where the farm can tell; the rest is start-up,
    scheduling, hand-over and idle cores.
      * trials: the trials' core-seconds (each trial's Tune time x its CPUs, `trial_work`)
        against the phase's wall time x the cluster's `cores`;
      * evaluator: the classifiers' own seconds against the phase (the rest is Ray Train's
        start-up, the data's hand-over, the pools' pictures)."""
    use = {}
    if seconds.get("trials") and cores and trial_work:
        work = sum(spent * cpus for spent, cpus in trial_work)
        use["trials"] = {"work_seconds": round(work, 1), "cores": cores,
                         "busy": round(min(1.0, work / (seconds["trials"] * cores)), 3)}
    if seconds.get("evaluator") and classifier_seconds:
        use["evaluator"] = {"work_seconds": round(classifier_seconds, 1),
                            "busy": round(min(1.0, classifier_seconds / seconds["evaluator"]), 3)}
    return use


def format_phases(seconds: dict[str, float] | None, use: dict[str, dict] | None = None) -> str:
    """One line: each phase's seconds and share of the whole, and how busy it was where known
    (`phase_use`), e.g. `prepare 12 s (4%) · trials 250 s (80%, cores 91% busy) · ...`."""
    if not seconds:
        return ""
    total = sum(seconds.values()) or 1.0
    use = use or {}
    busy = {"trials": "cores {:.0%} busy", "evaluator": "classifiers {:.0%} of it"}

    def shown(name: str, value: float) -> str:
        detail = f", {busy[name].format(use[name]['busy'])}" if name in use else ""
        return f"{name} {value:.0f} s ({value / total:.0%}{detail})"

    return " · ".join(shown(name, value) for name, value in seconds.items())
