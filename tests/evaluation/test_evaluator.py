"""The evaluator's pieces that run without Ray: sharding, one classifier's fit and test, config."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from farm.config.classifiers import EvaluatorConfig, evaluator_config
from farm.evaluation import evaluator as evaluator_module
from farm.evaluation.evaluator import (AUGMENT, ORDER, Task, draws, fit_and_test, index_batches,
                                       over_seeds, pass_order, seed_configs, shard, soft_targets,
                                       step_budget, stream, synthetic_statistics, train_classifier,
                                       with_dual_batch_norm)
from farm.infra.errors import ConfigError
from farm.models.classifier import confusion, scores


@pytest.mark.parametrize("n,world", [(10, 1), (10, 2), (11, 2), (7, 3), (2, 4)])
def test_shards_are_equal_length_and_cover_every_index(n, world):
    order = torch.randperm(n, generator=torch.Generator().manual_seed(n))
    parts = [shard(order, rank, world) for rank in range(world)]
    assert len({len(p) for p in parts}) == 1  # DDP steps in lockstep
    assert set(torch.cat(parts).tolist()) == set(range(n))
    assert len(parts[0]) == -(-n // world)


def _blobs(n, rng, size=16):
    """Three classes a classifier can tell apart by colour: red, green, blue images."""
    labels = rng.integers(0, 3, n)
    images = rng.integers(0, 60, (n, size, size, 3)).astype(np.uint8)
    images[np.arange(n), :, :, labels] += 150
    return images, labels


def test_fit_and_test_learns_an_easy_task_and_scores_it():
    rng = np.random.default_rng(0)
    config = EvaluatorConfig(arch="tiny", epochs=4, batch_size=16, augment=False)
    out = fit_and_test(Task("easy", *_blobs(96, rng)), Task("test", *_blobs(60, rng)), 3, config,
                       torch.device("cpu"), say=lambda _line: None)
    result = scores(out["matrix"], ["red", "green", "blue"])
    assert result["accuracy"] > 0.9
    assert sum(map(sum, result["confusion"])) == 60 and out["train_images"] == 96


def test_a_classifier_taught_wrong_labels_scores_below_chance():
    rng = np.random.default_rng(1)
    images, labels = _blobs(96, rng)
    config = EvaluatorConfig(arch="tiny", epochs=4, batch_size=16, augment=False)
    out = fit_and_test(Task("shifted", images, (labels + 1) % 3), Task("test", *_blobs(60, rng)),
                       3, config, torch.device("cpu"), say=lambda _line: None)
    assert scores(out["matrix"], list("abc"))["accuracy"] < 0.2


def test_nonzero_ranks_train_but_leave_testing_to_rank_zero():
    rng = np.random.default_rng(2)
    config = EvaluatorConfig(arch="tiny", epochs=1, batch_size=8)
    assert fit_and_test(Task("t", *_blobs(20, rng)), Task("test", *_blobs(6, rng)), 3, config,
                        torch.device("cpu"), rank=1, world=2, say=lambda _line: None) is None


def test_confusion_and_scores_per_class():
    class Fixed(torch.nn.Module):  # predicts class 0 for everything
        def forward(self, x):
            return torch.tensor([[1.0, 0.0]]).repeat(len(x), 1)

    matrix, _ = confusion(Fixed(), torch.zeros(5, 3, 4, 4), torch.tensor([0, 0, 0, 1, 1]), 2)
    assert matrix.tolist() == [[3, 0], [2, 0]]
    result = scores(matrix, ["a", "b"])
    assert result["accuracy"] == 0.6 and result["per_class"] == {"a": 1.0, "b": 0.0}


@pytest.mark.parametrize("values,message", [({"arch": "vgg"}, "arch"), ({"epochs": 0}, "epochs"),
                                            ({"lr": 0.0}, "lr"), ({"workrs": 2}, "workrs"),
                                            ({"width": 0}, "width"),
                                            ({"autocast": "fp16"}, "autocast"),
                                            ({"choice_epochs": -1}, "choice_epochs"),
                                            ({"cas_epochs": -2}, "cas_epochs must be >= 0")])
def test_bad_evaluator_settings_are_named(values, message):
    with pytest.raises(ConfigError, match=message):
        evaluator_config(values)


def test_every_classifier_takes_the_same_number_of_steps_whatever_its_data():
    rng = np.random.default_rng(3)
    config = EvaluatorConfig(arch="tiny", epochs=2, batch_size=16)
    test = Task("test", *_blobs(6, rng))
    steps = [fit_and_test(Task("t", *_blobs(n, rng)), test, 3, config, torch.device("cpu"),
                          say=lambda _line: None, reference_images=40)["steps"]
             for n in (40, 96, 7)]
    assert steps == [step_budget(config, 40)] * 3 == [2 * 3] * 3  # 40 images: 3 steps a pass


def test_a_task_with_its_own_passes_takes_that_many_passes_worth_of_steps():
    rng = np.random.default_rng(4)
    config = EvaluatorConfig(arch="tiny", epochs=4, batch_size=16)
    cas = fit_and_test(Task("synthetic/p", *_blobs(96, rng), passes=1), Task("t", *_blobs(6, rng)),
                       3, config, torch.device("cpu"), say=lambda _line: None,
                       reference_images=40)
    assert cas["steps"] == step_budget(config, 40, passes=1) == 3  # 40 reference images, 1 pass


def _counts(order, n):
    return np.bincount(order.numpy(), minlength=n)


def test_a_plain_pass_is_a_permutation():
    order = pass_order(10, None, 0.25, torch.Generator().manual_seed(0))
    assert sorted(order.tolist()) == list(range(10))


@pytest.mark.parametrize("real,extras,share", [(40, 200, 0.25), (40, 5, 0.5), (30, 30, 0.1)])
def test_a_real_plus_extras_pass_holds_every_real_image_once_and_extras_at_the_share(
        real, extras, share):
    order = pass_order(real + extras, real, share, torch.Generator().manual_seed(1))
    counts = _counts(order, real + extras)
    assert (counts[:real] == 1).all()
    want = round(real * share / (1 - share))
    assert counts[real:].sum() == want
    if want >= extras:  # too few extras: every one is drawn, as evenly as possible
        assert counts[real:].max() - counts[real:].min() <= 1
    else:
        assert counts.max() == 1
    assert order[:real].tolist() != list(range(real))  # real and extras are shuffled together


def test_each_pass_draws_fresh_extras():
    generator = torch.Generator().manual_seed(2)
    first, second = (set(pass_order(20 + 100, 20, 0.25, generator).tolist()) - set(range(20))
                     for _ in range(2))
    assert len(first) == len(second) == 7 and first != second


def test_the_share_bounds_what_bad_extras_can_do():
    """A real + extras classifier learns from its real images whatever the pool holds: extras
    with wrong labels at a small share barely move it, while the same extras concatenated (five
    times as many as the real images) teach it the wrong answer."""
    rng = np.random.default_rng(4)
    images, labels = _blobs(48, rng)
    bad_images, bad_labels = _blobs(240, rng)
    x = np.concatenate([images, bad_images])
    y = np.concatenate([labels, (bad_labels + 1) % 3])
    test = Task("test", *_blobs(60, rng))
    config = EvaluatorConfig(arch="tiny", epochs=6, batch_size=16, augment=False,
                             mix="share", synthetic_share=0.1)

    def accuracy(task):
        out = fit_and_test(task, test, 3, config, torch.device("cpu"), say=lambda _line: None,
                           reference_images=48)
        return scores(out["matrix"], list("abc"))["accuracy"], out

    shared, out = accuracy(Task("shared", x, y, real_count=48))
    concatenated, plain = accuracy(Task("concatenated", x, y))
    assert shared > 0.8 and concatenated < 0.5
    assert out["synthetic_share"] == 0.1 and plain["synthetic_share"] is None


@pytest.mark.parametrize("share", [0.0, 1.0, -0.2])
def test_impossible_synthetic_share_is_refused(share):
    with pytest.raises(ConfigError, match="synthetic_share"):
        evaluator_config({"synthetic_share": share})


# --------------------------------------------------------------------------- the mixes


def _recording(monkeypatch):
    """Record every step's (plain or real) batch and whether extras rode along."""
    seen = []
    step = evaluator_module._Run.step

    def record(self, xb, yb, aug_gen, extra=None):
        seen.append((xb.clone(), None if extra is None else extra[0].clone()))
        return step(self, xb, yb, aug_gen, extra)

    monkeypatch.setattr(evaluator_module._Run, "step", record)
    return seen


def _real_and_pool(seed=5, real=40, pool=100):
    rng = np.random.default_rng(seed)
    x, y = _blobs(real, rng)
    px, py = _blobs(pool, rng)
    return Task("real", x, y), Task("both", np.concatenate([x, px]), np.concatenate([y, py]),
                                    real_count=real)


def _train(task, config, **kw):
    return train_classifier(task, 3, config, torch.device("cpu"), say=lambda _line: None,
                            reference_images=40, **kw)


@pytest.mark.parametrize("mix", ["extra", "distill"])
def test_extra_keeps_the_ceilings_real_schedule_whole_and_adds_synthetic_on_top(
        monkeypatch, mix):
    seen = _recording(monkeypatch)
    real, both = _real_and_pool()
    config = EvaluatorConfig(arch="tiny", epochs=2, batch_size=16, mix=mix, synthetic_batch=8)
    teacher, ceiling_steps = _train(real, config)
    ceiling = list(seen)
    seen.clear()
    _, steps = _train(both, config, teacher=teacher)
    assert steps == ceiling_steps == step_budget(config, 40)
    assert len(seen) == len(ceiling)
    for (xb, extra), (ceiling_xb, none) in zip(seen, ceiling):
        assert none is None and torch.equal(xb, ceiling_xb)  # the same real batches, in order
        assert extra is not None and len(extra) == 8          # synthetic on top of every one


def test_pretrain_trains_on_the_pool_then_takes_the_ceilings_real_schedule(monkeypatch):
    seen = _recording(monkeypatch)
    real, both = _real_and_pool()
    config = EvaluatorConfig(arch="tiny", epochs=2, batch_size=16, mix="pretrain")
    _train(real, config)
    ceiling = list(seen)
    seen.clear()
    _, steps = _train(both, config)
    budget = step_budget(config, 40)
    assert steps == 2 * budget and len(seen) == 2 * budget
    pretrained = list(seen)
    seen.clear()
    _train(Task("pool", both.images[40:], both.labels[40:]), config)  # the CAS run
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(pretrained[:budget], seen))
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(pretrained[budget:], ceiling))


def test_extras_are_drawn_evenly_and_afresh_each_cycle():
    drawn = draws(10, 4, torch.Generator().manual_seed(0))
    batches = [next(drawn) for _ in range(5)]  # 20 draws: every extra twice
    counts = np.bincount(torch.cat(batches).numpy(), minlength=10)
    assert (counts == 2).all()


def test_soft_targets_mix_the_requested_class_with_the_teachers_softmax():
    class Teacher(torch.nn.Module):  # says class 2 for everything, with certainty
        def forward(self, x):
            return torch.tensor([[0.0, 0.0, 50.0]]).repeat(len(x), 1)

    labels = torch.tensor([0, 1])
    x = torch.zeros(2, 3, 4, 4)
    targets = soft_targets(Teacher(), x, labels, 3, 0.25)
    assert torch.allclose(targets, torch.tensor([[0.75, 0.0, 0.25], [0.0, 0.75, 0.25]]),
                          atol=1e-6)
    assert torch.equal(soft_targets(None, x, labels, 3, 0.25),
                       torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]))


def test_separate_batch_norm_keeps_synthetic_statistics_out_of_the_tested_ones():
    from farm.models.classifier import build_model

    model = with_dual_batch_norm(build_model("tiny", 3))
    duals = [m for m in model.modules() if isinstance(m, evaluator_module.DualBatchNorm)]
    assert duals and not any(isinstance(m, torch.nn.BatchNorm2d) and
                             not isinstance(p, evaluator_module.DualBatchNorm)
                             for p in model.modules() for m in p.children()
                             if p not in duals)
    model.train()
    before = [d.main.running_mean.clone() for d in duals]
    with synthetic_statistics(model, True):
        model(torch.randn(4, 3, 16, 16) + 5)
    assert all(torch.equal(b, d.main.running_mean) for b, d in zip(before, duals))
    assert any(not torch.equal(d.aux.running_mean, torch.zeros_like(d.aux.running_mean))
               for d in duals)
    assert not any(d.synthetic for d in duals)  # the context restores the real statistics


def test_separate_batch_norm_trains_and_tests():
    real, both = _real_and_pool()
    test = Task("test", *_blobs(30, np.random.default_rng(9)))
    config = EvaluatorConfig(arch="tiny", epochs=3, batch_size=16, augment=False,
                             separate_bn=True)
    out = fit_and_test(both, test, 3, config, torch.device("cpu"), say=lambda _line: None,
                       reference_images=40)
    assert scores(out["matrix"], list("abc"))["accuracy"] > 0.8 and out["mix"] == "extra"


@pytest.mark.parametrize("mix", ["extra", "distill"])
def test_bf16_channels_last_steps_learn_and_leave_float32_weights(monkeypatch, mix):
    """The real + synthetic steps under bf16 autocast, the model and every batch channels-last;
    what is tested and kept is a float32 model."""
    seen = []
    original = evaluator_module._Run._loss

    def watch(self, xb, yb, extra):
        loss = original(self, xb, yb, extra)
        seen.append((xb.is_contiguous(memory_format=torch.channels_last),
                     torch.is_autocast_enabled("cpu")))
        return loss

    monkeypatch.setattr(evaluator_module._Run, "_loss", watch)
    real, both = _real_and_pool()
    test = Task("test", *_blobs(30, np.random.default_rng(9)))
    config = EvaluatorConfig(arch="tiny", epochs=3, batch_size=16, mix=mix, channels_last=True,
                             autocast="bf16")
    teacher, _ = _train(real, config)
    model, _ = _train(both, config, teacher=teacher)
    assert seen and all(layout and autocast for layout, autocast in seen)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    out = fit_and_test(both, test, 3, config, torch.device("cpu"), say=lambda _line: None,
                       reference_images=40, teacher=teacher)
    assert scores(out["matrix"], list("abc"))["accuracy"] > 0.8
    assert "bf16 autocast" in config.describe()


def test_each_figure_has_every_seed_and_the_mean_of_their_accuracies():
    configs = seed_configs(EvaluatorConfig(seed=10, seeds=3))
    assert [c.seed for c in configs] == [10, 11, 12]
    runs = [{"matrix": [[2, 0], [0, 2]], "seed": 0, "steps": 5, "train_images": 4, "seconds": 1},
            {"matrix": [[1, 1], [0, 2]], "seed": 1, "steps": 5, "train_images": 4, "seconds": 2}]
    out = over_seeds(runs, ["a", "b"])
    assert out["accuracies"] == [1.0, 0.75] and out["accuracy"] == 0.875
    assert out["confusion"] == [[3, 1], [0, 4]] and out["seeds"] == [0, 1]
    assert out["seconds"] == 3 and out["spread"] > 0


@pytest.mark.parametrize("values,message", [({"mix": "blend"}, "mix"), ({"seeds": 0}, "seeds"),
                                            ({"distill_weight": 1.5}, "distill_weight"),
                                            ({"synthetic_batch": 0}, "synthetic_batch"),
                                            ({"separate_bn": True, "mix": "pretrain"},
                                             "separate_bn")])
def test_impossible_mix_settings_are_refused(values, message):
    with pytest.raises(ConfigError, match=message):
        evaluator_config(values)


def test_distill_without_its_teacher_is_refused_rather_than_quietly_plain():
    _, both = _real_and_pool()
    config = EvaluatorConfig(arch="tiny", epochs=1, batch_size=16, mix="distill")
    with pytest.raises(ValueError, match="teacher"):
        _train(both, config)


def test_too_few_images_for_the_workers_is_an_error_not_an_endless_loop():
    with pytest.raises(ValueError, match="fewer than the two"):
        next(index_batches(3, 5, 16, torch.Generator().manual_seed(0), rank=0, world=4))


def test_each_seed_purpose_and_rank_draws_its_own_stream():
    def first(generator):
        return torch.rand(4, generator=generator).tolist()

    seen = {(seed, purpose, rank): tuple(first(stream(seed, purpose, rank)))
            for seed in (0, 1) for purpose in (ORDER, AUGMENT) for rank in (0, 1)}
    assert len(set(seen.values())) == len(seen)
    assert first(stream(0, AUGMENT, 1)) == first(stream(0, AUGMENT, 1))  # reproducible


def test_ctrl_c_in_the_evaluator_job_is_an_interrupt_not_a_silent_exit(monkeypatch, tmp_path):
    """Ray Train's SIGINT handler aborts the job and calls sys.exit, which would end the farm
    with status 1 and no word; the farm says "interrupted" instead (farm.pipeline.cli)."""
    import sys

    import ray
    import ray.train.torch

    class AbortedByCtrlC:
        def __init__(self, *args, **kwargs):
            pass

        def fit(self):
            sys.exit(0)  # what the handler does once the controller has aborted

    monkeypatch.setattr(ray.train.torch, "TorchTrainer", AbortedByCtrlC)
    monkeypatch.setattr(ray, "put", lambda value: value)
    monkeypatch.setattr(evaluator_module, "scaling", lambda config, use_gpu: {
        "num_workers": 1, "use_gpu": False, "resources_per_worker": {"CPU": 1.0}})
    rng = np.random.default_rng(0)
    task = Task("real", *_blobs(12, rng))
    with pytest.raises(KeyboardInterrupt):
        evaluator_module.evaluate("blobs", [task], task, ["a", "b", "c"], EvaluatorConfig(),
                                  tmp_path, use_gpu=False)
