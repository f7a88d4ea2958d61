"""How often long work speaks: a few lines that show it moving, not one per step.

A smoke run printed a line per hundred decoded images, per judge epoch and per half classifier
(about a third of its terminal). `milestone` keeps the quarters and the end; `--debug` (each
caller's `verbose`) keeps every line.
"""

from __future__ import annotations


def milestone(done: int, total: int, parts: int = 4, verbose: bool = False) -> bool:
    """Whether step `done` of `total` (counted from 1) should say so: the step that crosses each
    of `parts` equal shares of the work (15 epochs: 4, 8, 12, 15), so the last step always
    does; every step if verbose."""
    if verbose or done >= total:
        return True
    return done >= 1 and done * parts // total > (done - 1) * parts // total
