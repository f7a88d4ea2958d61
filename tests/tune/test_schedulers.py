"""ASHA and PBT per group of comparable trials, and the smoothed metric they read."""

from __future__ import annotations

from types import SimpleNamespace

from ray.tune.schedulers import TrialScheduler

from farm.tune.schedulers import (SMOOTHED, FarmPBT, GroupedScheduler, _GroupView, _pbt,
                                  forget_what_is_gone, smoothed)


class FakeTrial(SimpleNamespace):
    """Hashable by identity, as Tune's trials are (schedulers keep them in sets and dicts)."""
    __hash__, __eq__ = object.__hash__, object.__eq__


def _trial(trial_id, dataset, cls=None, family="fruit-pairs", mode="min", scheduler=None):
    settings = {"grace_period": 10, "reduction_factor": 2} if scheduler is None else scheduler
    return FakeTrial(trial_id=trial_id, latest_checkpoint_result=None,
                     run_metadata=SimpleNamespace(checkpoint_manager=SimpleNamespace()),
                     config={"trial": {
        "family": family, "dataset": dataset, "class": cls, "epochs": 100,
        "select": {"metric": "kid", "mode": mode}, "scheduler": settings}})


def _asha(*trials):
    scheduler = GroupedScheduler()
    for trial in trials:
        scheduler.on_trial_add(None, trial)
    return scheduler


def _report(scheduler, trial, epoch, value):
    return scheduler.on_trial_result(None, trial, {"epoch": epoch, SMOOTHED: value})


def test_trials_are_only_compared_within_their_dataset_and_class():
    good, bad = _trial("a1", "fruit", "kiwi"), _trial("a2", "fruit", "kiwi")
    alone = _trial("b1", "fruit", "banana")  # a much worse KID, but the only banana trial
    scheduler = _asha(good, bad, alone)
    assert _report(scheduler, good, 10, 0.1) == TrialScheduler.CONTINUE
    assert _report(scheduler, bad, 10, 0.5) == TrialScheduler.STOP
    assert _report(scheduler, alone, 10, 0.9) == TrialScheduler.CONTINUE
    assert len(scheduler._groups) == 2


def test_max_mode_keeps_the_higher_score():
    low, high = _trial("l", "credit", mode="max"), _trial("h", "credit", mode="max")
    scheduler = _asha(low, high)
    assert _report(scheduler, high, 10, 0.8) == TrialScheduler.CONTINUE
    assert _report(scheduler, low, 10, 0.2) == TrialScheduler.STOP


def test_before_the_grace_period_nobody_is_stopped():
    a, b = _trial("a", "credit"), _trial("b", "credit")
    scheduler = _asha(a, b)
    assert _report(scheduler, a, 5, 0.1) == TrialScheduler.CONTINUE
    assert _report(scheduler, b, 5, 0.9) == TrialScheduler.CONTINUE


def test_families_without_a_scheduler_run_every_epoch_beside_those_with_one():
    plain = [_trial(f"p{i}", "credit", family="tabular-a", scheduler={}) for i in range(2)]
    asha = [_trial(f"s{i}", "credit", family="tabular-b") for i in range(2)]
    scheduler = _asha(*plain, *asha)
    assert _report(scheduler, plain[0], 10, 0.1) == TrialScheduler.CONTINUE
    assert _report(scheduler, plain[1], 10, 0.9) == TrialScheduler.CONTINUE  # never stopped
    assert _report(scheduler, asha[0], 10, 0.1) == TrialScheduler.CONTINUE
    assert _report(scheduler, asha[1], 10, 0.9) == TrialScheduler.STOP
    assert len(scheduler._groups) == 2  # same dataset, different families: not compared


def test_each_group_reads_its_own_grace_period():
    late = [_trial(f"l{i}", "credit", scheduler={"grace_period": 50}) for i in range(2)]
    early = [_trial(f"e{i}", "kiwi") for i in range(2)]
    scheduler = _asha(*late, *early)
    assert _report(scheduler, late[0], 10, 0.1) == TrialScheduler.CONTINUE
    assert _report(scheduler, late[1], 10, 0.9) == TrialScheduler.CONTINUE  # still in grace
    assert _report(scheduler, early[0], 10, 0.1) == TrialScheduler.CONTINUE
    assert _report(scheduler, early[1], 10, 0.9) == TrialScheduler.STOP


def test_smoothing():
    assert smoothed([1.0, 2.0, 3.0, 4.0], 2) == 3.5 and smoothed([1.0], 3) == 1.0


def test_a_trial_whose_latest_checkpoint_was_deleted_restarts_from_its_newest_that_exists(
        tmp_path):
    """Tune names the latest checkpoint of its last saved state; retention may have deleted it
    since (a driver killed between the two). Ray would refuse to restore it; the trial goes on
    from its newest checkpoint instead of failing three times."""
    from ray.tune import Checkpoint

    for number in (3, 7, 8, 9):
        (tmp_path / f"checkpoint_{number:06d}").mkdir()
        if number != 9:  # being written when the driver died: no state file
            (tmp_path / f"checkpoint_{number:06d}" / "state.pt").write_text("weights")
    (tmp_path / "pbt_donor").mkdir()

    def trial_naming(number):
        return FakeTrial(latest_checkpoint_result=SimpleNamespace(
            checkpoint=Checkpoint(str(tmp_path / f"checkpoint_{number:06d}")),
            metrics={"epoch": 2 * number}),
            run_metadata=SimpleNamespace(checkpoint_manager=SimpleNamespace()))

    gone = trial_naming(5)
    forget_what_is_gone(gone)
    restart = gone.run_metadata.checkpoint_manager._latest_checkpoint_result
    assert restart.checkpoint.path == str(tmp_path / "checkpoint_000008")
    there = trial_naming(3)
    forget_what_is_gone(there)  # it exists: nothing changes
    assert not hasattr(there.run_metadata.checkpoint_manager, "_latest_checkpoint_result")
    lost = trial_naming(1)
    lost.latest_checkpoint_result.checkpoint = Checkpoint(str(tmp_path / "elsewhere" / "c_1"))
    forget_what_is_gone(lost)  # nothing to go on from: left to Tune to report
    assert not hasattr(lost.run_metadata.checkpoint_manager, "_latest_checkpoint_result")


def test_listed_checkpoints_that_are_gone_are_forgotten_before_the_trial_runs(tmp_path):
    """Tune's saved state can list a checkpoint deleted after it was saved. Deleting it again
    raised inside Tune's bookkeeping, which then skipped advancing the trial's checkpoint
    number: later checkpoints overwrote live ones (seen on CI with PBT). Real bookkeeping here."""
    import pytest
    from ray.train._internal.checkpoint_manager import _CheckpointManager
    from ray.train._internal.session import _TrainingResult
    from ray.tune import Checkpoint, CheckpointConfig

    def result(number, score):
        folder = tmp_path / f"checkpoint_{number:06d}"
        folder.mkdir()
        (folder / "state.pt").write_text(f"epoch {number}")
        return _TrainingResult(checkpoint=Checkpoint(str(folder)), metrics={"s": score})

    def restored():
        manager = _CheckpointManager(CheckpointConfig(
            num_to_keep=2, checkpoint_score_attribute="s", checkpoint_score_order="max"))
        for number, score in ((0, 0.1), (1, 0.2), (2, 0.3)):
            manager.register_checkpoint(result(number, score))
        return manager

    stale = restored()  # lists 1 and 2 (0 fell out of the best two)
    (tmp_path / "checkpoint_000001").rename(tmp_path / "deleted")  # after the saved state
    stale.register_checkpoint(result(3, 0.05))
    with pytest.raises(FileNotFoundError):  # Ray's own bookkeeping, unrepaired
        stale.register_checkpoint(result(4, 0.25))

    for name in ("checkpoint_000002", "checkpoint_000003", "checkpoint_000004", "deleted"):
        if (tmp_path / name).exists():
            (tmp_path / name).rename(tmp_path / f"old-{name}")
    manager = restored()
    (tmp_path / "checkpoint_000001").rename(tmp_path / "deleted-again")
    trial = FakeTrial(run_metadata=SimpleNamespace(checkpoint_manager=manager),
                      latest_checkpoint_result=manager.latest_checkpoint_result)
    forget_what_is_gone(trial)
    assert [r.metrics["s"] for r in manager._checkpoint_results] == [0.3]
    manager.register_checkpoint(result(3, 0.05))
    manager.register_checkpoint(result(4, 0.25))  # no error: nothing listed is missing
    assert sorted(r.metrics["s"] for r in manager._checkpoint_results) == [0.25, 0.3]


PBT_SETTINGS = {"kind": "pbt", "grace_period": 10, "perturbation_interval": 10,
                "mutations": {"lr_g": {"loguniform": [1.0e-5, 1.0e-2]}, "beta2": [0.9, 0.99]}}


def _member(index, lr_g, epoch=40):
    trial = _trial(f"t{index}", "credit", family="tabular-a", scheduler=PBT_SETTINGS)
    trial.config["trial"].update(index=index, seed=100 + index, tag=f"lr_g={lr_g}",
                                 params={"lr_g": lr_g, "beta2": 0.9, "noise_dim": 20})
    trial.last_result = {"epoch": epoch}
    return trial


def _states(scheduler, *trials, folder=None):
    """PBT's record of each trial, as on_trial_add and on_trial_result leave it; each trial's
    folder under `folder`, on the local filesystem."""
    import pyarrow.fs

    for trial in trials:
        scheduler._trial_state[trial] = SimpleNamespace(
            last_result=trial.last_result, last_perturbation_time=0, last_train_time=0)
        trial.run_metadata = SimpleNamespace(checkpoint_manager=SimpleNamespace())
        trial.set_config = lambda config, trial=trial: setattr(trial, "config", config)
        trial.path = str(folder / trial.trial_id) if folder else None
        trial.storage = SimpleNamespace(storage_filesystem=pyarrow.fs.LocalFileSystem())
    return scheduler


def _decide(pbt, weak, strong, folder, epoch):
    """The donor's latest checkpoint at `epoch`, and PBT's decision that `weak` takes it."""
    from ray.tune import Checkpoint

    saved = folder / f"{strong.trial_id}-checkpoint_{epoch}"
    saved.mkdir(parents=True)
    (saved / "state.pt").write_text(f"weights at {epoch}")
    strong.latest_checkpoint_result = SimpleNamespace(checkpoint=Checkpoint(str(saved)),
                                                      metrics={"epoch": epoch})
    pbt._checkpoint_or_exploit(weak, None, [strong], [weak])


def test_an_exploiting_trial_keeps_its_identity_and_takes_the_donors_settings_perturbed(tmp_path):
    weak, strong = _member(3, 1.0e-5), _member(7, 2.0e-4, epoch=60)
    pbt = _states(_pbt(weak.config["trial"], PBT_SETTINGS), weak, strong, folder=tmp_path)
    _decide(pbt, weak, strong, tmp_path, 60)
    assert weak.config["trial"]["params"]["lr_g"] == 1.0e-5  # nothing changes before it runs
    pbt.exploit_pending(weak)
    spec = weak.config["trial"]
    assert (spec["index"], spec["seed"], spec["tag"]) == (3, 103, "lr_g=1e-05")  # still trial 3
    assert spec["params"]["noise_dim"] == 20 and spec["params"]["beta2"] in (0.9, 0.99)
    assert spec["params"]["lr_g"] != 1.0e-5  # the donor's rate (2e-4), perturbed or resampled
    assert spec["exploits"] == [{"epoch": 60, "donor": 7, "params": {
        "lr_g": spec["params"]["lr_g"], "beta2": spec["params"]["beta2"]}}]
    restart = weak.run_metadata.checkpoint_manager._latest_checkpoint_result
    assert restart.checkpoint.path == str(tmp_path / "t3" / "pbt_donor")  # its own copy
    assert (tmp_path / "t3" / "pbt_donor" / "state.pt").read_text() == "weights at 60"
    assert restart.metrics["epoch"] == 60
    assert pbt._trial_state[weak].last_perturbation_time == 60  # the next interval counts from it
    pbt.exploit_pending(weak)  # nothing pending any more: a second call changes nothing
    assert len(weak.config["trial"]["exploits"]) == 1 and "pending_exploit" not in spec
    _decide(pbt, weak, strong, tmp_path, 80)
    pbt.exploit_pending(weak)
    assert [e["epoch"] for e in weak.config["trial"]["exploits"]] == [60, 80]  # oldest first
    assert (tmp_path / "t3" / "pbt_donor" / "state.pt").read_text() == "weights at 80"


def test_an_exploit_pending_when_the_driver_died_is_applied_after_resume(tmp_path):
    """Tune saves each trial's config with the experiment, not the scheduler: the decision
    lives in the config, so a new driver's fresh PBT applies it."""
    import json

    weak, strong = _member(3, 1.0e-5), _member(7, 2.0e-4, epoch=60)
    before = _states(_pbt(weak.config["trial"], PBT_SETTINGS), weak, strong, folder=tmp_path)
    _decide(before, weak, strong, tmp_path, 60)
    saved = json.loads(json.dumps(weak.config))  # as Tune's experiment state holds it
    restored = _member(3, 1.0e-5)
    restored.config, restored.status = saved, "PENDING"  # Tune requeues unfinished trials
    scheduler = GroupedScheduler()
    _states(scheduler.group_of(restored), restored, folder=tmp_path)
    assert scheduler.choose_trial_to_run(SimpleNamespace(get_trials=lambda: [restored])) \
        is restored
    spec = restored.config["trial"]
    assert spec["exploits"][0]["donor"] == 7 and "pending_exploit" not in spec
    restart = restored.run_metadata.checkpoint_manager._latest_checkpoint_result
    assert restart.checkpoint.path == str(tmp_path / "t3" / "pbt_donor")


def test_pbt_groups_see_only_their_own_population():
    """Ray's PBT pauses a trial whenever another is waiting; in one farm-wide experiment that
    would be any family's trial, so each group's PBT sees a view of its own members only."""
    kiwi = [_trial(f"k{i}", "fruit", "kiwi", scheduler=PBT_SETTINGS) for i in range(2)]
    pear = _trial("p0", "fruit", "pear", scheduler=PBT_SETTINGS)
    controller = SimpleNamespace(get_trials=lambda: [*kiwi, pear], search_alg=None)
    scheduler = GroupedScheduler()
    for trial in (*kiwi, pear):
        scheduler.group_of(trial)
        scheduler._members[scheduler.key_of(trial)].add(trial)
    view = scheduler._view(controller, kiwi[0])
    assert view.get_trials() == kiwi and view.search_alg is None
    assert isinstance(scheduler.group_of(pear), FarmPBT) and len(scheduler._groups) == 2
    assert _GroupView(controller, {pear}).get_trials() == [pear]


def test_paused_trials_resume_least_trained_first_after_every_waiting_one():
    ahead, behind, waiting = (_trial(name, "credit", scheduler={}) for name in "abw")
    for trial, status, epoch in ((ahead, "PAUSED", 40), (behind, "PAUSED", 20),
                                 (waiting, "PENDING", 0)):
        trial.status, trial.last_result = status, {"epoch": epoch}
    controller = SimpleNamespace(get_trials=lambda: [ahead, behind, waiting])
    assert GroupedScheduler().choose_trial_to_run(controller) is waiting
    waiting.status = "RUNNING"
    assert GroupedScheduler().choose_trial_to_run(controller) is behind


def test_a_pending_exploit_is_applied_when_the_paused_trial_is_chosen_to_run(tmp_path):
    weak, strong = _member(0, 1.0e-5, epoch=40), _member(1, 2.0e-4, epoch=60)
    scheduler = GroupedScheduler()
    pbt = _states(scheduler.group_of(weak), weak, strong, folder=tmp_path)
    _decide(pbt, weak, strong, tmp_path, 60)
    weak.status, strong.status = "PAUSED", "RUNNING"
    assert scheduler.choose_trial_to_run(SimpleNamespace(get_trials=lambda: [weak, strong])) \
        is weak
    assert weak.config["trial"]["exploits"][0]["donor"] == 1
    assert "pending_exploit" not in weak.config["trial"]


def test_select_rank_breaks_ties_within_tolerance_by_the_second_metric():
    from farm.tune.schedulers import select_rank

    plain = {"metric": "useful", "mode": "max"}
    assert select_rank({"useful": 0.3}, plain) == -0.3
    assert select_rank({"kid": 1.0}, plain) is None
    tie = {**plain, "tie": "kid", "tolerance": 0.01}
    ranked = sorted([("useful .30 kid 9", {"useful": 0.30, "kid": 9.0}),
                     ("useful .301 kid 2", {"useful": 0.301, "kid": 2.0}),
                     ("useful .10 kid 0.1", {"useful": 0.10, "kid": 0.1}),
                     ("useful .32 kid 50", {"useful": 0.32, "kid": 50.0})],
                    key=lambda item: select_rank(item[1], tie))
    assert [name for name, _ in ranked] == ["useful .32 kid 50", "useful .301 kid 2",
                                            "useful .30 kid 9", "useful .10 kid 0.1"]
    within = [select_rank({"useful": u, "kid": k}, tie) for u, k in ((0.301, 1.0), (0.304, 5.0))]
    assert within[0] < within[1]  # one tolerance step apart at most: the lower KID wins
    assert select_rank({"useful": 0.3}, tie) == -0.3  # no KID reported: the metric alone
    higher = {**tie, "tie": "diversity", "tie_mode": "max"}
    assert select_rank({"useful": 0.0, "diversity": 0.5}, higher) < \
        select_rank({"useful": 0.0, "diversity": 0.1}, higher)


def test_an_epoch_below_a_floor_ranks_after_every_epoch_above_it():
    """laptop-7's oranges pair: usefulness ties at about 0.00 everywhere, and KID kept epoch 10,
    whose images were one picture (diversity 0.00); epoch 100's had diversity 0.25."""
    from farm.tune.schedulers import select_rank

    select = {"metric": "useful", "mode": "max", "tie": "kid", "tolerance": 0.01,
              "floor": {"diversity": 0.2}}
    epochs = {10: {"useful": 0.008, "kid": 0.5, "diversity": 0.0},
              60: {"useful": 0.30, "kid": 0.9, "diversity": 0.1},
              100: {"useful": 0.002, "kid": 0.8, "diversity": 0.25},
              110: {"useful": 0.001, "kid": 0.9}}  # diversity not measured: not held against it
    order = sorted(epochs, key=lambda e: select_rank(epochs[e], select))
    assert order == [100, 110, 60, 10]
    # without the floor the tie-break keeps epoch 10, as laptop-7 did
    plain = {k: v for k, v in select.items() if k != "floor"}
    assert min(epochs, key=lambda e: select_rank(epochs[e], plain)) == 60
    assert min((10, 100), key=lambda e: select_rank(epochs[e], plain)) == 10
