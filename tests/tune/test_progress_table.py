"""The terminal's progress table: one line of counts, then a row per trial running or just
finished, the whole table at the end; the best value and its epoch from every result."""

from __future__ import annotations

from types import SimpleNamespace

from farm.tune.progress_table import BestSoFar, FarmReporter
from farm.tune.schedulers import RANK


def _trial(trial_id, index, status, cls=None, result=None):
    spec = {"family": "fruit-pairs" if cls else "tabular-a", "dataset": "fids30" if cls else
            "diabetes", "class": cls, "index": index, "tag": "variant=stable", "epochs": 40,
            "select": {"metric": "useful", "mode": "max"}}
    return SimpleNamespace(trial_id=trial_id, status=status, config={"trial": spec},
                           last_result=result)


def test_rows_name_the_trial_and_show_now_best_and_kept_epoch():
    lines = []
    best = BestSoFar()
    apples = _trial("a", 0, "RUNNING", "apples")
    for epoch, useful in ((10, 0.2), (20, 0.5), (30, 0.3)):
        result = {"epoch": epoch, "useful": useful, RANK: -useful}
        best.on_trial_result(0, [], apples, result)
        apples.last_result = result
    waiting = _trial("b", 1, "PENDING")
    reporter = FarmReporter(best, every=30.0, say=lines.append)
    assert reporter.should_report([apples, waiting])
    reporter.report([apples, waiting], False)
    assert lines[0].endswith("trials: 0 of 2 done, 1 running, 1 waiting")
    header, row = lines[1].splitlines()
    assert header.split() == ["trial", "setting", "epoch", "selection", "metric", "kept",
                              "status"]
    assert row.split() == ["fruit-pairs", "fids30/apples", "#0", "variant=stable", "30/40",
                           "useful", "0.3", "(best", "0.5)", "20", "running"]
    assert not reporter.should_report([apples, waiting])  # not again within `every` seconds
    assert reporter.should_report([apples, waiting], done=True)


def test_a_finished_trial_is_shown_once_then_everything_at_the_end():
    lines = []
    reporter = FarmReporter(BestSoFar(), every=0.0, say=lines.append)
    done = _trial("a", 0, "TERMINATED", result={"epoch": 40, "useful": 0.1})
    waiting = _trial("b", 1, "PENDING")
    reporter.report([done, waiting], False)
    reporter.report([done, waiting], False)
    assert sum("#0" in line for line in lines) == 1
    assert lines[-1].endswith("1 of 2 done, 0 running, 1 waiting")
    reporter.report([done, waiting], True)
    table = lines[-1].splitlines()
    assert len(table) == 3 and "#0" in table[1] and "#1" in table[2] and "pending" in table[2]


def test_the_reporter_pickles_with_the_tuner_state_whatever_print_is_now(monkeypatch):
    """Tune pickles the reporter into tuner.pkl; Ray swaps the driver's print for its own."""
    import builtins

    import ray.cloudpickle

    reporter = FarmReporter(BestSoFar())
    monkeypatch.setattr(builtins, "print", lambda *a, **k: None)
    assert isinstance(ray.cloudpickle.loads(ray.cloudpickle.dumps(reporter)), FarmReporter)
