"""What the terminal shows while the trials grow: progress, not a log.

Tune's own output prints a configuration box for every trial and a status table whose `trial`
column is the nested spec cut short. The farm prints, every `every` seconds, one line (trials
done, running and waiting, the time so far) and a row for each trial that is running or has
finished since the last report; at the end the whole table. A row says what a person asks of a
trial: which family, dataset and class, which setting, how far (epoch of total), the selection
metric now and at its best, the epoch it would keep, and its status.
"""

from __future__ import annotations

import time

from ray.tune import Callback, ProgressReporter

from farm.tune.schedulers import RANK


class BestSoFar(Callback):
    """Every result of every trial, as it arrives: each trial's best (rank, epoch, value) so
    far by `select/rank` (the reporter only sees the last result at each of its reports)."""

    def __init__(self):
        self.best: dict[str, tuple[float, int, float]] = {}

    def on_trial_result(self, iteration, trials, trial, result, **info):
        spec = trial.config["trial"]
        metric = spec["select"]["metric"]
        if RANK not in result or metric not in result:
            return
        known = self.best.get(trial.trial_id)
        if known is None or result[RANK] < known[0]:
            self.best[trial.trial_id] = (float(result[RANK]), int(result.get("epoch", 0)),
                                         float(result[metric]))


def _name(spec: dict) -> str:
    part = f"/{spec['class']}" if spec.get("class") else ""
    return f"{spec['family']} {spec['dataset']}{part} #{spec['index']}"


def row(trial, best: tuple | None) -> list[str]:
    """One trial's cells, in HEADER's order."""
    spec = trial.config["trial"]
    result = trial.last_result or {}
    metric = spec["select"]["metric"]
    now = result.get(metric)
    epoch = result.get("epoch")
    return [_name(spec), str(spec.get("tag", "")),
            f"{epoch if epoch is not None else '-'}/{spec['epochs']}",
            f"{metric} {_num(now)}" + (f" (best {_num(best[2])})" if best else ""),
            str(best[1]) if best else "-", trial.status.lower()]


HEADER = ["trial", "setting", "epoch", "selection metric", "kept", "status"]


def _num(value) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) else "-"


def table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [HEADER, *rows]) for i in range(len(HEADER))]
    return ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
            for r in [HEADER, *rows]]


class FarmReporter(ProgressReporter):
    """Tune's progress reporter for the farm (Tune's new output engine off: RAY_AIR_NEW_OUTPUT=0,
    set by farm.tune.runner before the run)."""

    def __init__(self, best: BestSoFar, every: float = 30.0, say=None):
        # None: `print` as it is when a report is made. Tune pickles the reporter with the
        # tuner's state, and once Ray has swapped the driver's `print` (ray.experimental.
        # tqdm_ray's safe_print) the original builtin no longer pickles.
        self.best, self.every, self._say = best, every, say
        self.started = time.monotonic()
        self.last = -float("inf")
        self.shown_done: set[str] = set()

    def say(self, text: str) -> None:
        (self._say or print)(text)

    def should_report(self, trials, done: bool = False) -> bool:
        return done or time.monotonic() - self.last >= self.every

    def report(self, trials, done: bool, *sys_info) -> None:
        self.last = time.monotonic()
        finished = [t for t in trials if t.status in ("TERMINATED", "ERROR")]
        running = [t for t in trials if t.status == "RUNNING"]
        waiting = len(trials) - len(finished) - len(running)
        minutes, seconds = divmod(int(self.last - self.started), 60)
        self.say(f"[{minutes}:{seconds:02d}] trials: {len(finished)} of {len(trials)} done, "
                 f"{len(running)} running, {waiting} waiting")
        if done:
            shown = trials
        else:
            new = [t for t in finished if t.trial_id not in self.shown_done]
            shown = running + new
        self.shown_done |= {t.trial_id for t in finished if t in shown}
        if shown:
            self.say("\n".join(table([row(t, self.best.best.get(t.trial_id)) for t in shown])))
