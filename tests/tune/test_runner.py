"""Reading back each trial's kept epoch, and resuming an experiment Tune saved before the
farm's modules moved into folders."""

import os
import pickle
import signal
import sys
import time

import pytest
from ray import tune

from farm.infra.errors import FarmError
from farm.tune.ray_internals import JsonResults
from farm.tune.runner import (OLD_MODULE_PATHS, _trial_name, answer_old_module_paths, best_kept,
                              finished)
from farm.tune.schedulers import RANK, GroupedScheduler, select_rank


def test_the_kept_epoch_is_the_best_checkpoint_that_still_exists(tmp_path):
    made = {}
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
        made[name] = tune.Checkpoint(str(tmp_path / name))
    deleted = tune.Checkpoint(str(tmp_path / "deleted"))
    listed = [(made["a"], {"kid": 0.3}), (deleted, {"kid": 0.1}), (made["b"], {"kid": 0.2}),
              (made["c"], {"kid": float("nan")})]
    best, metrics = best_kept(listed, "kid", "min")
    assert best is made["b"] and metrics == {"kid": 0.2}
    assert best_kept(listed, "kid", "max")[0] is made["a"]
    assert best_kept([(deleted, {"kid": 0.1})], "kid", "min") == (None, {})


def test_the_kept_epoch_follows_the_reported_rank_where_a_tie_break_made_one(tmp_path):
    select = {"metric": "useful", "mode": "max", "tie": "kid", "tolerance": 0.01}
    reports = {"first": {"useful": 0.001, "kid": 40.0}, "later": {"useful": 0.000, "kid": 6.0},
               "worse": {"useful": 0.000, "kid": 9.0}}
    listed = []
    for name, metrics in reports.items():
        (tmp_path / name).mkdir()
        listed.append((tune.Checkpoint(str(tmp_path / name)),
                       {**metrics, RANK: select_rank(metrics, select)}))
    best, _ = best_kept(listed, "useful", "max")
    assert best.path == str(tmp_path / "later")  # a tie on usefulness: the lower KID decides
    plain = [(c, {k: v for k, v in m.items() if k != RANK}) for c, m in listed]
    assert best_kept(plain, "useful", "max")[0].path == str(tmp_path / "first")


class _Result:
    def __init__(self, done=None, error=None, epoch=3):
        self.metrics = {} if done is None else {"done": done, "epoch": epoch}
        self.error = error
        self.config = {"trial": {"epochs": 10}}


def test_an_interrupted_run_stops_instead_of_exporting_half_grown_trials():
    done = [_Result(True), _Result(True), _Result(error=RuntimeError("failed")),
            _Result(False, epoch=10)]  # its `done` result lost with a killed driver
    assert finished(done) is done
    interrupted = [_Result(True), _Result(False), _Result(None)]  # running, never started
    with pytest.raises(FarmError, match="interrupted with 2 of 3 trials unfinished.*--resume"):
        finished(interrupted)


def _counting(config):
    for epoch in range(1, config["trial"]["epochs"] + 1):
        time.sleep(0.2)
        tune.report({"epoch": epoch})
        if epoch == 3:  # a long trial under way: Tune's own stop signal, handled like Ctrl-C
            os.kill(config["driver"], signal.SIGUSR1)


@pytest.mark.timeout(120)
def test_a_real_interrupted_tune_run_is_seen_as_one(tmp_path):
    """Ray Tune 2.60 marks every trial TERMINATED after a stop signal, also the one it cut
    short and the one it never started: the farm must still see an interrupted run."""
    import ray

    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    try:
        # one CPU: the short trial ends, the next one stops the run, the last never starts
        trials = [{"epochs": n} for n in (2, 200, 200)]
        grid = tune.Tuner(_counting, param_space={"trial": tune.grid_search(trials),
                                                  "driver": os.getpid()},
                          run_config=tune.RunConfig(storage_path=str(tmp_path), name="cut",
                                                    verbose=0)).fit()
    finally:
        ray.shutdown()
    assert grid.num_terminated == 3  # what the farm used to trust
    with pytest.raises(FarmError, match="interrupted with 2 of 3 trials unfinished"):
        finished(grid)


def test_tune_state_pickled_under_the_old_module_paths_loads_on_resume():
    """A killed run's tuner.pkl names farm.schedulers.GroupedScheduler, its callbacks
    farm.ray_internals.JsonResults, and its trials farm.tuning._trial_name (the paths before
    issue 19's layout); a resume finds them all."""
    old = (pickle.dumps(GroupedScheduler(), protocol=0)
           .replace(b"farm.tune.schedulers\n", b"farm.schedulers\n"))
    name = b"cfarm.tuning\n_trial_name\n."
    callback = b"cfarm.ray_internals\nJsonResults\n."
    assert b"farm.schedulers\n" in old
    try:
        answer_old_module_paths()
        assert isinstance(pickle.loads(old), GroupedScheduler)
        assert pickle.loads(name) is _trial_name
        assert pickle.loads(callback) is JsonResults
    finally:
        for path in OLD_MODULE_PATHS:
            sys.modules.pop(path, None)
